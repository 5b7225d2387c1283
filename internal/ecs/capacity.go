package ecs

import (
	"context"
	"encoding/json"

	"github.com/berthdev/berth/internal/store"
)

// ClusterCapacity is what ECS's CloudWatch metrics need of a cluster that
// the agents' usage reports do not carry: its instances' registered and
// reserved resources, its task and service counts, its containerInsights
// setting.
type ClusterCapacity struct {
	Name              string
	ContainerInsights bool // setting containerInsights enabled or enhanced
	// Instances counts the ACTIVE and DRAINING container instances; the
	// resources are theirs: registered, and taken by their live tasks.
	Instances           int
	RegisteredCPU       int
	RegisteredMemoryMiB int
	ReservedCPU         int
	ReservedMemoryMiB   int
	RunningTasks        int
	PendingTasks        int
	Services            []ServiceCounts // ACTIVE and DRAINING services
}

// ServiceCounts are a service's task counts as DescribeServices shows them.
type ServiceCounts struct {
	Name                      string
	Desired, Running, Pending int
	Deployments               int
	TaskDefinition            string // ARN
}

// Capacity reads every ACTIVE cluster's capacity (one snapshot per
// cluster).
func (s *Service) Capacity(ctx context.Context) ([]ClusterCapacity, error) {
	res, err := s.st.List(ctx, keyClusters, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []ClusterCapacity
	for _, kv := range res.KVs {
		var c clusterRecord
		if json.Unmarshal(kv.Value, &c) != nil || c.Status != "ACTIVE" {
			continue
		}
		cc := ClusterCapacity{Name: c.Name}
		for _, st := range c.Settings {
			if deref(st.Name) == "containerInsights" && (deref(st.Value) == "enabled" || deref(st.Value) == "enhanced") {
				cc.ContainerInsights = true
			}
		}
		snap, err := s.snapshot(ctx, c.Name)
		if err != nil {
			return nil, err
		}
		for _, v := range snap.Instances {
			if v.Rec.Status != "ACTIVE" && v.Rec.Status != "DRAINING" {
				continue
			}
			u := taskUsage(v.Tasks)
			cc.Instances++
			cc.RegisteredCPU += v.Rec.Registered.CPU
			cc.RegisteredMemoryMiB += v.Rec.Registered.MemoryMiB
			cc.ReservedCPU += u.CPU
			cc.ReservedMemoryMiB += u.Memory
			cc.RunningTasks += u.Running
			cc.PendingTasks += u.Pending
		}
		sres, err := s.st.List(ctx, keyServices+c.Name+"/", store.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, kv := range sres.KVs {
			var r serviceRecord
			if json.Unmarshal(kv.Value, &r) != nil || (r.Status != "ACTIVE" && r.Status != "DRAINING") {
				continue
			}
			cc.Services = append(cc.Services, ServiceCounts{Name: r.Name, Desired: int(r.DesiredCount), Running: int(r.RunningCount),
				Pending: int(r.PendingCount), Deployments: len(r.Deployments), TaskDefinition: r.TaskDefinition})
		}
		out = append(out, cc)
	}
	return out, nil
}
