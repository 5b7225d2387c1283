package ecsstate

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/berthdev/berth/internal/store"
)

// KickOnChange sends on kick (without blocking) whenever a key under
// prefix changes, except keys skip (when set) reports; it re-opens the
// watch after errors, with back-off, until ctx ends. ECS's controllers
// wake on it.
func KickOnChange(ctx context.Context, st store.Store, prefix string, skip func(string) bool, kick chan<- struct{}) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		for wr := range st.Watch(ctx, prefix, 0) {
			if wr.Err != nil {
				break
			}
			backoff = 100 * time.Millisecond
			for _, e := range wr.Events {
				if skip != nil && skip(e.KV.Key) {
					continue
				}
				select {
				case kick <- struct{}{}:
				default:
				}
				break
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff)))):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// MaxBatchTasks is the most tasks one transaction on st may write: each
// task costs three operations (task, assignment, group index entry) and
// one compare (task absent), and each instance it is the first on one more
// of each (record, ModRevision), within the store's limit on the
// operations, and separately the compares, of one transaction.
func MaxBatchTasks(st store.Store) int { return store.MaxTxnOps(st) / 4 }
