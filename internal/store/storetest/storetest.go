// Package storetest is the contract suite for store.Store: every
// implementation (etcd embedded, etcd external, any future fake) must pass
// Run. It checks the behaviour callers rely on: revisions, list order and
// pagination, compare-on-revision transactions, watches from a revision
// with previous values, compaction reported as store.ErrCompacted, leases,
// and the error kinds of the store package's contract.
//
// Every test writes under its own key prefix, so one store may be shared by
// all tests; most tests run in parallel.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// leaseTTL is short so that expiry tests are quick; etcd's minimum TTL with
// default timing is 2 s.
const leaseTTL = 2 * time.Second

// testTimeout bounds every test.
const testTimeout = 20 * time.Second

// Run runs the contract suite. newStore is called by each test and may
// return the same store every time; the suite never closes it (the caller
// owns it, e.g. with t.Cleanup).
//
// The compaction test runs after the others, alone: compaction is global to
// a store. It is skipped when the store does not implement store.Compactor.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	h := &harness{newStore: newStore, run: hex.EncodeToString(id[:])}
	t.Run("parallel", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			fn   func(t *testing.T, s store.Store, p string)
		}{
			{"GetPutNotFound", testGetPutNotFound},
			{"InvalidInput", testInvalidInput},
			{"ListOrder", testListOrder},
			{"ListPagination", testListPagination},
			{"ListDescend", testListDescend},
			{"ListAtRevision", testListAtRevision},
			{"TxnCompareRevision", testTxnCompareRevision},
			{"TxnAbsentExists", testTxnAbsentExists},
			{"TxnAtomic", testTxnAtomic},
			{"TxnPrefixUnchangedSince", testTxnPrefixUnchangedSince},
			{"DeletePrefix", testDeletePrefix},
			{"WatchHistory", testWatchHistory},
			{"WatchLive", testWatchLive},
			{"WatchCancel", testWatchCancel},
			{"LeaseRevoke", testLeaseRevoke},
			{"LeaseExpiry", testLeaseExpiry},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.fn(t, h.newStore(t), h.prefix(t))
			})
		}
	})
	t.Run("WatchCompacted", func(t *testing.T) {
		testWatchCompacted(t, h.newStore(t), h.prefix(t))
	})
}

type harness struct {
	newStore func(t *testing.T) store.Store
	run      string
}

// prefix returns a key prefix unique to this run and test.
func (h *harness) prefix(t *testing.T) string {
	return "/storetest/" + h.run + "/" + t.Name() + "/"
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// put writes key=value and returns the revision of the write.
func put(t *testing.T, s store.Store, key, value string) int64 {
	t.Helper()
	return txnOK(t, s, nil, store.Put(key, []byte(value)))
}

// txnOK runs a transaction that must succeed and returns its revision.
func txnOK(t *testing.T, s store.Store, cmps []store.Cmp, ops ...store.Op) int64 {
	t.Helper()
	res, err := s.Txn(ctxFor(t), cmps, ops...)
	if err != nil {
		t.Fatalf("Txn: %v", err)
	}
	if !res.Succeeded {
		t.Fatalf("Txn did not succeed (revision %d)", res.Revision)
	}
	return res.Revision
}

func get(t *testing.T, s store.Store, key string) store.KV {
	t.Helper()
	kv, err := s.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return kv
}

func wantNotFound(t *testing.T, s store.Store, key string) {
	t.Helper()
	_, err := s.Get(ctxFor(t), key)
	if !errs.Is(err, errs.NotFound) {
		t.Fatalf("Get(%q) = %v, want an error of kind NotFound", key, err)
	}
}

func wantKind(t *testing.T, what string, err error, k errs.Kind) {
	t.Helper()
	if !errs.Is(err, k) {
		t.Fatalf("%s: error %v (kind %v), want kind %v", what, err, errs.KindOf(err), k)
	}
}

func list(t *testing.T, s store.Store, prefix string, opts store.ListOptions) store.ListResult {
	t.Helper()
	res, err := s.List(ctxFor(t), prefix, opts)
	if err != nil {
		t.Fatalf("List(%q, %+v): %v", prefix, opts, err)
	}
	return res
}

func keys(kvs []store.KV) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

func wantKeys(t *testing.T, what string, got []store.KV, want ...string) {
	t.Helper()
	if g := strings.Join(keys(got), " "); g != strings.Join(want, " ") {
		t.Fatalf("%s: keys [%s], want [%s]", what, g, strings.Join(want, " "))
	}
}

// sibling returns a key just outside prefix p that a naive prefix match
// ("p" without its slash) would include.
func sibling(p string) string { return strings.TrimSuffix(p, "/") + "x/outside" }

func testGetPutNotFound(t *testing.T, s store.Store, p string) {
	k := p + "k"
	wantNotFound(t, s, k)

	r1 := put(t, s, k, "v1")
	kv := get(t, s, k)
	if kv.Key != k || string(kv.Value) != "v1" {
		t.Fatalf("Get = %q=%q, want %q=v1", kv.Key, kv.Value, k)
	}
	if kv.CreateRevision != r1 || kv.ModRevision != r1 || kv.Version != 1 || kv.Lease != 0 {
		t.Fatalf("after create: %+v, want CreateRevision=ModRevision=%d Version=1 Lease=0", kv, r1)
	}

	r2 := put(t, s, k, "v2")
	if r2 <= r1 {
		t.Fatalf("revision did not grow: %d then %d", r1, r2)
	}
	kv = get(t, s, k)
	if string(kv.Value) != "v2" || kv.CreateRevision != r1 || kv.ModRevision != r2 || kv.Version != 2 {
		t.Fatalf("after update: %+v, want Value=v2 CreateRevision=%d ModRevision=%d Version=2", kv, r1, r2)
	}

	txnOK(t, s, nil, store.Delete(k))
	wantNotFound(t, s, k)

	// Re-created: a new life with Version 1.
	r4 := put(t, s, k, "v3")
	kv = get(t, s, k)
	if kv.CreateRevision != r4 || kv.Version != 1 {
		t.Fatalf("after re-create: %+v, want CreateRevision=%d Version=1", kv, r4)
	}

	// Deleting an absent key is not an error.
	txnOK(t, s, nil, store.Delete(p+"never"))
}

func testInvalidInput(t *testing.T, s store.Store, p string) {
	ctx := ctxFor(t)
	_, err := s.Get(ctx, "")
	wantKind(t, `Get("")`, err, errs.Invalid)
	_, err = s.Txn(ctx, nil, store.DeletePrefix(""))
	wantKind(t, `DeletePrefix("")`, err, errs.Invalid)
	_, err = s.Txn(ctx, nil, store.Put("", []byte("x")))
	wantKind(t, `Put("")`, err, errs.Invalid)
	_, err = s.Grant(ctx, 0)
	wantKind(t, "Grant(0)", err, errs.Invalid)
	_, err = s.List(ctx, p, store.ListOptions{Limit: -1})
	wantKind(t, "List with negative limit", err, errs.Invalid)
}

func testListOrder(t *testing.T, s store.Store, p string) {
	empty := list(t, s, p, store.ListOptions{})
	if len(empty.KVs) != 0 || empty.More || empty.Revision <= 0 {
		t.Fatalf("empty list: %+v, want no keys, More=false, a revision", empty)
	}
	var last int64
	for _, k := range []string{"c", "a", "b/2", "b/1", "b"} {
		last = put(t, s, p+k, "value-"+k)
	}
	put(t, s, sibling(p), "outside")

	res := list(t, s, p, store.ListOptions{})
	wantKeys(t, "list", res.KVs, p+"a", p+"b", p+"b/1", p+"b/2", p+"c")
	if res.More {
		t.Fatal("More set without a Limit")
	}
	if res.Revision < last {
		t.Fatalf("list revision %d older than the last write %d", res.Revision, last)
	}
	for _, kv := range res.KVs {
		if want := "value-" + strings.TrimPrefix(kv.Key, p); string(kv.Value) != want {
			t.Fatalf("%s = %q, want %q", kv.Key, kv.Value, want)
		}
		if kv.ModRevision == 0 || kv.CreateRevision == 0 || kv.Version != 1 {
			t.Fatalf("%s: revisions missing: %+v", kv.Key, kv)
		}
	}

	ko := list(t, s, p, store.ListOptions{KeysOnly: true})
	wantKeys(t, "keys-only list", ko.KVs, p+"a", p+"b", p+"b/1", p+"b/2", p+"c")
	for _, kv := range ko.KVs {
		if len(kv.Value) != 0 || kv.ModRevision == 0 {
			t.Fatalf("keys-only %s: value %q, ModRevision %d; want no value, a revision", kv.Key, kv.Value, kv.ModRevision)
		}
	}

	sub := list(t, s, p+"b/", store.ListOptions{})
	wantKeys(t, "sub-prefix list", sub.KVs, p+"b/1", p+"b/2")
}

func testListPagination(t *testing.T, s store.Store, p string) {
	var want []string
	for i := range 10 {
		k := fmt.Sprintf("%sk%02d", p, i)
		want = append(want, k)
		put(t, s, k, "v")
	}
	put(t, s, sibling(p), "outside")

	var got []string
	var rev int64
	after := ""
	for page := 0; ; page++ {
		res := list(t, s, p, store.ListOptions{StartAfter: after, Limit: 3, Revision: rev})
		if page == 0 {
			rev = res.Revision
			// Written after the first page: pages read at rev must not see it.
			put(t, s, p+"k05a", "late")
		}
		if res.Revision != rev {
			t.Fatalf("page %d read at revision %d, want %d", page, res.Revision, rev)
		}
		got = append(got, keys(res.KVs)...)
		wantMore := len(got) < len(want)
		if res.More != wantMore {
			t.Fatalf("page %d: More=%v, want %v (got %d of %d keys)", page, res.More, wantMore, len(got), len(want))
		}
		if !res.More {
			break
		}
		if page > 10 {
			t.Fatal("pagination does not end")
		}
		after = res.KVs[len(res.KVs)-1].Key
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("paginated keys [%s], want [%s]", strings.Join(got, " "), strings.Join(want, " "))
	}

	// A Limit that exactly covers the rest reports no more.
	res := list(t, s, p, store.ListOptions{StartAfter: p + "k05a", Limit: 4})
	wantKeys(t, "last page", res.KVs, p+"k06", p+"k07", p+"k08", p+"k09")
	if res.More {
		t.Fatal("More set on an exact last page")
	}
	// StartAfter past every key: empty, not an error.
	res = list(t, s, p, store.ListOptions{StartAfter: p + "z"})
	if len(res.KVs) != 0 || res.More || res.Revision == 0 {
		t.Fatalf("list after the last key: %+v, want empty with a revision", res)
	}
	// StartAfter a key that does not exist starts at the next one.
	res = list(t, s, p, store.ListOptions{StartAfter: p + "k03x", Limit: 1})
	wantKeys(t, "start after absent key", res.KVs, p+"k04")
	// StartAfter before the prefix is the same as none.
	res = list(t, s, p, store.ListOptions{StartAfter: strings.TrimSuffix(p, "/"), Limit: 1})
	wantKeys(t, "start after before prefix", res.KVs, p+"k00")
}

func testListDescend(t *testing.T, s store.Store, p string) {
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		put(t, s, p+k, "v")
	}
	put(t, s, sibling(p), "outside")

	res := list(t, s, p, store.ListOptions{Descend: true})
	wantKeys(t, "descending list", res.KVs, p+"e", p+"d", p+"c", p+"b", p+"a")

	var got []string
	after := ""
	for page := 0; page < 10; page++ {
		res := list(t, s, p, store.ListOptions{Descend: true, StartAfter: after, Limit: 2})
		got = append(got, keys(res.KVs)...)
		if !res.More {
			break
		}
		after = res.KVs[len(res.KVs)-1].Key
	}
	if g := strings.Join(got, " "); g != strings.Join([]string{p + "e", p + "d", p + "c", p + "b", p + "a"}, " ") {
		t.Fatalf("descending pages: [%s]", g)
	}

	res = list(t, s, p, store.ListOptions{Descend: true, StartAfter: p + "c"})
	wantKeys(t, "descend strictly below c", res.KVs, p+"b", p+"a")
	res = list(t, s, p, store.ListOptions{Descend: true, StartAfter: p + "a"})
	wantKeys(t, "descend below the first key", res.KVs)
}

func testListAtRevision(t *testing.T, s store.Store, p string) {
	r1 := put(t, s, p+"a", "v1")
	put(t, s, p+"a", "v2")
	put(t, s, p+"b", "v1")

	old := list(t, s, p, store.ListOptions{Revision: r1})
	if old.Revision != r1 {
		t.Fatalf("list at revision %d reports revision %d", r1, old.Revision)
	}
	wantKeys(t, "list at past revision", old.KVs, p+"a")
	if string(old.KVs[0].Value) != "v1" {
		t.Fatalf("past value %q, want v1", old.KVs[0].Value)
	}
	now := list(t, s, p, store.ListOptions{})
	wantKeys(t, "list now", now.KVs, p+"a", p+"b")
	if string(now.KVs[0].Value) != "v2" {
		t.Fatalf("current value %q, want v2", now.KVs[0].Value)
	}
}

func testTxnCompareRevision(t *testing.T, s store.Store, p string) {
	ctx := ctxFor(t)
	k, other := p+"k", p+"other"
	r1 := put(t, s, k, "v1")

	// Success: the compare holds, every op applies at one revision.
	r2 := txnOK(t, s, []store.Cmp{store.ModRevisionIs(k, r1)}, store.Put(k, []byte("v2")), store.Put(other, []byte("o")))
	if kv := get(t, s, k); string(kv.Value) != "v2" || kv.ModRevision != r2 {
		t.Fatalf("after successful txn: %+v", kv)
	}
	if kv := get(t, s, other); kv.ModRevision != r2 {
		t.Fatalf("other op applied at revision %d, want %d", kv.ModRevision, r2)
	}

	// Failure: stale revision; nothing applied, no error.
	res, err := s.Txn(ctx, []store.Cmp{store.ModRevisionIs(k, r1)},
		store.Put(k, []byte("v3")), store.Put(p+"new", []byte("n")), store.Delete(other))
	if err != nil {
		t.Fatalf("failing txn: %v", err)
	}
	if res.Succeeded {
		t.Fatal("txn with a stale revision succeeded")
	}
	if res.Revision < r2 {
		t.Fatalf("failed txn revision %d older than %d", res.Revision, r2)
	}
	if kv := get(t, s, k); string(kv.Value) != "v2" || kv.ModRevision != r2 {
		t.Fatalf("failed txn changed %s: %+v", k, kv)
	}
	wantNotFound(t, s, p+"new")
	get(t, s, other)

	// One failing compare among several fails the whole txn.
	res, err = s.Txn(ctx, []store.Cmp{store.ModRevisionIs(k, r2), store.ModRevisionIs(other, r1)}, store.Delete(k))
	if err != nil || res.Succeeded {
		t.Fatalf("txn with one stale compare: %+v, %v; want not succeeded", res, err)
	}
	get(t, s, k)

	// ModRevisionIs(key, 0) means absent.
	txnOK(t, s, []store.Cmp{store.ModRevisionIs(p+"fresh", 0)}, store.Put(p+"fresh", []byte("f")))
	res, err = s.Txn(ctx, []store.Cmp{store.ModRevisionIs(p+"fresh", 0)}, store.Put(p+"fresh", []byte("g")))
	if err != nil || res.Succeeded {
		t.Fatalf("create-if-absent on an existing key: %+v, %v; want not succeeded", res, err)
	}
}

func testTxnAbsentExists(t *testing.T, s store.Store, p string) {
	ctx := ctxFor(t)
	k := p + "k"
	res, err := s.Txn(ctx, []store.Cmp{store.Exists(k)}, store.Put(k, []byte("x")))
	if err != nil || res.Succeeded {
		t.Fatalf("Exists on absent key: %+v, %v; want not succeeded", res, err)
	}
	wantNotFound(t, s, k)

	txnOK(t, s, []store.Cmp{store.Absent(k)}, store.Put(k, []byte("first")))
	res, err = s.Txn(ctx, []store.Cmp{store.Absent(k)}, store.Put(k, []byte("second")))
	if err != nil || res.Succeeded {
		t.Fatalf("Absent on existing key: %+v, %v; want not succeeded", res, err)
	}
	if kv := get(t, s, k); string(kv.Value) != "first" {
		t.Fatalf("value %q, want first", kv.Value)
	}
	txnOK(t, s, []store.Cmp{store.Exists(k)}, store.Put(k, []byte("updated")))
	txnOK(t, s, []store.Cmp{store.Exists(k)}, store.Delete(k))
	txnOK(t, s, []store.Cmp{store.Absent(k)})
}

func testTxnPrefixUnchangedSince(t *testing.T, s store.Store, p string) {
	ctx := ctxFor(t)
	dir := p + "dir/"
	// An empty prefix is unchanged since any revision.
	txnOK(t, s, []store.Cmp{store.PrefixUnchangedSince(dir, 1)})
	put(t, s, dir+"a", "1")
	res, err := s.List(ctx, dir, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := res.Revision
	txnOK(t, s, []store.Cmp{store.PrefixUnchangedSince(dir, at)}, store.Put(p+"decision", []byte("1")))
	// A key outside the prefix does not matter; a sibling prefix either.
	put(t, s, p+"dirx", "x")
	put(t, s, p+"other/b", "x")
	txnOK(t, s, []store.Cmp{store.PrefixUnchangedSince(dir, at)})
	for name, change := range map[string]func(){
		"created":  func() { put(t, s, dir+"b", "2") },
		"modified": func() { put(t, s, dir+"a", "3") },
	} {
		change()
		res, err := s.Txn(ctx, []store.Cmp{store.PrefixUnchangedSince(dir, at)}, store.Put(p+"decision", []byte("2")))
		if err != nil || res.Succeeded {
			t.Fatalf("key %s under the prefix after the revision: %+v, %v; want not succeeded", name, res, err)
		}
		l, err := s.List(ctx, dir, store.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		at = l.Revision
	}
	// A deletion does not count.
	txnOK(t, s, nil, store.Delete(dir+"b"))
	txnOK(t, s, []store.Cmp{store.PrefixUnchangedSince(dir, at)})
}

func testTxnAtomic(t *testing.T, s store.Store, p string) {
	put(t, s, p+"gone", "x")
	rev := txnOK(t, s, nil, store.Put(p+"a", []byte("1")), store.Put(p+"b", []byte("2")), store.Delete(p+"gone"))
	for _, k := range []string{"a", "b"} {
		if kv := get(t, s, p+k); kv.ModRevision != rev {
			t.Fatalf("%s at revision %d, want %d", k, kv.ModRevision, rev)
		}
	}
	wantNotFound(t, s, p+"gone")
	// An empty transaction is allowed and changes nothing.
	res, err := s.Txn(ctxFor(t), nil)
	if err != nil || !res.Succeeded {
		t.Fatalf("empty txn: %+v, %v", res, err)
	}
}

func testDeletePrefix(t *testing.T, s store.Store, p string) {
	for _, k := range []string{"dir/a", "dir/b", "dir/sub/c", "dirx", "other"} {
		put(t, s, p+k, "v")
	}
	txnOK(t, s, nil, store.DeletePrefix(p+"dir/"))
	wantKeys(t, "after delete prefix", list(t, s, p, store.ListOptions{}).KVs, p+"dirx", p+"other")
	// Deleting an empty prefix range is fine.
	txnOK(t, s, nil, store.DeletePrefix(p+"dir/"))
}

// collect reads events from w until n arrived; it fails on an error, a
// closed channel or a timeout.
func collect(t *testing.T, w <-chan store.WatchResponse, n int) []store.Event {
	t.Helper()
	var evs []store.Event
	timeout := time.After(10 * time.Second)
	for len(evs) < n {
		select {
		case r, ok := <-w:
			if !ok {
				t.Fatalf("watch closed after %d of %d events", len(evs), n)
			}
			if r.Err != nil {
				t.Fatalf("watch error after %d of %d events: %v", len(evs), n, r.Err)
			}
			if len(r.Events) > 0 && r.Revision < r.Events[len(r.Events)-1].KV.ModRevision {
				t.Fatalf("response revision %d older than its events", r.Revision)
			}
			evs = append(evs, r.Events...)
		case <-timeout:
			t.Fatalf("timed out with %d of %d events", len(evs), n)
		}
	}
	if len(evs) != n {
		t.Fatalf("got %d events, want %d: %+v", len(evs), n, evs)
	}
	return evs
}

type wantEvent struct {
	typ   store.EventType
	key   string
	value string
	rev   int64
	prev  string // "" means no Prev expected
}

func checkEvents(t *testing.T, got []store.Event, want []wantEvent) {
	t.Helper()
	for i, w := range want {
		g := got[i]
		if g.Type != w.typ || g.KV.Key != w.key || string(g.KV.Value) != w.value || g.KV.ModRevision != w.rev {
			t.Fatalf("event %d: type %d %s=%q at %d; want type %d %s=%q at %d",
				i, g.Type, g.KV.Key, g.KV.Value, g.KV.ModRevision, w.typ, w.key, w.value, w.rev)
		}
		switch {
		case w.prev == "" && g.Prev != nil:
			t.Fatalf("event %d: unexpected Prev %+v", i, *g.Prev)
		case w.prev != "" && g.Prev == nil:
			t.Fatalf("event %d: Prev missing, want %q", i, w.prev)
		case w.prev != "" && (string(g.Prev.Value) != w.prev || g.Prev.Key != w.key):
			t.Fatalf("event %d: Prev %s=%q, want %q", i, g.Prev.Key, g.Prev.Value, w.prev)
		}
	}
}

func testWatchHistory(t *testing.T, s store.Store, p string) {
	a, b := p+"a", p+"b"
	r1 := put(t, s, a, "a1")
	r2 := put(t, s, b, "b1")
	put(t, s, sibling(p), "outside")
	r3 := put(t, s, a, "a2")
	r4 := txnOK(t, s, nil, store.Delete(b))

	w := s.Watch(ctxFor(t), p, r1)
	checkEvents(t, collect(t, w, 4), []wantEvent{
		{store.EventPut, a, "a1", r1, ""},
		{store.EventPut, b, "b1", r2, ""},
		{store.EventPut, a, "a2", r3, "a1"},
		{store.EventDelete, b, "", r4, "b1"},
	})

	// The start revision is inclusive.
	w = s.Watch(ctxFor(t), p, r3)
	checkEvents(t, collect(t, w, 2), []wantEvent{
		{store.EventPut, a, "a2", r3, "a1"},
		{store.EventDelete, b, "", r4, "b1"},
	})
}

func testWatchLive(t *testing.T, s store.Store, p string) {
	k := p + "k"
	w := s.Watch(ctxFor(t), p, 0)
	// Every change committed after Watch returns is delivered.
	r1 := put(t, s, k, "v1")
	put(t, s, sibling(p), "outside")
	r2 := put(t, s, k, "v2")
	r3 := txnOK(t, s, nil, store.Delete(k))
	r4 := txnOK(t, s, nil, store.Put(p+"x", []byte("x")), store.Put(p+"y", []byte("y")))

	evs := collect(t, w, 5)
	checkEvents(t, evs, []wantEvent{
		{store.EventPut, k, "v1", r1, ""},
		{store.EventPut, k, "v2", r2, "v1"},
		{store.EventDelete, k, "", r3, "v2"},
		{store.EventPut, p + "x", "x", r4, ""},
		{store.EventPut, p + "y", "y", r4, ""},
	})
	if evs[1].KV.Version != 2 || evs[1].KV.CreateRevision != r1 {
		t.Fatalf("update event KV %+v, want Version 2, CreateRevision %d", evs[1].KV, r1)
	}
}

func testWatchCancel(t *testing.T, s store.Store, p string) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	w := s.Watch(ctx, p, 0)
	put(t, s, p+"k", "v")
	collect(t, w, 1)
	cancel()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r, ok := <-w:
			if !ok {
				return
			}
			if r.Err != nil {
				t.Fatalf("watch ended by its context reported %v; want the channel just closed", r.Err)
			}
		case <-timeout:
			t.Fatal("watch channel not closed after its context ended")
		}
	}
}

func testLeaseRevoke(t *testing.T, s store.Store, p string) {
	ctx := ctxFor(t)
	id, err := s.Grant(ctx, 30*time.Second)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if id == 0 {
		t.Fatal("Grant returned lease 0")
	}
	txnOK(t, s, nil, store.PutWithLease(p+"a", []byte("1"), id), store.PutWithLease(p+"b", []byte("2"), id),
		store.Put(p+"kept", []byte("3")))
	if kv := get(t, s, p+"a"); kv.Lease != id {
		t.Fatalf("key lease %d, want %d", kv.Lease, id)
	}
	if err := s.KeepAliveOnce(ctx, id); err != nil {
		t.Fatalf("KeepAliveOnce on a live lease: %v", err)
	}
	if err := s.Revoke(ctx, id); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	wantNotFound(t, s, p+"a")
	wantNotFound(t, s, p+"b")
	get(t, s, p+"kept")
	wantKind(t, "KeepAliveOnce after Revoke", s.KeepAliveOnce(ctx, id), errs.NotFound)
	_, err = s.Txn(ctx, nil, store.PutWithLease(p+"c", []byte("x"), id))
	wantKind(t, "put with a revoked lease", err, errs.NotFound)
	wantNotFound(t, s, p+"c")
}

func testLeaseExpiry(t *testing.T, s store.Store, p string) {
	ctx := ctxFor(t)
	id, err := s.Grant(ctx, leaseTTL)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	start := time.Now()
	txnOK(t, s, nil, store.PutWithLease(p+"k", []byte("v"), id))
	for {
		_, err := s.Get(ctx, p+"k")
		if errs.Is(err, errs.NotFound) {
			break
		}
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("key with a %v lease still there after %v", leaseTTL, time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(start); d < leaseTTL/2 {
		t.Fatalf("lease expired after %v, before its TTL %v", d, leaseTTL)
	}
	wantKind(t, "KeepAliveOnce on an expired lease", s.KeepAliveOnce(ctx, id), errs.NotFound)
}

func testWatchCompacted(t *testing.T, s store.Store, p string) {
	c, ok := s.(store.Compactor)
	if !ok {
		t.Skip("store does not implement store.Compactor")
	}
	ctx := ctxFor(t)
	r1 := put(t, s, p+"k", "v1")
	put(t, s, p+"k", "v2")
	r3 := put(t, s, p+"k", "v3")
	if err := c.Compact(ctx, r3); err != nil {
		t.Fatalf("Compact(%d): %v", r3, err)
	}

	w := s.Watch(ctx, p, r1)
	var last store.WatchResponse
	timeout := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case r, ok := <-w:
			if !ok {
				done = true
				break
			}
			if last.Err != nil {
				t.Fatalf("response after the error: %+v", r)
			}
			last = r
		case <-timeout:
			t.Fatal("watch from a compacted revision neither failed nor closed")
		}
	}
	if !errors.Is(last.Err, store.ErrCompacted) {
		t.Fatalf("last response error %v, want store.ErrCompacted", last.Err)
	}
	if last.CompactRevision != 0 && last.CompactRevision < r1 {
		t.Fatalf("CompactRevision %d, want at least %d", last.CompactRevision, r1)
	}

	_, err := s.List(ctx, p, store.ListOptions{Revision: r1})
	if !errors.Is(err, store.ErrCompacted) {
		t.Fatalf("List at a compacted revision: %v, want store.ErrCompacted", err)
	}

	// The documented recovery: re-list, then watch from the list's revision.
	res := list(t, s, p, store.ListOptions{})
	wantKeys(t, "re-list", res.KVs, p+"k")
	w = s.Watch(ctx, p, res.Revision+1)
	r5 := put(t, s, p+"k", "v4")
	checkEvents(t, collect(t, w, 1), []wantEvent{{store.EventPut, p + "k", "v4", r5, "v3"}})
}
