package logstore

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustGroup(t *testing.T, s *Store, name string) {
	t.Helper()
	if err := s.CreateGroup(GroupInfo{Name: name, Created: 1}); err != nil {
		t.Fatal(err)
	}
}

func all(t *testing.T, s *Store, q Query) []Event {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 1 << 20
	}
	res, err := s.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	return res.Events
}

func TestReopenKeepsEverythingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentBytes: 4096})
	mustGroup(t, s, "g")
	if err := s.CreateStream("g", "empty", 5); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRetention("g", 7); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateTags("g", map[string]string{"team": "core"}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := s.Append("g", "a", []Entry{{Timestamp: int64(1000 + i), Message: fmt.Sprintf("line %d", i)}}, true, 50); err != nil {
			t.Fatal(err)
		}
	}
	// A deleted group leaves nothing behind; a deleted stream's events do
	// not come back with a new stream of the same name.
	mustGroup(t, s, "gone")
	s.Append("gone", "x", []Entry{{Timestamp: 1, Message: "x"}}, true, 1)
	if err := s.DeleteGroup("gone"); err != nil {
		t.Fatal(err)
	}
	s.Append("g", "old", []Entry{{Timestamp: 1, Message: "old"}}, true, 1)
	if err := s.DeleteStream("g", "old"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateStream("g", "old", 2); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := open(t, Config{Dir: dir, SegmentBytes: 4096})
	g, err := s2.Group("g")
	if err != nil {
		t.Fatal(err)
	}
	if g.RetentionDays != 7 || g.Tags["team"] != "core" || g.Streams != 3 || g.StoredBytes == 0 {
		t.Fatalf("group after reopen: %+v", g)
	}
	if _, err := s2.Group("gone"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("deleted group: %v", err)
	}
	evs := all(t, s2, Query{Group: "g", Streams: []string{"a"}, Now: 1000})
	if len(evs) != 200 || evs[0].Message != "line 0" || evs[199].Message != "line 199" {
		t.Fatalf("events after reopen: %d", len(evs))
	}
	if evs := all(t, s2, Query{Group: "g", Streams: []string{"old"}}); len(evs) != 0 {
		t.Fatalf("re-created stream shows old events: %v", evs)
	}
	st, _ := s2.Stream("g", "a")
	if !st.HasEvents || st.FirstEvent != 1000 || st.LastEvent != 1199 || st.LastIngestion != 50 {
		t.Fatalf("stream stats: %+v", st)
	}
	// Sequence numbers go on after a reopen.
	s2.Append("g", "a", []Entry{{Timestamp: 1000, Message: "after"}}, false, 60)
	evs = all(t, s2, Query{Group: "g", Streams: []string{"a"}, End: 1001})
	if len(evs) != 2 || evs[1].Message != "after" || evs[1].Seq <= evs[0].Seq {
		t.Fatalf("order at one timestamp: %+v", evs)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "groups")); len(ents) != 1 {
		t.Fatalf("group directories: %v", ents)
	}
}

func TestTornTailIsTruncated(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir})
	mustGroup(t, s, "g")
	s.Append("g", "a", []Entry{{Timestamp: 1, Message: "one"}, {Timestamp: 2, Message: "two"}}, true, 1)
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "groups", "*", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	// A crash half-way through a write leaves a partial record.
	f, _ := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3})
	f.Close()
	cat, _ := os.OpenFile(filepath.Join(dir, "catalog.log"), os.O_WRONLY|os.O_APPEND, 0)
	cat.Write([]byte{9, 0, 0})
	cat.Close()

	s2 := open(t, Config{Dir: dir})
	if evs := all(t, s2, Query{Group: "g"}); len(evs) != 2 {
		t.Fatalf("events: %v", evs)
	}
	s2.Append("g", "a", []Entry{{Timestamp: 3, Message: "three"}}, false, 1)
	if evs := all(t, s2, Query{Group: "g"}); len(evs) != 3 || evs[2].Message != "three" {
		t.Fatalf("events after append past a torn tail: %v", evs)
	}
}

func TestOrderingPagingAndFilters(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir(), SegmentBytes: 512})
	mustGroup(t, s, "g")
	// Two streams, interleaved and out of order across batches.
	s.Append("g", "web-1", []Entry{{10, "a10"}, {30, "a30"}, {50, "a50"}}, true, 1)
	s.Append("g", "web-2", []Entry{{20, "b20"}, {40, "b40"}}, true, 1)
	s.Append("g", "db-1", []Entry{{5, "c5"}, {25, "c25"}}, true, 1)
	s.Append("g", "web-1", []Entry{{15, "a15"}}, false, 2)

	got := func(evs []Event) (out []string) {
		for _, e := range evs {
			out = append(out, e.Message)
		}
		return out
	}
	want := func(q Query, w ...string) {
		t.Helper()
		if g := fmt.Sprint(got(all(t, s, q))); g != fmt.Sprint(w) {
			t.Fatalf("%+v: got %v, want %v", q, g, w)
		}
	}
	want(Query{Group: "g"}, "c5", "a10", "a15", "b20", "c25", "a30", "b40", "a50")
	want(Query{Group: "g", Prefix: "web-"}, "a10", "a15", "b20", "a30", "b40", "a50")
	want(Query{Group: "g", Streams: []string{"db-1", "nope"}}, "c5", "c25")
	want(Query{Group: "g", Start: 15, End: 40}, "a15", "b20", "c25", "a30")
	want(Query{Group: "g", Match: func(m string) bool { return m[0] == 'b' }}, "b20", "b40")

	// Forward pages of 3 cover everything once, and More is false on the last.
	var seen []string
	var after *Key
	for page := 0; ; page++ {
		res, err := s.Query(Query{Group: "g", Limit: 3, After: after})
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, got(res.Events)...)
		if !res.More {
			break
		}
		k := res.Events[len(res.Events)-1].Key
		after = &k
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(seen) != "[c5 a10 a15 b20 c25 a30 b40 a50]" {
		t.Fatalf("pages: %v", seen)
	}
	// FromEnd takes the newest events, returned oldest first.
	res, _ := s.Query(Query{Group: "g", Limit: 2, FromEnd: true})
	if fmt.Sprint(got(res.Events)) != "[b40 a50]" || !res.More {
		t.Fatalf("from end: %v %v", got(res.Events), res.More)
	}
	before := res.Events[0].Key
	res, _ = s.Query(Query{Group: "g", Limit: 10, FromEnd: true, Before: &before})
	if fmt.Sprint(got(res.Events)) != "[c5 a10 a15 b20 c25 a30]" || res.More {
		t.Fatalf("before: %v %v", got(res.Events), res.More)
	}
	// A byte bound ends a page early and says there is more.
	res, _ = s.Query(Query{Group: "g", Limit: 100, MaxBytes: 2 * (3 + EventOverhead)})
	if len(res.Events) != 2 || !res.More {
		t.Fatalf("byte bound: %v %v", got(res.Events), res.More)
	}
}

func TestRetentionDeletesWholeExpiredSegmentsAndFiltersReads(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentBytes: 100})
	mustGroup(t, s, "g")
	day := int64(86_400_000)
	now := 100 * day
	for i := range 10 {
		s.Append("g", "a", []Entry{{Timestamp: now - int64(10-i)*day, Message: fmt.Sprintf("day %d ........................................................", i)}}, true, now)
	}
	segs := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "groups", "*", "*.seg"))
		return len(m)
	}
	before := segs()
	if before < 5 {
		t.Fatalf("expected several segments, got %d", before)
	}
	if n := s.EnforceRetention(time.UnixMilli(now)); n != 0 {
		t.Fatalf("no retention yet, deleted %d", n)
	}
	s.SetRetention("g", 3)
	if evs := all(t, s, Query{Group: "g", Now: now}); len(evs) != 3 {
		t.Fatalf("reads must filter expired events: %d", len(evs))
	}
	n := s.EnforceRetention(time.UnixMilli(now))
	if n == 0 || segs() != before-n {
		t.Fatalf("deleted %d of %d segments, %d left", n, before, segs())
	}
	if evs := all(t, s, Query{Group: "g", Now: now}); len(evs) != 3 {
		t.Fatalf("after retention: %d", len(evs))
	}
	// Retention never deletes the active segment, and the store reopens.
	s.Close()
	s2 := open(t, Config{Dir: dir, SegmentBytes: 100})
	if evs := all(t, s2, Query{Group: "g", Now: now}); len(evs) != 3 {
		t.Fatalf("after reopen: %d", len(evs))
	}
}

func TestByteBoundDeletesOldestSegments(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentBytes: 1000, MaxBytes: 3000})
	mustGroup(t, s, "a")
	mustGroup(t, s, "b")
	msg := string(make([]byte, 400))
	for i := range 10 {
		s.Append("a", "s", []Entry{{Timestamp: int64(i), Message: msg}}, true, int64(i))
		s.Append("b", "s", []Entry{{Timestamp: int64(i), Message: msg}}, true, int64(i)+100)
	}
	s.EnforceRetention(time.Now())
	var total int64
	for _, g := range s.Groups() {
		total += g.StoredBytes
	}
	if total > 3000+2*1000 { // the active segments are never deleted
		t.Fatalf("stored %d bytes", total)
	}
	// Group a's segments were ingested first: they go first.
	ea := all(t, s, Query{Group: "a"})
	eb := all(t, s, Query{Group: "b"})
	if len(ea) >= len(eb) || len(eb) == 0 {
		t.Fatalf("a kept %d, b kept %d", len(ea), len(eb))
	}
}

func TestLimits(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir(), MaxGroups: 2, MaxStreamsPerGroup: 2, MaxStreams: 3})
	mustGroup(t, s, "a")
	mustGroup(t, s, "b")
	if err := s.CreateGroup(GroupInfo{Name: "c"}); !errs.Is(err, errs.LimitExceeded) {
		t.Fatalf("third group: %v", err)
	}
	if err := s.CreateGroup(GroupInfo{Name: "a"}); !errs.Is(err, errs.AlreadyExists) || err.Error() != MsgGroupExists {
		t.Fatalf("duplicate group: %v", err)
	}
	s.CreateStream("a", "1", 1)
	s.CreateStream("a", "2", 1)
	if err := s.CreateStream("a", "3", 1); !errs.Is(err, errs.LimitExceeded) {
		t.Fatalf("third stream in a group: %v", err)
	}
	if _, err := s.Append("a", "3", []Entry{{1, "x"}}, true, 1); !errs.Is(err, errs.LimitExceeded) {
		t.Fatalf("implicit third stream: %v", err)
	}
	s.CreateStream("b", "1", 1)
	if err := s.CreateStream("b", "2", 1); !errs.Is(err, errs.LimitExceeded) {
		t.Fatalf("fourth stream in the store: %v", err)
	}
	// Deleting frees room.
	if err := s.DeleteStream("a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateStream("b", "2", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup("a"); err != nil {
		t.Fatal(err)
	}
	mustGroup(t, s, "c")
	tags := map[string]string{}
	for i := range MaxTags + 1 {
		tags[fmt.Sprint(i)] = "v"
	}
	if err := s.UpdateTags("c", tags, nil); !errs.Is(err, errs.LimitExceeded) {
		t.Fatalf("too many tags: %v", err)
	}
	if _, err := s.Append("nope", "x", nil, true, 1); !errs.Is(err, errs.NotFound) || err.Error() != MsgGroupNotFound {
		t.Fatalf("missing group: %v", err)
	}
	if _, err := s.Append("c", "nope", []Entry{{1, "x"}}, false, 1); !errs.Is(err, errs.NotFound) || err.Error() != MsgStreamNotFound {
		t.Fatalf("missing stream: %v", err)
	}
}

func TestConcurrentAppendsShareCommits(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentBytes: 8192})
	mustGroup(t, s, "g")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if _, err := s.Append("g", fmt.Sprint("s", w), []Entry{{int64(i), fmt.Sprintf("w%d-%d", w, i)}}, true, 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := s.Query(Query{Group: "g", Limit: 100}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	s2 := open(t, Config{Dir: dir})
	if evs := all(t, s2, Query{Group: "g"}); len(evs) != 400 {
		t.Fatalf("events: %d", len(evs))
	}
}

func TestDeleteGroupWhileStreamsAreCreated(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	for round := range 20 {
		name := fmt.Sprint("g", round)
		mustGroup(t, s, name)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 20 {
					_, err := s.Append(name, fmt.Sprint(w, "-", i), []Entry{{1, "x"}}, true, 1)
					if err != nil && !errs.Is(err, errs.NotFound) {
						t.Error(err)
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.DeleteGroup(name); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.nstreams != 0 {
		t.Fatalf("stream count after deleting every group: %d", s.nstreams)
	}
}

func TestSealedSegmentIndexFiles(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Config{Dir: dir, SegmentBytes: 300})
	mustGroup(t, s, "g")
	for i := range 60 {
		st := fmt.Sprint("s", i%3)
		if _, err := s.Append("g", st, []Entry{{Timestamp: int64(1000 + i), Message: fmt.Sprintf("line %02d ....................", i)}}, true, int64(5000+i)); err != nil {
			t.Fatal(err)
		}
	}
	want := all(t, s, Query{Group: "g"})
	wantStreams, _ := s.Streams("g")
	if n := s.WriteIndexes(); n < 3 {
		t.Fatalf("wrote %d index files", n)
	}
	s.Close()
	idx, _ := filepath.Glob(filepath.Join(dir, "groups", "*", "*.idx"))
	segs, _ := filepath.Glob(filepath.Join(dir, "groups", "*", "*.seg"))
	if len(idx) != len(segs)-1 {
		t.Fatalf("%d index files for %d segments", len(idx), len(segs))
	}
	check := func(label string) {
		t.Helper()
		s2 := open(t, Config{Dir: dir, SegmentBytes: 300})
		defer s2.Close()
		got := all(t, s2, Query{Group: "g"})
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: events differ", label)
		}
		streams, _ := s2.Streams("g")
		if fmt.Sprint(streams) != fmt.Sprint(wantStreams) {
			t.Fatalf("%s: streams %+v, want %+v", label, streams, wantStreams)
		}
	}
	check("with index files")
	// An index file that does not match its segment is ignored.
	os.WriteFile(idx[0], []byte("garbage"), 0o644)
	check("with a bad index file")
	os.Remove(idx[1])
	check("with a missing index file")
	// Sequence numbers go on from the indexed segments.
	s3 := open(t, Config{Dir: dir, SegmentBytes: 300})
	s3.Append("g", "s0", []Entry{{Timestamp: 999, Message: "first"}}, false, 1)
	if evs := all(t, s3, Query{Group: "g", End: 1000}); len(evs) != 1 || evs[0].Seq <= want[len(want)-1].Seq {
		t.Fatalf("new event %+v", evs)
	}
}
