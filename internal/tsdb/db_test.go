package tsdb

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

var t0 = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func testOpts(c *clock) Options {
	return Options{Now: c.Now, MaintainInterval: -1}
}

func mustOpen(t testing.TB, dir string, opt Options) *DB {
	t.Helper()
	db, err := Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func mustAppend(t testing.TB, db *DB, pts []Point) {
	t.Helper()
	if err := db.Append(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
}

func mustQuery(t testing.TB, db *DB, k SeriesKey, from, to time.Time, period time.Duration, unit string, vals bool) []Bucket {
	t.Helper()
	bs, err := db.Query(k, from, to, period, unit, vals)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// refQuery is the model: the same aggregation done naively over the points.
func refQuery(pts []Point, k SeriesKey, from, to time.Time, period time.Duration, unit string, vals bool) []Bucket {
	m := map[time.Time]*Bucket{}
	pm := period.Milliseconds()
	for _, p := range pts {
		ms := p.T.UnixMilli()
		if p.Key.String() != k.String() || ms < from.UnixMilli() || ms >= to.UnixMilli() || (unit != "" && p.Unit != unit) {
			continue
		}
		bt := time.UnixMilli(floorDiv(ms, pm) * pm).UTC()
		b := m[bt]
		if b == nil {
			b = &Bucket{T: bt, Min: math.Inf(1), Max: math.Inf(-1)}
			m[bt] = b
		}
		b.Min = math.Min(b.Min, p.Sample.Min)
		b.Max = math.Max(b.Max, p.Sample.Max)
		b.Sum += p.Sample.Sum
		b.Count += p.Sample.Count
		if vals && p.Sample.isValue() {
			b.Values = append(b.Values, ValueCount{p.Sample.Min, p.Sample.Count})
		}
	}
	var out []Bucket
	for _, b := range m {
		if vals {
			b.Values = mergeValues(b.Values)
		}
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Bucket) int { return a.T.Compare(b.T) })
	return out
}

func near(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func sameBuckets(t *testing.T, what string, got, want []Bucket) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d buckets, want %d\ngot  %+v\nwant %+v", what, len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		// Sums may differ in the last bits: the order of additions differs.
		if !g.T.Equal(w.T) || g.Min != w.Min || g.Max != w.Max || !near(g.Sum, w.Sum) || g.Count != w.Count ||
			len(g.Values) != len(w.Values) {
			t.Fatalf("%s: bucket %d = %+v, want %+v", what, i, g, w)
		}
		for j := range g.Values {
			if g.Values[j].V != w.Values[j].V || !near(g.Values[j].C, w.Values[j].C) {
				t.Fatalf("%s: bucket %d values %+v, want %+v", what, i, g.Values, w.Values)
			}
		}
	}
}

// genPoints makes a day of 10-s samples of a few series, in batches, with
// duplicates, late (out-of-order) samples, two units and statistic sets.
func genPoints(r *rand.Rand, keys []SeriesKey, start time.Time, n int) []Point {
	var pts []Point
	for i := 0; i < n; i++ {
		k := keys[r.IntN(len(keys))]
		ts := start.Add(time.Duration(i) * 10 * time.Second)
		switch r.IntN(10) {
		case 0:
			ts = ts.Add(-time.Duration(r.IntN(5*3600)) * time.Second) // late, often in another block
		case 1:
			ts = ts.Add(-10 * time.Second) // duplicate time
		case 2:
			ts = ts.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
		}
		var s Sample
		switch r.IntN(6) {
		case 0:
			s = Sample{Min: 1, Max: 9, Sum: 20, Count: 4}
		case 1:
			s = ValueSample(float64(r.IntN(20)), float64(1+r.IntN(3)))
		default:
			s = ValueSample(math.Round(r.NormFloat64()*1000)/8, 1)
		}
		unit := "Milliseconds"
		if r.IntN(7) == 0 {
			unit = "Count"
		}
		pts = append(pts, Point{Key: k, T: ts, Sample: s, Unit: unit})
	}
	return pts
}

// TestQueryMatchesModelAcrossChunksBlocksAndRestarts writes a day of
// samples in batches, flushing part of them to blocks, and checks every
// query against the naive model: with data only in the head, split between
// blocks and head, after compaction, and after reopening.
func TestQueryMatchesModelAcrossChunksBlocksAndRestarts(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: t0.Add(25 * time.Hour)}
	db := mustOpen(t, dir, testOpts(c))
	r := rand.New(rand.NewPCG(7, 8))
	keys := []SeriesKey{
		NewKey("App", "Latency", []Dim{{"Service", "a"}}),
		NewKey("App", "Latency", []Dim{{"Service", "b"}, {"AZ", "z1"}}),
		NewKey("App", "Errors", nil),
	}
	pts := genPoints(r, keys, t0, 8640)
	written := 0
	checkAll := func(stage string) {
		t.Helper()
		for _, k := range keys {
			for _, q := range []struct {
				from, to time.Time
				period   time.Duration
				unit     string
			}{
				{t0.Add(-6 * time.Hour), t0.Add(25 * time.Hour), 60 * time.Second, ""},
				{t0, t0.Add(24 * time.Hour), 300 * time.Second, "Milliseconds"},
				{t0.Add(90*time.Minute + 7*time.Second), t0.Add(5*time.Hour + 13*time.Second), 7 * time.Second, ""},
				{t0.Add(-3 * time.Hour), t0.Add(30 * time.Hour), time.Hour, "Count"},
				{t0.Add(-3 * time.Hour), t0.Add(30 * time.Hour), 24 * time.Hour, ""},
				{t0.Add(119 * time.Minute), t0.Add(121 * time.Minute), time.Second, ""}, // block boundary, sparse buckets
				{t0, t0.Add(20 * 24 * time.Hour), time.Second, ""},                      // 1.7 M buckets: the sparse path
			} {
				want := refQuery(pts[:written], k, q.from, q.to, q.period, q.unit, true)
				got := mustQuery(t, db, k, q.from, q.to, q.period, q.unit, true)
				sameBuckets(t, stage+" "+k.String(), got, want)
			}
		}
	}
	for written < len(pts) {
		n := min(500, len(pts)-written)
		mustAppend(t, db, pts[written:written+n])
		written += n
		if written == 4000 {
			checkAll("head only")
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
			checkAll("blocks")
		}
		if written == 6000 {
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkAll("blocks + head")
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	checkAll("compacted")
	// Every closed partition is one file now.
	for part, files := range db.blocks {
		if len(files) != 1 {
			t.Fatalf("partition %d has %d files after compaction", part, len(files))
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, dir, testOpts(c))
	defer db.Close()
	checkAll("reopened")
	if got := db.Series("App"); len(got) != 3 || got[0].Key.String() != "App|Errors|" || !slices.Equal(got[1].Units, []string{"Milliseconds", "Count"}) && !slices.Equal(got[1].Units, []string{"Count", "Milliseconds"}) {
		t.Fatalf("series %+v", got)
	}
}

func TestPeriodAlignmentAndRange(t *testing.T) {
	c := &clock{now: t0.Add(time.Hour)}
	db := mustOpen(t, t.TempDir(), testOpts(c))
	defer db.Close()
	k := NewKey("N", "M", nil)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	mustAppend(t, db, []Point{
		{Key: k, T: at(30), Sample: ValueSample(1, 1)},
		{Key: k, T: at(70), Sample: ValueSample(2, 1)},
		{Key: k, T: at(119), Sample: ValueSample(3, 1)},
		{Key: k, T: at(120), Sample: ValueSample(4, 1)},
		{Key: k, T: at(299), Sample: ValueSample(5, 1)},
	})
	// from inside the first minute: the 00:00:30 sample is outside [from, to);
	// buckets stay aligned to the epoch, not to from.
	got := mustQuery(t, db, k, at(45), at(299), time.Minute, "", false)
	want := []Bucket{
		{T: at(60), Min: 2, Max: 3, Sum: 5, Count: 2},
		{T: at(120), Min: 4, Max: 4, Sum: 4, Count: 1},
	}
	sameBuckets(t, "aligned", got, want)
	got = mustQuery(t, db, k, at(0), at(300), 5*time.Minute, "", false)
	sameBuckets(t, "5 min", got, []Bucket{{T: at(0), Min: 1, Max: 5, Sum: 15, Count: 5}})
	if got := mustQuery(t, db, k, at(300), at(0), time.Minute, "", false); got != nil {
		t.Fatalf("reversed range: %+v", got)
	}
	if _, err := db.Query(k, at(0), at(300), 0, "", false); !errs.Is(err, errs.Invalid) {
		t.Fatalf("period 0: %v", err)
	}
	if got := mustQuery(t, db, NewKey("N", "Other", nil), at(0), at(300), time.Minute, "", false); got != nil {
		t.Fatalf("unknown series: %+v", got)
	}
	// Dimension order of the query key does not matter.
	k2 := NewKey("N", "D", []Dim{{"b", "2"}, {"a", "1"}})
	mustAppend(t, db, []Point{{Key: k2, T: at(1), Sample: ValueSample(1, 1)}})
	if got := mustQuery(t, db, SeriesKey{Namespace: "N", MetricName: "D", Dims: []Dim{{"b", "2"}, {"a", "1"}}}, at(0), at(60), time.Minute, "", false); len(got) != 1 {
		t.Fatalf("unsorted dims: %+v", got)
	}
}

func TestUnitFilterAndPercentileValues(t *testing.T) {
	c := &clock{now: t0.Add(time.Hour)}
	dir := t.TempDir()
	db := mustOpen(t, dir, testOpts(c))
	defer db.Close()
	k := NewKey("N", "M", nil)
	mustAppend(t, db, []Point{
		{Key: k, T: t0, Sample: ValueSample(3, 1), Unit: "Seconds"},
		{Key: k, T: t0.Add(time.Second), Sample: ValueSample(1, 2), Unit: "Seconds"},
		{Key: k, T: t0.Add(2 * time.Second), Sample: ValueSample(3, 4), Unit: "Seconds"},
		{Key: k, T: t0.Add(3 * time.Second), Sample: Sample{Min: 0.5, Max: 100, Sum: 300, Count: 10}, Unit: "Seconds"},
		{Key: k, T: t0.Add(4 * time.Second), Sample: ValueSample(1000, 1), Unit: "Milliseconds"},
		{Key: k, T: t0.Add(5 * time.Second), Sample: ValueSample(7, 1), HighResolution: true},
	})
	check := func(stage string) {
		got := mustQuery(t, db, k, t0, t0.Add(time.Minute), time.Minute, "Seconds", true)
		sameBuckets(t, stage+" seconds", got, []Bucket{{T: t0, Min: 0.5, Max: 100, Sum: 3 + 2 + 12 + 300, Count: 17,
			Values: []ValueCount{{1, 2}, {3, 5}}}})
		got = mustQuery(t, db, k, t0, t0.Add(time.Minute), time.Minute, "", false)
		sameBuckets(t, stage+" any", got, []Bucket{{T: t0, Min: 0.5, Max: 1000, Sum: 1324, Count: 19}})
		if got := mustQuery(t, db, k, t0, t0.Add(time.Minute), time.Minute, "Bytes", true); got != nil {
			t.Fatalf("%s: unit never stored: %+v", stage, got)
		}
		got = mustQuery(t, db, k, t0, t0.Add(time.Minute), time.Minute, "Milliseconds", true)
		sameBuckets(t, stage+" ms", got, []Bucket{{T: t0, Min: 1000, Max: 1000, Sum: 1000, Count: 1, Values: []ValueCount{{1000, 1}}}})
		if s := db.Series(""); len(s) != 1 || !slices.Equal(s[0].Units, []string{"Seconds", "Milliseconds", ""}) || !s[0].HighResolution {
			t.Fatalf("%s: series %+v", stage, s)
		}
	}
	check("head")
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	check("block")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, dir, testOpts(c))
	defer db.Close()
	check("reopened")
}

func TestAppendRejectsTooOldAndLimits(t *testing.T) {
	c := &clock{now: t0}
	dir := t.TempDir()
	opt := testOpts(c)
	opt.MaxSeries = 10
	db := mustOpen(t, dir, opt)
	k := func(i int) SeriesKey { return NewKey("Storm", "M", []Dim{{"I", string(rune('a' + i))}}) }
	err := db.Append(context.Background(), []Point{
		{Key: k(0), T: t0, Sample: ValueSample(1, 1)},
		{Key: k(0), T: t0.Add(-DefaultRetention - time.Second), Sample: ValueSample(1, 1)},
	})
	if !errs.Is(err, errs.Invalid) {
		t.Fatalf("too old: %v", err)
	}
	err = db.Append(context.Background(), []Point{{Key: k(0), T: t0.Add(MaxFuture + time.Millisecond), Sample: ValueSample(1, 1)}})
	if !errs.Is(err, errs.Invalid) || errs.ReasonOf(err) != "tsdb.too_new" {
		t.Fatalf("too new: %v", err)
	}
	if len(db.Series("")) != 0 {
		t.Fatal("a rejected batch stored something")
	}
	var pts []Point
	for i := 0; i < 10; i++ {
		pts = append(pts, Point{Key: k(i), T: t0, Sample: ValueSample(1, 1)})
	}
	mustAppend(t, db, pts)
	// One new series past the bound: the whole batch is refused.
	err = db.Append(context.Background(), []Point{
		{Key: k(0), T: t0.Add(time.Second), Sample: ValueSample(2, 1)},
		{Key: k(10), T: t0, Sample: ValueSample(1, 1)},
	})
	if !errs.Is(err, errs.LimitExceeded) {
		t.Fatalf("series 11: %v", err)
	}
	if got := mustQuery(t, db, k(0), t0, t0.Add(time.Minute), time.Minute, "", false); len(got) != 1 || got[0].Count != 1 {
		t.Fatalf("refused batch stored a sample: %+v", got)
	}
	// Existing series still take points; the bound survives a restart.
	mustAppend(t, db, []Point{{Key: k(3), T: t0.Add(time.Second), Sample: ValueSample(1, 1)}})
	db2 := mustOpen(t, dir, opt) // the first is abandoned, as by kill -9
	defer db2.Close()
	if err := db2.Append(context.Background(), []Point{{Key: k(11), T: t0, Sample: ValueSample(1, 1)}}); !errs.Is(err, errs.LimitExceeded) {
		t.Fatalf("after reopen: %v", err)
	}
	// Units per series are bounded too.
	var up []Point
	for i := 0; i <= MaxUnitsPerSeries; i++ {
		up = append(up, Point{Key: k(1), T: t0, Sample: ValueSample(1, 1), Unit: string(rune('A' + i))})
	}
	if err := db2.Append(context.Background(), up); !errs.Is(err, errs.LimitExceeded) {
		t.Fatalf("units: %v", err)
	}
	mustAppend(t, db2, up[:MaxUnitsPerSeries-1]) // with "" already there: exactly the bound
}

func TestRetentionDeletesWholeBlocks(t *testing.T) {
	c := &clock{now: t0}
	dir := t.TempDir()
	opt := testOpts(c)
	opt.Retention = 48 * time.Hour
	db := mustOpen(t, dir, opt)
	defer db.Close()
	old := NewKey("N", "Old", nil)
	keep := NewKey("N", "Keep", nil)
	for h := 0; h < 24; h++ {
		mustAppend(t, db, []Point{{Key: old, T: t0.Add(time.Duration(h-24) * time.Hour), Sample: ValueSample(1, 1)}})
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	head := NewKey("N", "Head", nil) // a sample still in the head when it expires
	mustAppend(t, db, []Point{{Key: head, T: t0.Add(-time.Hour), Sample: ValueSample(1, 1)}})
	c.Add(36 * time.Hour) // now = t0+36h; cutoff = t0-12h
	keepT := c.Now()
	mustAppend(t, db, []Point{{Key: keep, T: keepT, Sample: ValueSample(1, 1)}})
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	got := mustQuery(t, db, old, t0.Add(-48*time.Hour), t0, time.Hour, "", false)
	if len(got) != 12 || !got[0].T.Equal(t0.Add(-12*time.Hour)) {
		t.Fatalf("after first pass: %d buckets from %v", len(got), got[0].T)
	}
	parts, _ := os.ReadDir(filepath.Join(dir, "blocks"))
	if len(parts) != 6 { // t0-12h .. t0: six 2-hour partitions
		t.Fatalf("%d partition dirs", len(parts))
	}
	c.Add(24 * time.Hour) // cutoff = t0+12h: everything of old and head is gone
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, db, old, t0.Add(-48*time.Hour), t0.Add(48*time.Hour), time.Hour, "", false); got != nil {
		t.Fatalf("expired data returned: %+v", got)
	}
	if got := mustQuery(t, db, head, t0.Add(-48*time.Hour), t0.Add(48*time.Hour), time.Hour, "", false); got != nil {
		t.Fatalf("expired head data returned: %+v", got)
	}
	if s := db.Series("N"); len(s) != 1 || s[0].Key.String() != keep.String() {
		t.Fatalf("series after retention: %+v", s)
	}
	parts, _ = os.ReadDir(filepath.Join(dir, "blocks"))
	if len(parts) != 0 {
		t.Fatalf("%d partition dirs left", len(parts))
	}
	if got := mustQuery(t, db, keep, keepT.Add(-time.Hour), keepT.Add(time.Hour), time.Hour, "", false); len(got) != 1 {
		t.Fatalf("recent data lost: %+v", got)
	}
}

func countAll(t *testing.T, db *DB, keys []SeriesKey) float64 {
	t.Helper()
	var n float64
	for _, k := range keys {
		for _, b := range mustQuery(t, db, k, t0.Add(-24*time.Hour), t0.Add(48*time.Hour), 24*time.Hour, "", false) {
			n += b.Count
		}
	}
	return n
}

// TestWALRecoveryAfterKillAndTornWrite abandons the DB without Close (as
// kill -9 would), appends garbage and a half record to the WAL, reopens:
// everything acknowledged is there and the torn tail is dropped.
func TestWALRecoveryAfterKillAndTornWrite(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: t0.Add(time.Hour)}
	db := mustOpen(t, dir, testOpts(c))
	keys := []SeriesKey{NewKey("N", "A", nil), NewKey("N", "B", []Dim{{"X", "1"}})}
	r := rand.New(rand.NewPCG(9, 9))
	pts := genPoints(r, keys, t0, 3000)
	for i := 0; i < len(pts); i += 100 {
		mustAppend(t, db, pts[i:i+100])
		if i == 1500 {
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	segs, _ := listSegments(filepath.Join(dir, "wal"))
	last := filepath.Join(dir, "wal", segName(segs[len(segs)-1]))
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 5, 6}) // a record of 200 bytes cut after 2
	f.Close()

	db2 := mustOpen(t, dir, testOpts(c))
	if got, want := countAll(t, db2, keys), float64(0); got == want {
		t.Fatal("nothing recovered")
	}
	for _, k := range keys {
		want := refQuery(pts, k, t0.Add(-24*time.Hour), t0.Add(48*time.Hour), time.Hour, "", true)
		sameBuckets(t, "recovered", mustQuery(t, db2, k, t0.Add(-24*time.Hour), t0.Add(48*time.Hour), time.Hour, "", true), want)
	}
	// The store keeps working, and a second crash loses nothing either.
	more := []Point{{Key: keys[0], T: t0.Add(30 * time.Minute), Sample: ValueSample(42, 1)}}
	mustAppend(t, db2, more)
	pts = append(pts, more...)
	db3 := mustOpen(t, dir, testOpts(c))
	defer db3.Close()
	for _, k := range keys {
		want := refQuery(pts, k, t0.Add(-24*time.Hour), t0.Add(48*time.Hour), time.Hour, "", true)
		sameBuckets(t, "second crash", mustQuery(t, db3, k, t0.Add(-24*time.Hour), t0.Add(48*time.Hour), time.Hour, "", true), want)
	}
}

// TestCrashDuringFlushLosesAndDuplicatesNothing stops a flush at each step
// (as a crash would), abandons the DB and reopens it: every sample is there
// exactly once.
func TestCrashDuringFlushLosesAndDuplicatesNothing(t *testing.T) {
	for _, stage := range []string{"written", "committed", "renamed", "compacted"} {
		t.Run(stage, func(t *testing.T) {
			dir := t.TempDir()
			c := &clock{now: t0.Add(30 * time.Hour)}
			db := mustOpen(t, dir, testOpts(c))
			keys := []SeriesKey{NewKey("N", "A", nil), NewKey("N", "B", nil)}
			pts := genPoints(rand.New(rand.NewPCG(1, 1)), keys, t0, 2000)
			mustAppend(t, db, pts[:1000])
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
			mustAppend(t, db, pts[1000:])
			testHookFlush = func(s string) bool { return s == stage }
			defer func() { testHookFlush = nil }()
			if stage == "compacted" {
				db.Flush()
				db.Compact()
			} else if err := db.Flush(); err == nil || err.Error() != "tsdb: test crash at "+stage {
				t.Fatalf("flush: %v", err)
			}
			testHookFlush = nil
			db2 := mustOpen(t, dir, testOpts(c))
			defer db2.Close()
			for _, k := range keys {
				want := refQuery(pts, k, t0.Add(-24*time.Hour), t0.Add(48*time.Hour), time.Hour, "", true)
				sameBuckets(t, stage, mustQuery(t, db2, k, t0.Add(-24*time.Hour), t0.Add(48*time.Hour), time.Hour, "", true), want)
			}
			// And after the next flush (which must not redo the completed one).
			if err := db2.Flush(); err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				want := refQuery(pts, k, t0.Add(-24*time.Hour), t0.Add(48*time.Hour), time.Hour, "", true)
				sameBuckets(t, stage+" reflushed", mustQuery(t, db2, k, t0.Add(-24*time.Hour), t0.Add(48*time.Hour), time.Hour, "", true), want)
			}
		})
	}
}

// TestConcurrentAppendQueryFlush runs 20 writers with readers, flushes and
// compactions at the same time (run with -race); every acknowledged sample
// is counted once in the end, and again after reopening.
func TestConcurrentAppendQueryFlush(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: t0.Add(30 * time.Hour)}
	db := mustOpen(t, dir, testOpts(c))
	var keys []SeriesKey
	for i := 0; i < 20; i++ {
		keys = append(keys, NewKey("C", "M", []Dim{{"W", string(rune('a' + i))}}))
	}
	const batches, per = 30, 50
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				var pts []Point
				for i := 0; i < per; i++ {
					pts = append(pts, Point{Key: keys[(w+i)%len(keys)], T: t0.Add(time.Duration(b*per+i) * time.Second), Sample: ValueSample(float64(i), 1), Unit: "Count"})
				}
				if err := db.Append(context.Background(), pts); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, k := range keys[:3] {
				if _, err := db.Query(k, t0, t0.Add(2*time.Hour), time.Minute, "", true); err != nil {
					t.Error(err)
				}
			}
			db.Series("C")
		}
	}()
	go func() {
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if err := db.Flush(); err != nil {
				t.Error(err)
			}
			if err := db.Compact(); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	close(stop)
	bg.Wait()
	if got := countAll(t, db, keys); got != 20*batches*per {
		t.Fatalf("counted %v samples, want %d", got, 20*batches*per)
	}
	db2 := mustOpen(t, dir, testOpts(c))
	defer db2.Close()
	if got := countAll(t, db2, keys); got != 20*batches*per {
		t.Fatalf("after reopen: counted %v samples, want %d", got, 20*batches*per)
	}
}

func TestKeyString(t *testing.T) {
	a := NewKey("A|B", "c=d", []Dim{{"x,y", `v\`}})
	b := NewKey("A", "B|c=d", []Dim{{"x", "y"}})
	if a.String() == b.String() {
		t.Fatalf("keys collide: %q", a.String())
	}
	if got := NewKey("N", "M", []Dim{{"b", "1"}, {"a", "2"}}); !reflect.DeepEqual(got.Dims, []Dim{{"a", "2"}, {"b", "1"}}) {
		t.Fatalf("not sorted: %+v", got)
	}
}
