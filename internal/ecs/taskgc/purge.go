package taskgc

import (
	"context"
	"encoding/json"
	"time"

	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/store"
)

// Purging of INACTIVE records, part of the task garbage collector
// (taskgc.go). ECS keeps INACTIVE services, container instances and
// clusters describable "for a period of time" and then forgets them:
// DescribeServices, DescribeContainerInstances and DescribeClusters answer
// them as MISSING failures. Berth keeps them for the task retention,
// counted from when each became INACTIVE (ecsstate.ServiceRecord.InactiveAt,
// ecsstate.InstanceRecord.DeregisteredAt, ecsstate.ClusterRecord.InactiveAt). A record
// written before those times were kept gets the time of the collection
// that first sees it, so it too stays a whole retention.
//
// Each record is deleted under a compare on the revision it was read at,
// so a name re-used meanwhile (CreateService, CreateCluster) is never
// deleted.

// purgeDue reports whether a record INACTIVE since at may go at now. No
// time yet: not due (the collector records one first).
func purgeDue(at *time.Time, now time.Time, retention time.Duration) bool {
	return at != nil && now.Sub(*at) >= retention
}

// serviceExpired reports whether a service record may be purged at now.
func serviceExpired(r *ecsstate.ServiceRecord, now time.Time, retention time.Duration) bool {
	return r.Status == deploy.ServiceInactive && purgeDue(r.InactiveAt, now, retention)
}

// instanceExpired reports whether a container instance record may be
// purged at now: INACTIVE for retention, and no task record left on it
// (hasTasks; its tasks are collected first).
func instanceExpired(r *ecsstate.InstanceRecord, hasTasks bool, now time.Time, retention time.Duration) bool {
	return r.Status == ecsstate.InstanceInactive && !hasTasks && purgeDue(r.DeregisteredAt, now, retention)
}

// clusterExpired reports whether a cluster record may be purged at now:
// INACTIVE for retention, and no service, instance or task record left
// under it (inUse).
func clusterExpired(c *ecsstate.ClusterRecord, inUse bool, now time.Time, retention time.Duration) bool {
	return c.Status == "INACTIVE" && !inUse && purgeDue(c.InactiveAt, now, retention)
}

// casTxn applies ops if kv is still at the revision it was read at.
func (c *Collector) casTxn(ctx context.Context, kv store.KV, ops ...store.Op) (bool, error) {
	r, err := c.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(kv.Key, kv.ModRevision)}, ops...)
	if err != nil {
		return false, err
	}
	return r.Succeeded, nil
}

// stamp records now as the INACTIVE time of a record that has none
// (*at nil), writing v back under a compare on kv's revision.
func (c *Collector) stamp(ctx context.Context, kv store.KV, at **time.Time, now time.Time, v any) error {
	*at = &now
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.casTxn(ctx, kv, store.Put(kv.Key, b))
	return err
}

// eachKV calls f with every key under prefix, 500 at a time.
func (c *Collector) eachKV(ctx context.Context, prefix string, f func(store.KV) error) error {
	from := ""
	for {
		res, err := c.st.List(ctx, prefix, store.ListOptions{StartAfter: from, Limit: 500})
		if err != nil {
			return err
		}
		for _, kv := range res.KVs {
			from = kv.Key
			if err := f(kv); err != nil {
				return err
			}
		}
		if !res.More {
			return nil
		}
	}
}

// purgeServices deletes the service records INACTIVE for retention. A
// service keeps nothing under other keys: its tags and CreateService
// client token are in the record, and its tasks' group index entries go
// with the tasks.
func (c *Collector) purgeServices(ctx context.Context, now time.Time, retention time.Duration) (int, error) {
	n := 0
	err := c.eachKV(ctx, ecsstate.KeyServices, func(kv store.KV) error {
		var r ecsstate.ServiceRecord
		if json.Unmarshal(kv.Value, &r) != nil || r.Status != deploy.ServiceInactive {
			return nil
		}
		if r.InactiveAt == nil {
			return c.stamp(ctx, kv, &r.InactiveAt, now, &r)
		}
		if !serviceExpired(&r, now, retention) {
			return nil
		}
		ok, err := c.casTxn(ctx, kv, store.Delete(kv.Key))
		if ok {
			n++
			c.log.Info("service purged", "cluster", r.Cluster, "service", r.Name)
		}
		return err
	})
	return n, err
}

// purgeInstances deletes the container instance records (kvs, as listed
// at the start of the collection) INACTIVE for retention that no task
// record references any more (hasTasks), with the instance's agent
// credential, presence key and assignment index. An agent presenting the
// credential afterwards is refused as an unknown access key.
func (c *Collector) purgeInstances(ctx context.Context, kvs []store.KV, hasTasks map[string]bool, now time.Time, retention time.Duration) (int, error) {
	n := 0
	for _, kv := range kvs {
		var r ecsstate.InstanceRecord
		if json.Unmarshal(kv.Value, &r) != nil || r.Status != ecsstate.InstanceInactive {
			continue
		}
		if r.DeregisteredAt == nil {
			if err := c.stamp(ctx, kv, &r.DeregisteredAt, now, &r); err != nil {
				return n, err
			}
			continue
		}
		if !instanceExpired(&r, hasTasks[r.ID], now, retention) {
			continue
		}
		ops := []store.Op{store.Delete(kv.Key), store.Delete(ecsstate.KeyAgents + r.ID), store.DeletePrefix(ecsstate.KeyAssign + r.ID + "/")}
		if r.AccessKeyID != "" {
			ops = append(ops, store.Delete(ecsstate.KeyAgentCreds+r.AccessKeyID))
		}
		ok, err := c.casTxn(ctx, kv, ops...)
		if err != nil {
			return n, err
		}
		if ok {
			n++
			c.purged(r.ID, r.AccessKeyID)
			c.log.Info("container instance purged", "cluster", r.Cluster, "instance", r.ID)
		}
	}
	return n, nil
}

// purgeClusters deletes the cluster records INACTIVE for retention with
// nothing left under them, with the cluster's RunTask client tokens and
// task group index (empty by then).
func (c *Collector) purgeClusters(ctx context.Context, now time.Time, retention time.Duration) (int, error) {
	n := 0
	err := c.eachKV(ctx, ecsstate.KeyClusters, func(kv store.KV) error {
		var cr ecsstate.ClusterRecord
		if json.Unmarshal(kv.Value, &cr) != nil || cr.Status != "INACTIVE" {
			return nil
		}
		if cr.InactiveAt == nil {
			return c.stamp(ctx, kv, &cr.InactiveAt, now, &cr)
		}
		if !purgeDue(cr.InactiveAt, now, retention) {
			return nil // not due: spare the reads below
		}
		inUse, err := c.clusterInUse(ctx, cr.Name)
		if err != nil || !clusterExpired(&cr, inUse, now, retention) {
			return err
		}
		ok, err := c.casTxn(ctx, kv, store.Delete(kv.Key),
			store.DeletePrefix(ecsstate.KeyClientTokens+cr.Name+"/"), store.DeletePrefix(ecsstate.KeyTaskGroups+cr.Name+"/"))
		if ok {
			n++
			c.log.Info("cluster purged", "cluster", cr.Name)
		}
		return err
	})
	return n, err
}

// clusterInUse reports whether any service, container instance or task
// record, of any status, is left in a cluster.
func (c *Collector) clusterInUse(ctx context.Context, name string) (bool, error) {
	for _, prefix := range []string{ecsstate.KeyServices, ecsstate.KeyInstances, ecsstate.KeyTasks} {
		res, err := c.st.List(ctx, prefix+name+"/", store.ListOptions{Limit: 1, KeysOnly: true})
		if err != nil {
			return false, err
		}
		if len(res.KVs) > 0 {
			return true, nil
		}
	}
	return false, nil
}
