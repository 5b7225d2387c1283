package dockerdriver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errs"
)

// Container event actions the agent follows.
const (
	EventStart        = "start"
	EventDie          = "die"
	EventOOM          = "oom"
	EventHealthStatus = "health_status"
	EventKill         = "kill"
	EventStop         = "stop"
	EventDestroy      = "destroy"
)

// DefaultEventActions are the container actions Events reports when the
// options name none.
var DefaultEventActions = []string{EventStart, EventDie, EventOOM, EventHealthStatus}

// Event is a container event.
type Event struct {
	ContainerID string
	// Action is the event's verb without detail: "start", "die", "oom",
	// "health_status", ...
	Action string
	// Health is set for health_status events.
	Health HealthStatus
	// ExitCode is set for die events (-1 if Docker did not say).
	ExitCode int
	// Attributes holds the container's labels, "name" and "image".
	Attributes map[string]string
	Time       time.Time // with nanoseconds; pass it back as Since to resume
}

// EventOptions selects events.
type EventOptions struct {
	// Since replays the events from this time on (the daemon keeps a
	// bounded backlog), so a consumer that lost its stream resumes from the
	// Time of the last event it saw, accepting that events at exactly that
	// time repeat. Zero: only new events.
	Since time.Time
	// Actions to report; empty: DefaultEventActions.
	Actions []string
	// Labels selects containers carrying these labels (empty value: any).
	Labels map[string]string
}

// Events streams container events until ctx ends or the stream breaks.
// Opening the stream is bounded by Timeouts.EventsConnect; the stream
// itself has no deadline. The error channel delivers exactly one error
// (mapped to errs kinds; Unavailable when the daemon goes away) and is then
// closed; the event channel is closed when the stream ends. To survive
// daemon restarts, reopen with Since set to the last event's Time.
func (d *Driver) Events(ctx context.Context, opts EventOptions) (<-chan Event, <-chan error) {
	f := make(client.Filters).Add("type", string(events.ContainerEventType))
	actions := opts.Actions
	if len(actions) == 0 {
		actions = DefaultEventActions
	}
	f.Add("event", actions...)
	for k, v := range opts.Labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	lo := client.EventsListOptions{Filters: f}
	if !opts.Since.IsZero() {
		lo.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}

	sctx, cancel := context.WithCancel(ctx)
	connectTimer := time.AfterFunc(d.t.EventsConnect, cancel)
	// client.Events returns once the daemon has answered (or failed).
	r := d.cli.Events(sctx, lo)
	connected := connectTimer.Stop()

	out := make(chan Event)
	errc := make(chan error, 1)
	go func() {
		defer cancel()
		defer close(errc)
		defer close(out)
		for {
			select {
			case m := <-r.Messages:
				select {
				case out <- toEvent(m):
				case <-ctx.Done():
					errc <- mapErr(ctx, nil, "events", 0, ctx.Err())
					return
				}
			case err := <-r.Err:
				if !connected && ctx.Err() == nil {
					errc <- &errs.Error{Kind: errs.Unavailable, Reason: ReasonTimeout,
						Msg: "docker events: stream not open after " + d.t.EventsConnect.String(), Err: err}
					return
				}
				errc <- mapErr(ctx, nil, "events", d.t.EventsConnect, err)
				return
			}
		}
	}()
	return out, errc
}

func toEvent(m events.Message) Event {
	action, detail, _ := strings.Cut(string(m.Action), ":")
	e := Event{ContainerID: m.Actor.ID, Action: action, Attributes: m.Actor.Attributes, ExitCode: -1}
	if m.TimeNano != 0 {
		e.Time = time.Unix(0, m.TimeNano)
	} else {
		e.Time = time.Unix(m.Time, 0)
	}
	if action == EventHealthStatus {
		e.Health = HealthStatus(strings.TrimSpace(detail))
	}
	if code, err := strconv.Atoi(m.Actor.Attributes["exitCode"]); err == nil {
		e.ExitCode = code
	}
	return e
}
