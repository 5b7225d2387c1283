package scenario

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/tsdb"
)

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// putBatch is one PutMetricData request of 1000 datapoints: 100 series
// (a dimension per series) x 10 timestamps.
func putBatch(worker, round int, now time.Time) ([]types.MetricDatum, []tsdb.Point) {
	var ds []types.MetricDatum
	var pts []tsdb.Point
	for i := range 1000 {
		series := fmt.Sprintf("w%d-s%d", worker, i%100)
		at := now.Add(-time.Duration(round%600)*time.Second - time.Duration(i/100)*time.Millisecond)
		v := float64(i)
		ds = append(ds, types.MetricDatum{MetricName: aws.String("Load"), Dimensions: []types.Dimension{{Name: aws.String("Series"), Value: aws.String(series)}},
			Timestamp: aws.Time(at), Value: aws.Float64(v), Unit: types.StandardUnitCount})
		pts = append(pts, tsdb.Point{Key: tsdb.NewKey("Bench", "Load", []tsdb.Dim{{Name: "Series", Value: series}}), T: at, Sample: tsdb.ValueSample(v, 1), Unit: "Count"})
	}
	return ds, pts
}

// BenchmarkPutMetricData measures datapoints/s through the API (AWS SDK
// for Go over CBOR, SigV4, front door, validation, tsdb append with
// fsync) with 8 concurrent clients sending batches of 1000, beside the
// same batches appended to a tsdb directly (the baseline).
func BenchmarkPutMetricData(b *testing.B) {
	const workers = 8
	run := func(b *testing.B, put func(ctx context.Context, w, round int) error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Value
		start, cpu0 := time.Now(), cpuTime()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n := next.Add(1)
					if n > int64(b.N) {
						return
					}
					if err := put(context.Background(), w, int(n)); err != nil {
						failed.Store(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N*1000)/time.Since(start).Seconds(), "datapoints/s")
		// The machine may be shared: datapoints per CPU-second of this
		// process (client and server) says what an idle machine would do.
		b.ReportMetric(float64(b.N*1000)/(cpuTime()-cpu0).Seconds(), "datapoints/cpu-s")
	}
	b.Run("api", func(b *testing.B) {
		s := berthtest.Start(b, nil)
		cw := cloudwatch.NewFromConfig(s.AWSConfig())
		now := time.Now()
		b.ResetTimer()
		run(b, func(ctx context.Context, w, round int) error {
			ds, _ := putBatch(w, round, now)
			_, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Bench"), MetricData: ds})
			return err
		})
	})
	b.Run("tsdb-only", func(b *testing.B) {
		db, err := tsdb.Open(b.TempDir(), tsdb.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		now := time.Now()
		b.ResetTimer()
		run(b, func(ctx context.Context, w, round int) error {
			_, pts := putBatch(w, round, now)
			return db.Append(ctx, pts)
		})
	})
}

// BenchmarkGetMetricData measures one metric over one day at 60 s (1,440
// datapoints) through the API, beside the tsdb query alone.
func BenchmarkGetMetricData(b *testing.B) {
	now := time.Now().Truncate(time.Minute)
	var ds []types.MetricDatum
	var pts []tsdb.Point
	for i := range 1440 * 2 { // two samples a minute for a day
		at := now.Add(-time.Duration(i) * 30 * time.Second)
		ds = append(ds, types.MetricDatum{MetricName: aws.String("CPU"), Timestamp: aws.Time(at), Value: aws.Float64(float64(i % 100))})
		pts = append(pts, tsdb.Point{Key: tsdb.NewKey("Bench", "CPU", nil), T: at, Sample: tsdb.ValueSample(float64(i%100), 1), Unit: "None"})
	}
	from, to := now.Add(-24*time.Hour), now
	b.Run("api", func(b *testing.B) {
		s := berthtest.Start(b, nil)
		cw := cloudwatch.NewFromConfig(s.AWSConfig())
		ctx := context.Background()
		for i := 0; i < len(ds); i += 1000 {
			if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Bench"), MetricData: ds[i:min(i+1000, len(ds))]}); err != nil {
				b.Fatal(err)
			}
		}
		in := &cloudwatch.GetMetricDataInput{StartTime: aws.Time(from), EndTime: aws.Time(to), MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("m"),
			MetricStat: &types.MetricStat{Period: aws.Int32(60), Stat: aws.String("Average"), Metric: &types.Metric{Namespace: aws.String("Bench"), MetricName: aws.String("CPU")}}}}}
		b.ResetTimer()
		cpu0 := cpuTime()
		for range b.N {
			out, err := cw.GetMetricData(ctx, in)
			if err != nil {
				b.Fatal(err)
			}
			if n := len(out.MetricDataResults[0].Values); n < 1439 {
				b.Fatalf("%d datapoints", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/query")
	})
	b.Run("tsdb-only", func(b *testing.B) {
		db, err := tsdb.Open(b.TempDir(), tsdb.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		if err := db.Append(context.Background(), pts); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		cpu0 := cpuTime()
		for range b.N {
			bs, err := db.Query(tsdb.NewKey("Bench", "CPU", nil), from, to, time.Minute, "", false)
			if err != nil || len(bs) < 1439 {
				b.Fatalf("%d buckets, %v", len(bs), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/query")
	})
}
