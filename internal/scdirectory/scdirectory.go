// Package scdirectory keeps the Service Connect directory of every
// namespace: the endpoints of the tasks of Service Connect services, as
// the agents' proxies need them (serviceconnect.Directory). It follows the
// ECS feed (committed tasks and services), rebuilds on every batch of
// changes and wakes the subscribers of the namespaces whose directory
// changed, so an endpoint change reaches the streams within milliseconds
// of its commit. The agent gateway serves it (agentapi.PathServiceConnect).
package scdirectory

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/serviceconnect"
)

// Feed is what the directory reads of ECS (internal/ecs/feed.go).
type Feed interface {
	WatchTasks(ctx context.Context) <-chan ecs.TaskChange
	WatchServices(ctx context.Context) <-chan ecs.ServiceChange
}

// Hub holds the directories and their subscribers.
type Hub struct {
	feed Feed
	log  *slog.Logger
	// HostIP gives a bridge mode task's container instance address (as
	// cloudmap.ECSController.HostIP).
	HostIP func(containerInstanceArn string) string
	// HealthChecked says whether a task definition has a container health
	// check (then a task is healthy only once HEALTHY).
	HealthChecked func(ctx context.Context, taskDefinitionArn string) bool

	mu     sync.Mutex
	synced chan struct{} // closed after the first build
	dirs   map[string]serviceconnect.Directory
	subs   map[string]map[chan struct{}]struct{}
}

// New returns a hub; Run follows the feed.
func New(feed Feed, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{feed: feed, log: log, synced: make(chan struct{}), dirs: map[string]serviceconnect.Directory{},
		subs: map[string]map[chan struct{}]struct{}{}}
}

// Subscribe returns a channel that receives a value (coalesced) whenever
// the namespace's directory changes, and the function that ends the
// subscription.
func (h *Hub) Subscribe(namespaceArn string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[namespaceArn] == nil {
		h.subs[namespaceArn] = map[chan struct{}]struct{}{}
	}
	h.subs[namespaceArn][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[namespaceArn], ch)
		if len(h.subs[namespaceArn]) == 0 {
			delete(h.subs, namespaceArn)
		}
		h.mu.Unlock()
	}
}

// Directory returns the namespace's current directory, waiting for the
// first build.
func (h *Hub) Directory(ctx context.Context, namespaceArn string) (serviceconnect.Directory, error) {
	select {
	case <-h.synced:
	case <-ctx.Done():
		return serviceconnect.Directory{}, ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.dirs[namespaceArn]
	if !ok {
		return serviceconnect.Directory{NamespaceArn: namespaceArn, Services: []serviceconnect.DirectoryService{}}, nil
	}
	return d, nil
}

// Run follows the feed until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	tasks := h.feed.WatchTasks(ctx)
	svcs := h.feed.WatchServices(ctx)
	taskState := newMirror[ecsapi.Task]()
	svcState := newMirror[ecsapi.Service]()
	var rev int64
	hc := map[string]bool{} // task definition ARN -> health checked
	healthChecked := func(td string) bool {
		v, ok := hc[td]
		if !ok {
			if h.HealthChecked != nil {
				v = h.HealthChecked(ctx, td)
			}
			hc[td] = v
		}
		return v
	}
	// take applies one change from either feed; wait says whether to
	// block for it. It reports false when nothing was taken: ctx ended or
	// a feed closed (stop), or, not waiting, nothing was queued.
	take := func(wait bool) (taken, stop bool) {
		var (
			tc       ecs.TaskChange
			sc       ecs.ServiceChange
			ok, task bool
		)
		if wait {
			select {
			case <-ctx.Done():
				return false, true
			case tc, ok = <-tasks:
				task = true
			case sc, ok = <-svcs:
			}
		} else {
			select {
			case tc, ok = <-tasks:
				task = true
			case sc, ok = <-svcs:
			default:
				return false, false
			}
		}
		switch {
		case !ok:
			return false, true
		case task:
			rev = max(rev, tc.Revision)
			taskState.apply(tc.Kind, derefS(tc.Task.TaskArn), tc.Task)
		default:
			rev = max(rev, sc.Revision)
			svcState.apply(sc.Kind, derefS(sc.Service.ClusterArn)+"/"+derefS(sc.Service.ServiceName), sc.Service)
		}
		return true, false
	}
	for {
		if _, stop := take(true); stop {
			return
		}
		// Take what is already queued, then build once.
		for {
			taken, stop := take(false)
			if stop {
				return
			}
			if !taken {
				break
			}
		}
		if !taskState.ready() || !svcState.ready() {
			continue
		}
		h.publish(Build(taskState.state, svcState.state, h.HostIP, healthChecked), rev)
	}
}

// mirror is the state one feed has delivered, keyed by resource.
type mirror[T any] struct {
	state   map[string]T
	pending map[string]bool // during a relist: the keys listed so far
	synced  bool            // a listing has completed
}

func newMirror[T any]() *mirror[T] { return &mirror[T]{state: map[string]T{}} }

// apply takes one change: after a relist, whatever the listing did not
// show again is gone.
func (m *mirror[T]) apply(kind ecs.ChangeKind, k string, v T) {
	switch kind {
	case ecs.ChangeRelist:
		m.pending = map[string]bool{}
	case ecs.ChangeSynced:
		for k := range m.state {
			if !m.pending[k] {
				delete(m.state, k)
			}
		}
		m.pending, m.synced = nil, true
	case ecs.ChangeUpsert:
		m.state[k] = v
		if m.pending != nil {
			m.pending[k] = true
		}
	case ecs.ChangeDelete:
		delete(m.state, k)
	}
}

// ready reports whether the state is a complete listing (not mid-relist).
func (m *mirror[T]) ready() bool { return m.synced && m.pending == nil }

// publish swaps in the new directories and wakes the subscribers of those
// that changed.
func (h *Hub) publish(dirs map[string][]serviceconnect.DirectoryService, rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.synced:
	default:
		defer close(h.synced)
	}
	changed := map[string]bool{}
	for ns, svcs := range dirs {
		old, ok := h.dirs[ns]
		if ok && sameServices(old.Services, svcs) {
			continue
		}
		h.dirs[ns] = serviceconnect.Directory{NamespaceArn: ns, Revision: rev, Services: svcs}
		changed[ns] = true
	}
	for ns := range h.dirs {
		if _, ok := dirs[ns]; !ok {
			delete(h.dirs, ns)
			changed[ns] = true
		}
	}
	for ns := range changed {
		for ch := range h.subs[ns] {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

func sameServices(a, b []serviceconnect.DirectoryService) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// Build computes every namespace's services and endpoints from the tasks
// and services (keyed by cluster ARN + "/" + name): a pure function. Every
// discovery name a service's deployments configure is listed (with no
// endpoints when it has no running task); a task's endpoints are listed
// while it is RUNNING, healthy only while it is also desired RUNNING and,
// with a health check, HEALTHY.
func Build(tasks map[string]ecsapi.Task, svcs map[string]ecsapi.Service, hostIP func(string) string, healthChecked func(taskDefinitionArn string) bool) map[string][]serviceconnect.DirectoryService {
	type key struct{ ns, disc string }
	eps := map[key][]serviceconnect.Endpoint{}
	if hostIP != nil { // one look-up per instance per build
		lookup, seen := hostIP, map[string]string{}
		hostIP = func(inst string) string {
			ip, ok := seen[inst]
			if !ok {
				ip = lookup(inst)
				seen[inst] = ip
			}
			return ip
		}
	}
	for _, sv := range svcs {
		if derefS(sv.Status) == "INACTIVE" {
			continue
		}
		for _, d := range sv.Deployments {
			if c := d.ServiceConnectConfiguration; c != nil {
				for _, s := range c.Services {
					k := key{derefS(c.Namespace), derefS(s.DiscoveryName)}
					if _, ok := eps[k]; !ok {
						eps[k] = []serviceconnect.Endpoint{}
					}
				}
			}
		}
	}
	for _, t := range tasks {
		name, ok := strings.CutPrefix(derefS(t.Group), "service:")
		if !ok || derefS(t.LastStatus) != "RUNNING" {
			continue
		}
		sv, ok := svcs[derefS(t.ClusterArn)+"/"+name]
		if !ok {
			continue
		}
		for _, ep := range ecs.ServiceConnectEndpoints(t, sv, hostIP) {
			healthy := ep.Running && ep.Wanted
			if healthy && healthChecked != nil && healthChecked(derefS(t.TaskDefinitionArn)) {
				healthy = derefS((*string)(t.HealthStatus)) == string(ecsapi.HealthStatusHealthy)
			}
			k := key{ep.NamespaceArn, ep.DiscoveryName}
			eps[k] = append(eps[k], serviceconnect.Endpoint{TaskArn: ep.TaskArn, Address: ep.Address, Port: ep.Port, Healthy: healthy})
		}
	}
	out := map[string][]serviceconnect.DirectoryService{}
	for k, list := range eps {
		slices.SortFunc(list, func(a, b serviceconnect.Endpoint) int { return strings.Compare(a.TaskArn, b.TaskArn) })
		out[k.ns] = append(out[k.ns], serviceconnect.DirectoryService{DiscoveryName: k.disc, Endpoints: list})
	}
	for _, list := range out {
		slices.SortFunc(list, func(a, b serviceconnect.DirectoryService) int {
			return strings.Compare(a.DiscoveryName, b.DiscoveryName)
		})
	}
	return out
}

func derefS(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
