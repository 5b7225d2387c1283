// Package ecsmetrics turns the agents' task usage reports into the
// CloudWatch metrics ECS publishes: namespace AWS/ECS (CPUUtilization and
// MemoryUtilization per ClusterName and per ClusterName+ServiceName,
// CPUReservation and MemoryReservation per ClusterName) and, for clusters
// whose containerInsights setting is on, ECS/ContainerInsights.
//
// Compute is the whole computation, a pure function of the samples of one
// period, the clusters' capacity and the period's end. The Publisher is
// its shell: Record keeps the samples the control plane receives (in
// memory, bounded, only until they are published), and Run publishes
// every Period into a Sink. docs/ecs-metrics.md has the formulas.
package ecsmetrics

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/serviceconnect"
)

// Namespaces ECS publishes into.
const (
	NamespaceECS      = "AWS/ECS"
	NamespaceInsights = "ECS/ContainerInsights"
)

// Dimension is a CloudWatch dimension.
type Dimension struct{ Name, Value string }

// Datum is one published datapoint: a statistic set over the period.
type Datum struct {
	Namespace  string
	MetricName string
	Dimensions []Dimension
	Timestamp  time.Time
	Unit       string // CloudWatch unit: Percent, Count, Megabytes, None, Bytes/Second
	// SampleCount, Sum, Minimum and Maximum; Average is Sum/SampleCount.
	SampleCount, Sum, Min, Max float64
}

// Sample is one task's usage as an agent reported it.
type Sample struct {
	Cluster string // name
	Service string // name; empty for a task not started by a service
	Family  string
	TaskARN string
	// CPUReserved and MemoryReservedMiB are what the task was placed with.
	CPUReserved       float64
	MemoryReservedMiB float64
	// CPUUsed is CPU units; nil when the agent had one sample only.
	CPUUsed       *float64
	MemoryUsedMiB float64
	RxPerSec      float64 // bytes per second
	TxPerSec      float64
	At            time.Time // when the control plane received it
	// SC is the task's Service Connect proxy traffic since its previous
	// report (serviceconnect.go); nil without.
	SC *serviceconnect.Traffic
}

// Cluster is a cluster's capacity and counts (see ecs.ClusterCapacity).
type Cluster struct {
	Name                string
	ContainerInsights   bool
	Instances           int
	RegisteredCPU       int
	RegisteredMemoryMiB int
	ReservedCPU         int
	ReservedMemoryMiB   int
	RunningTasks        int
	PendingTasks        int
	Services            []Service
}

// Service is a service's task counts.
type Service struct {
	Name                      string
	Desired, Running, Pending int
	Deployments               int
}

// task is one task's usage averaged over the period.
type task struct {
	cluster, service, family, arn string
	cpuRes, memRes                float64
	cpu                           float64
	cpuOK                         bool
	mem, rx, tx                   float64
}

// average averages each task's samples within (end-period, end].
func average(end time.Time, period time.Duration, samples []Sample) []task {
	type acc struct {
		t                task
		nCPU, n          int
		cpu, mem, rx, tx float64
		last             time.Time
	}
	by := map[string]*acc{}
	for _, s := range samples {
		if !s.At.After(end.Add(-period)) || s.At.After(end) {
			continue
		}
		a := by[s.TaskARN]
		if a == nil {
			a = &acc{}
			by[s.TaskARN] = a
		}
		if !s.At.Before(a.last) { // identity and reservation of the latest sample
			a.last = s.At
			a.t = task{cluster: s.Cluster, service: s.Service, family: s.Family, arn: s.TaskARN,
				cpuRes: s.CPUReserved, memRes: s.MemoryReservedMiB}
		}
		a.n++
		a.mem += s.MemoryUsedMiB
		a.rx += s.RxPerSec
		a.tx += s.TxPerSec
		if s.CPUUsed != nil {
			a.nCPU++
			a.cpu += *s.CPUUsed
		}
	}
	out := make([]task, 0, len(by))
	for _, a := range by {
		t := a.t
		t.mem, t.rx, t.tx = a.mem/float64(a.n), a.rx/float64(a.n), a.tx/float64(a.n)
		if a.nCPU > 0 {
			t.cpu, t.cpuOK = a.cpu/float64(a.nCPU), true
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b task) int { return cmp.Compare(a.arn, b.arn) })
	return out
}

// Compute returns the datapoints of the period that ends at end.
//
// AWS/ECS, for a cluster with RUNNING tasks:
//   - ClusterName: CPUReservation = reserved / registered CPU units of its
//     ACTIVE and DRAINING instances x 100, MemoryReservation likewise;
//     CPUUtilization = CPU units used by its tasks / registered x 100,
//     MemoryUtilization likewise (when tasks reported).
//   - ClusterName+ServiceName, for a service whose tasks reported:
//     CPUUtilization with one sample per task (its used / reserved x 100):
//     Minimum and Maximum are the least and most loaded tasks, Average is
//     total used / total reserved x 100 (SampleCount tasks, Sum = Average x
//     SampleCount). A task that reserves no CPU (or no memory) is left out
//     of that metric: there is nothing to divide by.
//
// ECS/ContainerInsights, for a cluster with the setting on: CpuUtilized,
// CpuReserved, MemoryUtilized, MemoryReserved, NetworkRxBytes,
// NetworkTxBytes with one sample per task (Sum is the total) per
// ClusterName, ClusterName+ServiceName and ClusterName+TaskDefinitionFamily;
// RunningTaskCount per family; ContainerInstanceCount, ServiceCount,
// TaskCount per ClusterName; DesiredTaskCount, RunningTaskCount,
// PendingTaskCount, DeploymentCount per ClusterName+ServiceName.
func Compute(end time.Time, period time.Duration, samples []Sample, clusters []Cluster) []Datum {
	tasks := average(end, period, samples)
	var out []Datum
	add := func(ns, name, unit string, dims []Dimension, vals []float64) {
		if len(vals) == 0 {
			return
		}
		d := Datum{Namespace: ns, MetricName: name, Dimensions: dims, Timestamp: end, Unit: unit,
			SampleCount: float64(len(vals)), Min: vals[0], Max: vals[0]}
		for _, v := range vals {
			d.Sum += v
			d.Min = min(d.Min, v)
			d.Max = max(d.Max, v)
		}
		out = append(out, d)
	}
	one := func(v float64) []float64 { return []float64{v} }
	for _, c := range clusters {
		var mine []task
		for _, t := range tasks {
			if t.cluster == c.Name {
				mine = append(mine, t)
			}
		}
		cd := []Dimension{{"ClusterName", c.Name}}
		if c.RunningTasks > 0 {
			if c.RegisteredCPU > 0 {
				add(NamespaceECS, "CPUReservation", "Percent", cd, one(pct(float64(c.ReservedCPU), float64(c.RegisteredCPU))))
			}
			if c.RegisteredMemoryMiB > 0 {
				add(NamespaceECS, "MemoryReservation", "Percent", cd, one(pct(float64(c.ReservedMemoryMiB), float64(c.RegisteredMemoryMiB))))
			}
			var cpu, mem float64
			cpuOK := false
			for _, t := range mine {
				mem += t.mem
				if t.cpuOK {
					cpu, cpuOK = cpu+t.cpu, true
				}
			}
			if cpuOK && c.RegisteredCPU > 0 {
				add(NamespaceECS, "CPUUtilization", "Percent", cd, one(pct(cpu, float64(c.RegisteredCPU))))
			}
			if len(mine) > 0 && c.RegisteredMemoryMiB > 0 {
				add(NamespaceECS, "MemoryUtilization", "Percent", cd, one(pct(mem, float64(c.RegisteredMemoryMiB))))
			}
		}
		byService := map[string][]task{}
		byFamily := map[string][]task{}
		for _, t := range mine {
			if t.service != "" {
				byService[t.service] = append(byService[t.service], t)
			}
			if t.family != "" {
				byFamily[t.family] = append(byFamily[t.family], t)
			}
		}
		for _, name := range sortedKeys(byService) {
			ts := byService[name]
			sd := []Dimension{{"ClusterName", c.Name}, {"ServiceName", name}}
			if d, ok := utilization(ts, func(t task) (float64, float64, bool) { return t.cpu, t.cpuRes, t.cpuOK }); ok {
				d.Namespace, d.MetricName, d.Dimensions, d.Timestamp, d.Unit = NamespaceECS, "CPUUtilization", sd, end, "Percent"
				out = append(out, d)
			}
			if d, ok := utilization(ts, func(t task) (float64, float64, bool) { return t.mem, t.memRes, true }); ok {
				d.Namespace, d.MetricName, d.Dimensions, d.Timestamp, d.Unit = NamespaceECS, "MemoryUtilization", sd, end, "Percent"
				out = append(out, d)
			}
		}
		if !c.ContainerInsights {
			continue
		}
		insights := func(dims []Dimension, ts []task) {
			var cpuU, cpuR, memU, memR, rx, tx []float64
			for _, t := range ts {
				if t.cpuOK {
					cpuU = append(cpuU, t.cpu)
				}
				cpuR = append(cpuR, t.cpuRes)
				memU = append(memU, t.mem)
				memR = append(memR, t.memRes)
				rx = append(rx, t.rx)
				tx = append(tx, t.tx)
			}
			add(NamespaceInsights, "CpuUtilized", "None", dims, cpuU)
			add(NamespaceInsights, "CpuReserved", "None", dims, cpuR)
			add(NamespaceInsights, "MemoryUtilized", "Megabytes", dims, memU)
			add(NamespaceInsights, "MemoryReserved", "Megabytes", dims, memR)
			add(NamespaceInsights, "NetworkRxBytes", "Bytes/Second", dims, rx)
			add(NamespaceInsights, "NetworkTxBytes", "Bytes/Second", dims, tx)
		}
		insights(cd, mine)
		add(NamespaceInsights, "ContainerInstanceCount", "Count", cd, one(float64(c.Instances)))
		add(NamespaceInsights, "ServiceCount", "Count", cd, one(float64(len(c.Services))))
		add(NamespaceInsights, "TaskCount", "Count", cd, one(float64(c.RunningTasks)))
		for _, name := range sortedKeys(byService) {
			insights([]Dimension{{"ClusterName", c.Name}, {"ServiceName", name}}, byService[name])
		}
		for _, s := range c.Services {
			sd := []Dimension{{"ClusterName", c.Name}, {"ServiceName", s.Name}}
			add(NamespaceInsights, "DesiredTaskCount", "Count", sd, one(float64(s.Desired)))
			add(NamespaceInsights, "RunningTaskCount", "Count", sd, one(float64(s.Running)))
			add(NamespaceInsights, "PendingTaskCount", "Count", sd, one(float64(s.Pending)))
			add(NamespaceInsights, "DeploymentCount", "Count", sd, one(float64(s.Deployments)))
		}
		for _, f := range sortedKeys(byFamily) {
			fd := []Dimension{{"ClusterName", c.Name}, {"TaskDefinitionFamily", f}}
			insights(fd, byFamily[f])
			add(NamespaceInsights, "RunningTaskCount", "Count", fd, one(float64(len(byFamily[f]))))
		}
	}
	return append(out, serviceConnectData(end, period, samples)...)
}

// utilization is a service's utilization datum: one sample per task that
// reserves some of the resource, Average = total used / total reserved.
func utilization(ts []task, get func(task) (used, reserved float64, ok bool)) (Datum, bool) {
	var d Datum
	var used, reserved float64
	for _, t := range ts {
		u, r, ok := get(t)
		if !ok || r <= 0 {
			continue
		}
		p := pct(u, r)
		if d.SampleCount == 0 {
			d.Min, d.Max = p, p
		}
		d.SampleCount++
		d.Min, d.Max = min(d.Min, p), max(d.Max, p)
		used += u
		reserved += r
	}
	if d.SampleCount == 0 {
		return d, false
	}
	d.Sum = pct(used, reserved) * d.SampleCount
	return d, true
}

func pct(part, whole float64) float64 { return part / whole * 100 }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ServiceOf returns the service name of a task group ("service:NAME").
func ServiceOf(group string) string {
	if s, ok := strings.CutPrefix(group, "service:"); ok {
		return s
	}
	return ""
}
