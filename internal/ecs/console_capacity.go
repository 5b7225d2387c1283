package ecs

import (
	"context"
	"slices"
	"strings"
	"time"
)

// The web console's view of Fargate capacity (docs/console.md): every host
// that offers it, in a user's cluster or the hidden pool, with its runtime,
// agent and resources, and the live Fargate tasks on them counted per
// cluster and capacity provider. A read of one fargateSnapshot, so it is
// the accounting placement itself uses.

// FargateHost is one host that offers Fargate capacity.
type FargateHost struct {
	InstanceID    string `json:"instanceId"`
	InstanceARN   string `json:"instanceArn"`
	EC2InstanceID string `json:"ec2InstanceId"`
	// Cluster is the user cluster the host is EC2 capacity of too, or
	// FargatePool for a host of the hidden pool.
	Cluster   string `json:"cluster"`
	Pool      bool   `json:"pool"` // in the hidden pool
	Status    string `json:"status"`
	Connected bool   `json:"agentConnected"`
	// Runtime is the attribute berth.fargate-runtime: runc, runsc or
	// kata-runtime ("" when the agent did not say).
	Runtime             string    `json:"runtime"`
	Architecture        string    `json:"architecture"`
	Zone                string    `json:"availabilityZone"`
	AgentVersion        string    `json:"agentVersion"`
	RegisteredAt        time.Time `json:"registeredAt"`
	RegisteredCPU       int       `json:"registeredCpu"`
	RegisteredMemoryMiB int       `json:"registeredMemoryMiB"`
	// Remaining is registered minus every live task placed on the host,
	// whatever its cluster or launch type.
	RemainingCPU       int `json:"remainingCpu"`
	RemainingMemoryMiB int `json:"remainingMemoryMiB"`
	FargateTasks       int `json:"fargateTasks"` // live FARGATE tasks on the host
	OtherTasks         int `json:"otherTasks"`   // live EC2 tasks on the host
}

// FargateTasks counts one cluster's live Fargate tasks of one capacity
// provider: FARGATE or FARGATE_SPOT when a strategy chose it, "" for
// launch type FARGATE.
type FargateTasks struct {
	Cluster          string `json:"cluster"`
	CapacityProvider string `json:"capacityProvider"`
	Running          int    `json:"running"`
	Pending          int    `json:"pending"`
	CPU              int    `json:"cpu"`       // reserved, units
	MemoryMiB        int    `json:"memoryMiB"` // reserved
}

// FargateCapacityView is the Fargate capacity shared by every cluster.
type FargateCapacityView struct {
	Revision int64          `json:"revision"`
	Hosts    []FargateHost  `json:"hosts"`
	Tasks    []FargateTasks `json:"tasks"`
}

// FargateCapacity reads the Fargate hosts and the Fargate tasks on them
// at one store revision.
func (s *Service) FargateCapacity(ctx context.Context) (FargateCapacityView, error) {
	snap, err := s.fargateSnapshot(ctx)
	if err != nil {
		return FargateCapacityView{}, err
	}
	out := FargateCapacityView{Revision: snap.Rev, Hosts: []FargateHost{}, Tasks: []FargateTasks{}}
	type tk struct{ cluster, provider string }
	counts := map[tk]*FargateTasks{}
	for _, v := range snap.Instances {
		u := taskUsage(v.Tasks)
		h := FargateHost{InstanceID: v.Rec.ID, InstanceARN: v.Rec.ARN, EC2InstanceID: v.Rec.Ec2InstanceID,
			Cluster: v.Rec.Cluster, Pool: v.Rec.Cluster == FargatePool, Status: v.Rec.Status, Connected: v.Connected,
			Runtime: v.Rec.Attributes["berth.fargate-runtime"], Architecture: v.Rec.Attributes["ecs.cpu-architecture"],
			Zone: v.Rec.Attributes["ecs.availability-zone"], AgentVersion: v.Rec.VersionInfo.AgentVersion, RegisteredAt: v.Rec.RegisteredAt,
			RegisteredCPU: v.Rec.Registered.CPU, RegisteredMemoryMiB: v.Rec.Registered.MemoryMiB,
			RemainingCPU: v.Rec.Registered.CPU - u.CPU, RemainingMemoryMiB: v.Rec.Registered.MemoryMiB - u.Memory}
		for i := range v.Tasks {
			t := &v.Tasks[i]
			if t.Fargate == nil {
				h.OtherTasks++
				continue
			}
			h.FargateTasks++
			k := tk{t.Cluster, t.Fargate.CapacityProvider}
			c := counts[k]
			if c == nil {
				c = &FargateTasks{Cluster: k.cluster, CapacityProvider: k.provider}
				counts[k] = c
			}
			if t.LastStatus == "RUNNING" {
				c.Running++
			} else if t.LastStatus != "STOPPED" {
				c.Pending++
			}
			c.CPU += t.CPU
			c.MemoryMiB += t.MemoryMiB
		}
		out.Hosts = append(out.Hosts, h)
	}
	for _, c := range counts {
		out.Tasks = append(out.Tasks, *c)
	}
	slices.SortFunc(out.Hosts, func(a, b FargateHost) int {
		return strings.Compare(a.Cluster+"/"+a.InstanceID, b.Cluster+"/"+b.InstanceID)
	})
	slices.SortFunc(out.Tasks, func(a, b FargateTasks) int {
		return strings.Compare(a.Cluster+"/"+a.CapacityProvider, b.Cluster+"/"+b.CapacityProvider)
	})
	return out, nil
}
