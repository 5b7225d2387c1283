package tasklife

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// GetTask reads a task record and its revision; NotFound when there is none.
func GetTask(ctx context.Context, st store.Store, cluster, id string) (ecsstate.TaskRecord, int64, error) {
	kv, err := st.Get(ctx, ecsstate.TaskKey(cluster, id))
	if err != nil {
		return ecsstate.TaskRecord{}, 0, err
	}
	var t ecsstate.TaskRecord
	if err := json.Unmarshal(kv.Value, &t); err != nil {
		return t, 0, errs.Wrap(errs.Internal, err, "decode task %s", id)
	}
	return t, kv.ModRevision, nil
}

// Stop is how StopTask stops a task.
type Stop struct {
	Code   ecsapi.TaskStopCode
	Reason string
	// Change, when set, may refuse the task (its error is returned) or
	// change it further in the same write.
	Change func(*ecsstate.TaskRecord) error
	// Drain, when set, gives how long the task's load balancer targets
	// drain before its agent is told to stop it (the drain gate: the task
	// is held DEACTIVATING until then; GateOps).
	Drain func(*ecsstate.TaskRecord) (time.Duration, error)
}

// StopTask sets a task's desired status to STOPPED with a stop code and
// reason, rewriting its assignment in the same transaction (unless the
// drain gate holds it). Desired status only moves forward: a task already
// desired STOPPED is returned unchanged. NotFound when the task does not
// exist. now is read at each attempt.
func StopTask(ctx context.Context, st store.Store, log *slog.Logger, now func() time.Time, cluster, id string, how Stop) (ecsstate.TaskRecord, error) {
	code, reason, change, drain := how.Code, how.Reason, how.Change, how.Drain
	key := ecsstate.TaskKey(cluster, id)
	for {
		t, rev, err := GetTask(ctx, st, cluster, id)
		if err != nil {
			return t, err
		}
		if change != nil {
			if err := change(&t); err != nil {
				return t, err
			}
		}
		if t.DesiredStatus == ecsstate.DesiredStopped {
			return t, nil
		}
		now := now().UTC()
		t.DesiredStatus = ecsstate.DesiredStopped
		t.StoppingAt = &now
		if t.StopCode == "" {
			t.StopCode, t.StoppedReason = string(code), reason
		}
		var gate []store.Op
		held := false
		if drain != nil {
			d, err := drain(&t)
			if err != nil {
				return t, err
			}
			gate, held = GateOps(&t, d, now)
		}
		t.Version++
		tb, _ := json.Marshal(t)
		ops := append([]store.Op{store.Put(key, tb)}, gate...)
		if t.InstanceID != "" && !held {
			ab, _ := json.Marshal(ecsstate.AssignmentRecord{Cluster: cluster, TaskID: id, DesiredStatus: t.DesiredStatus, Version: t.Version})
			ops = append(ops, store.Put(ecsstate.AssignKey(t.InstanceID, id), ab))
		}
		res, err := st.Txn(ctx, []store.Cmp{store.ModRevisionIs(key, rev)}, ops...)
		if err != nil {
			return t, err
		}
		if res.Succeeded {
			log.Info("task stopping", "cluster", cluster, "task", id, "stopCode", code, "drainUntil", t.DrainUntil)
			return t, nil
		}
	}
}

// DrainRecord is the index entry of a task held by the drain gate.
type DrainRecord struct {
	Until time.Time `json:"until"`
}

func DrainKey(cluster, id string) string { return ecsstate.KeyDrain + cluster + "/" + id }

// GateOps turns a stop of task t (already desired STOPPED in t) into a
// held one when it has targets to drain: the task becomes DEACTIVATING
// with DrainUntil, and the index entry is written instead of the
// assignment. held is false (and ops nil) when no gate applies: the task
// is not RUNNING (no target was registered), or the delay is 0.
func GateOps(t *ecsstate.TaskRecord, delay time.Duration, now time.Time) (ops []store.Op, held bool) {
	if delay <= 0 || t.LastStatus != "RUNNING" || t.InstanceID == "" {
		return nil, false
	}
	until := now.Add(delay)
	t.DrainUntil = &until
	t.LastStatus = "DEACTIVATING"
	b, _ := json.Marshal(DrainRecord{Until: until})
	return []store.Op{store.Put(DrainKey(t.Cluster, t.ID), b)}, true
}

// DrainDelay is how long a task of a service with these load balancers is
// held after desired STOPPED: the longest deregistration delay of its
// target groups.
func DrainDelay(ctx context.Context, lb LoadBalancing, lbs []ecsapi.LoadBalancer) (time.Duration, error) {
	if len(lbs) == 0 || lb == nil {
		return 0, nil
	}
	var d time.Duration
	for _, a := range TargetGroupARNs(lbs) {
		info, err := lb.TargetGroup(ctx, a)
		if errs.Is(err, errs.NotFound) {
			continue // the group is gone: nothing to drain
		}
		if err != nil {
			return 0, err
		}
		d = max(d, info.DeregistrationDelay)
	}
	return d, nil
}
