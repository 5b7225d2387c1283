package agentgw

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/errs"
)

// LogSink writes containers' output to CloudWatch Logs (the awslogs log
// driver, docs/awslogs.md). Ingest creates the stream if missing, and the
// group too when createGroup; a missing group otherwise is an error of
// kind NotFound whose message is CloudWatch's ("The specified log group
// does not exist."). With no events it only prepares the stream.
type LogSink interface {
	Ingest(ctx context.Context, group, stream string, createGroup bool, events []agentapi.LogEvent) error
}

// SetLogSink enables the agents' logs call (agentapi.PathLogs); without
// a sink it answers 503. Call it before serving.
func (g *Gateway) SetLogSink(s LogSink) { g.logSink = s }

// logDest caches the destinations agents were allowed, so a stream of
// batches costs no store reads. A task stays on its instance and its
// definition never changes, so an entry is only refreshed to notice a
// purged task.
type logDests struct {
	mu sync.Mutex
	m  map[string]logDest
}

type logDest struct {
	d   ecs.AgentLogDestination
	exp time.Time
}

const (
	logDestTTL       = time.Minute
	maxCachedLogDest = 4096
)

func (c *logDests) get(key string, now time.Time) (ecs.AgentLogDestination, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || now.After(e.exp) {
		return ecs.AgentLogDestination{}, false
	}
	return e.d, true
}

func (c *logDests) put(key string, d ecs.AgentLogDestination, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedLogDest {
		c.m = map[string]logDest{}
	}
	c.m[key] = logDest{d: d, exp: now.Add(logDestTTL)}
}

// putLogs serves agentapi.PathLogs.
func (g *Gateway) putLogs(w http.ResponseWriter, r *http.Request, cred ecs.AgentCredential, body []byte) {
	if g.logSink == nil {
		g.fail(w, errs.E(errs.Unavailable, "CloudWatch Logs is not available on this control plane"))
		return
	}
	var req agentapi.LogsRequest
	if err := json.Unmarshal(body, &req); err != nil {
		g.fail(w, errs.E(errs.Invalid, "malformed logs request: %v", err))
		return
	}
	key := cred.AccessKeyID + "\x00" + req.TaskArn + "\x00" + req.Container
	now := g.now()
	dest, ok := g.logDests.get(key, now)
	if !ok {
		var err error
		dest, err = g.ecs.AgentLogDestination(r.Context(), cred, req.TaskArn, req.Container)
		if err != nil {
			g.fail(w, err)
			return
		}
		g.logDests.put(key, dest, now)
	}
	if req.Group != dest.Group {
		g.fail(w, errs.R(errs.Forbidden, "agent.log_group", "Container %s of task %s logs to group %s, not %s.", req.Container, req.TaskArn, dest.Group, req.Group))
		return
	}
	if err := checkStream(req.Stream, dest.Stream); err != nil {
		g.fail(w, err)
		return
	}
	if err := g.logSink.Ingest(r.Context(), dest.Group, req.Stream, dest.CreateGroup, req.Events); err != nil {
		status, code := 0, ""
		switch errs.KindOf(err) {
		case errs.NotFound:
			status, code = http.StatusNotFound, "ResourceNotFoundException"
		case errs.LimitExceeded:
			status, code = http.StatusBadRequest, "LimitExceededException"
		}
		if status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(ErrorBody{Code: code, Message: errs.MessageOf(err)})
			return
		}
		g.fail(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

// checkStream accepts the stream ECS names, or, without a prefix in the
// definition, a stream name CloudWatch accepts.
func checkStream(stream, want string) error {
	if want != "" && stream != want {
		return errs.R(errs.Forbidden, "agent.log_stream", "The log stream of this container is %s, not %s.", want, stream)
	}
	if stream == "" || len(stream) > 512 || strings.ContainsAny(stream, ":*") {
		return errs.E(errs.Invalid, "invalid log stream name %q", stream)
	}
	return nil
}
