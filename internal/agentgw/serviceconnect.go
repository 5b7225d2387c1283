package agentgw

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/serviceconnect"
)

// SCDirectory is the Service Connect directory (internal/scdirectory).
type SCDirectory interface {
	Directory(ctx context.Context, namespaceArn string) (serviceconnect.Directory, error)
	Subscribe(namespaceArn string) (<-chan struct{}, func())
}

// SetServiceConnect enables agentapi.PathServiceConnect; call it before
// the gateway serves.
func (g *Gateway) SetServiceConnect(d SCDirectory) { g.scDir = d }

// serviceConnect serves an agent's directory stream of one namespace: the
// whole directory at once, then again on every change, and an empty line
// every HeartbeatInterval while nothing changes. Only an agent with a
// task that uses the namespace may follow it.
func (g *Gateway) serviceConnect(w http.ResponseWriter, r *http.Request, cred ecs.AgentCredential) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		g.fail(w, errs.E(errs.Invalid, "namespace (a Cloud Map namespace ARN) is required"))
		return
	}
	ok, err := g.ecs.InstanceUsesNamespace(r.Context(), cred, ns)
	if err != nil {
		g.fail(w, err)
		return
	}
	if !ok {
		g.fail(w, errs.E(errs.Forbidden, "no task assigned to container instance %s uses the Service Connect namespace %s", cred.InstanceID, ns))
		return
	}
	changed, cancel := g.scDir.Subscribe(ns)
	defer cancel()
	dir, err := g.scDir.Directory(r.Context(), ns)
	if err != nil {
		g.fail(w, err)
		return
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		if _, err := w.Write(b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	line, _ := json.Marshal(dir)
	if !write(append(line, '\n')) {
		return
	}
	last := string(line)
	beat := time.NewTicker(agentapi.HeartbeatInterval)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-beat.C:
			if !write([]byte("\n")) {
				return
			}
		case <-changed:
			dir, err := g.scDir.Directory(r.Context(), ns)
			if err != nil {
				return
			}
			line, _ := json.Marshal(dir)
			if string(line) == last {
				continue
			}
			last = string(line)
			if !write(append(line, '\n')) {
				return
			}
			beat.Reset(agentapi.HeartbeatInterval)
		}
	}
}
