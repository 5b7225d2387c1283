package ecs

import (
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/ecs/taskgc"
	"github.com/berthdev/berth/internal/errs"
)

func TestCollectGarbagePurgesInactiveRecords(t *testing.T) {
	s, st := newTestService(t)
	ctx := t.Context()
	now := time.Now().UTC()
	old, recent := now.Add(-2*time.Hour), now.Add(-10*time.Minute)

	// Services: created through the API, then marked INACTIVE as the
	// controller does (at old or recent), and one written before
	// inactiveAt was kept.
	td := webTD()
	for i := range td.ContainerDefinitions {
		td.ContainerDefinitions[i].Image = ptr("nginx")
	}
	if _, err := s.RegisterTaskDefinition(ctx, &ecsapi.RegisterTaskDefinitionRequest{Family: td.Family, NetworkMode: td.NetworkMode,
		ContainerDefinitions: td.ContainerDefinitions}); err != nil {
		t.Fatal(err)
	}
	create := func(name string) {
		t.Helper()
		if _, err := s.CreateService(ctx, &ecsapi.CreateServiceRequest{Cluster: ptr("c1"), ServiceName: ptr(name),
			TaskDefinition: ptr("web"), DesiredCount: ptr(int32(0))}); err != nil {
			t.Fatalf("create service %s: %v", name, err)
		}
	}
	inactive := func(name string, at *time.Time) {
		t.Helper()
		create(name)
		if _, err := s.DeleteService(ctx, &ecsapi.DeleteServiceRequest{Cluster: ptr("c1"), Service: ptr(name)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.changeService(ctx, "c1", name, func(r *serviceRecord) error {
			r.Status, r.InactiveAt = deploy.ServiceInactive, at
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	create("api")
	inactive("web", &old)
	inactive("recent", &recent)
	inactive("legacy", nil)

	// Instances: one deregistered long ago with its agent credential and
	// presence key, one with a task record left on it, one written before
	// deregisteredAt was kept, and an ACTIVE one.
	putJSON(t, st, instanceKey("c1", "gone"), instanceRecord{ID: "gone", Cluster: "c1", Status: InstanceInactive, DeregisteredAt: &old, AccessKeyID: "ABIAGONE"})
	putJSON(t, st, keyAgentCreds+"ABIAGONE", agentCredRecord{Secret: "s", InstanceID: "gone", Cluster: "c1"})
	putJSON(t, st, keyAgents+"gone", map[string]any{})
	putJSON(t, st, instanceKey("c1", "busy"), instanceRecord{ID: "busy", Cluster: "c1", Status: InstanceInactive, DeregisteredAt: &old})
	putJSON(t, st, taskKey("c1", "tb"), taskRecord{ID: "tb", Cluster: "c1", InstanceID: "busy", DesiredStatus: DesiredStopped, LastStatus: "STOPPED", StoppedAt: &recent})
	putJSON(t, st, instanceKey("c1", "legacy"), instanceRecord{ID: "legacy", Cluster: "c1", Status: InstanceInactive})
	putJSON(t, st, instanceKey("c1", "live"), instanceRecord{ID: "live", Cluster: "c1", Status: InstanceActive})

	// Clusters: an empty one deleted long ago (with a client token left),
	// one deleted long ago with a service record left, one written before
	// inactiveAt was kept.
	putJSON(t, st, keyClusters+"empty", clusterRecord{Name: "empty", Status: "INACTIVE", InactiveAt: &old})
	putJSON(t, st, clientTokenKey("empty", "tok"), clientTokenRecord{CreatedAt: now})
	putJSON(t, st, keyClusters+"used", clusterRecord{Name: "used", Status: "INACTIVE", InactiveAt: &old})
	putJSON(t, st, serviceKey("used", "svc"), serviceRecord{Name: "svc", Cluster: "used", Status: deploy.ServiceInactive, InactiveAt: &recent})
	putJSON(t, st, keyClusters+"legacy", clusterRecord{Name: "legacy", Status: "INACTIVE"})

	// Another server over the same store has the agent credential cached.
	other := New(st, Config{Region: "us-east-1", Account: "000000000000"}, nil)
	for _, srv := range []*Service{s, other} {
		if _, ok, err := srv.AgentCredential(ctx, "ABIAGONE"); !ok || err != nil {
			t.Fatalf("credential before the purge: %v %v", ok, err)
		}
	}

	got, err := taskgc.New(st, taskgc.Config{Retention: time.Hour, InstancePurged: s.InstancePurged}).Collect(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != (taskgc.Stats{Services: 1, Instances: 1, Clusters: 1}) {
		t.Fatalf("collected %+v", got)
	}
	gone := []string{serviceKey("c1", "web"), instanceKey("c1", "gone"), keyAgentCreds + "ABIAGONE", keyAgents + "gone",
		keyClusters + "empty", clientTokenKey("empty", "tok")}
	for _, k := range gone {
		if _, err := st.Get(ctx, k); !errs.Is(err, errs.NotFound) {
			t.Errorf("%s not purged: %v", k, err)
		}
	}
	for _, k := range []string{serviceKey("c1", "api"), serviceKey("c1", "recent"), serviceKey("c1", "legacy"),
		instanceKey("c1", "busy"), instanceKey("c1", "legacy"), instanceKey("c1", "live"),
		keyClusters + "used", keyClusters + "legacy", keyClusters + "c1"} {
		if _, err := st.Get(ctx, k); err != nil {
			t.Errorf("%s purged: %v", k, err)
		}
	}
	// Records without a time got the collection's.
	if r, _, _ := s.getService(ctx, "c1", "legacy"); r.InactiveAt == nil || !r.InactiveAt.Equal(now) {
		t.Errorf("legacy service inactiveAt %v", r.InactiveAt)
	}
	if v, err := s.instanceView(ctx, "c1", "legacy"); err != nil || v.Rec.DeregisteredAt == nil || !v.Rec.DeregisteredAt.Equal(now) {
		t.Errorf("legacy instance deregisteredAt: %v", err)
	}
	if c, _, _ := s.getCluster(ctx, "legacy", true); c.InactiveAt == nil || !c.InactiveAt.Equal(now) {
		t.Errorf("legacy cluster inactiveAt %v", c.InactiveAt)
	}

	// The purged service is MISSING; the others answer as before.
	ds, err := s.DescribeServices(ctx, &ecsapi.DescribeServicesRequest{Cluster: ptr("c1"), Services: []string{"web", "api", "recent"}})
	if err != nil || len(ds.Services) != 2 || len(ds.Failures) != 1 || deref(ds.Failures[0].Reason) != "MISSING" ||
		deref(ds.Failures[0].Arn) != s.serviceARN("c1", "web") {
		t.Fatalf("describe after purge: %v %+v", err, ds)
	}
	// The purged credential no longer authenticates, on either server.
	if _, ok, err := s.AgentCredential(ctx, "ABIAGONE"); ok || err != nil {
		t.Fatalf("credential after the purge: %v %v", ok, err)
	}
	cred, ok, _ := other.AgentCredential(ctx, "ABIAGONE") // still cached there
	if !ok {
		t.Fatal("the other server's cache lost the credential")
	}
	if _, err := other.OpenAssignments(ctx, cred, 0); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("assignments on a purged instance: %v", err)
	}
	if _, ok, _ := other.AgentCredential(ctx, "ABIAGONE"); ok {
		t.Fatal("the other server still knows the purged credential")
	}

	// Names are reusable: an INACTIVE one before its purge, a purged one
	// after. A re-created service is not purged.
	create("recent")
	create("web")
	got, err = taskgc.New(st, taskgc.Config{Retention: time.Hour, InstancePurged: s.InstancePurged}).Collect(ctx, now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Two hours on: the service and the cluster stamped above, the used
	// cluster's service, then the cluster; the busy instance's task, then
	// the instance; and the legacy instance.
	if got != (taskgc.Stats{Tasks: 1, Services: 2, Instances: 2, Clusters: 2}) {
		t.Fatalf("second collection %+v", got)
	}
	for _, name := range []string{"api", "recent", "web"} {
		if r, _, err := s.getService(ctx, "c1", name); err != nil || r.Status != deploy.ServiceActive {
			t.Errorf("service %s after the second collection: %v %s", name, err, r.Status)
		}
	}
	if _, err := s.CreateCluster(ctx, &ecsapi.CreateClusterRequest{ClusterName: ptr("empty")}); err != nil {
		t.Fatalf("re-create a purged cluster: %v", err)
	}
	if c, _, err := s.getCluster(ctx, "empty", false); err != nil || c.InactiveAt != nil {
		t.Fatalf("re-created cluster: %v %+v", err, c)
	}
}
