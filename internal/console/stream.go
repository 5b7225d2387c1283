package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/logsapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/ecs"
)

// heartbeat is how often an idle stream sends a comment, so proxies and the
// browser keep it open and a dead peer is noticed.
const heartbeat = 15 * time.Second

// feedItem is one item of the live stream: a feed's change, shaped as the
// matching Describe call shows the resource.
type feedItem struct {
	Kind     string `json:"kind"`
	Revision int64  `json:"rev,omitempty"`
	Task     any    `json:"task,omitempty"`
	Service  any    `json:"service,omitempty"`
	Instance any    `json:"instance,omitempty"`
}

// sse writes server-sent events, flushing when asked.
type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func startSSE(w http.ResponseWriter) (*sse, bool) {
	f, ok := w.(http.Flusher)
	if !ok {
		writeJSONError(w, http.StatusInternalServerError, "InternalFailure", "streaming is not supported here")
		return nil, false
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &sse{w: w, f: f}, true
}

func (s *sse) event(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, b)
	return err
}

// stream serves GET /console/api/stream[?cluster=<name or ARN>]: the ECS
// feed (tasks, services, container instances) as server-sent events named
// task, service and instance. Each feed starts with a relist item, one
// upsert per resource and a synced item, then follows every committed
// change; the browser keeps the state (docs/console.md). The stream ends
// when the session expires, the client goes away or the server stops.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, ss *session) {
	if h.cfg.ECS == nil {
		writeJSONError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the ECS feed is not available")
		return
	}
	cluster := r.URL.Query().Get("cluster")
	ctx, cancel := context.WithDeadline(r.Context(), ss.Expires)
	defer cancel()
	out, ok := startSSE(w)
	if !ok {
		return
	}
	tasks := h.cfg.ECS.WatchTasks(ctx)
	services := h.cfg.ECS.WatchServices(ctx)
	instances := h.cfg.ECS.WatchContainerInstances(ctx)
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	inCluster := func(arn *string) bool {
		if cluster == "" {
			return true
		}
		if arn == nil {
			return false
		}
		return *arn == cluster || strings.HasSuffix(*arn, ":cluster/"+cluster)
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-h.stop:
			return
		case <-tick.C:
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
		case c, open := <-tasks:
			if !open {
				return
			}
			if c.Kind == ecs.ChangeUpsert || c.Kind == ecs.ChangeDelete {
				if !inCluster(c.Task.ClusterArn) {
					continue
				}
				err = out.event("task", feedItem{Kind: c.Kind.String(), Revision: c.Revision, Task: c.Task})
			} else {
				err = out.event("task", feedItem{Kind: c.Kind.String(), Revision: c.Revision})
			}
		case c, open := <-services:
			if !open {
				return
			}
			if c.Kind == ecs.ChangeUpsert || c.Kind == ecs.ChangeDelete {
				if !inCluster(c.Service.ClusterArn) {
					continue
				}
				err = out.event("service", feedItem{Kind: c.Kind.String(), Revision: c.Revision, Service: c.Service})
			} else {
				err = out.event("service", feedItem{Kind: c.Kind.String(), Revision: c.Revision})
			}
		case c, open := <-instances:
			if !open {
				return
			}
			if c.Kind == ecs.ChangeUpsert || c.Kind == ecs.ChangeDelete {
				if cluster != "" && !strings.Contains(aws(c.Instance.ContainerInstanceArn), ":container-instance/"+clusterName(cluster)+"/") {
					continue
				}
				err = out.event("instance", feedItem{Kind: c.Kind.String(), Revision: c.Revision, Instance: c.Instance})
			} else {
				err = out.event("instance", feedItem{Kind: c.Kind.String(), Revision: c.Revision})
			}
		}
		if err != nil {
			return
		}
		// Flush once the feeds have nothing more queued: a relist of
		// thousands of tasks goes out in a few writes, not thousands.
		if len(tasks) == 0 && len(services) == 0 && len(instances) == 0 {
			out.f.Flush()
		}
	}
}

func aws(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func clusterName(c string) string {
	if i := strings.LastIndex(c, ":cluster/"); i >= 0 {
		return c[i+len(":cluster/"):]
	}
	return c
}

// tailPoll is how often a log tail reads new events from the log store.
const tailPoll = time.Second

// tail serves GET /console/api/logs?group=<log group>&stream=<log stream>:
// the stream's events as server-sent events named log (the last 200 at
// first, then each new one), read from CloudWatch Logs in-process with
// FilterLogEvents as the signed-in identity.
func (h *Handler) tail(w http.ResponseWriter, r *http.Request, ss *session) {
	q := r.URL.Query()
	group, streamName := q.Get("group"), q.Get("stream")
	if group == "" || streamName == "" || h.cfg.Logs == nil {
		writeJSONError(w, http.StatusBadRequest, "InvalidParameterException", "group and stream are required")
		return
	}
	ctx, cancel := context.WithDeadline(r.Context(), ss.Expires)
	defer cancel()
	ctx = awsproto.WithCall(ctx, &awsproto.Call{RequestID: awsproto.NewRequestID(), Identity: ss.Identity, Service: "logs", Operation: "FilterLogEvents", SourceIP: r.RemoteAddr, UserAgent: r.UserAgent()})
	out, ok := startSSE(w)
	if !ok {
		return
	}
	// seen holds the ids of the events sent at the newest timestamp, so
	// re-reading from that millisecond sends nothing twice.
	var from int64
	seen := map[string]bool{}
	first := true
	tick := time.NewTicker(tailPoll)
	defer tick.Stop()
	for {
		in := &logsapi.FilterLogEventsRequest{LogGroupName: &group, LogStreamNames: []string{streamName}, StartTime: &from}
		var evs []logsapi.FilteredLogEvent
		for {
			res, err := h.cfg.Logs.FilterLogEvents(ctx, in)
			if err != nil {
				out.event("error", map[string]string{"message": err.Error()})
				out.f.Flush()
				break
			}
			evs = append(evs, res.Events...)
			if res.NextToken == nil || len(res.Events) == 0 {
				break
			}
			in.NextToken = res.NextToken
		}
		if first && len(evs) > 200 {
			evs = evs[len(evs)-200:]
		}
		first = false
		for _, e := range evs {
			id := aws(e.EventId)
			if seen[id] {
				continue
			}
			var ts int64
			if e.Timestamp != nil {
				ts = *e.Timestamp
			}
			if ts > from {
				from = ts
				clear(seen)
			}
			seen[id] = true
			if err := out.event("log", map[string]any{"t": ts, "m": aws(e.Message)}); err != nil {
				return
			}
		}
		out.f.Flush()
		select {
		case <-ctx.Done():
			return
		case <-h.stop:
			return
		case <-tick.C:
		}
	}
}
