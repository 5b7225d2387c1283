package ecs

import (
	"fmt"
	"sync"
	"testing"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
)

// TestDeleteClusterRacesCreateService: DeleteCluster and CreateService run
// at the same moment, many times. Either the service is created and the
// cluster stays ACTIVE (deletion refused), or the cluster goes INACTIVE and
// the creation fails; never a service in an INACTIVE cluster.
func TestDeleteClusterRacesCreateService(t *testing.T) {
	s, _ := newTestService(t)
	ctx := t.Context()
	if _, err := s.RegisterTaskDefinition(ctx, &ecsapi.RegisterTaskDefinitionRequest{Family: ptr("race"),
		ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: ptr("a"), Image: ptr("busybox"), Memory: ptr(int32(32))}}}); err != nil {
		t.Fatal(err)
	}
	var created, deleted int
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("race-%d", i)
		if _, err := s.CreateCluster(ctx, &ecsapi.CreateClusterRequest{ClusterName: ptr(name)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var createErr, deleteErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, createErr = s.CreateService(ctx, &ecsapi.CreateServiceRequest{Cluster: ptr(name), ServiceName: ptr("web"),
				TaskDefinition: ptr("race"), DesiredCount: ptr(int32(0))})
		}()
		go func() {
			defer wg.Done()
			_, deleteErr = s.DeleteCluster(ctx, &ecsapi.DeleteClusterRequest{Cluster: ptr(name)})
		}()
		wg.Wait()
		c, _, cerr := s.getCluster(ctx, name, true)
		if cerr != nil {
			t.Fatal(cerr)
		}
		_, _, serr := s.getService(ctx, name, "web")
		switch {
		case createErr == nil && deleteErr == nil:
			t.Fatalf("round %d: both succeeded; cluster %s, service read: %v", i, c.Status, serr)
		case createErr == nil:
			if c.Status != "ACTIVE" || serr != nil || errs.ReasonOf(deleteErr) != reasonClusterServices {
				t.Fatalf("round %d: service created, cluster %s, delete: %v", i, c.Status, deleteErr)
			}
			created++
		case deleteErr == nil:
			if c.Status != "INACTIVE" || !errs.Is(serr, errs.NotFound) || !errs.Is(createErr, errs.NotFound) {
				t.Fatalf("round %d: cluster deleted (%s), service read: %v, create: %v", i, c.Status, serr, createErr)
			}
			deleted++
		default:
			t.Fatalf("round %d: both failed: create %v, delete %v", i, createErr, deleteErr)
		}
	}
	t.Logf("service first %d times, deletion first %d times", created, deleted)
}
