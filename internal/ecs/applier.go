package ecs

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
// snapshot (clusterSnapshot, read at one store revision); commitPlan
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
// (applyPlan, bounded). docs/tasks.md has the argument at length.
//
// A successful commit also brings the snapshot's chosen instances up to
// the commit's revision (their record, ModRevision and live tasks), so a
// caller may keep planning and committing on the same snapshot: for each
// instance the snapshot still holds exactly the tasks committed before
// its ModRevision, which is what the argument needs. The service
// controller does that to place many services' tasks on one read.

// maxPlanAttempts bounds applyPlan's retries on contention.
const maxPlanAttempts = 20

// maxTxnOps is the store's limit on the operations, and separately on the
// compares, of one transaction (etcd's --max-txn-ops: 128 by default, 1024
// in Berth's embedded etcd). A plan must fit in one transaction.
func (s *Service) maxTxnOps() int { return store.MaxTxnOps(s.st) }

// maxBatchTasks is the most tasks a plan may hold: each task costs three
// operations (task, assignment, group index entry) and one compare (task
// absent), and each instance it is the first on one more of each (record,
// ModRevision).
func (s *Service) maxBatchTasks() int { return ecsstate.MaxBatchTasks(s.st) }

// placedTask is a task ready to commit: its record, with the instance
// chosen, and what it needs from the instance.
type placedTask struct {
	rec taskRecord
	req *placement.Request
}

// plan is what a planner decided on a snapshot: tasks to commit, failures
// to report, and extra conditions and writes to commit with them (the
// RunTask client token).
type plan struct {
	tasks    []placedTask
	failures []ecsapi.Failure
	cmps     []store.Cmp
	ops      []store.Op
}

// applyPlan plans on a fresh snapshot of the cluster and commits the plan,
// planning again on fresher state when an instance changed meanwhile, at
// most maxPlanAttempts times. A plan without tasks is returned without
// committing anything.
func (s *Service) applyPlan(ctx context.Context, cluster string, planner func(*clusterSnapshot) (*plan, error)) (*plan, error) {
	return s.applyPlanOn(ctx, cluster, func(ctx context.Context) (*clusterSnapshot, error) { return s.snapshot(ctx, cluster) }, planner)
}

// applyPlanOn is applyPlan on the snapshots read reads (the Fargate hosts'
// for a Fargate task).
func (s *Service) applyPlanOn(ctx context.Context, cluster string, read func(context.Context) (*clusterSnapshot, error), planner func(*clusterSnapshot) (*plan, error)) (*plan, error) {
	for attempt := range maxPlanAttempts {
		snap, err := read(ctx)
		if err != nil {
			return nil, err
		}
		p, err := planner(snap)
		if err != nil || p == nil || len(p.tasks) == 0 {
			return p, err
		}
		ok, err := s.commitPlan(ctx, snap, p)
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

// commitPlan re-checks p's tasks on snap and commits them with the
// instance compares described above. It returns false when an instance
// (or one of p's own conditions) changed since snap, and an error of kind
// Conflict with reason placement.Unplaceable wrapping a
// *placement.Failure when a task does not fit. snap must be fresh: read
// after p was planned, or the very snapshot p was planned on.
func (s *Service) commitPlan(ctx context.Context, snap *clusterSnapshot, p *plan) (bool, error) {
	work := map[string]*placement.Instance{}
	var order []string
	for _, t := range p.tasks {
		id := t.rec.InstanceID
		pi := work[id]
		if pi == nil {
			v := snap.byID[id]
			if v == nil {
				f := &placement.Failure{InstanceID: id, InstanceARN: t.rec.InstanceARN, Reason: "MISSING"}
				return false, &errs.Error{Kind: errs.Conflict, Reason: placement.Unplaceable, Msg: "container instance " + id + " is gone", Err: f}
			}
			x := v.placementInstance()
			pi = &x
			work[id] = pi
			order = append(order, id)
		}
		if err := placement.Check(*pi, *t.req); err != nil {
			return false, err
		}
		reserve(pi, t.req, t.rec.ARN)
	}
	cmps := slices.Clone(p.cmps)
	ops := slices.Clone(p.ops)
	for _, id := range order {
		v := snap.byID[id]
		rec := v.rec
		rec.Version++
		b, err := json.Marshal(rec)
		if err != nil {
			return false, errs.Wrap(errs.Internal, err, "encode container instance")
		}
		key := instanceKey(rec.Cluster, id)
		// Placement needs a connected agent: one that went away since the
		// snapshot fails the commit, and the plan is made again.
		cmps = append(cmps, store.ModRevisionIs(key, v.modRev), store.Exists(keyAgents+id))
		ops = append(ops, store.Put(key, b))
	}
	for _, t := range p.tasks {
		tb, err := json.Marshal(t.rec)
		if err != nil {
			return false, errs.Wrap(errs.Internal, err, "encode task")
		}
		ab, _ := json.Marshal(assignmentRecord{Cluster: t.rec.Cluster, TaskID: t.rec.ID, DesiredStatus: t.rec.DesiredStatus, Version: t.rec.Version})
		key := taskKey(t.rec.Cluster, t.rec.ID)
		cmps = append(cmps, store.Absent(key))
		ops = append(ops, store.Put(key, tb), store.Put(assignKey(t.rec.InstanceID, t.rec.ID), ab))
		if t.rec.Group != "" {
			ops = append(ops, store.Put(taskGroupKey(t.rec.Cluster, t.rec.Group, t.rec.ID), []byte("1")))
		}
	}
	if len(cmps) > s.maxTxnOps() || len(ops) > s.maxTxnOps() {
		return false, errs.E(errs.Internal, "placement plan too large for one transaction (%d compares, %d operations)", len(cmps), len(ops))
	}
	res, err := s.st.Txn(ctx, cmps, ops...)
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
func (snap *clusterSnapshot) committed(p *plan, order []string, rev int64) {
	for _, id := range order {
		v := snap.byID[id]
		v.rec.Version++
		v.modRev = rev
		v.pi = nil
	}
	for _, t := range p.tasks {
		v := snap.byID[t.rec.InstanceID]
		v.tasks = append(v.tasks, t.rec)
	}
}

// reserve takes a task's resources from a working copy of an instance, as
// placement.Place does between the tasks it places.
func reserve(pi *placement.Instance, req *placement.Request, taskARN string) {
	pi.Remaining.CPU -= req.CPU
	pi.Remaining.Memory -= req.Memory
	pi.Remaining.Ports = append(slices.Clone(pi.Remaining.Ports), req.HostPorts...)
	pi.DynamicPortsInUse += max(0, req.DynamicPorts)
	pi.RunningTasksCount++
	pi.Tasks = append(slices.Clone(pi.Tasks), placement.TaskInfo{ARN: taskARN, Group: req.Group})
}

// failureOf extracts the placement failure of a Check error.
func failureOf(err error) (placement.Failure, bool) {
	var f *placement.Failure
	if errors.As(err, &f) {
		return *f, true
	}
	return placement.Failure{}, false
}
