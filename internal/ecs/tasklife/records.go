package tasklife

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// GetService reads a service record and its revision; NotFound when
// there is none.
func GetService(ctx context.Context, st store.Store, cluster, name string) (ecsstate.ServiceRecord, int64, error) {
	kv, err := st.Get(ctx, ecsstate.ServiceKey(cluster, name))
	if err != nil {
		return ecsstate.ServiceRecord{}, 0, err
	}
	var r ecsstate.ServiceRecord
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return r, 0, errs.Wrap(errs.Internal, err, "decode service %s", name)
	}
	return r, kv.ModRevision, nil
}

// ChangeService applies change to a service record under a compare on its
// revision, retrying on contention. change may return an error to abort.
func ChangeService(ctx context.Context, st store.Store, cluster, name string, change func(*ecsstate.ServiceRecord) error) (ecsstate.ServiceRecord, error) {
	for {
		r, rev, err := GetService(ctx, st, cluster, name)
		if err != nil {
			return r, err
		}
		if err := change(&r); err != nil {
			return r, err
		}
		r.Version++
		b, _ := json.Marshal(r)
		res, err := st.Txn(ctx, []store.Cmp{store.ModRevisionIs(ecsstate.ServiceKey(cluster, name), rev)}, store.Put(ecsstate.ServiceKey(cluster, name), b))
		if err != nil {
			return r, err
		}
		if res.Succeeded {
			return r, nil
		}
	}
}

// GroupTasks reads the tasks of a group (a service's: "service:<name>").
func GroupTasks(ctx context.Context, st store.Store, cluster, group string) ([]ecsstate.TaskRecord, error) {
	prefix := ecsstate.TaskGroupPrefix(cluster, group)
	idx, err := st.List(ctx, prefix, store.ListOptions{KeysOnly: true})
	if err != nil {
		return nil, err
	}
	kvs, err := ReadIndexed(ctx, st, idx.KVs, func(k string) string { return ecsstate.TaskKey(cluster, strings.TrimPrefix(k, prefix)) })
	if err != nil {
		return nil, err
	}
	out := make([]ecsstate.TaskRecord, 0, len(kvs))
	for _, kv := range kvs {
		var t ecsstate.TaskRecord
		if json.Unmarshal(kv.Value, &t) == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// IndexReaders is how many records ReadIndexed reads at once.
const IndexReaders = 16

// ReadIndexed reads the records a page of index entries points at (target
// maps an index key to the record's key), IndexReaders at a time: one
// round trip after another would make a page of 100 tasks cost 100 round
// trips. The result keeps each index key with the record's value, in the
// index's order; a record gone since (collected) is left out.
func ReadIndexed(ctx context.Context, st store.Store, idx []store.KV, target func(string) string) ([]store.KV, error) {
	vals := make([][]byte, len(idx))
	errsOut := make([]error, len(idx))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(IndexReaders, len(idx)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				kv, err := st.Get(ctx, target(idx[i].Key))
				if err != nil {
					if !errs.Is(err, errs.NotFound) {
						errsOut[i] = err
					}
					continue
				}
				vals[i] = kv.Value
			}
		}()
	}
	for i := range idx {
		next <- i
	}
	close(next)
	wg.Wait()
	out := make([]store.KV, 0, len(idx))
	for i, kv := range idx {
		if errsOut[i] != nil {
			return nil, errsOut[i]
		}
		if vals[i] != nil {
			out = append(out, store.KV{Key: kv.Key, Value: vals[i]})
		}
	}
	return out, nil
}
