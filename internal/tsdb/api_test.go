package tsdb

import (
	"context"
	"testing"
	"time"
)

func TestAppendQueryReopen(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	opt := Options{Now: func() time.Time { return now }, MaintainInterval: -1}
	db, err := Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	k := NewKey("App", "Latency", []Dim{{"B", "2"}, {"A", "1"}})
	var pts []Point
	for i := 0; i < 10; i++ {
		pts = append(pts, Point{Key: k, T: now.Add(-time.Duration(i) * time.Minute), Sample: ValueSample(float64(i), 1), Unit: "Milliseconds"})
	}
	if err := db.Append(context.Background(), pts); err != nil {
		t.Fatal(err)
	}
	check := func(db *DB) {
		t.Helper()
		bs, err := db.Query(k, now.Add(-time.Hour), now.Add(time.Minute), 5*time.Minute, "", true)
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		for _, b := range bs {
			n += b.Count
		}
		if n != 10 || len(bs) != 3 {
			t.Fatalf("buckets %+v", bs)
		}
	}
	check(db)
	// Abandon without Close, reopen.
	db2, err := Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	check(db2)
	if s := db2.Series("App"); len(s) != 1 || s[0].Key.String() != "App|Latency|A=1,B=2" {
		t.Fatalf("series %+v", s)
	}
	db2.Close()
}
