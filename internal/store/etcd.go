package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berthdev/berth/internal/errs"
)

// DefaultRequestTimeout bounds a call whose context has no deadline. The
// etcd client waits for a connection rather than failing fast, so without a
// bound a call to an unreachable etcd would block forever; with it the call
// fails with kind errs.Unavailable.
const DefaultRequestTimeout = 15 * time.Second

// etcdStore is Store over an etcd v3 client.
type etcdStore struct {
	cli *clientv3.Client
	// maxTxnOps is the server's --max-txn-ops (0: etcd's default).
	maxTxnOps int
	// serializable makes reads local to the member the client talks to
	// instead of linearizable (a ReadIndex round through raft, then a wait
	// until the member has applied it). Only for a cluster of one member:
	// there a write is applied before its response is sent, so a
	// serializable read already sees every acknowledged write, and under
	// a heavy write load it does not queue behind the apply loop.
	serializable bool

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	// after runs once after the client is closed (e.g. stop an embedded
	// server); may be nil.
	after func() error
}

var _ Store = (*etcdStore)(nil)
var _ Compactor = (*etcdStore)(nil)

// NewEtcd returns a Store over cli. The store owns cli: its Close closes the
// client.
func NewEtcd(cli *clientv3.Client) Store { return &etcdStore{cli: cli} }

// MaxTxnOps returns the most operations (and, separately, compares) one
// transaction may hold on this store.
func (s *etcdStore) MaxTxnOps() int {
	if s.maxTxnOps > 0 {
		return s.maxTxnOps
	}
	return EtcdDefaultMaxTxnOps
}

// reqCtx applies DefaultRequestTimeout when ctx has no deadline.
func reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultRequestTimeout)
}

// readOpts are the options every read starts with.
func (s *etcdStore) readOpts() []clientv3.OpOption {
	if s.serializable {
		return []clientv3.OpOption{clientv3.WithSerializable()}
	}
	return nil
}

// Get implements Store.
func (s *etcdStore) Get(ctx context.Context, key string) (KV, error) {
	if key == "" {
		return KV{}, errs.E(errs.Invalid, "store: empty key")
	}
	rctx, cancel := reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, key, s.readOpts()...)
	if err != nil {
		return KV{}, s.mapErr(ctx, err, "store: get %q", key)
	}
	if len(resp.Kvs) == 0 {
		return KV{}, errs.E(errs.NotFound, "key %q not found", key)
	}
	return kvFromPB(resp.Kvs[0]), nil
}

// List implements Store.
func (s *etcdStore) List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error) {
	if opts.Limit < 0 || opts.Revision < 0 {
		return ListResult{}, errs.E(errs.Invalid, "store: list %q: negative limit or revision", prefix)
	}
	start, end := listRange(prefix, opts)

	eopts := s.readOpts()
	if opts.Revision > 0 {
		eopts = append(eopts, clientv3.WithRev(opts.Revision))
	}
	rctx, cancel := reqCtx(ctx)
	defer cancel()

	if end != "" && start >= end {
		// Nothing can match (e.g. StartAfter past the prefix). Ask for the
		// revision alone, which also reports a compacted Revision.
		eopts = append(eopts, clientv3.WithCountOnly())
		resp, err := s.cli.Get(rctx, nonEmpty(prefix), eopts...)
		if err != nil {
			return ListResult{}, s.mapErr(ctx, err, "store: list %q", prefix)
		}
		return ListResult{Revision: readRevision(opts.Revision, resp.Header.Revision)}, nil
	}

	if end == "" {
		end = "\x00" // etcd: every key >= start
	}
	eopts = append(eopts, clientv3.WithRange(end))
	if opts.Limit > 0 {
		eopts = append(eopts, clientv3.WithLimit(opts.Limit))
	}
	if opts.KeysOnly {
		eopts = append(eopts, clientv3.WithKeysOnly())
	}
	if opts.Descend {
		eopts = append(eopts, clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	}
	resp, err := s.cli.Get(rctx, nonEmpty(start), eopts...)
	if err != nil {
		return ListResult{}, s.mapErr(ctx, err, "store: list %q", prefix)
	}
	res := ListResult{
		KVs:      make([]KV, len(resp.Kvs)),
		More:     resp.More,
		Revision: readRevision(opts.Revision, resp.Header.Revision),
	}
	for i, kv := range resp.Kvs {
		res.KVs[i] = kvFromPB(kv)
	}
	return res, nil
}

// listRange returns the key range [start, end) a List reads; end "" means
// the end of the key space.
func listRange(prefix string, opts ListOptions) (start, end string) {
	start, end = prefix, prefixEnd(prefix)
	if opts.StartAfter == "" {
		return start, end
	}
	if opts.Descend {
		if end == "" || opts.StartAfter < end {
			end = opts.StartAfter
		}
		return start, end
	}
	if after := opts.StartAfter + "\x00"; after > start {
		start = after
	}
	return start, end
}

// prefixEnd returns the smallest key greater than every key with prefix, or
// "" when there is none (empty prefix or all 0xff bytes).
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// nonEmpty maps the empty key, which etcd rejects, to the smallest key.
func nonEmpty(key string) string {
	if key == "" {
		return "\x00"
	}
	return key
}

// readRevision is the revision a read observed: the requested one when
// reading the past (etcd's header carries the current revision), else the
// header's.
func readRevision(requested, header int64) int64 {
	if requested > 0 {
		return requested
	}
	return header
}

// Txn implements Store.
func (s *etcdStore) Txn(ctx context.Context, cmps []Cmp, ops ...Op) (TxnResult, error) {
	conds := make([]clientv3.Cmp, 0, len(cmps))
	for _, c := range cmps {
		if c.Key == "" {
			return TxnResult{}, errs.E(errs.Invalid, "store: txn: compare on an empty key")
		}
		switch c.Kind {
		case CmpModRevision:
			conds = append(conds, clientv3.Compare(clientv3.ModRevision(c.Key), "=", c.Revision))
		case CmpExists:
			conds = append(conds, clientv3.Compare(clientv3.CreateRevision(c.Key), ">", 0))
		case CmpAbsent:
			conds = append(conds, clientv3.Compare(clientv3.CreateRevision(c.Key), "=", 0))
		case CmpPrefixUnchangedSince:
			// Every key in the range must satisfy it; an empty range does.
			conds = append(conds, clientv3.Compare(clientv3.ModRevision(c.Key), "<", c.Revision+1).WithPrefix())
		default:
			return TxnResult{}, errs.E(errs.Invalid, "store: txn: unknown compare kind %d", c.Kind)
		}
	}
	thens := make([]clientv3.Op, 0, len(ops))
	for _, op := range ops {
		if op.Key == "" {
			return TxnResult{}, errs.E(errs.Invalid, "store: txn: operation on an empty key")
		}
		switch op.Kind {
		case OpPut:
			var popts []clientv3.OpOption
			if op.Lease != 0 {
				popts = append(popts, clientv3.WithLease(clientv3.LeaseID(op.Lease)))
			}
			thens = append(thens, clientv3.OpPut(op.Key, string(op.Value), popts...))
		case OpDelete:
			thens = append(thens, clientv3.OpDelete(op.Key))
		case OpDeletePrefix:
			thens = append(thens, clientv3.OpDelete(op.Key, clientv3.WithPrefix()))
		default:
			return TxnResult{}, errs.E(errs.Invalid, "store: txn: unknown operation kind %d", op.Kind)
		}
	}
	rctx, cancel := reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Txn(rctx).If(conds...).Then(thens...).Commit()
	if err != nil {
		return TxnResult{}, s.mapErr(ctx, err, "store: txn (%d compares, %d operations)", len(cmps), len(ops))
	}
	return TxnResult{Succeeded: resp.Succeeded, Revision: resp.Header.Revision}, nil
}

// Watch implements Store.
func (s *etcdStore) Watch(ctx context.Context, prefix string, fromRevision int64) <-chan WatchResponse {
	out := make(chan WatchResponse, 1)
	if fromRevision < 0 {
		out <- WatchResponse{Err: errs.E(errs.Invalid, "store: watch %q: negative revision %d", prefix, fromRevision)}
		close(out)
		return out
	}
	if fromRevision == 0 {
		// "From now" is pinned here, before Watch returns, so that every
		// change committed after Watch returns is delivered.
		rctx, cancel := reqCtx(ctx)
		resp, err := s.cli.Get(rctx, nonEmpty(prefix), append(s.readOpts(), clientv3.WithCountOnly())...)
		cancel()
		if err != nil {
			if ctx.Err() == nil { // a watch whose context ended just closes
				out <- WatchResponse{Err: s.mapErr(ctx, err, "store: watch %q", prefix)}
			}
			close(out)
			return out
		}
		fromRevision = resp.Header.Revision + 1
	}
	// WithRequireLeader makes a watch on a member cut off from its cluster
	// fail instead of silently going quiet.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(fromRevision), clientv3.WithPrevKV())
	go s.pumpWatch(ctx, cancel, wch, out, prefix, fromRevision)
	return out
}

// pumpWatch copies etcd watch responses to out until ctx ends or the watch
// fails; a failure is delivered once, then out is closed. It never retries:
// the etcd client already resumes a broken stream from the last revision, so
// an error here is final and the caller decides what to do (re-list).
func (s *etcdStore) pumpWatch(ctx context.Context, cancel context.CancelFunc, wch clientv3.WatchChan,
	out chan<- WatchResponse, prefix string, next int64) {
	defer close(out)
	defer cancel()
	send := func(r WatchResponse) bool {
		select {
		case out <- r:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		var wr clientv3.WatchResponse
		var ok bool
		select {
		case <-ctx.Done():
			return
		case wr, ok = <-wch:
		}
		if !ok {
			if ctx.Err() != nil {
				return
			}
			send(WatchResponse{Err: s.mapErr(ctx, ErrClosed, "store: watch %q ended", prefix)})
			return
		}
		if err := wr.Err(); err != nil {
			if ctx.Err() != nil {
				return
			}
			r := WatchResponse{Revision: wr.Header.Revision}
			if wr.CompactRevision != 0 || errors.Is(err, rpctypes.ErrCompacted) {
				r.CompactRevision = wr.CompactRevision
				r.Err = fmt.Errorf("store: watch %q from revision %d: %w (oldest available revision: %d)",
					prefix, next, ErrCompacted, wr.CompactRevision)
			} else {
				r.Err = s.mapErr(ctx, err, "store: watch %q from revision %d", prefix, next)
			}
			send(r)
			return
		}
		if len(wr.Events) == 0 {
			continue // progress notification or creation ack
		}
		r := WatchResponse{Revision: wr.Header.Revision, Events: make([]Event, len(wr.Events))}
		for i, ev := range wr.Events {
			e := Event{Type: EventPut, KV: kvFromPB(ev.Kv)}
			if ev.Type == mvccpb.DELETE {
				e.Type = EventDelete
			}
			if ev.PrevKv != nil {
				prev := kvFromPB(ev.PrevKv)
				e.Prev = &prev
			}
			r.Events[i] = e
			next = ev.Kv.ModRevision + 1
		}
		if !send(r) {
			return
		}
	}
}

// Grant implements Store. The TTL is rounded up to whole seconds; etcd may
// raise it to its minimum (about 2 s with default timing).
func (s *etcdStore) Grant(ctx context.Context, ttl time.Duration) (LeaseID, error) {
	if ttl <= 0 {
		return 0, errs.E(errs.Invalid, "store: grant: ttl %v must be positive", ttl)
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	rctx, cancel := reqCtx(ctx)
	defer cancel()
	resp, err := s.cli.Grant(rctx, secs)
	if err != nil {
		return 0, s.mapErr(ctx, err, "store: grant lease (ttl %v)", ttl)
	}
	return LeaseID(resp.ID), nil
}

// KeepAliveOnce implements Store.
func (s *etcdStore) KeepAliveOnce(ctx context.Context, id LeaseID) error {
	rctx, cancel := reqCtx(ctx)
	defer cancel()
	_, err := s.cli.KeepAliveOnce(rctx, clientv3.LeaseID(id))
	return s.mapErr(ctx, err, "store: keep lease %x alive", int64(id))
}

// Revoke implements Store. NotFound when the lease has already expired or
// been revoked.
func (s *etcdStore) Revoke(ctx context.Context, id LeaseID) error {
	rctx, cancel := reqCtx(ctx)
	defer cancel()
	_, err := s.cli.Revoke(rctx, clientv3.LeaseID(id))
	return s.mapErr(ctx, err, "store: revoke lease %x", int64(id))
}

// Compact implements Compactor.
func (s *etcdStore) Compact(ctx context.Context, rev int64) error {
	rctx, cancel := reqCtx(ctx)
	defer cancel()
	_, err := s.cli.Compact(rctx, rev)
	return s.mapErr(ctx, err, "store: compact to revision %d", rev)
}

// Close implements Store.
func (s *etcdStore) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		err := s.cli.Close()
		if errors.Is(err, context.Canceled) {
			err = nil // the client reports its own cancellation
		}
		if s.after != nil {
			err = errors.Join(err, s.after())
		}
		s.closeErr = err
	})
	return s.closeErr
}

// mapErr classifies an etcd client error into Berth's error kinds. ctx is
// the caller's context, to tell the caller's cancellation from a store that
// does not answer.
func (s *etcdStore) mapErr(ctx context.Context, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	if s.closed.Load() {
		return errs.Wrap(errs.Unavailable, ErrClosed, "%s", msg)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		// The caller gave up; not the store's fault. Keep context.Canceled
		// visible to errors.Is.
		return fmt.Errorf("%s: %w", msg, ctx.Err())
	}
	err = rpctypes.Error(err)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errs.Wrap(errs.Unavailable, err, "%s: etcd did not answer in time", msg)
	case errors.Is(err, rpctypes.ErrCompacted):
		return errs.Wrap(errs.Conflict, ErrCompacted, "%s", msg)
	case errors.Is(err, rpctypes.ErrFutureRev):
		return errs.Wrap(errs.Invalid, err, "%s", msg)
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return errs.Wrap(errs.NotFound, err, "%s: lease not found (expired or revoked)", msg)
	case errors.Is(err, rpctypes.ErrRequestTooLarge), errors.Is(err, rpctypes.ErrTooManyOps):
		return errs.Wrap(errs.LimitExceeded, err, "%s", msg)
	case errors.Is(err, rpctypes.ErrNoSpace):
		return errs.Wrap(errs.Unavailable, err,
			"%s: etcd is out of space and read-only until an operator compacts, defragments and disarms the alarm", msg)
	case errors.Is(err, rpctypes.ErrTooManyRequests):
		return errs.Wrap(errs.Throttled, err, "%s", msg)
	}
	if errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return errs.Wrap(errs.Unavailable, err, "%s", msg)
	}
	code := codes.Unknown
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if st, ok := status.FromError(err); ok {
		code = st.Code()
	}
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return errs.Wrap(errs.Unavailable, err, "%s", msg)
	case codes.InvalidArgument, codes.OutOfRange:
		return errs.Wrap(errs.Invalid, err, "%s", msg)
	case codes.Unauthenticated:
		return errs.Wrap(errs.Unauthenticated, err, "%s", msg)
	case codes.PermissionDenied:
		return errs.Wrap(errs.Forbidden, err, "%s", msg)
	}
	return errs.Wrap(errs.Internal, err, "%s", msg)
}

func kvFromPB(kv *mvccpb.KeyValue) KV {
	return KV{
		Key:            string(kv.Key),
		Value:          kv.Value,
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
		Version:        kv.Version,
		Lease:          LeaseID(kv.Lease),
	}
}
