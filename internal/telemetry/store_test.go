package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/storetest"
)

// The instrumented store keeps the store contract: the whole suite runs
// through it, on an embedded etcd.
func TestInstrumentedStoreContract(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := store.StartEmbedded(ctx, store.EmbeddedConfig{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	m := New(Options{})
	s := m.Store(e.Store())
	if got, want := store.MaxTxnOps(s), store.MaxTxnOps(e.Store()); got != want {
		t.Fatalf("MaxTxnOps through the wrapper = %d, want %d", got, want)
	}
	storetest.Run(t, func(*testing.T) store.Store { return s })

	mfs := scrape(t, m.Handler())
	for _, op := range []string{"get", "list", "txn", "watch_open", "grant", "keepalive", "revoke", "compact"} {
		h := find(mfs, "berth_store_request_duration_seconds", map[string]string{"op": op})
		if h == nil || h.GetHistogram().GetSampleCount() == 0 {
			t.Errorf("no %s latency observed: %v", op, h)
		}
	}
	if v := find(mfs, "berth_store_watch_events_total", nil).GetCounter().GetValue(); v == 0 {
		t.Error("no watch events counted")
	}
	// The suite's Get of a missing key and expired leases are answers,
	// not failures; its compaction test sees one compacted watch.
	if find(mfs, "berth_store_errors_total", map[string]string{"op": "get", "kind": "not_found"}) != nil {
		t.Error("a missing key was counted as a store error")
	}
	if c := find(mfs, "berth_store_errors_total", map[string]string{"op": "watch", "kind": "compacted"}); c == nil || c.GetCounter().GetValue() < 1 {
		t.Errorf("the compacted watch was not counted: %v", c)
	}
}

// failingStore fails every call with err.
type failingStore struct {
	store.Store
	err error
}

func (f failingStore) Get(context.Context, string) (store.KV, error) { return store.KV{}, f.err }
func (f failingStore) Txn(context.Context, []store.Cmp, ...store.Op) (store.TxnResult, error) {
	return store.TxnResult{}, f.err
}

func TestStoreErrorsByKind(t *testing.T) {
	m := New(Options{})
	unavailable := m.Store(failingStore{err: errs.E(errs.Unavailable, "etcd did not answer in time")})
	notFound := m.Store(failingStore{err: errs.E(errs.NotFound, "key not found")})
	canceled := m.Store(failingStore{err: fmt.Errorf("store: get: %w", context.Canceled)})

	ctx := context.Background()
	unavailable.Get(ctx, "/a")
	unavailable.Txn(ctx, nil)
	unavailable.Txn(ctx, nil)
	notFound.Get(ctx, "/a")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	canceled.Get(cctx, "/a")

	mfs := scrape(t, m.Handler())
	if v := find(mfs, "berth_store_errors_total", map[string]string{"op": "get", "kind": "unavailable"}).GetCounter().GetValue(); v != 1 {
		t.Errorf("get unavailable = %v, want 1", v)
	}
	if v := find(mfs, "berth_store_errors_total", map[string]string{"op": "txn", "kind": "unavailable"}).GetCounter().GetValue(); v != 2 {
		t.Errorf("txn unavailable = %v, want 2", v)
	}
	if n := len(mfs["berth_store_errors_total"].GetMetric()); n != 2 {
		t.Errorf("error series %d, want 2 (not found and the caller's cancellation are not failures)", n)
	}
	if c := find(mfs, "berth_store_request_duration_seconds", map[string]string{"op": "get"}).GetHistogram().GetSampleCount(); c != 3 {
		t.Errorf("get latency observations %d, want 3 (failures are timed too)", c)
	}
	if err := unavailable.(store.Compactor).Compact(ctx, 1); !errs.Is(err, errs.Unsupported) {
		t.Errorf("Compact on a store that cannot: %v", err)
	}
}

// A watch whose consumer stops reading still ends when its context does.
func TestWatchForwarderEndsWithContext(t *testing.T) {
	in := make(chan store.WatchResponse)
	m := New(Options{})
	s := m.Store(chanStore{ch: in})
	ctx, cancel := context.WithCancel(context.Background())
	out := s.Watch(ctx, "/p/", 0)
	in <- store.WatchResponse{Events: []store.Event{{}, {}}}
	in <- store.WatchResponse{Events: []store.Event{{}}} // forwarder blocks: nobody reads out
	cancel()
	close(in) // the inner watch ends with ctx
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-out:
			if !ok {
				if v := find(scrape(t, m.Handler()), "berth_store_watch_events_total", nil).GetCounter().GetValue(); v != 3 {
					t.Fatalf("watch events %v, want 3", v)
				}
				return
			}
		case <-deadline:
			t.Fatal("the instrumented watch did not end with its context")
		}
	}
}

type chanStore struct {
	store.Store
	ch chan store.WatchResponse
}

func (c chanStore) Watch(context.Context, string, int64) <-chan store.WatchResponse { return c.ch }
