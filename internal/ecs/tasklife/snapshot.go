// Package tasklife is the task lifecycle ECS's API handlers and its
// service controller share, over the records of package ecsstate: cluster
// snapshots (the instances, their live tasks and agent presence read at
// one revision) and the plan applier, the one path that commits placed
// tasks (docs/ecs.md, "Package layout"; docs/tasks.md).
package tasklife

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
)

// FargateCapability is the attribute of an instance that offers Fargate
// capacity (docs/fargate.md).
const FargateCapability = "ecs.capability.fargate"

// InstanceView is a container instance with what its live tasks take.
type InstanceView struct {
	Rec       ecsstate.InstanceRecord
	ModRev    int64 // of the instance record
	Connected bool  // the agent presence key exists
	Tasks     []ecsstate.TaskRecord
	// pi caches PlacementInstance (nil: not computed, or tasks changed).
	pi *placement.Instance
}

// Snapshot is a cluster's instances and live tasks read at one
// store revision.
type Snapshot struct {
	Rev       int64
	Instances []*InstanceView // by ID
	ByID      map[string]*InstanceView
	// All is every task of the cluster, live or not, when the snapshot
	// was read with all (the service controller's read).
	All []ecsstate.TaskRecord
}

// LiveTask reports whether a task still holds its instance's resources:
// until it is both desired and observed STOPPED.
func LiveTask(t *ecsstate.TaskRecord) bool {
	return t.DesiredStatus == ecsstate.DesiredRunning || t.LastStatus != "STOPPED"
}

// ReadSnapshot reads a cluster's instances, their live tasks and the agent
// presence keys, all at the revision of the instance list, so that the
// tasks seen are exactly those committed before every instance record's
// ModRevision the snapshot holds (see the applier in applier.go). With
// all it also keeps every task of the cluster in the snapshot's All, read
// even when there is no instance.
func ReadSnapshot(ctx context.Context, st store.Store, log *slog.Logger, cluster string, all bool) (*Snapshot, error) {
	ires, err := st.List(ctx, ecsstate.KeyInstances+cluster+"/", store.ListOptions{})
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Rev: ires.Revision, ByID: map[string]*InstanceView{}}
	for _, kv := range ires.KVs {
		var rec ecsstate.InstanceRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			log.Warn("container instance unreadable", "key", kv.Key, "err", err)
			continue
		}
		v := &InstanceView{Rec: rec, ModRev: kv.ModRevision}
		snap.Instances = append(snap.Instances, v)
		snap.ByID[rec.ID] = v
	}
	if len(snap.Instances) == 0 && !all {
		return snap, nil
	}
	tres, err := st.List(ctx, ecsstate.KeyTasks+cluster+"/", store.ListOptions{Revision: snap.Rev})
	if err != nil {
		return nil, err
	}
	if all {
		snap.All = make([]ecsstate.TaskRecord, 0, len(tres.KVs))
	}
	for _, kv := range tres.KVs {
		var t ecsstate.TaskRecord
		if json.Unmarshal(kv.Value, &t) != nil {
			continue
		}
		if all {
			snap.All = append(snap.All, t)
		}
		if !LiveTask(&t) {
			continue
		}
		if v := snap.ByID[t.InstanceID]; v != nil {
			v.Tasks = append(v.Tasks, t)
		}
	}
	if snap.HasFargateHost() {
		// Other clusters' Fargate tasks on this cluster's hosts (fargate.go).
		if err := attachTasks(ctx, st, snap, cluster); err != nil {
			return nil, err
		}
	}
	if err := markConnected(ctx, st, snap); err != nil {
		return nil, err
	}
	return snap, nil
}

// AllAttributes returns an instance's attributes: the stored built-in and
// custom ones, plus those derived from its resources when the record
// lacks them.
func AllAttributes(rec *ecsstate.InstanceRecord) map[string]string {
	out := make(map[string]string, len(rec.Attributes)+4)
	for k, v := range rec.Attributes {
		out[k] = v
	}
	add := func(k, v string) {
		if _, ok := out[k]; !ok && v != "" {
			out[k] = v
		}
	}
	add("ecs.os-type", rec.Registered.OSType)
	add("ecs.cpu-architecture", rec.Registered.CPUArch)
	for _, c := range rec.Registered.Capabilities {
		if _, ok := out[c]; !ok {
			out[c] = ""
		}
	}
	return out
}

// Usage is what an instance's live tasks take.
type Usage struct {
	CPU, Memory, Dynamic int
	Ports                []placement.Port // static host ports of tasks
	Running, Pending     int
}

func TaskUsage(tasks []ecsstate.TaskRecord) Usage {
	var u Usage
	for i := range tasks {
		t := &tasks[i]
		u.CPU += t.CPU
		u.Memory += t.MemoryMiB
		u.Dynamic += t.DynamicPorts
		for _, p := range t.HostPorts {
			u.Ports = append(u.Ports, placement.Port{Number: p, Protocol: placement.TCP})
		}
		for _, p := range t.HostUDP {
			u.Ports = append(u.Ports, placement.Port{Number: p, Protocol: placement.UDP})
		}
		switch t.LastStatus {
		case "RUNNING":
			u.Running++
		case "STOPPED":
		default:
			u.Pending++
		}
	}
	return u
}

func registeredPorts(rec *ecsstate.InstanceRecord) []placement.Port {
	var ps []placement.Port
	for _, p := range rec.Registered.ReservedPorts {
		ps = append(ps, placement.Port{Number: p, Protocol: placement.TCP})
	}
	for _, p := range rec.Registered.ReservedUDP {
		ps = append(ps, placement.Port{Number: p, Protocol: placement.UDP})
	}
	return ps
}

// PlacementInstance is the instance as package placement sees it. It is
// computed once per change of the view; the copy returned shares its
// slices and map with the cache, so callers must not modify them in place
// (placement and reserve clone before they append).
func (v *InstanceView) PlacementInstance() placement.Instance {
	if v.pi == nil {
		pi := v.computePlacementInstance()
		v.pi = &pi
	}
	return *v.pi
}

func (v *InstanceView) computePlacementInstance() placement.Instance {
	u := TaskUsage(v.Tasks)
	reg := placement.Resources{CPU: v.Rec.Registered.CPU, Memory: v.Rec.Registered.MemoryMiB, Ports: registeredPorts(&v.Rec)}
	inst := placement.Instance{
		ID:             v.Rec.ID,
		ARN:            v.Rec.ARN,
		EC2InstanceID:  v.Rec.Ec2InstanceID,
		Status:         placement.Status(v.Rec.Status),
		AgentConnected: v.Connected,
		AgentVersion:   v.Rec.VersionInfo.AgentVersion,
		RegisteredAt:   v.Rec.RegisteredAt,
		Attributes:     AllAttributes(&v.Rec),
		Registered:     reg,
		Remaining: placement.Resources{
			CPU:    reg.CPU - u.CPU,
			Memory: reg.Memory - u.Memory,
			Ports:  append(slices.Clone(reg.Ports), u.Ports...),
		},
		DynamicPortsInUse: u.Dynamic,
		RunningTasksCount: u.Running,
	}
	for i := range v.Tasks {
		t := &v.Tasks[i]
		inst.Tasks = append(inst.Tasks, placement.TaskInfo{ARN: t.ARN, Group: t.Group, Stopping: t.DesiredStatus == ecsstate.DesiredStopped})
	}
	return inst
}

// FargateSnapshot reads every instance that offers Fargate capacity, in
// any cluster or the hidden pool, with every live task placed on it and
// the agents' presence, all at one revision (see the comment at the top).
func FargateSnapshot(ctx context.Context, st store.Store) (*Snapshot, error) {
	ires, err := st.List(ctx, ecsstate.KeyInstances, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Rev: ires.Revision, ByID: map[string]*InstanceView{}}
	for _, kv := range ires.KVs {
		var rec ecsstate.InstanceRecord
		if json.Unmarshal(kv.Value, &rec) != nil {
			continue
		}
		if _, ok := rec.Attributes[FargateCapability]; !ok {
			continue
		}
		v := &InstanceView{Rec: rec, ModRev: kv.ModRevision}
		snap.Instances = append(snap.Instances, v)
		snap.ByID[rec.ID] = v
	}
	if len(snap.Instances) == 0 {
		return snap, nil
	}
	if err := attachTasks(ctx, st, snap, ""); err != nil {
		return nil, err
	}
	if err := markConnected(ctx, st, snap); err != nil {
		return nil, err
	}
	return snap, nil
}

// attachTasks adds to snap's instances the live tasks of every cluster
// but skip placed on them, read at snap's revision.
func attachTasks(ctx context.Context, st store.Store, snap *Snapshot, skip string) error {
	tres, err := st.List(ctx, ecsstate.KeyTasks, store.ListOptions{Revision: snap.Rev})
	if err != nil {
		return err
	}
	for _, kv := range tres.KVs {
		if skip != "" && strings.HasPrefix(kv.Key, ecsstate.KeyTasks+skip+"/") {
			continue
		}
		var t ecsstate.TaskRecord
		if json.Unmarshal(kv.Value, &t) != nil || !LiveTask(&t) {
			continue
		}
		if v := snap.ByID[t.InstanceID]; v != nil {
			v.Tasks = append(v.Tasks, t)
		}
	}
	return nil
}

// HasFargateHost reports whether a cluster snapshot holds an instance
// that offers Fargate capacity (and so may run other clusters' tasks).
func (snap *Snapshot) HasFargateHost() bool {
	for _, v := range snap.Instances {
		if _, ok := v.Rec.Attributes[FargateCapability]; ok {
			return true
		}
	}
	return false
}

// markConnected marks the snapshot's instances whose agent is connected
// (a presence key under /berth/ecs/agents/ at the snapshot's revision).
func markConnected(ctx context.Context, st store.Store, snap *Snapshot) error {
	ares, err := st.List(ctx, ecsstate.KeyAgents, store.ListOptions{Revision: snap.Rev, KeysOnly: true})
	if err != nil {
		return err
	}
	for _, kv := range ares.KVs {
		if v := snap.ByID[strings.TrimPrefix(kv.Key, ecsstate.KeyAgents)]; v != nil {
			v.Connected = true
		}
	}
	return nil
}
