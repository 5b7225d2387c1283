package telemetry

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Store returns st instrumented: every call's latency and failures, and
// the events its watches deliver, are counted in m. The result implements
// store.TxnLimiter and store.Compactor as st does (Compact fails with kind
// Unsupported when st cannot compact). Closing it closes st.
func (m *Metrics) Store(st store.Store) store.Store {
	s := &instrumentedStore{st: st, m: m}
	for _, op := range storeOps {
		if op != opWatch { // a watch's events are counted, not timed
			s.dur[op] = m.storeDuration.WithLabelValues(op.String())
		}
	}
	return s
}

// storeOp is one store call, as a label value.
type storeOp int

const (
	opGet storeOp = iota
	opList
	opTxn
	opWatchOpen
	opWatch
	opGrant
	opKeepAlive
	opRevoke
	opCompact
	numStoreOps
)

var storeOps = [...]storeOp{opGet, opList, opTxn, opWatchOpen, opWatch, opGrant, opKeepAlive, opRevoke, opCompact}

var storeOpNames = [numStoreOps]string{"get", "list", "txn", "watch_open", "watch", "grant", "keepalive", "revoke", "compact"}

func (o storeOp) String() string { return storeOpNames[o] }

type instrumentedStore struct {
	st store.Store
	m  *Metrics
	// dur holds each operation's histogram, looked up once (none for
	// opWatch).
	dur [numStoreOps]prometheus.Observer
}

var (
	_ store.Store      = (*instrumentedStore)(nil)
	_ store.Compactor  = (*instrumentedStore)(nil)
	_ store.TxnLimiter = (*instrumentedStore)(nil)
)

// done records a call that started at t0 and ended with err.
func (s *instrumentedStore) done(ctx context.Context, op storeOp, t0 time.Time, err error) {
	s.dur[op].Observe(time.Since(t0).Seconds())
	s.failed(ctx, op, err)
}

// failed counts err unless it is an answer (not found) or the caller's
// own cancellation.
func (s *instrumentedStore) failed(ctx context.Context, op storeOp, err error) {
	if err == nil || errs.Is(err, errs.NotFound) {
		return
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return
	}
	kind := kindLabel(errs.KindOf(err))
	if errors.Is(err, store.ErrCompacted) {
		kind = "compacted" // a watch or read from a revision etcd discarded
	}
	s.m.storeErrors.WithLabelValues(op.String(), kind).Inc()
}

func (s *instrumentedStore) Get(ctx context.Context, key string) (store.KV, error) {
	t0 := time.Now()
	kv, err := s.st.Get(ctx, key)
	s.done(ctx, opGet, t0, err)
	return kv, err
}

func (s *instrumentedStore) List(ctx context.Context, prefix string, opts store.ListOptions) (store.ListResult, error) {
	t0 := time.Now()
	res, err := s.st.List(ctx, prefix, opts)
	s.done(ctx, opList, t0, err)
	return res, err
}

func (s *instrumentedStore) Txn(ctx context.Context, cmps []store.Cmp, ops ...store.Op) (store.TxnResult, error) {
	t0 := time.Now()
	res, err := s.st.Txn(ctx, cmps, ops...)
	s.done(ctx, opTxn, t0, err)
	return res, err
}

// Watch counts the events delivered and a watch's terminal error; the
// latency recorded (watch_open) is the time Watch takes to return. The
// responses pass through one goroutine per watch.
func (s *instrumentedStore) Watch(ctx context.Context, prefix string, fromRevision int64) <-chan store.WatchResponse {
	t0 := time.Now()
	in := s.st.Watch(ctx, prefix, fromRevision)
	s.dur[opWatchOpen].Observe(time.Since(t0).Seconds())
	out := make(chan store.WatchResponse, 1)
	go func() {
		defer close(out)
		for wr := range in {
			if n := len(wr.Events); n > 0 {
				s.m.storeWatchEvents.Add(float64(n))
			}
			s.failed(ctx, opWatch, wr.Err)
			select {
			case out <- wr:
			case <-ctx.Done():
				// The consumer is gone; the inner watch ends with ctx and
				// closes in.
				for range in {
				}
				return
			}
		}
	}()
	return out
}

func (s *instrumentedStore) Grant(ctx context.Context, ttl time.Duration) (store.LeaseID, error) {
	t0 := time.Now()
	id, err := s.st.Grant(ctx, ttl)
	s.done(ctx, opGrant, t0, err)
	return id, err
}

func (s *instrumentedStore) KeepAliveOnce(ctx context.Context, id store.LeaseID) error {
	t0 := time.Now()
	err := s.st.KeepAliveOnce(ctx, id)
	s.done(ctx, opKeepAlive, t0, err)
	return err
}

func (s *instrumentedStore) Revoke(ctx context.Context, id store.LeaseID) error {
	t0 := time.Now()
	err := s.st.Revoke(ctx, id)
	s.done(ctx, opRevoke, t0, err)
	return err
}

func (s *instrumentedStore) Close() error { return s.st.Close() }

// MaxTxnOps implements store.TxnLimiter with the wrapped store's limit.
func (s *instrumentedStore) MaxTxnOps() int { return store.MaxTxnOps(s.st) }

// Compact implements store.Compactor when the wrapped store does.
func (s *instrumentedStore) Compact(ctx context.Context, rev int64) error {
	c, ok := s.st.(store.Compactor)
	if !ok {
		return errs.E(errs.Unsupported, "store: this store cannot compact")
	}
	t0 := time.Now()
	err := c.Compact(ctx, rev)
	s.done(ctx, opCompact, t0, err)
	return err
}
