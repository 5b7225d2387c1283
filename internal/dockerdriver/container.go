package dockerdriver

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errs"
)

// CreateContainer creates a container named name (empty: Docker picks one)
// from the configuration ContainerConfig returns, and returns its id.
// AlreadyExists if the name is taken, NotFound if the image is not local,
// Invalid if Docker rejects the configuration.
func (d *Driver) CreateContainer(ctx context.Context, name string, cfg *container.Config, host *container.HostConfig, netCfg *network.NetworkingConfig) (string, error) {
	if cfg == nil {
		return "", errs.E(errs.Invalid, "create container %s: no configuration", name)
	}
	r, err := call(ctx, "create container "+name, d.t.Create, func(ctx context.Context) (client.ContainerCreateResult, error) {
		return d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: cfg,
			HostConfig: host, NetworkingConfig: netCfg})
	})
	if err != nil {
		if errs.Is(err, errs.Conflict) {
			return "", errs.Wrap(errs.AlreadyExists, err, "container name %q is in use", name)
		}
		return "", err
	}
	return r.ID, nil
}

// StartContainer starts a created container. NotFound if it does not
// exist; starting a running container is not an error.
func (d *Driver) StartContainer(ctx context.Context, id string) error {
	_, err := call(ctx, "start container "+id, d.t.Start, func(ctx context.Context) (client.ContainerStartResult, error) {
		return d.cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
	})
	return err
}

// StopContainer sends the container's stop signal (SIGTERM unless the image
// says otherwise), waits up to timeout for it to exit, then sends SIGKILL.
// The call itself is bounded by timeout + Timeouts.StopGrace. Stopping a
// stopped container is not an error. A negative timeout waits forever for
// the process, bounded only by ctx.
func (d *Driver) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	secs := int(math.Ceil(timeout.Seconds()))
	bound := timeout + d.t.StopGrace
	if timeout < 0 {
		secs, bound = -1, math.MaxInt64
	}
	_, err := call(ctx, "stop container "+id, bound, func(ctx context.Context) (client.ContainerStopResult, error) {
		return d.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	})
	return err
}

// KillContainer sends signal ("SIGKILL", "SIGTERM", "HUP", "9"; empty is
// SIGKILL) to the container's main process. Conflict if it is not running.
func (d *Driver) KillContainer(ctx context.Context, id, signal string) error {
	_, err := call(ctx, "kill container "+id, d.t.Kill, func(ctx context.Context) (client.ContainerKillResult, error) {
		return d.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: signal})
	})
	return err
}

// RemoveOptions says how to remove a container.
type RemoveOptions struct {
	Force         bool // kill it first if it runs
	RemoveVolumes bool // remove its anonymous volumes
}

// RemoveContainer removes a container. NotFound if it does not exist.
func (d *Driver) RemoveContainer(ctx context.Context, id string, opts RemoveOptions) error {
	_, err := call(ctx, "remove container "+id, d.t.Remove, func(ctx context.Context) (client.ContainerRemoveResult, error) {
		return d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: opts.Force, RemoveVolumes: opts.RemoveVolumes})
	})
	return err
}

// HealthStatus is a container's Docker health status.
type HealthStatus string

const (
	HealthNone      HealthStatus = ""          // no health check
	HealthStarting  HealthStatus = "starting"  // within its start period or before the first result
	HealthHealthy   HealthStatus = "healthy"   // the last check passed
	HealthUnhealthy HealthStatus = "unhealthy" // retries consecutive checks failed
)

// PortBinding is a published container port.
type PortBinding struct {
	ContainerPort uint16
	Protocol      string // "tcp" or "udp"
	HostIP        string // "0.0.0.0", "::"
	HostPort      uint16
}

// Endpoint is a container's attachment to a Docker network.
type Endpoint struct {
	NetworkID   string
	IPAddress   string
	IPv6Address string
	Gateway     string
	MacAddress  string
	Aliases     []string
}

// ContainerInfo is the state of a container as the agent needs it.
type ContainerInfo struct {
	ID      string
	Name    string // without Docker's leading "/"
	Image   string // as given at creation
	ImageID string
	Created time.Time
	Labels  map[string]string
	TTY     bool // output is a terminal's raw stream, not Docker's multiplexed one

	Status     string // created, running, paused, restarting, removing, exited, dead
	Running    bool
	Pid        int
	ExitCode   int // meaningful once the container has exited
	OOMKilled  bool
	Error      string // Docker's error, e.g. why a start failed
	StartedAt  time.Time
	FinishedAt time.Time

	Health        HealthStatus
	HealthOutput  string // output of the last health check
	FailingStreak int

	NetworkMode string
	Ports       []PortBinding       // bindings made on the host
	Networks    map[string]Endpoint // by network name
}

// InspectContainer returns the state of a container by id or name.
// NotFound if it does not exist.
func (d *Driver) InspectContainer(ctx context.Context, id string) (ContainerInfo, error) {
	r, err := call(ctx, "inspect container "+id, d.t.Inspect, func(ctx context.Context) (client.ContainerInspectResult, error) {
		return d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	})
	if err != nil {
		return ContainerInfo{}, err
	}
	return containerInfo(r.Container), nil
}

func containerInfo(c container.InspectResponse) ContainerInfo {
	info := ContainerInfo{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), ImageID: c.Image, Created: parseTime(c.Created)}
	if c.Config != nil {
		info.Image = c.Config.Image
		info.Labels = c.Config.Labels
		info.TTY = c.Config.Tty
	}
	if s := c.State; s != nil {
		info.Status = string(s.Status)
		info.Running = s.Running
		info.Pid = s.Pid
		info.ExitCode = s.ExitCode
		info.OOMKilled = s.OOMKilled
		info.Error = s.Error
		info.StartedAt = parseTime(s.StartedAt)
		info.FinishedAt = parseTime(s.FinishedAt)
		if h := s.Health; h != nil {
			info.Health = HealthStatus(h.Status)
			if info.Health == "none" {
				info.Health = HealthNone
			}
			info.FailingStreak = h.FailingStreak
			if n := len(h.Log); n > 0 && h.Log[n-1] != nil {
				info.HealthOutput = h.Log[n-1].Output
			}
		}
	}
	if c.HostConfig != nil {
		info.NetworkMode = string(c.HostConfig.NetworkMode)
	}
	if ns := c.NetworkSettings; ns != nil {
		for port, bindings := range ns.Ports {
			for _, b := range bindings {
				hp, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil {
					continue
				}
				info.Ports = append(info.Ports, PortBinding{ContainerPort: port.Num(), Protocol: string(port.Proto()),
					HostIP: addrString(b.HostIP), HostPort: uint16(hp)})
			}
		}
		if len(ns.Networks) > 0 {
			info.Networks = make(map[string]Endpoint, len(ns.Networks))
			for name, ep := range ns.Networks {
				if ep == nil {
					continue
				}
				info.Networks[name] = Endpoint{NetworkID: ep.NetworkID, IPAddress: addrString(ep.IPAddress),
					IPv6Address: addrString(ep.GlobalIPv6Address), Gateway: addrString(ep.Gateway),
					MacAddress: ep.MacAddress.String(), Aliases: ep.Aliases}
			}
		}
	}
	return info
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// parseTime parses Docker's RFC 3339 times; Docker's "never"
// (0001-01-01T00:00:00Z) and garbage give the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// ListOptions selects containers.
type ListOptions struct {
	// Labels selects containers carrying every one of these labels; an
	// empty value matches any value of the label.
	Labels map[string]string
	// All includes stopped containers.
	All bool
}

// ContainerSummary is a container as listed.
type ContainerSummary struct {
	ID      string
	Name    string
	Image   string
	ImageID string
	Created time.Time
	State   string // created, running, exited, ...
	Status  string // Docker's human text ("Up 3 minutes")
	Labels  map[string]string
}

// ListContainers lists containers, e.g. the ones this agent manages after
// its restart (labels berth.instance=<instance>).
func (d *Driver) ListContainers(ctx context.Context, opts ListOptions) ([]ContainerSummary, error) {
	f := make(client.Filters)
	for k, v := range opts.Labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	r, err := call(ctx, "list containers", d.t.List, func(ctx context.Context) (client.ContainerListResult, error) {
		return d.cli.ContainerList(ctx, client.ContainerListOptions{All: opts.All, Filters: f})
	})
	if err != nil {
		return nil, err
	}
	out := make([]ContainerSummary, 0, len(r.Items))
	for _, c := range r.Items {
		s := ContainerSummary{ID: c.ID, Image: c.Image, ImageID: c.ImageID, Created: time.Unix(c.Created, 0),
			State: string(c.State), Status: c.Status, Labels: c.Labels}
		if len(c.Names) > 0 {
			s.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, s)
	}
	return out, nil
}

// Stats is one sample of a container's resource use: Docker's stats
// document decoded, and as Docker sent it (the task metadata endpoint
// serves it verbatim).
type Stats struct {
	container.StatsResponse
	Raw json.RawMessage
}

// ContainerStats takes one sample of a container's resource use, without
// waiting for a second sample (so the CPU "pre" figures are empty).
func (d *Driver) ContainerStats(ctx context.Context, id string) (Stats, error) {
	return call(ctx, "stats of container "+id, d.t.Stats, func(ctx context.Context) (Stats, error) {
		r, err := d.cli.ContainerStats(ctx, id, client.ContainerStatsOptions{})
		if err != nil {
			return Stats{}, err
		}
		defer r.Body.Close()
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return Stats{}, err
		}
		s := Stats{Raw: raw}
		if err := json.Unmarshal(raw, &s.StatsResponse); err != nil {
			return Stats{}, errs.Wrap(errs.Internal, err, "decode stats of container %s", id)
		}
		return s, nil
	})
}
