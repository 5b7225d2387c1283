package servicectl_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/ecs/servicectl"
	"github.com/berthdev/berth/internal/store"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/placement"
)

type recordingScheduler struct {
	mu       sync.Mutex
	passes   int
	passErrs int
	placed   int
	failures []string
}

func (r *recordingScheduler) ServicePass(took time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.passes++
	if err != nil {
		r.passErrs++
	}
}

func (r *recordingScheduler) TasksPlaced(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.placed += n
}

func (r *recordingScheduler) PlacementFailed(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, reason)
}

// The service controller tells its observer about its passes and about a
// service whose tasks cannot be placed (a cluster without instances).
func TestServiceControllerObserver(t *testing.T) {
	s, st := newTestService(t)
	ctx := t.Context()
	if _, err := s.RegisterTaskDefinition(ctx, &ecsapi.RegisterTaskDefinitionRequest{Family: ptr("web"),
		ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: ptr("web"), Image: ptr("busybox"), Memory: ptr(int32(128))}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateService(ctx, &ecsapi.CreateServiceRequest{Cluster: ptr("c1"), ServiceName: ptr("web"),
		TaskDefinition: ptr("web"), DesiredCount: ptr(int32(2))}); err != nil {
		t.Fatal(err)
	}
	obs := &recordingScheduler{}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		servicectl.Run(cctx, servicectl.Config{Store: st, Tasks: s.ServiceTasks(), Resync: 50 * time.Millisecond, Observer: obs})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		obs.mu.Lock()
		passes, failures := obs.passes, len(obs.failures)
		obs.mu.Unlock()
		if passes >= 2 && failures >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %d passes, %d placement failures", passes, failures)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.passErrs != 0 || obs.placed != 0 {
		t.Errorf("pass errors %d, tasks placed %d; want none (no instances)", obs.passErrs, obs.placed)
	}
	for _, r := range obs.failures {
		if r != placement.ReasonNoInstances {
			t.Errorf("placement failure reason %q, want %q", r, placement.ReasonNoInstances)
		}
	}
}

// Without an observer the controller runs as before.
func TestServiceControllerWithoutObserver(t *testing.T) {
	s, st := newTestService(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	servicectl.Run(ctx, servicectl.Config{Store: st, Tasks: s.ServiceTasks(), Resync: 50 * time.Millisecond})
}

func ptr[T any](v T) *T { return &v }

// newTestService is ECS over an embedded etcd, with cluster c1.
func newTestService(t *testing.T) (*ecs.Service, store.Store) {
	t.Helper()
	e, err := store.StartEmbedded(context.Background(), store.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	s := ecs.New(e.Store(), ecs.Config{Region: "us-east-1", Account: "000000000000"}, nil)
	if _, err := s.CreateCluster(t.Context(), &ecsapi.CreateClusterRequest{ClusterName: ptr("c1")}); err != nil {
		t.Fatal(err)
	}
	return s, e.Store()
}
