package tsdb

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

func blockFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "blocks", "*", "*.blk"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestMaintainFlushesAfterIntervalAndTruncatesWAL(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: t0.Add(time.Hour)}
	db := mustOpen(t, dir, testOpts(c))
	defer db.Close()
	k := NewKey("N", "M", nil)
	for i := 0; i < 10; i++ {
		mustAppend(t, db, []Point{{Key: k, T: t0.Add(time.Duration(i) * time.Minute), Sample: ValueSample(float64(i), 1)}})
	}
	if err := db.Maintain(); err != nil {
		t.Fatal(err)
	}
	if len(blockFiles(t, dir)) != 0 {
		t.Fatal("flushed before the flush interval")
	}
	c.Add(DefaultFlushInterval)
	if err := db.Maintain(); err != nil {
		t.Fatal(err)
	}
	if n := len(blockFiles(t, dir)); n != 1 {
		t.Fatalf("%d block files after the flush interval", n)
	}
	segs, _ := listSegments(filepath.Join(dir, "wal"))
	if len(segs) != 1 {
		t.Fatalf("WAL segments after flush: %v", segs)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "wal", segName(segs[0]))); fi.Size() != 0 {
		t.Fatalf("current segment holds %d bytes", fi.Size())
	}
	if got := mustQuery(t, db, k, t0, t0.Add(time.Hour), time.Hour, "", false); len(got) != 1 || got[0].Count != 10 {
		t.Fatalf("after flush: %+v", got)
	}
}

// TestHeadBoundTriggersBackgroundFlush: past MaxHeadSamples the background
// loop flushes at once, without waiting for its tick.
func TestHeadBoundTriggersBackgroundFlush(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: t0.Add(time.Hour)}
	opt := testOpts(c)
	opt.MaintainInterval = time.Hour
	opt.MaxHeadSamples = 100
	db := mustOpen(t, dir, opt)
	defer db.Close()
	k := NewKey("N", "M", nil)
	var pts []Point
	for i := 0; i < 150; i++ {
		pts = append(pts, Point{Key: k, T: t0.Add(time.Duration(i) * time.Second), Sample: ValueSample(1, 1)})
	}
	mustAppend(t, db, pts)
	deadline := time.Now().Add(10 * time.Second)
	for len(blockFiles(t, dir)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no flush past MaxHeadSamples")
		}
		time.Sleep(10 * time.Millisecond)
	}
	db.mu.RLock()
	n := db.headSamples
	db.mu.RUnlock()
	if n != 0 {
		t.Fatalf("head holds %d samples after the flush", n)
	}
}

func TestCorruptBlockIsSkippedAndBadChunkFailsQuery(t *testing.T) {
	dir := t.TempDir()
	c := &clock{now: t0.Add(10 * time.Hour)}
	db := mustOpen(t, dir, testOpts(c))
	a, b := NewKey("N", "A", nil), NewKey("N", "B", nil)
	mustAppend(t, db, []Point{{Key: a, T: t0, Sample: ValueSample(1, 1)}, {Key: b, T: t0.Add(3 * time.Hour), Sample: ValueSample(2, 1)}})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files := blockFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("%d block files", len(files))
	}
	// First partition: break the index (its CRC fails). Second: break the chunk.
	data, _ := os.ReadFile(files[0])
	data[len(data)-footerSize-2] ^= 0xff
	os.WriteFile(files[0], data, 0o644)
	data, _ = os.ReadFile(files[1])
	data[len(blockMagic)+2] ^= 0xff
	os.WriteFile(files[1], data, 0o644)

	var logs bytes.Buffer
	opt := testOpts(c)
	opt.Log = slog.New(slog.NewTextHandler(&logs, nil))
	db = mustOpen(t, dir, opt)
	defer db.Close()
	if !strings.Contains(logs.String(), "unreadable block file") {
		t.Fatalf("no log of the corrupt file: %s", logs.String())
	}
	if got := mustQuery(t, db, a, t0, t0.Add(time.Hour), time.Hour, "", false); got != nil {
		t.Fatalf("data of a corrupt file: %+v", got)
	}
	if _, err := db.Query(b, t0, t0.Add(6*time.Hour), time.Hour, "", false); !errs.Is(err, errs.Internal) {
		t.Fatalf("corrupt chunk: %v", err)
	}
	// The store still takes writes.
	mustAppend(t, db, []Point{{Key: a, T: t0.Add(time.Minute), Sample: ValueSample(3, 1)}})
}

func TestAppendAfterCloseIsUnavailable(t *testing.T) {
	c := &clock{now: t0}
	db := mustOpen(t, t.TempDir(), testOpts(c))
	db.Close()
	if err := db.Append(context.Background(), []Point{{Key: NewKey("N", "M", nil), T: t0, Sample: ValueSample(1, 1)}}); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("append after close: %v", err)
	}
}

func FuzzWALRecord(f *testing.F) {
	b, _ := newBatch([]Point{
		{Key: NewKey("N", "M", []Dim{{"a", "b"}}), T: t0, Sample: ValueSample(1, 2), Unit: "Count"},
		{Key: NewKey("N", "X", nil), T: t0, Sample: Sample{1, 2, 3, 4}},
	}, 5, 0, 0)
	f.Add(b.encode(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, payload []byte) {
		b, err := decodeBatch(payload)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes' meaning.
		b2, err := decodeBatch(b.encode(nil))
		if err != nil || len(b2.pts) != len(b.pts) || len(b2.keys) != len(b.keys) {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func TestSeriesByNamespaceAndLookup(t *testing.T) {
	c := &clock{now: t0}
	db := mustOpen(t, t.TempDir(), testOpts(c))
	defer db.Close()
	nss := []string{"A", "AB", "A|B", `A\`, "A=", "", "B", "A B"}
	add := func(ns, name string) {
		mustAppend(t, db, []Point{{Key: NewKey(ns, name, []Dim{{"d", ns}}), T: t0, Sample: ValueSample(1, 1), Unit: "Count"}})
	}
	check := func() {
		t.Helper()
		all := db.Series("")
		for i := 1; i < len(all); i++ {
			if all[i-1].Key.String() >= all[i].Key.String() {
				t.Fatalf("not sorted: %q before %q", all[i-1].Key.String(), all[i].Key.String())
			}
		}
		for _, ns := range nss {
			var want []string
			for _, s := range all {
				if s.Key.Namespace == ns {
					want = append(want, s.Key.String())
				}
			}
			var got []string
			for _, s := range db.Series(ns) {
				got = append(got, s.Key.String())
			}
			if ns != "" && !slices.Equal(got, want) {
				t.Fatalf("namespace %q: %q, want %q", ns, got, want)
			}
		}
	}
	for _, ns := range nss {
		add(ns, "M")
	}
	check()
	add("A", "N") // the cached order must see new series
	add("AB", "0")
	check()
	if n := len(db.Series("A")); n != 2 {
		t.Fatalf("namespace A has %d series", n)
	}
	info, ok := db.Lookup(SeriesKey{Namespace: "A|B", MetricName: "M", Dims: []Dim{{"d", "A|B"}}})
	if !ok || !slices.Equal(info.Units, []string{"Count"}) || !info.LastWrite.Equal(t0) {
		t.Fatalf("lookup: %+v %v", info, ok)
	}
	if _, ok := db.Lookup(NewKey("A", "Nope", nil)); ok {
		t.Fatal("lookup of an unknown series")
	}
}
