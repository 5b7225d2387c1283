package taskstats

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/metadata"
)

func TestCPUUnits(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(at time.Duration, total, system uint64, cores uint32) container.StatsResponse {
		var s container.StatsResponse
		s.Read = t0.Add(at)
		s.CPUStats.CPUUsage.TotalUsage = total
		s.CPUStats.SystemUsage = system
		s.CPUStats.OnlineCPUs = cores
		return s
	}
	cases := []struct {
		name     string
		pre, cur container.StatsResponse
		want     float64
		ok       bool
	}{
		{"half a core of two", mk(0, 0, 1e9, 2), mk(time.Second, 5e8, 3e9, 2), 512, true},
		{"two full cores", mk(0, 0, 1e9, 2), mk(time.Second, 2e9, 3e9, 2), 2048, true},
		{"idle", mk(0, 7, 1e9, 2), mk(time.Second, 7, 3e9, 2), 0, true},
		{"no host counter: wall clock", mk(0, 0, 0, 2), mk(2*time.Second, 1e9, 0, 2), 512, true},
		{"no earlier sample", container.StatsResponse{}, mk(time.Second, 5e8, 3e9, 2), 0, false},
		{"counter went back (restart)", mk(0, 9e9, 1e9, 2), mk(time.Second, 1e9, 3e9, 2), 0, false},
		{"same sample", mk(time.Second, 1, 1e9, 2), mk(time.Second, 1, 1e9, 2), 0, false},
	}
	for _, c := range cases {
		got, ok := CPUUnits(c.pre, c.cur)
		if ok != c.ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: got %v %v, want %v %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestMemoryUsed(t *testing.T) {
	cases := []struct {
		name string
		m    container.MemoryStats
		want uint64
	}{
		{"cgroup v2", container.MemoryStats{Usage: 100, Stats: map[string]uint64{"inactive_file": 30}}, 70},
		{"cgroup v1", container.MemoryStats{Usage: 100, Stats: map[string]uint64{"total_inactive_file": 40}}, 60},
		{"no stats", container.MemoryStats{Usage: 100}, 100},
		{"cache above usage", container.MemoryStats{Usage: 10, Stats: map[string]uint64{"inactive_file": 30}}, 0},
	}
	for _, c := range cases {
		if got := MemoryUsed(c.m); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// fakeDocker answers stats samples whose counters grow by a fixed step
// per call: every container uses a quarter of one of two cores.
type fakeDocker struct {
	mu    sync.Mutex
	calls map[string]int
	t0    time.Time
}

func (f *fakeDocker) ContainerStats(_ context.Context, id string) (dockerdriver.Stats, error) {
	f.mu.Lock()
	f.calls[id]++
	n := uint64(f.calls[id])
	f.mu.Unlock()
	var s container.StatsResponse
	s.Read = f.t0.Add(time.Duration(n) * time.Second)
	s.CPUStats.CPUUsage.TotalUsage = n * 25e7
	s.CPUStats.SystemUsage = n * 2e9
	s.CPUStats.OnlineCPUs = 2
	s.MemoryStats = container.MemoryStats{Usage: 48 << 20, Stats: map[string]uint64{"inactive_file": 16 << 20}}
	s.Networks = map[string]container.NetworkStats{"eth0": {RxBytes: n * 1000, TxBytes: n * 500}}
	raw, _ := json.Marshal(s)
	return dockerdriver.Stats{StatsResponse: s, Raw: raw}, nil
}

func (f *fakeDocker) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func TestCollectorSharesSamplesAndForgetsStoppedContainers(t *testing.T) {
	fd := &fakeDocker{calls: map[string]int{}, t0: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	tasks := []metadata.Task{{TaskARN: "arn:t1", Cluster: "arn:cluster/default", Family: "web", Group: "service:web",
		ReservedCPU: 256, ReservedMemoryMiB: 128,
		Containers: []metadata.Container{
			{Name: "a", DockerID: "d1", KnownStatus: "RUNNING"},
			{Name: "b", DockerID: "d2", KnownStatus: "RUNNING"},
			{Name: "c", DockerID: "d3", KnownStatus: "STOPPED"},
		}}}
	c := New(Config{Sampler: fd, Tasks: func() []metadata.Task {
		mu.Lock()
		defer mu.Unlock()
		out := append([]metadata.Task(nil), tasks...)
		out[0].Containers = append([]metadata.Container(nil), tasks[0].Containers...)
		return out
	}})
	ctx := context.Background()
	c.Collect(ctx)
	u := c.Usage()
	if len(u) != 1 || u[0].CPUUsed != nil {
		t.Fatalf("after one round: %+v (no CPU figure from one sample)", u)
	}
	if math.Abs(u[0].MemoryUsedMiB-64) > 1e-9 {
		t.Fatalf("memory %v MiB, want 2 x (48-16)", u[0].MemoryUsedMiB)
	}
	c.Collect(ctx)
	u = c.Usage()
	if len(u) != 1 || u[0].CPUUsed == nil || math.Abs(*u[0].CPUUsed-512) > 1e-9 {
		t.Fatalf("after two rounds: %+v, want 2 containers x 256 units", u)
	}
	if u[0].TaskArn != "arn:t1" || u[0].Group != "service:web" || u[0].CPUReserved != 256 || u[0].MemoryReservedMiB != 128 {
		t.Fatalf("identity: %+v", u[0])
	}
	if u[0].NetworkRxBytesPerSec != 2000 || u[0].NetworkTxBytes != 2000 {
		t.Fatalf("network: %+v", u[0])
	}
	// The metadata endpoint reads the shared sample: no Docker call.
	before := fd.count("d1")
	raw, err := c.Stats(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if fd.count("d1") != before {
		t.Fatal("Stats called Docker although a sample was there")
	}
	var doc struct {
		Read    time.Time `json:"read"`
		PreRead time.Time `json:"preread"`
		CPU     struct {
			Usage struct {
				Total uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
		} `json:"cpu_stats"`
		PreCPU struct {
			Usage struct {
				Total uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
		} `json:"precpu_stats"`
		Rate map[string]float64 `json:"network_rate_stats"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.CPU.Usage.Total != 5e8 || doc.PreCPU.Usage.Total != 25e7 || !doc.PreRead.Before(doc.Read) || doc.Rate["rx_bytes_per_sec"] != 1000 {
		t.Fatalf("served document: %s", raw)
	}
	if fd.count("d3") != 0 {
		t.Fatal("a stopped container was sampled")
	}
	// d2 stops: it is dropped and never sampled again.
	mu.Lock()
	tasks[0].Containers[1].KnownStatus = "STOPPED"
	mu.Unlock()
	n := fd.count("d2")
	c.Collect(ctx)
	c.Collect(ctx)
	if fd.count("d2") != n {
		t.Fatal("a stopped container is still sampled")
	}
	if raw, _ := c.Stats(ctx, "d2"); string(raw) != "null" {
		t.Fatalf("stats of a stopped container: %s", raw)
	}
	u = c.Usage()
	if len(u) != 1 || math.Abs(*u[0].CPUUsed-256) > 1e-9 {
		t.Fatalf("after d2 stopped: %+v", u)
	}
	// A running container not sampled yet is sampled on demand.
	mu.Lock()
	tasks[0].Containers = append(tasks[0].Containers, metadata.Container{Name: "d", DockerID: "d4", KnownStatus: "RUNNING"})
	mu.Unlock()
	if raw, err := c.Stats(ctx, "d4"); err != nil || string(raw) == "null" || fd.count("d4") != 1 {
		t.Fatalf("on-demand sample: %s %v", raw, err)
	}
}

// TestStatsOfAContainerJustStarted: a container that reads /stats before
// its task's snapshot shows it RUNNING (it asks right after it started)
// gets its stats, sampled once; an unknown container gets null.
func TestStatsOfAContainerJustStarted(t *testing.T) {
	fd := &fakeDocker{calls: map[string]int{}, t0: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tasks := []metadata.Task{{TaskARN: "arn:t1", Containers: []metadata.Container{{Name: "a", DockerID: "d1", KnownStatus: "PENDING"}}}}
	c := New(Config{Sampler: fd, Tasks: func() []metadata.Task { return tasks }})
	raw, err := c.Stats(context.Background(), "d1")
	if err != nil || !strings.Contains(string(raw), "memory_stats") || fd.count("d1") != 1 {
		t.Fatalf("stats of a container not yet RUNNING in its snapshot: %s, %v (%d samples)", raw, err, fd.count("d1"))
	}
	if raw, _ := c.Stats(context.Background(), "nobody"); string(raw) != "null" {
		t.Fatalf("stats of an unknown container: %s", raw)
	}
}
