package scenario

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/errs"
)

// purgeRetention is the task retention of the purge scenario: INACTIVE
// services, container instances and clusters are purged that long after
// they became INACTIVE (the collector runs every second).
const purgeRetention = 4 * time.Second

// idleRunner runs nothing: the purge scenario's own agent never gets a
// task.
type idleRunner struct{ done chan struct{} }

func (idleRunner) Update(agentapi.Assignment) {}
func (r idleRunner) Done() <-chan struct{}    { return r.done }

// runAgent runs a until ctx ends or it stops by itself, and returns Run's
// answer; it fails the test if Run has not returned within 15 s.
func runAgent(t *testing.T, ctx context.Context, a *agent.Agent) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("the agent did not stop within 15 s")
		return nil
	}
}

// TestPurgeOfInactiveServicesInstancesAndClusters: DeleteService,
// DeregisterContainerInstance and DeleteCluster leave INACTIVE records
// that stay describable for the retention and are then purged, answered
// as MISSING; names can be used again; a purged instance's agent is
// refused and stops.
func TestPurgeOfInactiveServicesInstancesAndClusters(t *testing.T) {
	e := startHollowWith(t, func(c *daemon.Config) { c.TaskRetention = purgeRetention }, 2, []string{"us-east-1a", "us-east-1b"})
	cx := ctx(t)
	c := e.ecs
	td := e.taskDef(t, "purge-web", "nginx")
	createService := func(name string, n int32) {
		t.Helper()
		if _, err := c.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String(name), TaskDefinition: aws.String(td),
			DesiredCount: aws.Int32(n)}); err != nil {
			t.Fatalf("create service %s: %v", name, err)
		}
	}
	createService("web", 2)
	createService("api", 1)
	e.waitStable(t, "web", 30*time.Second)
	e.waitStable(t, "api", 30*time.Second)

	// Services: web is deleted, INACTIVE, then purged; api is untouched.
	if _, err := c.DeleteService(cx, &ecs.DeleteServiceInput{Service: aws.String("web"), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "web INACTIVE", 20*time.Second, func() bool { return aws.ToString(e.describe(t, "web").Status) == "INACTIVE" })
	kv, err := e.s.Daemon.Store().Get(cx, "/berth/ecs/services/default/web")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		InactiveAt *time.Time `json:"inactiveAt"`
	}
	if err := json.Unmarshal(kv.Value, &rec); err != nil || rec.InactiveAt == nil {
		t.Fatalf("INACTIVE service record without inactiveAt: %s", kv.Value)
	}
	var ds *ecs.DescribeServicesOutput
	eventuallyTrue(t, "web purged", 3*purgeRetention, func() bool {
		var err error
		ds, err = c.DescribeServices(cx, &ecs.DescribeServicesInput{Services: []string{"web", "api"}})
		if err != nil {
			t.Fatal(err)
		}
		return len(ds.Failures) > 0
	})
	if kept := time.Since(*rec.InactiveAt); kept < purgeRetention {
		t.Fatalf("web purged %s after it became INACTIVE; the retention is %s", kept, purgeRetention)
	}
	if len(ds.Failures) != 1 || aws.ToString(ds.Failures[0].Reason) != "MISSING" ||
		aws.ToString(ds.Failures[0].Arn) != "arn:aws:ecs:us-east-1:000000000000:service/default/web" ||
		len(ds.Services) != 1 || aws.ToString(ds.Services[0].ServiceName) != "api" || aws.ToString(ds.Services[0].Status) != "ACTIVE" {
		t.Fatalf("describe after the purge: %+v %+v", ds.Services, ds.Failures)
	}
	ls, err := c.ListServices(cx, &ecs.ListServicesInput{})
	if err != nil || len(ls.ServiceArns) != 1 || ls.ServiceArns[0] != aws.ToString(ds.Services[0].ServiceArn) {
		t.Fatalf("list after the purge: %v %v", err, ls)
	}
	_, err = c.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), DesiredCount: aws.Int32(1)})
	wantCode(t, err, "ServiceNotFoundException")
	// The name is free again, and the new service runs.
	createService("web", 1)
	e.waitStable(t, "web", 30*time.Second)
	if svc := e.describe(t, "api"); svc.RunningCount != 1 {
		t.Fatalf("api after the purge: %+v", svc)
	}

	// Container instances: an agent joins cluster purge and stops; its
	// instance is deregistered. Until the purge the agent is told it was
	// deregistered; after it, its credential is unknown. Both times the
	// agent stops with that error.
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("purge")}); err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{Endpoint: e.s.Endpoint, Region: e.s.Region, StateDir: t.TempDir(), JoinToken: e.token,
		NewRunner: func(agentapi.Assignment, func(agentapi.TaskReport)) agent.Runner {
			return idleRunner{make(chan struct{})}
		},
		Join: agentapi.JoinRequest{Cluster: "purge", Hostname: "purge-1",
			Resources: agentapi.Resources{CPU: 1024, MemoryMiB: 1024, OSType: "linux", CPUArch: "x86_64"}},
		Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	newAgent := func() *agent.Agent {
		t.Helper()
		a, err := agent.New(cx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := newAgent()
	st := a.State()
	actx, stop := context.WithCancel(cx)
	go func() {
		select {
		case <-a.Ready():
		case <-time.After(10 * time.Second):
		}
		stop()
	}()
	if err := runAgent(t, actx, a); err != nil {
		t.Fatalf("first run: %v", err)
	}
	deregistered := time.Now()
	dr, err := c.DeregisterContainerInstance(cx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("purge"),
		ContainerInstance: aws.String(st.ContainerInstanceArn)})
	if err != nil || aws.ToString(dr.ContainerInstance.Status) != "INACTIVE" {
		t.Fatalf("deregister: %v %+v", err, dr)
	}
	if err := runAgent(t, cx, newAgent()); !errs.Is(err, errs.Forbidden) {
		t.Fatalf("agent of a deregistered instance: %v", err)
	}
	describeInstance := func() *ecs.DescribeContainerInstancesOutput {
		out, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("purge"),
			ContainerInstances: []string{st.ContainerInstanceArn}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := describeInstance(); len(out.ContainerInstances) != 1 || aws.ToString(out.ContainerInstances[0].Status) != "INACTIVE" {
		t.Fatalf("deregistered instance: %+v %+v", out.ContainerInstances, out.Failures)
	}
	var di *ecs.DescribeContainerInstancesOutput
	eventuallyTrue(t, "instance purged", 3*purgeRetention, func() bool { di = describeInstance(); return len(di.Failures) > 0 })
	if kept := time.Since(deregistered); kept < purgeRetention {
		t.Fatalf("instance purged %s after its deregistration; the retention is %s", kept, purgeRetention)
	}
	if len(di.ContainerInstances) != 0 || aws.ToString(di.Failures[0].Reason) != "MISSING" || aws.ToString(di.Failures[0].Arn) != st.ContainerInstanceArn {
		t.Fatalf("describe the purged instance: %+v %+v", di.ContainerInstances, di.Failures)
	}
	old := &agentapi.Client{Endpoint: e.s.Endpoint, Region: e.s.Region, AccessKeyID: st.AccessKeyID, SecretAccessKey: st.SecretAccessKey}
	err = old.Assignments(cx, 0, func(agentapi.Event) error { return nil })
	if !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("assignments with the purged credential: %v", err)
	}
	if err := old.Report(cx, agentapi.Report{}); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("report with the purged credential: %v", err)
	}
	if err := runAgent(t, cx, newAgent()); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("agent of a purged instance: %v", err)
	}

	// Clusters: deleted, INACTIVE and describable, then purged; the name
	// can be created again.
	if _, err := c.DeleteCluster(cx, &ecs.DeleteClusterInput{Cluster: aws.String("purge")}); err != nil {
		t.Fatal(err)
	}
	describeCluster := func() *ecs.DescribeClustersOutput {
		out, err := c.DescribeClusters(cx, &ecs.DescribeClustersInput{Clusters: []string{"purge", "default"}})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := describeCluster(); len(out.Clusters) != 2 || aws.ToString(out.Clusters[0].Status) != "INACTIVE" {
		t.Fatalf("deleted cluster: %+v", out.Clusters)
	}
	var dc *ecs.DescribeClustersOutput
	eventuallyTrue(t, "cluster purged", 3*purgeRetention, func() bool { dc = describeCluster(); return len(dc.Failures) > 0 })
	if len(dc.Clusters) != 1 || aws.ToString(dc.Clusters[0].ClusterName) != "default" || aws.ToString(dc.Failures[0].Reason) != "MISSING" {
		t.Fatalf("describe the purged cluster: %+v %+v", dc.Clusters, dc.Failures)
	}
	lc, err := c.ListClusters(cx, &ecs.ListClustersInput{})
	if err != nil || slices.ContainsFunc(lc.ClusterArns, func(a string) bool { return a == "arn:aws:ecs:us-east-1:000000000000:cluster/purge" }) {
		t.Fatalf("list clusters: %v %v", err, lc)
	}
	cc, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("purge")})
	if err != nil || aws.ToString(cc.Cluster.Status) != "ACTIVE" {
		t.Fatalf("re-create the purged cluster: %v %+v", err, cc)
	}
}
