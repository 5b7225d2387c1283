package tasklife

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
)

// The applier: the one path that commits placed tasks (RunTask,
// StartTask, and later the service scheduler). Placement decides on a
// snapshot (Snapshot, read at one store revision); CommitPlan
// re-checks every task against the snapshot's instances with
// placement.Check and writes, in one transaction:
//
//   - each task record and its assignment index entry;
//   - each chosen instance's record, rewritten with its version bumped,
//     under a compare on the ModRevision the snapshot read.
//
// Every write that adds reservations to an instance goes through here and
// so rewrites the instance record; writes elsewhere only release
// reservations (a task's status only moves forward). If another commit
// placed a task on a chosen instance after the snapshot, the instance's
// ModRevision differs and the transaction fails; if before, the snapshot's
// task list (read at the same revision as the instances) holds the task.
// So the capacity re-check sees every reservation in force when the
// transaction commits, and concurrent placements never overcommit an
// instance. On a failed compare the caller plans again on fresh state
// (ApplyPlanOn, bounded). docs/tasks.md has the argument at length.
//
// A successful commit also brings the snapshot's chosen instances up to
// the commit's revision (their record, ModRevision and live tasks), so a
// caller may keep planning and committing on the same snapshot: for each
// instance the snapshot still holds exactly the tasks committed before
// its ModRevision, which is what the argument needs. The service
// controller does that to place many services' tasks on one read.

// MaxPlanAttempts bounds ApplyPlanOn's retries on contention.
const MaxPlanAttempts = 20

// maxTxnOps is the store's limit on the operations, and separately on the
// compares, of one transaction (etcd's --max-txn-ops: 128 by default, 1024
// in Berth's embedded etcd). A plan must fit in one transaction.
func maxTxnOps(st store.Store) int { return store.MaxTxnOps(st) }

// MaxBatchTasks is the most tasks a plan may hold: each task costs three
// operations (task, assignment, group index entry) and one compare (task
// absent), and each instance it is the first on one more of each (record,
// ModRevision).
func MaxBatchTasks(st store.Store) int { return ecsstate.MaxBatchTasks(st) }

// PlacedTask is a task ready to commit: its record, with the instance
// chosen, and what it needs from the instance.
type PlacedTask struct {
	Rec ecsstate.TaskRecord
	Req *placement.Request
}

// Plan is what a planner decided on a snapshot: tasks to commit, failures
// to report, and extra conditions and writes to commit with them (the
// RunTask client token).
type Plan struct {
	Tasks    []PlacedTask
	Failures []ecsapi.Failure
	Cmps     []store.Cmp
	Ops      []store.Op
}

// ApplyPlanOn plans on a fresh snapshot (one read reads: the cluster's,
// or the Fargate hosts' for a Fargate task) and commits the plan, planning
// again on fresher state when an instance changed meanwhile, at most
// MaxPlanAttempts times. A plan without tasks is returned without
// committing anything.
func ApplyPlanOn(ctx context.Context, st store.Store, cluster string, read func(context.Context) (*Snapshot, error), planner func(*Snapshot) (*Plan, error)) (*Plan, error) {
	for attempt := range MaxPlanAttempts {
		snap, err := read(ctx)
		if err != nil {
			return nil, err
		}
		p, err := planner(snap)
		if err != nil || p == nil || len(p.Tasks) == 0 {
			return p, err
		}
		ok, err := CommitPlan(ctx, st, snap, p)
		if err != nil && errs.ReasonOf(err) != placement.Unplaceable {
			return nil, err
		}
		if ok {
			return p, nil
		}
		// Contention: back off a little, with jitter, and plan again.
		d := time.Duration(rand.IntN(attempt+1)+1) * 3 * time.Millisecond
		select {
		case <-ctx.Done():
			return nil, errs.Wrap(errs.Unavailable, ctx.Err(), "placement interrupted")
		case <-time.After(d):
		}
	}
	return nil, errs.E(errs.Unavailable, "too many concurrent placements on cluster %s; retry", cluster)
}

// CommitPlan re-checks p's tasks on snap and commits them with the
// instance compares described above. It returns false when an instance
// (or one of p's own conditions) changed since snap, and an error of kind
// Conflict with reason placement.Unplaceable wrapping a
// *placement.Failure when a task does not fit. snap must be fresh: read
// after p was planned, or the very snapshot p was planned on.
func CommitPlan(ctx context.Context, st store.Store, snap *Snapshot, p *Plan) (bool, error) {
	work := map[string]*placement.Instance{}
	var order []string
	for _, t := range p.Tasks {
		id := t.Rec.InstanceID
		pi := work[id]
		if pi == nil {
			v := snap.ByID[id]
			if v == nil {
				f := &placement.Failure{InstanceID: id, InstanceARN: t.Rec.InstanceARN, Reason: "MISSING"}
				return false, &errs.Error{Kind: errs.Conflict, Reason: placement.Unplaceable, Msg: "container instance " + id + " is gone", Err: f}
			}
			x := v.PlacementInstance()
			pi = &x
			work[id] = pi
			order = append(order, id)
		}
		if err := placement.Check(*pi, *t.Req); err != nil {
			return false, err
		}
		Reserve(pi, t.Req, t.Rec.ARN)
	}
	cmps := slices.Clone(p.Cmps)
	ops := slices.Clone(p.Ops)
	for _, id := range order {
		v := snap.ByID[id]
		rec := v.Rec
		rec.Version++
		b, err := json.Marshal(rec)
		if err != nil {
			return false, errs.Wrap(errs.Internal, err, "encode container instance")
		}
		key := ecsstate.InstanceKey(rec.Cluster, id)
		// Placement needs a connected agent: one that went away since the
		// snapshot fails the commit, and the plan is made again.
		cmps = append(cmps, store.ModRevisionIs(key, v.ModRev), store.Exists(ecsstate.KeyAgents+id))
		ops = append(ops, store.Put(key, b))
	}
	for _, t := range p.Tasks {
		tb, err := json.Marshal(t.Rec)
		if err != nil {
			return false, errs.Wrap(errs.Internal, err, "encode task")
		}
		ab, _ := json.Marshal(ecsstate.AssignmentRecord{Cluster: t.Rec.Cluster, TaskID: t.Rec.ID, DesiredStatus: t.Rec.DesiredStatus, Version: t.Rec.Version})
		key := ecsstate.TaskKey(t.Rec.Cluster, t.Rec.ID)
		cmps = append(cmps, store.Absent(key))
		ops = append(ops, store.Put(key, tb), store.Put(ecsstate.AssignKey(t.Rec.InstanceID, t.Rec.ID), ab))
		if t.Rec.Group != "" {
			ops = append(ops, store.Put(ecsstate.TaskGroupKey(t.Rec.Cluster, t.Rec.Group, t.Rec.ID), []byte("1")))
		}
	}
	if len(cmps) > maxTxnOps(st) || len(ops) > maxTxnOps(st) {
		return false, errs.E(errs.Internal, "placement plan too large for one transaction (%d compares, %d operations)", len(cmps), len(ops))
	}
	res, err := st.Txn(ctx, cmps, ops...)
	if err != nil {
		return false, err
	}
	if res.Succeeded {
		snap.committed(p, order, res.Revision)
	}
	return res.Succeeded, nil
}

// committed brings the instances a committed plan wrote up to the
// commit's revision: their records as written, the new ModRevision, and
// the plan's tasks among their live tasks (see the comment at the top).
func (snap *Snapshot) committed(p *Plan, order []string, rev int64) {
	for _, id := range order {
		v := snap.ByID[id]
		v.Rec.Version++
		v.ModRev = rev
		v.pi = nil
	}
	for _, t := range p.Tasks {
		v := snap.ByID[t.Rec.InstanceID]
		v.Tasks = append(v.Tasks, t.Rec)
	}
}

// Reserve takes a task's resources from a working copy of an instance, as
// placement.Place does between the tasks it places.
func Reserve(pi *placement.Instance, req *placement.Request, taskARN string) {
	pi.Remaining.CPU -= req.CPU
	pi.Remaining.Memory -= req.Memory
	pi.Remaining.Ports = append(slices.Clone(pi.Remaining.Ports), req.HostPorts...)
	pi.DynamicPortsInUse += max(0, req.DynamicPorts)
	pi.RunningTasksCount++
	pi.Tasks = append(slices.Clone(pi.Tasks), placement.TaskInfo{ARN: taskARN, Group: req.Group})
}

// FailureOf extracts the placement failure of a Check error.
func FailureOf(err error) (placement.Failure, bool) {
	var f *placement.Failure
	if errors.As(err, &f) {
		return *f, true
	}
	return placement.Failure{}, false
}
