package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Prefix is where audit records live in the store.
const Prefix = "/berth/audit/"

// DefaultRetention is how long records are kept: CloudTrail's event
// history keeps 90 days.
const DefaultRetention = 90 * 24 * time.Hour

// DefaultMaxBytes is the default byte budget of the trail (keys and
// values under Prefix): an eighth of etcd's default 2 GiB quota, which
// everything else in the store shares.
const DefaultMaxBytes = 256 << 20

// maxBatch bounds how many records one store transaction writes.
const maxBatch = 128

// Trail writes and reads audit records. Writes from concurrent requests
// are grouped into one store transaction (group commit), so auditing costs
// each request one shared fsync rather than one of its own.
type Trail struct {
	st        store.Store
	log       *slog.Logger
	retention time.Duration
	maxBytes  int64
	now       func() time.Time
	reqs      chan pending

	// mu serialises writes, expiry and trimming (Run's, and a test's
	// direct call of expire).
	mu sync.Mutex
	// used is the bytes (keys and values) under Prefix, as counted at the
	// last scan plus what this trail wrote and deleted since; -1 until the
	// first scan. Guarded by mu.
	used int64
}

type pending struct {
	rec  Record
	done chan error
}

// NewTrail returns a trail over st keeping records for retention
// (0: DefaultRetention) and at most maxBytes of them (0: DefaultMaxBytes;
// the oldest records are deleted first). Run must be running for Record
// to return.
func NewTrail(st store.Store, retention time.Duration, maxBytes int64, log *slog.Logger) *Trail {
	if retention <= 0 {
		retention = DefaultRetention
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Trail{st: st, log: log, retention: retention, maxBytes: maxBytes, now: time.Now, reqs: make(chan pending, 1024), used: -1}
}

// Key returns the store key of a record.
func Key(rec Record) string {
	return Prefix + timeKey(rec.Time) + "/" + rec.EventID
}

func timeKey(t time.Time) string { return fmt.Sprintf("%020d", t.UnixNano()) }

// Record writes rec durably, bounded (Bound); it returns once the write is
// committed.
func (t *Trail) Record(ctx context.Context, rec Record) error {
	if rec.EventID == "" || rec.Time.IsZero() {
		return errs.E(errs.Internal, "audit record without id or time")
	}
	p := pending{rec: rec, done: make(chan error, 1)}
	select {
	case t.reqs <- p:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run writes records and expires old ones until ctx ends: those older
// than the retention every minute, the oldest whenever the trail holds
// more than its byte budget. The bytes held are counted by a scan at start
// and every hour (another server sharing the store writes records too).
func (t *Trail) Run(ctx context.Context) {
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	rescan := time.NewTicker(time.Hour)
	defer rescan.Stop()
	t.recount(ctx)
	t.expire(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-t.reqs:
			batch := []pending{p}
		drain:
			for len(batch) < maxBatch {
				select {
				case p := <-t.reqs:
					batch = append(batch, p)
				default:
					break drain
				}
			}
			t.write(ctx, batch)
		case <-sweep.C:
			t.expire(ctx)
		case <-rescan.C:
			t.recount(ctx)
		}
	}
}

func (t *Trail) write(ctx context.Context, batch []pending) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ops := make([]store.Op, 0, len(batch))
	var size int64
	for _, p := range batch {
		rec := Bound(p.rec)
		b, err := json.Marshal(rec)
		if err != nil {
			p.done <- err
			continue
		}
		k := Key(rec)
		size += int64(len(k) + len(b))
		ops = append(ops, store.Put(k, b))
	}
	// Make room first, so the store never holds more than the budget.
	t.trim(ctx, size)
	_, err := t.st.Txn(ctx, nil, ops...)
	for _, p := range batch {
		select {
		case p.done <- err:
		default:
		}
	}
	if err == nil && t.used >= 0 {
		t.used += size
	}
}

// recount counts the bytes held and trims the trail to its budget.
func (t *Trail) recount(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.scan(ctx)
	t.trim(ctx, 0)
}

// scan counts the bytes held under Prefix.
func (t *Trail) scan(ctx context.Context) {
	var used int64
	after := ""
	for {
		res, err := t.st.List(ctx, Prefix, store.ListOptions{StartAfter: after, Limit: 500})
		if err != nil {
			if ctx.Err() == nil {
				t.log.Warn("audit: counting the trail's bytes failed", "err", err)
			}
			return
		}
		for _, kv := range res.KVs {
			used += int64(len(kv.Key) + len(kv.Value))
			after = kv.Key
		}
		if !res.More || len(res.KVs) == 0 {
			break
		}
	}
	t.used = used
}

// trim deletes the oldest records when the trail, with incoming more
// bytes, would hold more than its budget: down to 90% of the budget less
// incoming, so that a full trail is not trimmed on every write.
func (t *Trail) trim(ctx context.Context, incoming int64) {
	if t.used < 0 || t.used+incoming <= t.maxBytes {
		return
	}
	target := t.maxBytes/10*9 - incoming
	deleted := 0
	for t.used > target {
		res, err := t.st.List(ctx, Prefix, store.ListOptions{Limit: 500})
		if err != nil || len(res.KVs) == 0 {
			if err != nil && ctx.Err() == nil {
				t.log.Warn("audit: trimming the trail failed", "err", err)
			}
			break
		}
		var ops []store.Op
		var freed int64
		for _, kv := range res.KVs {
			if t.used-freed <= target {
				break
			}
			ops = append(ops, store.Delete(kv.Key))
			freed += int64(len(kv.Key) + len(kv.Value))
		}
		if len(ops) == 0 {
			break
		}
		if _, err := t.st.Txn(ctx, nil, ops...); err != nil {
			if ctx.Err() == nil {
				t.log.Warn("audit: trimming the trail failed", "err", err)
			}
			break
		}
		t.used -= freed
		deleted += len(ops)
	}
	if deleted > 0 {
		t.log.Warn("audit trail over its byte budget: oldest records deleted", "count", deleted, "budget_bytes", t.maxBytes, "held_bytes", t.used)
	}
}

// expire deletes records older than the retention.
func (t *Trail) expire(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cutoff := Prefix + timeKey(t.now().Add(-t.retention))
	for {
		res, err := t.st.List(ctx, Prefix, store.ListOptions{Limit: 500})
		if err != nil {
			if ctx.Err() == nil {
				t.log.Warn("audit expiry: list failed", "err", err)
			}
			return
		}
		var ops []store.Op
		var freed int64
		for _, kv := range res.KVs {
			if kv.Key >= cutoff {
				break
			}
			ops = append(ops, store.Delete(kv.Key))
			freed += int64(len(kv.Key) + len(kv.Value))
		}
		if len(ops) == 0 {
			return
		}
		if _, err := t.st.Txn(ctx, nil, ops...); err != nil {
			t.log.Warn("audit expiry: delete failed", "err", err)
			return
		}
		if t.used >= 0 {
			t.used -= freed
		}
		t.log.Debug("audit records expired", "count", len(ops))
		if len(ops) < len(res.KVs) || !res.More {
			return
		}
	}
}

// Query selects records for Lookup.
type Query struct {
	Start, End time.Time // inclusive bounds; zero means unbounded
	// Attribute and Value filter on one CloudTrail lookup attribute:
	// EventId, EventName, ReadOnly, Username, ResourceType, ResourceName,
	// EventSource or AccessKeyId. Empty Attribute means no filter.
	Attribute string
	Value     string
	Limit     int    // at most this many records
	After     string // continue after this key (from a previous Page.Next)
}

// Page is one page of Lookup results, newest first.
type Page struct {
	Records []Record
	Next    string // key to continue from; empty when done
}

// Lookup returns records matching q, newest first.
func (t *Trail) Lookup(ctx context.Context, q Query) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	from := Prefix + "~"
	if !q.End.IsZero() {
		from = Prefix + timeKey(q.End.Add(time.Nanosecond))
	}
	if q.After != "" {
		if !strings.HasPrefix(q.After, Prefix) {
			return Page{}, errs.E(errs.Invalid, "bad continuation key")
		}
		from = q.After
	}
	var startKey string
	if !q.Start.IsZero() {
		startKey = Prefix + timeKey(q.Start)
	}
	var page Page
	for {
		res, err := t.st.List(ctx, Prefix, store.ListOptions{StartAfter: from, Descend: true, Limit: 200})
		if err != nil {
			return Page{}, err
		}
		for _, kv := range res.KVs {
			if startKey != "" && kv.Key < startKey {
				return page, nil
			}
			from = kv.Key
			var rec Record
			if err := json.Unmarshal(kv.Value, &rec); err != nil {
				t.log.Warn("audit: unreadable record", "key", kv.Key, "err", err)
				continue
			}
			if !matches(rec, q.Attribute, q.Value) {
				continue
			}
			page.Records = append(page.Records, rec)
			if len(page.Records) == q.Limit {
				page.Next = kv.Key
				return page, nil
			}
		}
		if !res.More {
			return page, nil
		}
	}
}

func matches(rec Record, attr, value string) bool {
	switch attr {
	case "":
		return true
	case "EventId":
		return rec.EventID == value
	case "EventName":
		return rec.Operation == value
	case "ReadOnly":
		b, err := strconv.ParseBool(value)
		return err == nil && rec.ReadOnly == b
	case "Username":
		return rec.UserName == value
	case "EventSource":
		return rec.EventSource == value
	case "AccessKeyId":
		return rec.AccessKey == value
	case "ResourceType":
		for _, r := range rec.Resources {
			if r.Type == value {
				return true
			}
		}
	case "ResourceName":
		for _, r := range rec.Resources {
			if r.Name == value {
				return true
			}
		}
	}
	return false
}
