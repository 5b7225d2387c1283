package tsdb

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	benchWriters = 20
	benchBatch   = 1000
)

// benchBatches makes one batch of 1000 datapoints per writer and round:
// each writer owns 50 series (20 datapoints each per batch, 1 s apart).
func benchBatchFor(w, round int) []Point {
	pts := make([]Point, benchBatch)
	base := t0.Add(time.Duration(round*20) * time.Second)
	for i := range pts {
		s := i % 50
		pts[i] = Point{
			Key:    NewKey("Bench", "Latency", []Dim{{"Service", fmt.Sprintf("svc-%02d-%02d", w, s)}, {"Cluster", "bench"}}),
			T:      base.Add(time.Duration(i/50) * time.Second),
			Sample: ValueSample(float64((i*7919+round)%1000)/10, 1),
			Unit:   "Milliseconds",
		}
	}
	return pts
}

// runWriters runs fn for b.N batches spread over 20 concurrent writers and
// reports datapoints per second.
func runWriters(b *testing.B, fn func(w, round int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for w := 0; w < benchWriters; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for round := 0; ; round++ {
				if next.Add(1) > int64(b.N) {
					return
				}
				if err := fn(w, round); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchBatch)/el.Seconds(), "datapoints/s")
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(el.Microseconds())/float64(b.N)/1000, "ms/batch")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*benchBatch), "cpu-ns/datapoint")
}

// cpuTime is the process' user + system CPU time in ns: on a machine shared
// with other work it shows the cost where wall-clock time shows the waiting.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// loopCPU runs fn in a b.Loop and reports its CPU time per op.
func loopCPU(b *testing.B, fn func()) {
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		fn()
		n++
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/op")
}

// BenchmarkAppend: 20 concurrent writers appending batches of 1000
// datapoints. tsdb = DB.Append (WAL with group commit + head chunks);
// baseline = the same WAL bytes appended to a plain file with one fsync per
// batch.
func BenchmarkAppend(b *testing.B) {
	// Pre-build the batches (as PutMetricData would have decoded them).
	const rounds = 64
	batches := make([][][]Point, benchWriters)
	for w := range batches {
		for r := 0; r < rounds; r++ {
			batches[w] = append(batches[w], benchBatchFor(w, r))
		}
	}
	b.Run("tsdb", func(b *testing.B) {
		c := &clock{now: t0.Add(time.Hour)}
		opt := testOpts(c)
		db := mustOpen(b, b.TempDir(), opt)
		defer db.Close()
		runWriters(b, func(w, round int) error {
			return db.Append(context.Background(), batches[w][round%rounds])
		})
	})
	b.Run("baseline-file-fsync-per-batch", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "plain"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		payloads := make([][][]byte, benchWriters)
		for w := range batches {
			for r := 0; r < rounds; r++ {
				bt, err := newBatch(batches[w][r], 0, 0, 0)
				if err != nil {
					b.Fatal(err)
				}
				payloads[w] = append(payloads[w], bt.encode(nil))
			}
		}
		runWriters(b, func(w, round int) error {
			if _, err := f.Write(payloads[w][round%rounds]); err != nil {
				return err
			}
			return f.Sync()
		})
	})
}

// dayOf60s returns one day of 60-s datapoints of one metric.
func dayOf60s() []Point {
	k := NewKey("AWS/ECS", "CPUUtilization", []Dim{{"ClusterName", "default"}, {"ServiceName", "web"}})
	pts := make([]Point, 1440)
	for i := range pts {
		pts[i] = Point{Key: k, T: t0.Add(time.Duration(i) * time.Minute), Sample: ValueSample(20+10*math.Sin(float64(i)/60)+float64(i%7), 1), Unit: "Percent"}
	}
	return pts
}

// BenchmarkQueryDay: one metric, one day of 60-s datapoints, Query with
// period 60 s and 300 s from compacted blocks on disk (and from the head);
// baseline = decoding the same datapoints from a flat binary array
// (t, min, max, sum, count, unit: 41 bytes each) into the same buckets.
func BenchmarkQueryDay(b *testing.B) {
	pts := dayOf60s()
	k := pts[0].Key
	c := &clock{now: t0.Add(25 * time.Hour)}
	db := mustOpen(b, b.TempDir(), testOpts(c))
	defer db.Close()
	for i := 0; i < len(pts); i += 60 { // an hour per Append, as a publisher every minute would over time
		mustAppend(b, db, pts[i:i+60])
	}
	head := mustOpen(b, b.TempDir(), testOpts(c))
	defer head.Close()
	mustAppend(b, head, pts)
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := db.Compact(); err != nil {
		b.Fatal(err)
	}
	flat := make([]byte, 0, len(pts)*41)
	for _, p := range pts {
		flat = binary.LittleEndian.AppendUint64(flat, uint64(p.T.UnixMilli()))
		for _, f := range []float64{p.Sample.Min, p.Sample.Max, p.Sample.Sum, p.Sample.Count} {
			flat = binary.LittleEndian.AppendUint64(flat, math.Float64bits(f))
		}
		flat = append(flat, 0)
	}
	from, to := t0, t0.Add(24*time.Hour)
	for _, period := range []time.Duration{time.Minute, 5 * time.Minute} {
		want := len(pts) / int(period/time.Minute)
		b.Run(fmt.Sprintf("tsdb-blocks/period=%ds", int(period.Seconds())), func(b *testing.B) {
			loopCPU(b, func() {
				bs, err := db.Query(k, from, to, period, "", false)
				if err != nil || len(bs) != want {
					b.Fatalf("%d buckets, %v", len(bs), err)
				}
			})
		})
		b.Run(fmt.Sprintf("tsdb-blocks-values/period=%ds", int(period.Seconds())), func(b *testing.B) {
			loopCPU(b, func() {
				bs, err := db.Query(k, from, to, period, "Percent", true)
				if err != nil || len(bs) != want {
					b.Fatalf("%d buckets, %v", len(bs), err)
				}
			})
		})
		b.Run(fmt.Sprintf("tsdb-head/period=%ds", int(period.Seconds())), func(b *testing.B) {
			loopCPU(b, func() {
				bs, err := head.Query(k, from, to, period, "", false)
				if err != nil || len(bs) != want {
					b.Fatalf("%d buckets, %v", len(bs), err)
				}
			})
		})
		b.Run(fmt.Sprintf("baseline-flat-array/period=%ds", int(period.Seconds())), func(b *testing.B) {
			loopCPU(b, func() {
				if bs := flatQuery(flat, from, to, period); len(bs) != want {
					b.Fatalf("%d buckets", len(bs))
				}
			})
		})
	}
}

// flatQuery decodes datapoints from a flat array into the same buckets.
func flatQuery(flat []byte, from, to time.Time, period time.Duration) []Bucket {
	pm := period.Milliseconds()
	f, t := from.UnixMilli(), to.UnixMilli()
	start := floorDiv(f, pm) * pm
	// The same pooled scratch and exact output allocation as Query.
	sc := scratchPool.Get().(*queryScratch)
	defer scratchPool.Put(sc)
	nb := int((t-start-1)/pm + 1)
	if cap(sc.dense) < nb {
		sc.dense = make([]acc, nb)
	}
	dense := sc.dense[:nb]
	clear(dense)
	for off := 0; off+41 <= len(flat); off += 41 {
		ts := int64(binary.LittleEndian.Uint64(flat[off:]))
		if ts < f || ts >= t {
			continue
		}
		s := Sample{
			Min:   math.Float64frombits(binary.LittleEndian.Uint64(flat[off+8:])),
			Max:   math.Float64frombits(binary.LittleEndian.Uint64(flat[off+16:])),
			Sum:   math.Float64frombits(binary.LittleEndian.Uint64(flat[off+24:])),
			Count: math.Float64frombits(binary.LittleEndian.Uint64(flat[off+32:])),
		}
		dense[(ts-start)/pm].add(s)
	}
	n := 0
	for i := range dense {
		if dense[i].n > 0 {
			n++
		}
	}
	out := make([]Bucket, 0, n)
	for i := range dense {
		if a := &dense[i]; a.n > 0 {
			out = append(out, Bucket{T: time.UnixMilli(start + int64(i)*pm).UTC(), Min: a.min, Max: a.max, Sum: a.sum, Count: a.count})
		}
	}
	return out
}
