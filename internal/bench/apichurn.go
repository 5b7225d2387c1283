// Package bench holds Berth's benchmarks that need a whole running system
// (`berth bench`): each measures Berth and its baseline in the same run so
// that results are ratios on one machine, not numbers from different days.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/store"
)

// ChurnConfig shapes the API churn benchmark.
type ChurnConfig struct {
	Duration     time.Duration // how long the churn runs
	WritesPerSec int           // mutating calls per second (paced)
	Readers      int           // concurrent readers, each back to back
	RawWrites    int           // raw etcd writes measured afterwards
}

// ChurnResult holds the measured latencies.
type ChurnResult struct {
	Writes, Reads           int
	WriteP50, WriteP99      time.Duration
	ReadP50, ReadP99        time.Duration
	RawP50, RawP99          time.Duration
	WriteErrors, ReadErrors int
	Duration                time.Duration
}

// APIChurn starts an in-process Berth with an embedded etcd in a temp dir
// and drives it through the AWS SDK for Go: paced mutating calls
// (CreateCluster, TagResource, RegisterTaskDefinition in turn) with
// concurrent single-object readers (DescribeClusters,
// DescribeTaskDefinition). Then it measures raw etcd writes on the same
// store, in the same run, as the baseline.
func APIChurn(ctx context.Context, cfg ChurnConfig) (ChurnResult, error) {
	dir, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return ChurnResult{}, err
	}
	defer os.RemoveAll(dir)
	srv, err := daemon.Start(ctx, daemon.Config{
		Listen: "127.0.0.1:0", DataDir: dir,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return ChurnResult{}, err
	}
	defer srv.Close()
	creds, _ := srv.RootCredentials()
	c := ecs.NewFromConfig(aws.Config{
		Region:       srv.Config().Region,
		Credentials:  credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		BaseEndpoint: aws.String(srv.Endpoint()),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	})

	// Seed objects for readers.
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("bench-0")}); err != nil {
		return ChurnResult{}, err
	}
	if _, err := c.RegisterTaskDefinition(ctx, taskDef("bench")); err != nil {
		return ChurnResult{}, err
	}

	var (
		mu                sync.Mutex
		writeLat, readLat []time.Duration
		res               ChurnResult
	)
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for r := 0; r < cfg.Readers; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for i := 0; runCtx.Err() == nil; i++ {
				start := time.Now()
				var err error
				if (i+r)%2 == 0 {
					_, err = c.DescribeClusters(runCtx, &ecs.DescribeClustersInput{Clusters: []string{"bench-0"}})
				} else {
					_, err = c.DescribeTaskDefinition(runCtx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("bench")})
				}
				d := time.Since(start)
				if runCtx.Err() != nil {
					return
				}
				mu.Lock()
				if err != nil {
					res.ReadErrors++
				} else {
					readLat = append(readLat, d)
				}
				mu.Unlock()
			}
		}(r)
	}
	tick := time.NewTicker(time.Second / time.Duration(cfg.WritesPerSec))
	began := time.Now()
	clusterARN := fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/bench-0", srv.Config().Region, srv.Config().Account)
	for i := 0; ; i++ {
		select {
		case <-runCtx.Done():
		case <-tick.C:
		}
		if runCtx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			start := time.Now()
			var err error
			switch i % 3 {
			case 0:
				_, err = c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(fmt.Sprintf("bench-%d", i+1))})
			case 1:
				_, err = c.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(clusterARN),
					Tags: []types.Tag{{Key: aws.String("n"), Value: aws.String(fmt.Sprint(i))}}})
			default:
				_, err = c.RegisterTaskDefinition(ctx, taskDef(fmt.Sprintf("bench-%d", i%10)))
			}
			d := time.Since(start)
			mu.Lock()
			if err != nil {
				res.WriteErrors++
			} else {
				writeLat = append(writeLat, d)
			}
			mu.Unlock()
		}(i)
	}
	tick.Stop()
	wg.Wait()
	res.Duration = time.Since(began)
	res.Writes, res.Reads = len(writeLat), len(readLat)
	res.WriteP50, res.WriteP99 = store.Percentile(writeLat, 50), store.Percentile(writeLat, 99)
	res.ReadP50, res.ReadP99 = store.Percentile(readLat, 50), store.Percentile(readLat, 99)
	res.RawP50, res.RawP99, err = store.MeasureRawWrites(ctx, srv.Store(), cfg.RawWrites)
	return res, err
}

func taskDef(family string) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("busybox:1.36"), Memory: aws.Int32(64),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}},
		}},
	}
}

// Report prints a churn result.
func (r ChurnResult) Report(w io.Writer) {
	fmt.Fprintf(w, "machine: %d cores, %s/%s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "API churn: %d writes, %d reads in %s (write errors %d, read errors %d)\n",
		r.Writes, r.Reads, r.Duration.Round(time.Millisecond), r.WriteErrors, r.ReadErrors)
	fmt.Fprintf(w, "  mutating call    p50 %8s  p99 %8s  (goal p99 <= 100ms)\n", ms(r.WriteP50), ms(r.WriteP99))
	fmt.Fprintf(w, "  single read      p50 %8s  p99 %8s  (goal p99 <= 50ms)\n", ms(r.ReadP50), ms(r.ReadP99))
	fmt.Fprintf(w, "  raw etcd write   p50 %8s  p99 %8s  (baseline, same store, same run)\n", ms(r.RawP50), ms(r.RawP99))
	if r.RawP50 > 0 {
		fmt.Fprintf(w, "  ratio mutating/raw: p50 %.2fx  p99 %.2fx\n",
			float64(r.WriteP50)/float64(r.RawP50), float64(r.WriteP99)/float64(r.RawP99))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
