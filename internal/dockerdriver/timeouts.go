package dockerdriver

import "time"

// Timeouts bounds every Docker call. A zero field takes its default from
// DefaultTimeouts. The defaults follow the ECS agent's
// (dockerclient/timeout.go and the ECS_CONTAINER_*_TIMEOUT settings).
type Timeouts struct {
	Ping    time.Duration // GET /_ping
	Version time.Duration // GET /version
	Info    time.Duration // GET /info

	// PullBegin bounds the wait for the daemon to answer a pull request.
	PullBegin time.Duration
	// PullInactivity cancels a pull when no progress message arrives for
	// this long (ECS_IMAGE_PULL_INACTIVITY_TIMEOUT).
	PullInactivity time.Duration
	// Pull bounds a whole pull, however much progress it makes
	// (ECS_IMAGE_PULL_TIMEOUT).
	Pull         time.Duration
	ImageInspect time.Duration
	ImageRemove  time.Duration
	ImageLoad    time.Duration

	Create  time.Duration // ECS_CONTAINER_CREATE_TIMEOUT
	Start   time.Duration // ECS_CONTAINER_START_TIMEOUT
	Inspect time.Duration
	List    time.Duration
	// StopGrace is added to a stop's own timeout (the time Docker waits
	// between SIGTERM and SIGKILL) to bound the whole stop call.
	StopGrace time.Duration
	Kill      time.Duration
	Remove    time.Duration
	Stats     time.Duration

	// EventsConnect bounds opening the event stream; the stream itself runs
	// until its context ends.
	EventsConnect time.Duration
	// LogsConnect bounds opening a container's log stream; a followed
	// stream runs until its context ends.
	LogsConnect time.Duration

	NetworkCreate  time.Duration
	NetworkRemove  time.Duration
	NetworkConnect time.Duration // connect and disconnect
	NetworkInspect time.Duration

	VolumeCreate  time.Duration
	VolumeRemove  time.Duration
	VolumeInspect time.Duration
}

// DefaultTimeouts returns the default timeout of every Docker call.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		Ping:    10 * time.Second,
		Version: 10 * time.Second,
		Info:    10 * time.Second,

		PullBegin:      5 * time.Minute,
		PullInactivity: 1 * time.Minute,
		Pull:           2 * time.Hour,
		ImageInspect:   30 * time.Second,
		ImageRemove:    3 * time.Minute,
		ImageLoad:      2 * time.Minute,

		Create:    4 * time.Minute,
		Start:     3 * time.Minute,
		Inspect:   30 * time.Second,
		List:      30 * time.Second,
		StopGrace: 30 * time.Second,
		Kill:      30 * time.Second,
		Remove:    5 * time.Minute,
		Stats:     30 * time.Second,

		EventsConnect: 30 * time.Second,
		LogsConnect:   30 * time.Second,

		NetworkCreate:  1 * time.Minute,
		NetworkRemove:  1 * time.Minute,
		NetworkConnect: 1 * time.Minute,
		NetworkInspect: 30 * time.Second,

		VolumeCreate:  5 * time.Minute,
		VolumeRemove:  5 * time.Minute,
		VolumeInspect: 30 * time.Second,
	}
}

// withDefaults fills every zero field of t from DefaultTimeouts.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	fill := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&t.Ping, d.Ping)
	fill(&t.Version, d.Version)
	fill(&t.Info, d.Info)
	fill(&t.PullBegin, d.PullBegin)
	fill(&t.PullInactivity, d.PullInactivity)
	fill(&t.Pull, d.Pull)
	fill(&t.ImageInspect, d.ImageInspect)
	fill(&t.ImageRemove, d.ImageRemove)
	fill(&t.ImageLoad, d.ImageLoad)
	fill(&t.Create, d.Create)
	fill(&t.Start, d.Start)
	fill(&t.Inspect, d.Inspect)
	fill(&t.List, d.List)
	fill(&t.StopGrace, d.StopGrace)
	fill(&t.Kill, d.Kill)
	fill(&t.Remove, d.Remove)
	fill(&t.Stats, d.Stats)
	fill(&t.EventsConnect, d.EventsConnect)
	fill(&t.LogsConnect, d.LogsConnect)
	fill(&t.NetworkCreate, d.NetworkCreate)
	fill(&t.NetworkRemove, d.NetworkRemove)
	fill(&t.NetworkConnect, d.NetworkConnect)
	fill(&t.NetworkInspect, d.NetworkInspect)
	fill(&t.VolumeCreate, d.VolumeCreate)
	fill(&t.VolumeRemove, d.VolumeRemove)
	fill(&t.VolumeInspect, d.VolumeInspect)
	return t
}
