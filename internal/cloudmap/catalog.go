package cloudmap

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/store"
)

// Snapshot is an immutable view of every namespace, service and instance,
// built from one store revision. Data planes (the DNS server today,
// Service Connect proxies next) read it without locks and swap in the
// next one when it changes.
type Snapshot struct {
	Revision   int64
	Namespaces map[string]*NamespaceView // by namespace id
	ByName     map[string]*NamespaceView // by lower-cased name
}

// NamespaceView is a namespace with its services.
type NamespaceView struct {
	Namespace
	Services map[string]*ServiceView // by lower-cased service name
}

// ServiceView is a service with its instances, sorted by id.
type ServiceView struct {
	Service
	Instances []InstanceView
}

// InstanceView is an instance with its addresses parsed.
type InstanceView struct {
	Instance
	IPv4    netip.Addr // invalid when absent
	IPv6    netip.Addr
	Port    uint16 // 0 when absent
	Healthy bool
}

// Endpoints returns the healthy instances of a service of a namespace
// (names compare case-insensitively), nil when either does not exist.
func (s *Snapshot) Endpoints(namespace, service string) []InstanceView {
	ns := s.ByName[dnsName(namespace)]
	if ns == nil {
		return nil
	}
	sv := ns.Services[dnsName(service)]
	if sv == nil {
		return nil
	}
	var out []InstanceView
	for _, i := range sv.Instances {
		if i.Healthy {
			out = append(out, i)
		}
	}
	return out
}

// Catalog follows Cloud Map's state in the store and keeps the current
// Snapshot. Subscribers are told (coalesced) when a new snapshot is in.
type Catalog struct {
	st   store.Store
	log  *slog.Logger
	cur  atomic.Pointer[Snapshot]
	mu   sync.Mutex
	subs []chan struct{}
}

// NewCatalog returns a catalog with an empty snapshot; Run fills it.
func NewCatalog(st store.Store, log *slog.Logger) *Catalog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Catalog{st: st, log: log}
	c.cur.Store(&Snapshot{Namespaces: map[string]*NamespaceView{}, ByName: map[string]*NamespaceView{}})
	return c
}

// Set replaces the snapshot (benchmarks and tests that have no store).
func (c *Catalog) Set(s *Snapshot) { c.publish(s) }

// Current returns the latest snapshot.
func (c *Catalog) Current() *Snapshot { return c.cur.Load() }

// Subscribe returns a channel that receives a value (coalesced, never
// blocking the catalog) after each new snapshot.
func (c *Catalog) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	c.subs = append(c.subs, ch)
	c.mu.Unlock()
	return ch
}

func (c *Catalog) publish(s *Snapshot) {
	c.cur.Store(s)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run keeps the snapshot current until ctx ends: it lists everything,
// then rebuilds on every batch of watched changes (the state is small: a
// full rebuild is simpler than patching and takes well under a
// millisecond for hundreds of instances). A broken watch lists again.
func (c *Catalog) Run(ctx context.Context) {
	for ctx.Err() == nil {
		rev, err := c.reload(ctx)
		if err != nil {
			c.log.Warn("cloud map catalog: list failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		ch := c.st.Watch(wctx, prefix, rev+1)
		for resp := range ch {
			if resp.Err != nil {
				break
			}
			// Drain what is already queued, then rebuild once.
			for drained := false; !drained; {
				select {
				case r, ok := <-ch:
					if !ok || r.Err != nil {
						drained = true
					}
				default:
					drained = true
				}
			}
			if _, err := c.reload(ctx); err != nil {
				break
			}
		}
		cancel()
	}
}

func (c *Catalog) reload(ctx context.Context) (int64, error) {
	res, err := c.st.List(ctx, prefix, store.ListOptions{})
	if err != nil {
		return 0, err
	}
	c.publish(BuildSnapshot(res.Revision, res.KVs))
	return res.Revision, nil
}

// BuildSnapshot makes a snapshot from the key-values under the Cloud Map
// prefix (a pure function: tests feed it directly).
func BuildSnapshot(rev int64, kvs []store.KV) *Snapshot {
	s := &Snapshot{Revision: rev, Namespaces: map[string]*NamespaceView{}, ByName: map[string]*NamespaceView{}}
	svcs := map[string]*ServiceView{}
	var insts []Instance
	for _, kv := range kvs {
		switch {
		case strings.HasPrefix(kv.Key, keyNamespaces):
			var ns Namespace
			if json.Unmarshal(kv.Value, &ns) == nil {
				v := &NamespaceView{Namespace: ns, Services: map[string]*ServiceView{}}
				s.Namespaces[ns.ID] = v
				s.ByName[dnsName(ns.Name)] = v
			}
		case strings.HasPrefix(kv.Key, keyServices):
			var sv Service
			if json.Unmarshal(kv.Value, &sv) == nil {
				svcs[sv.ID] = &ServiceView{Service: sv}
			}
		case strings.HasPrefix(kv.Key, keyInstances):
			var i Instance
			if json.Unmarshal(kv.Value, &i) == nil {
				insts = append(insts, i)
			}
		}
	}
	for _, i := range insts { // listed in key order: by service, then id
		sv := svcs[i.ServiceID]
		if sv == nil {
			continue
		}
		v := InstanceView{Instance: i, Healthy: healthy(i.Health)}
		v.IPv4, _ = netip.ParseAddr(i.Attributes[AttrIPv4])
		v.IPv6, _ = netip.ParseAddr(i.Attributes[AttrIPv6])
		if p, err := strconv.ParseUint(i.Attributes[AttrPort], 10, 16); err == nil {
			v.Port = uint16(p)
		}
		sv.Instances = append(sv.Instances, v)
	}
	for _, sv := range svcs {
		if ns := s.Namespaces[sv.NamespaceID]; ns != nil {
			ns.Services[dnsName(sv.Name)] = sv
		}
	}
	return s
}
