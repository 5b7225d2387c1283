package ecsmetrics

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

func f(v float64) *float64 { return &v }

// key names a datum by namespace, metric and dimensions.
func key(d Datum) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", d.Namespace, d.MetricName)
	for _, x := range d.Dimensions {
		fmt.Fprintf(&b, " %s=%s", x.Name, x.Value)
	}
	return b.String()
}

type stat struct{ n, avg, min, max float64 }

func index(t *testing.T, ds []Datum) map[string]stat {
	t.Helper()
	m := map[string]stat{}
	for _, d := range ds {
		k := key(d)
		if _, dup := m[k]; dup {
			t.Fatalf("datum %s twice", k)
		}
		m[k] = stat{d.SampleCount, d.Sum / d.SampleCount, d.Min, d.Max}
	}
	return m
}

func TestCompute(t *testing.T) {
	end := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	at := func(sec int) time.Time { return end.Add(time.Duration(sec) * time.Second) }
	cluster := Cluster{Name: "prod", Instances: 2, RegisteredCPU: 4096, RegisteredMemoryMiB: 8192, ReservedCPU: 1024, ReservedMemoryMiB: 2048,
		RunningTasks: 4, Services: []Service{{Name: "web", Desired: 3, Running: 2, Pending: 1, Deployments: 1}, {Name: "idle", Desired: 0}}}
	samples := []Sample{
		// web/1: 256 reserved, two samples (128 and 256 units): 192 on average = 75%.
		{Cluster: "prod", Service: "web", Family: "web", TaskARN: "t1", CPUReserved: 256, MemoryReservedMiB: 512, CPUUsed: f(128), MemoryUsedMiB: 128, At: at(-50)},
		{Cluster: "prod", Service: "web", Family: "web", TaskARN: "t1", CPUReserved: 256, MemoryReservedMiB: 512, CPUUsed: f(256), MemoryUsedMiB: 128, RxPerSec: 100, At: at(-10)},
		// web/2: 512 reserved, 128 used = 25%.
		{Cluster: "prod", Service: "web", Family: "web", TaskARN: "t2", CPUReserved: 512, MemoryReservedMiB: 512, CPUUsed: f(128), MemoryUsedMiB: 384, At: at(-20)},
		// A standalone task without a CPU reservation: cluster only.
		{Cluster: "prod", Family: "batch", TaskARN: "t3", CPUReserved: 0, MemoryReservedMiB: 1024, CPUUsed: f(64), MemoryUsedMiB: 512, At: at(-30)},
		// A service task with one sample only (no CPU figure yet).
		{Cluster: "prod", Service: "api", Family: "api", TaskARN: "t4", CPUReserved: 128, MemoryReservedMiB: 128, MemoryUsedMiB: 64, At: at(-5)},
		// Outside the period: ignored.
		{Cluster: "prod", Service: "web", Family: "web", TaskARN: "t1", CPUReserved: 256, CPUUsed: f(9999), MemoryUsedMiB: 9999, At: at(-61)},
		{Cluster: "prod", Service: "web", Family: "web", TaskARN: "t1", CPUReserved: 256, CPUUsed: f(9999), MemoryUsedMiB: 9999, At: at(1)},
		// Another cluster with no capacity row: nothing.
		{Cluster: "gone", Service: "x", TaskARN: "t9", CPUReserved: 1, CPUUsed: f(1), At: at(-1)},
	}
	idle := Cluster{Name: "empty", ContainerInsights: true, Instances: 1, RegisteredCPU: 1024, RegisteredMemoryMiB: 1024}

	got := index(t, Compute(end, time.Minute, samples, []Cluster{cluster, idle}))
	approx := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	want := map[string]stat{
		"AWS/ECS CPUReservation ClusterName=prod":    {1, 25, 25, 25},
		"AWS/ECS MemoryReservation ClusterName=prod": {1, 25, 25, 25},
		// (192 + 128 + 64) / 4096.
		"AWS/ECS CPUUtilization ClusterName=prod": {1, 384.0 / 4096 * 100, 384.0 / 4096 * 100, 384.0 / 4096 * 100},
		// (128 + 384 + 512 + 64) / 8192.
		"AWS/ECS MemoryUtilization ClusterName=prod": {1, 1088.0 / 8192 * 100, 1088.0 / 8192 * 100, 1088.0 / 8192 * 100},
		// (192 + 128) / (256 + 512); least loaded task 25%, most 75%.
		"AWS/ECS CPUUtilization ClusterName=prod ServiceName=web": {2, 320.0 / 768 * 100, 25, 75},
		// (128 + 384) / 1024; 25% and 75%.
		"AWS/ECS MemoryUtilization ClusterName=prod ServiceName=web": {2, 50, 25, 75},
		// api: memory only (no CPU figure from one sample).
		"AWS/ECS MemoryUtilization ClusterName=prod ServiceName=api": {1, 50, 50, 50},
		// A cluster with Container Insights and no task: its counts only.
		"ECS/ContainerInsights ContainerInstanceCount ClusterName=empty": {1, 1, 1, 1},
		"ECS/ContainerInsights ServiceCount ClusterName=empty":           {1, 0, 0, 0},
		"ECS/ContainerInsights TaskCount ClusterName=empty":              {1, 0, 0, 0},
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if g.n != w.n || !approx(g.avg, w.avg) || !approx(g.min, w.min) || !approx(g.max, w.max) {
			t.Errorf("%s: got %+v, want %+v", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s", k)
		}
	}
}

func TestComputeContainerInsights(t *testing.T) {
	end := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	c := Cluster{Name: "ci", ContainerInsights: true, Instances: 1, RegisteredCPU: 2048, RegisteredMemoryMiB: 4096, ReservedCPU: 512,
		ReservedMemoryMiB: 256, RunningTasks: 2, PendingTasks: 1,
		Services: []Service{{Name: "web", Desired: 3, Running: 2, Pending: 1, Deployments: 2}}}
	samples := []Sample{
		{Cluster: "ci", Service: "web", Family: "webfam", TaskARN: "t1", CPUReserved: 256, MemoryReservedMiB: 128, CPUUsed: f(100), MemoryUsedMiB: 10, RxPerSec: 5, TxPerSec: 1, At: end.Add(-time.Second)},
		{Cluster: "ci", Service: "web", Family: "webfam", TaskARN: "t2", CPUReserved: 256, MemoryReservedMiB: 128, CPUUsed: f(300), MemoryUsedMiB: 30, RxPerSec: 15, TxPerSec: 3, At: end.Add(-time.Second)},
	}
	got := index(t, Compute(end, time.Minute, samples, []Cluster{c}))
	want := map[string]stat{
		"ECS/ContainerInsights CpuUtilized ClusterName=ci":                                  {2, 200, 100, 300},
		"ECS/ContainerInsights CpuReserved ClusterName=ci ServiceName=web":                  {2, 256, 256, 256},
		"ECS/ContainerInsights MemoryUtilized ClusterName=ci TaskDefinitionFamily=webfam":   {2, 20, 10, 30},
		"ECS/ContainerInsights NetworkRxBytes ClusterName=ci ServiceName=web":               {2, 10, 5, 15},
		"ECS/ContainerInsights DesiredTaskCount ClusterName=ci ServiceName=web":             {1, 3, 3, 3},
		"ECS/ContainerInsights RunningTaskCount ClusterName=ci ServiceName=web":             {1, 2, 2, 2},
		"ECS/ContainerInsights PendingTaskCount ClusterName=ci ServiceName=web":             {1, 1, 1, 1},
		"ECS/ContainerInsights DeploymentCount ClusterName=ci ServiceName=web":              {1, 2, 2, 2},
		"ECS/ContainerInsights RunningTaskCount ClusterName=ci TaskDefinitionFamily=webfam": {1, 2, 2, 2},
		"ECS/ContainerInsights ContainerInstanceCount ClusterName=ci":                       {1, 1, 1, 1},
		"ECS/ContainerInsights ServiceCount ClusterName=ci":                                 {1, 1, 1, 1},
		"ECS/ContainerInsights TaskCount ClusterName=ci":                                    {1, 2, 2, 2},
		"AWS/ECS CPUUtilization ClusterName=ci ServiceName=web":                             {2, 400.0 / 512 * 100, 100.0 / 256 * 100, 300.0 / 256 * 100},
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if g != w && !(g.n == w.n && math.Abs(g.avg-w.avg) < 1e-9 && math.Abs(g.min-w.min) < 1e-9 && math.Abs(g.max-w.max) < 1e-9) {
			t.Errorf("%s: got %+v, want %+v", k, g, w)
		}
	}
	// Without the setting: no ContainerInsights datum.
	c.ContainerInsights = false
	for _, d := range Compute(end, time.Minute, samples, []Cluster{c}) {
		if d.Namespace == NamespaceInsights {
			t.Fatalf("Container Insights datum with the setting off: %s", key(d))
		}
	}
}

func TestPublisherPublishesEachSampleOnce(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var got [][]Datum
	p := New(Config{Period: 10 * time.Second, Now: func() time.Time { return now },
		Clusters: func(context.Context) ([]Cluster, error) {
			return []Cluster{{Name: "default", RunningTasks: 1, RegisteredCPU: 1024, RegisteredMemoryMiB: 1024}}, nil
		},
		Sink: SinkFunc(func(_ context.Context, d []Datum) error { got = append(got, d); return nil })})
	now = now.Add(3 * time.Second)
	p.Record("default", agentapi.StatsReport{Tasks: []agentapi.TaskUsage{{TaskArn: "t", Group: "service:web", CPUReserved: 512, MemoryReservedMiB: 256,
		CPUUsed: f(256), MemoryUsedMiB: 64}}})
	now = now.Add(7 * time.Second)
	if err := p.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("publications: %d", len(got))
	}
	m := index(t, got[0])
	if s := m["AWS/ECS CPUUtilization ClusterName=default ServiceName=web"]; s.avg != 50 {
		t.Fatalf("service CPU: %+v in %v", s, m)
	}
	now = now.Add(10 * time.Second)
	if err := p.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("publications: %d", len(got))
	}
	for _, d := range got[1] {
		if strings.Contains(key(d), "Utilization") {
			t.Fatalf("a sample was published twice: %s", key(d))
		}
	}
}
