// Package store is Berth's durable state: a narrow interface over etcd with
// revisioned reads, prefix lists, transactions that compare on revision,
// watches from a revision, and leases.
//
// Every durable change in Berth is one Txn. A nil error from Txn or Put means
// the write is committed to a quorum and fsynced: a crash after that loses
// nothing. Keys are plain strings; values are opaque bytes (JSON by
// convention of the callers).
//
// Error contract: Get returns an error of kind errs.NotFound when the key is
// absent. Watch reports ErrCompacted (wrapped) on its channel when the
// requested revision has been compacted; the caller must re-list and watch
// again from the list's revision. Any other error is of kind errs.Unavailable
// when the store cannot be reached.
package store

import (
	"context"
	"errors"
	"time"
)

// KV is one key with its value and revisions.
type KV struct {
	Key            string
	Value          []byte
	CreateRevision int64 // revision at which the key was created
	ModRevision    int64 // revision of the last change to the key
	Version        int64 // number of changes since creation (1 after create)
	Lease          LeaseID
}

// LeaseID identifies a lease; 0 means no lease.
type LeaseID int64

// CmpKind tells what a Cmp compares.
type CmpKind int

const (
	// CmpModRevision compares the key's ModRevision to Cmp.Revision; a
	// missing key has ModRevision 0, so Revision 0 means "key is absent".
	CmpModRevision CmpKind = iota
	// CmpExists is true when the key exists.
	CmpExists
	// CmpAbsent is true when the key does not exist.
	CmpAbsent
	// CmpPrefixUnchangedSince is true when no key under the prefix Key was
	// created or modified after Cmp.Revision (deletions do not count).
	CmpPrefixUnchangedSince
)

// Cmp is one condition of a transaction; all must hold for the Then ops to run.
type Cmp struct {
	Key      string
	Kind     CmpKind
	Revision int64
}

// OpKind is the kind of a transaction operation.
type OpKind int

const (
	OpPut OpKind = iota
	OpDelete
	OpDeletePrefix
)

// Op is one write in a transaction.
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte
	Lease LeaseID
}

// Put returns a put operation.
func Put(key string, value []byte) Op { return Op{Kind: OpPut, Key: key, Value: value} }

// PutWithLease returns a put operation attached to a lease.
func PutWithLease(key string, value []byte, lease LeaseID) Op {
	return Op{Kind: OpPut, Key: key, Value: value, Lease: lease}
}

// Delete returns a delete operation for one key.
func Delete(key string) Op { return Op{Kind: OpDelete, Key: key} }

// DeletePrefix returns a delete of every key under prefix.
func DeletePrefix(prefix string) Op { return Op{Kind: OpDeletePrefix, Key: prefix} }

// ModRevisionIs holds when key's ModRevision equals rev (0: key absent).
func ModRevisionIs(key string, rev int64) Cmp {
	return Cmp{Key: key, Kind: CmpModRevision, Revision: rev}
}

// PrefixUnchangedSince holds when no key under prefix was created or
// modified after rev: a decision taken on a List at rev (counting what a
// cluster holds, say) is still valid when it commits.
func PrefixUnchangedSince(prefix string, rev int64) Cmp {
	return Cmp{Key: prefix, Kind: CmpPrefixUnchangedSince, Revision: rev}
}

// Exists holds when key exists.
func Exists(key string) Cmp { return Cmp{Key: key, Kind: CmpExists} }

// Absent holds when key does not exist.
func Absent(key string) Cmp { return Cmp{Key: key, Kind: CmpAbsent} }

// ListOptions narrows a List.
type ListOptions struct {
	// StartAfter lists only keys strictly greater than this key (pagination).
	StartAfter string
	// Limit caps the number of keys returned; 0 means no cap.
	Limit int64
	// Descend returns keys in descending order (StartAfter then means
	// strictly smaller).
	Descend bool
	// KeysOnly omits values.
	KeysOnly bool
	// Revision reads at a past revision; 0 means the latest.
	Revision int64
}

// ListResult is the answer of a List.
type ListResult struct {
	KVs      []KV
	More     bool  // more keys match beyond Limit
	Revision int64 // store revision at which the list was read
}

// TxnResult is the answer of a Txn.
type TxnResult struct {
	Succeeded bool  // all Cmps held and the ops were applied
	Revision  int64 // store revision after the transaction
}

// EventType is the type of a watch event.
type EventType int

const (
	EventPut EventType = iota
	EventDelete
)

// Event is one change seen by a watch.
type Event struct {
	Type EventType
	KV   KV  // for deletes, Value is empty and ModRevision is the delete's revision
	Prev *KV // previous value when known
}

// WatchResponse is one batch of events, or a terminal error.
type WatchResponse struct {
	Events   []Event
	Revision int64
	// Err is set on the last response of a watch: ErrCompacted when the
	// start revision was compacted, or the reason the watch ended.
	Err error
	// CompactRevision is set with ErrCompacted: the revision etcd compacted
	// to. Changes between the requested revision and it are gone, so callers
	// re-list rather than watch from it.
	CompactRevision int64
}

// ErrCompacted is reported by Watch (wrapped) when the requested revision is
// no longer available.
var ErrCompacted = errors.New("store: required revision has been compacted")

// ErrClosed is wrapped (with kind errs.Unavailable) by calls made on a store
// after its Close.
var ErrClosed = errors.New("store: closed")

// Store is the narrow interface every Berth component uses for state.
type Store interface {
	// Get reads one key. NotFound when absent.
	Get(ctx context.Context, key string) (KV, error)
	// List reads every key under prefix in key order.
	List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error)
	// Txn applies ops atomically if every cmp holds.
	Txn(ctx context.Context, cmps []Cmp, ops ...Op) (TxnResult, error)
	// Watch streams changes under prefix starting at fromRevision
	// (inclusive; 0 means from now). The channel is closed when ctx ends or
	// after a response with Err set.
	Watch(ctx context.Context, prefix string, fromRevision int64) <-chan WatchResponse
	// Grant creates a lease that expires ttl after its last keep-alive.
	Grant(ctx context.Context, ttl time.Duration) (LeaseID, error)
	// KeepAliveOnce renews a lease. NotFound when the lease has expired.
	KeepAliveOnce(ctx context.Context, id LeaseID) error
	// Revoke ends a lease and deletes the keys attached to it.
	Revoke(ctx context.Context, id LeaseID) error
	// Close releases the store's resources; idempotent.
	Close() error
}

// Compactor is implemented by stores that can discard history. It is not
// part of Store: Berth relies on the store's own periodic auto-compaction,
// and only tests and maintenance commands compact by hand.
type Compactor interface {
	// Compact discards every revision older than rev. Watches and Lists
	// from an older revision then fail with ErrCompacted.
	Compact(ctx context.Context, rev int64) error
}

// EtcdDefaultMaxTxnOps is etcd's default --max-txn-ops.
const EtcdDefaultMaxTxnOps = 128

// TxnLimiter is implemented by stores that know how many operations one
// transaction may hold; callers that batch writes size batches with it.
type TxnLimiter interface {
	MaxTxnOps() int
}

// MaxTxnOps returns s's transaction size limit, or etcd's default.
func MaxTxnOps(s Store) int {
	if l, ok := s.(TxnLimiter); ok && l.MaxTxnOps() > 0 {
		return l.MaxTxnOps()
	}
	return EtcdDefaultMaxTxnOps
}
