package taskrun

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/serviceconnect"
)

// DirectoryStream follows one namespace's directory until ctx ends or the
// stream breaks (agentapi.Client.ServiceConnect).
type DirectoryStream func(ctx context.Context, namespaceArn string, fn func(serviceconnect.Directory) error) error

// DirectoryHub is the agent's DirectorySource: one stream per namespace
// while at least one task follows it, reconnected with back-off when it
// breaks; a task that starts following gets the newest line at once.
type DirectoryHub struct {
	stream DirectoryStream
	log    *slog.Logger

	mu  sync.Mutex
	ns  map[string]*nsFollow
	seq int
}

type nsFollow struct {
	cancel context.CancelFunc
	subs   map[int]func(serviceconnect.Directory)
	last   *serviceconnect.Directory
}

// NewDirectoryHub returns a hub that opens streams with stream.
func NewDirectoryHub(stream DirectoryStream, log *slog.Logger) *DirectoryHub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DirectoryHub{stream: stream, log: log, ns: map[string]*nsFollow{}}
}

// Follow implements DirectorySource.
func (h *DirectoryHub) Follow(ns string, fn func(serviceconnect.Directory)) func() {
	h.mu.Lock()
	f := h.ns[ns]
	if f == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f = &nsFollow{cancel: cancel, subs: map[int]func(serviceconnect.Directory){}}
		h.ns[ns] = f
		go h.follow(ctx, ns, f)
	}
	h.seq++
	id := h.seq
	f.subs[id] = fn
	last := f.last
	h.mu.Unlock()
	if last != nil {
		fn(*last)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(f.subs, id)
			if len(f.subs) == 0 && h.ns[ns] == f {
				delete(h.ns, ns)
				f.cancel()
			}
		})
	}
}

func (h *DirectoryHub) follow(ctx context.Context, ns string, f *nsFollow) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		got := false
		err := h.stream(ctx, ns, func(d serviceconnect.Directory) error {
			got = true
			h.mu.Lock()
			f.last = &d
			subs := make([]func(serviceconnect.Directory), 0, len(f.subs))
			for _, fn := range f.subs {
				subs = append(subs, fn)
			}
			h.mu.Unlock()
			for _, fn := range subs {
				fn(d)
			}
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		if got {
			backoff = 200 * time.Millisecond
		}
		h.log.Warn("service connect directory stream ended; reconnecting", "namespace", ns, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}
