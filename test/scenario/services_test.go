package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/hollow"
	"github.com/berthdev/berth/internal/store"
)

// Service scenarios. These are SCHEDULER-LOGIC tests on HOLLOW NODES: the
// container instances are real agent shells (join, assignment stream,
// reports) with a simulated task runner and no Docker (internal/hollow).
// They prove the service scheduler's behaviour through the AWS SDK; they
// do not prove that containers run.

type hollowEnv struct {
	s     *berthtest.Server
	ecs   *ecs.Client
	nodes *hollow.Nodes
	token string
}

func startHollow(t *testing.T, n int, azs []string, failImages ...string) *hollowEnv {
	t.Helper()
	return startHollowWith(t, nil, n, azs, failImages...)
}

// startHollowWith is startHollow on a server whose configuration mod
// adjusts.
func startHollowWith(t *testing.T, mod func(*daemon.Config), n int, azs []string, failImages ...string) *hollowEnv {
	t.Helper()
	s := berthtest.Start(t, mod)
	cx := ctx(t)
	tok, err := agentgw.CreateJoinToken(cx, s.Endpoint, s.Region, s.Creds.AccessKeyID, s.Creds.SecretAccessKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := hollow.Start(cx, hollow.Config{
		Endpoint: s.Endpoint, Region: s.Region, JoinToken: tok.Token, Count: n, AZs: azs,
		Delays:     hollow.Delays{Pull: 50 * time.Millisecond, Start: 50 * time.Millisecond, Stop: 50 * time.Millisecond},
		FailImages: failImages, StateDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nodes.Close)
	return &hollowEnv{s: s, ecs: ecs.NewFromConfig(s.AWSConfig()), nodes: nodes, token: tok.Token}
}

func (e *hollowEnv) taskDef(t *testing.T, family, image string) string {
	t.Helper()
	out, err := e.ecs.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("web"), Image: aws.String(image),
			Memory: aws.Int32(128), Cpu: 128, Essential: aws.Bool(true)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func (e *hollowEnv) describe(t *testing.T, name string) types.Service {
	t.Helper()
	out, err := e.ecs.DescribeServices(ctx(t), &ecs.DescribeServicesInput{Services: []string{name}, Include: []types.ServiceField{types.ServiceFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Services) != 1 {
		t.Fatalf("describe %s: %+v", name, out.Failures)
	}
	return out.Services[0]
}

// waitStable waits as `aws ecs wait services-stable` does: one deployment
// and runningCount == desiredCount.
func (e *hollowEnv) waitStable(t *testing.T, name string, within time.Duration) types.Service {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		svc := e.describe(t, name)
		if len(svc.Deployments) == 1 && svc.RunningCount == svc.DesiredCount && aws.ToString(svc.Status) == "ACTIVE" {
			return svc
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(svc, "", " ")
			t.Fatalf("service %s not stable after %s:\n%s", name, within, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func eventuallyTrue(t *testing.T, what string, within time.Duration, f func() bool) {
	t.Helper()
	within = berthtest.Scale(within)
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type storedTask struct {
	ID            string `json:"id"`
	InstanceID    string `json:"instanceId"`
	Group         string `json:"group"`
	StartedBy     string `json:"startedBy"`
	TaskDef       string `json:"taskDefinitionArn"`
	DesiredStatus string `json:"desiredStatus"`
	LastStatus    string `json:"lastStatus"`
	StopCode      string `json:"stopCode"`
	StoppedReason string `json:"stoppedReason"`
}

func serviceTasks(t *testing.T, st store.Store, name string) []storedTask {
	res, err := st.List(context.Background(), "/berth/ecs/tasks/default/", store.ListOptions{})
	if err != nil {
		t.Error(err)
		return nil
	}
	var out []storedTask
	for _, kv := range res.KVs {
		var tk storedTask
		if json.Unmarshal(kv.Value, &tk) == nil && tk.Group == "service:"+name {
			out = append(out, tk)
		}
	}
	return out
}

// sampleBounds checks, every 20 ms until stop is called, that healthy
// (desired and observed RUNNING) tasks stay >= minHealthy and tasks not
// yet STOPPED stay <= maxTasks.
func sampleBounds(t *testing.T, st store.Store, name string, minHealthy, maxTasks int) (stop func() int) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	samples := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			healthy, occupying := 0, 0
			for _, tk := range serviceTasks(t, st, name) {
				if tk.DesiredStatus == "RUNNING" && tk.LastStatus == "RUNNING" {
					healthy++
				}
				if tk.LastStatus != "STOPPED" {
					occupying++
				}
			}
			samples++
			if healthy < minHealthy {
				t.Errorf("healthy tasks %d < minimum %d", healthy, minHealthy)
			}
			if occupying > maxTasks {
				t.Errorf("RUNNING+PENDING tasks %d > maximum %d", occupying, maxTasks)
			}
		}
	}()
	return func() int { close(done); wg.Wait(); return samples }
}

func hasEvent(svc types.Service, substr string) bool {
	return slices.ContainsFunc(svc.Events, func(e types.ServiceEvent) bool { return strings.Contains(aws.ToString(e.Message), substr) })
}

func TestServiceLifecycleOnHollowNodes(t *testing.T) {
	e := startHollow(t, 3, []string{"zone-a", "zone-b", "zone-c"})
	cx := ctx(t)
	st := e.s.Daemon.Store()
	td1 := e.taskDef(t, "web", "nginx:1")

	// Errors first.
	_, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String("web"), Cluster: aws.String("nope"), DesiredCount: aws.Int32(1)})
	wantCode(t, err, "ClusterNotFoundException")
	_, err = e.ecs.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("ghost"), DesiredCount: aws.Int32(1)})
	wantCode(t, err, "ServiceNotFoundException")

	// Family without revision: the latest ACTIVE revision.
	out, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{
		ServiceName: aws.String("web"), TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(3),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}, PropagateTags: types.PropagateTagsService,
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(150)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Service.TaskDefinition) != td1 || len(out.Service.Deployments) != 1 || aws.ToString(out.Service.Deployments[0].Status) != "PRIMARY" {
		t.Fatalf("created %+v", out.Service)
	}
	dep1 := aws.ToString(out.Service.Deployments[0].Id)
	if !strings.HasPrefix(dep1, "ecs-svc/") || len(dep1) != len("ecs-svc/")+19 {
		t.Fatalf("deployment id %q", dep1)
	}
	_, err = e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String("web"), DesiredCount: aws.Int32(1)})
	wantCode(t, err, "InvalidParameterException")

	svc := e.waitStable(t, "web", 20*time.Second)
	if svc.RunningCount != 3 || !hasEvent(svc, "(service web) has reached a steady state.") || !hasEvent(svc, "(service web) has started 3 tasks:") {
		t.Fatalf("service %+v events %+v", svc, svc.Events)
	}
	if aws.ToString(svc.Events[0].Message) != "(service web) has reached a steady state." {
		t.Fatalf("events not newest first: %q", aws.ToString(svc.Events[0].Message))
	}
	if len(svc.Tags) != 1 {
		t.Fatalf("tags %+v", svc.Tags)
	}
	// Tasks: startedBy the deployment, group service:web, spread over zones.
	tasks := serviceTasks(t, st, "web")
	insts := map[string]bool{}
	for _, tk := range tasks {
		if tk.StartedBy != dep1 || tk.TaskDef != td1 {
			t.Fatalf("task %+v", tk)
		}
		insts[tk.InstanceID] = true
	}
	if len(insts) != 3 {
		t.Fatalf("3 tasks on %d instances; want spread over 3 zones", len(insts))
	}
	lt, err := e.ecs.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String("web")})
	if err != nil || len(lt.TaskArns) != 3 {
		t.Fatalf("list tasks %v %v", lt, err)
	}
	dt, err := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: lt.TaskArns[:1], Include: []types.TaskField{types.TaskFieldTags}})
	if err != nil || len(dt.Tasks[0].Tags) != 1 || aws.ToString(dt.Tasks[0].Group) != "service:web" {
		t.Fatalf("describe task %+v %v", dt, err)
	}

	// Scale up and down.
	if _, err := e.ecs.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), DesiredCount: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	if svc := e.waitStable(t, "web", 20*time.Second); svc.RunningCount != 5 || aws.ToString(svc.Deployments[0].Id) != dep1 {
		t.Fatalf("scale up %+v", svc)
	}
	// ListTasks by service, two to a page, gives the same five tasks as
	// one page (the group index's pages are read in parallel).
	whole, err := e.ecs.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String("web")})
	if err != nil || len(whole.TaskArns) != 5 || whole.NextToken != nil {
		t.Fatalf("list tasks %+v %v", whole, err)
	}
	var paged []string
	for p := ecs.NewListTasksPaginator(e.ecs, &ecs.ListTasksInput{ServiceName: aws.String("web"), MaxResults: aws.Int32(2)}); p.HasMorePages(); {
		page, err := p.NextPage(cx)
		if err != nil || len(page.TaskArns) > 2 {
			t.Fatalf("page %+v %v", page, err)
		}
		paged = append(paged, page.TaskArns...)
	}
	if !slices.Equal(paged, whole.TaskArns) {
		t.Fatalf("paged %v, whole %v", paged, whole.TaskArns)
	}
	if _, err := e.ecs.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), DesiredCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "scale-in to 4", 20*time.Second, func() bool {
		n := 0
		for _, tk := range serviceTasks(t, st, "web") {
			if tk.DesiredStatus == "RUNNING" {
				n++
			}
		}
		svc := e.describe(t, "web")
		return n == 4 && svc.RunningCount == 4 && len(svc.Deployments) == 1
	})
	svc = e.describe(t, "web")
	if !hasEvent(svc, "(service web) has stopped 1 running tasks:") {
		t.Fatalf("no scale-in event: %+v", svc.Events)
	}
	for _, tk := range serviceTasks(t, st, "web") {
		if tk.DesiredStatus == "STOPPED" && (tk.StopCode != "ServiceSchedulerInitiated" || tk.StoppedReason != "Scaling activity initiated by (deployment "+dep1+")") {
			t.Fatalf("stopped task %+v", tk)
		}
	}

	// Rolling deployment of a new revision: desired 4, min 50% (2), max 150% (6).
	td2 := e.taskDef(t, "web", "nginx:2")
	stop := sampleBounds(t, st, "web", 2, 6)
	up, err := e.ecs.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), TaskDefinition: aws.String(td2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Service.Deployments) != 2 || aws.ToString(up.Service.Deployments[0].TaskDefinition) != td2 {
		t.Fatalf("update %+v", up.Service.Deployments)
	}
	dep2 := aws.ToString(up.Service.Deployments[0].Id)
	svc = e.waitStable(t, "web", 30*time.Second)
	if n := stop(); n < 5 {
		t.Fatalf("only %d samples", n)
	}
	if aws.ToString(svc.Deployments[0].Id) != dep2 || aws.ToString((*string)(&svc.Deployments[0].RolloutState)) != "COMPLETED" {
		t.Fatalf("deployment %+v", svc.Deployments)
	}
	if !hasEvent(svc, "(service web) (deployment "+dep2+") deployment completed.") {
		t.Fatalf("events %+v", svc.Events)
	}
	for _, tk := range serviceTasks(t, st, "web") {
		if tk.DesiredStatus == "RUNNING" && tk.TaskDef != td2 {
			t.Fatalf("old task still running: %+v", tk)
		}
	}

	// forceNewDeployment: same task definition, new deployment.
	up, err = e.ecs.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), ForceNewDeployment: true})
	if err != nil {
		t.Fatal(err)
	}
	dep3 := aws.ToString(up.Service.Deployments[0].Id)
	if dep3 == dep2 || len(up.Service.Deployments) != 2 {
		t.Fatalf("force new deployment %+v", up.Service.Deployments)
	}
	svc = e.waitStable(t, "web", 30*time.Second)
	if aws.ToString(svc.Deployments[0].Id) != dep3 {
		t.Fatalf("deployments %+v", svc.Deployments)
	}

	// ListServices, then delete: refused while scaled, forced drains it.
	ls, err := e.ecs.ListServices(cx, &ecs.ListServicesInput{})
	if err != nil || len(ls.ServiceArns) != 1 || !strings.HasSuffix(ls.ServiceArns[0], ":service/default/web") {
		t.Fatalf("list %+v %v", ls, err)
	}
	ls, _ = e.ecs.ListServices(cx, &ecs.ListServicesInput{SchedulingStrategy: types.SchedulingStrategyDaemon})
	if len(ls.ServiceArns) != 0 {
		t.Fatalf("daemon filter %+v", ls.ServiceArns)
	}
	_, err = e.ecs.DeleteService(cx, &ecs.DeleteServiceInput{Service: aws.String("web")})
	wantCode(t, err, "InvalidParameterException")
	del, err := e.ecs.DeleteService(cx, &ecs.DeleteServiceInput{Service: aws.String("web"), Force: aws.Bool(true)})
	if err != nil || aws.ToString(del.Service.Status) != "DRAINING" {
		t.Fatalf("delete %+v %v", del, err)
	}
	eventuallyTrue(t, "service INACTIVE", 20*time.Second, func() bool { return aws.ToString(e.describe(t, "web").Status) == "INACTIVE" })
	for _, tk := range serviceTasks(t, st, "web") {
		if tk.LastStatus != "STOPPED" {
			t.Fatalf("task left after delete: %+v", tk)
		}
	}
	ls, _ = e.ecs.ListServices(cx, &ecs.ListServicesInput{})
	if len(ls.ServiceArns) != 0 {
		t.Fatalf("inactive service listed: %v", ls.ServiceArns)
	}
	ds, _ := e.ecs.DescribeServices(cx, &ecs.DescribeServicesInput{Services: []string{"web", "ghost"}})
	if len(ds.Failures) != 1 || aws.ToString(ds.Failures[0].Reason) != "MISSING" {
		t.Fatalf("failures %+v", ds.Failures)
	}
	_, err = e.ecs.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), DesiredCount: aws.Int32(1)})
	wantCode(t, err, "ServiceNotActiveException")
}

func TestServiceCircuitBreakerRollsBackOnHollowNodes(t *testing.T) {
	e := startHollow(t, 2, []string{"zone-a", "zone-b"}, "broken")
	cx := ctx(t)
	good := e.taskDef(t, "api", "api:good")
	_, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{
		ServiceName: aws.String("api"), TaskDefinition: aws.String(good), DesiredCount: aws.Int32(2),
		DeploymentConfiguration: &types.DeploymentConfiguration{
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.waitStable(t, "api", 20*time.Second)
	bad := e.taskDef(t, "api", "registry.example/broken:1")
	up, err := e.ecs.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("api"), TaskDefinition: aws.String(bad)})
	if err != nil {
		t.Fatal(err)
	}
	badDep := aws.ToString(up.Service.Deployments[0].Id)
	eventuallyTrue(t, "rollback to the good task definition", 40*time.Second, func() bool {
		svc := e.describe(t, "api")
		return aws.ToString(svc.TaskDefinition) == good && aws.ToString(svc.Deployments[0].TaskDefinition) == good &&
			aws.ToString(svc.Deployments[0].Id) != badDep
	})
	svc := e.waitStable(t, "api", 30*time.Second)
	if !hasEvent(svc, "(deployment "+badDep+") deployment failed: tasks failed to start.") {
		t.Fatalf("events %+v", svc.Events)
	}
	for _, tk := range serviceTasks(t, e.s.Daemon.Store(), "api") {
		if tk.TaskDef == bad && tk.LastStatus != "STOPPED" {
			t.Fatalf("bad task not stopped: %+v", tk)
		}
	}
}

func TestDaemonServiceAcrossZonesOnHollowNodes(t *testing.T) {
	e := startHollow(t, 2, []string{"zone-a", "zone-b"})
	cx := ctx(t)
	st := e.s.Daemon.Store()
	td := e.taskDef(t, "logs", "fluent:1")
	_, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("logs"), TaskDefinition: aws.String(td),
		SchedulingStrategy: types.SchedulingStrategyDaemon, DesiredCount: aws.Int32(2)})
	wantCode(t, err, "InvalidParameterException")
	out, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("logs"), TaskDefinition: aws.String(td),
		SchedulingStrategy: types.SchedulingStrategyDaemon})
	if err != nil {
		t.Fatal(err)
	}
	dc := out.Service.DeploymentConfiguration
	if aws.ToInt32(dc.MinimumHealthyPercent) != 0 || aws.ToInt32(dc.MaximumPercent) != 100 {
		t.Fatalf("daemon defaults %+v", dc)
	}
	// The desired count is right from the start: services-stable cannot
	// pass on the 0 the controller has not yet replaced.
	if out.Service.DesiredCount != 2 {
		t.Fatalf("daemon desiredCount at create = %d, want 2 (two eligible instances)", out.Service.DesiredCount)
	}
	eventuallyTrue(t, "daemon desired count 2", 20*time.Second, func() bool { return e.describe(t, "logs").DesiredCount == 2 })
	svc := e.waitStable(t, "logs", 20*time.Second)
	if svc.DesiredCount != 2 {
		t.Fatalf("desired %d", svc.DesiredCount)
	}
	per := map[string]int{}
	for _, tk := range serviceTasks(t, st, "logs") {
		per[tk.InstanceID]++
	}
	if len(per) != 2 {
		t.Fatalf("tasks per instance %v", per)
	}
	// Drain one instance: it loses its daemon task.
	drained := e.nodes.Nodes[0].InstanceID
	if _, err := e.ecs.UpdateContainerInstancesState(cx, &ecs.UpdateContainerInstancesStateInput{
		ContainerInstances: []string{drained}, Status: types.ContainerInstanceStatusDraining}); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "daemon task gone from the drained instance", 20*time.Second, func() bool {
		svc := e.describe(t, "logs")
		for _, tk := range serviceTasks(t, st, "logs") {
			if tk.InstanceID == drained && tk.LastStatus != "STOPPED" {
				return false
			}
		}
		return svc.DesiredCount == 1 && svc.RunningCount == 1
	})
}

func TestReplicaServiceMovesOffDrainingInstanceOnHollowNodes(t *testing.T) {
	e := startHollow(t, 3, []string{"zone-a", "zone-b", "zone-c"})
	cx := ctx(t)
	st := e.s.Daemon.Store()
	td := e.taskDef(t, "web", "nginx:1")
	if _, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	e.waitStable(t, "web", 20*time.Second)
	drained := e.nodes.Nodes[1].InstanceID
	stop := sampleBounds(t, st, "web", 3, 6) // defaults: 100% / 200%
	if _, err := e.ecs.UpdateContainerInstancesState(cx, &ecs.UpdateContainerInstancesStateInput{
		ContainerInstances: []string{drained}, Status: types.ContainerInstanceStatusDraining}); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "tasks moved off the draining instance", 20*time.Second, func() bool {
		running := 0
		for _, tk := range serviceTasks(t, st, "web") {
			if tk.InstanceID == drained && tk.LastStatus != "STOPPED" {
				return false
			}
			if tk.LastStatus == "RUNNING" && tk.DesiredStatus == "RUNNING" {
				running++
			}
		}
		return running == 3
	})
	stop()
	e.waitStable(t, "web", 20*time.Second)
}

// TestLostInstanceTasksStopAndAreReplacedOnHollowNodes: the lost-host
// policy's time line on hollow nodes, with a short grace (1 s) and lost
// timeout (4 s): an agent stops → its service task runs elsewhere while it
// and the standalone task stay RUNNING; after the lost timeout both are
// STOPPED (TerminationNotice, the lost reason) and the service is stable
// without failures. A forced deregistration of an instance whose agent is
// away writes its tasks STOPPED at once.
func TestLostInstanceTasksStopAndAreReplacedOnHollowNodes(t *testing.T) {
	e := startHollowWith(t, func(c *daemon.Config) { c.DisconnectGrace, c.InstanceLostAfter = time.Second, 4*time.Second },
		3, []string{"zone-a", "zone-b", "zone-c"})
	cx := ctx(t)
	td := e.taskDef(t, "web", "nginx:1")
	if _, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(3),
		DeploymentConfiguration: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true}}}); err != nil {
		t.Fatal(err)
	}
	e.waitStable(t, "web", 20*time.Second)
	lost := e.nodes.Nodes[2]
	ci, err := e.ecs.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{ContainerInstances: []string{lost.InstanceID}})
	if err != nil || len(ci.ContainerInstances) != 1 {
		t.Fatalf("describe instance: %v %+v", err, ci)
	}
	ec2ID := aws.ToString(ci.ContainerInstances[0].Ec2InstanceId)

	onLost := func(tk types.Task) bool {
		return strings.HasSuffix(aws.ToString(tk.ContainerInstanceArn), "/"+lost.InstanceID)
	}
	webTasks := func(desired types.DesiredStatus) []types.Task {
		l, err := e.ecs.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String("web"), DesiredStatus: desired})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.TaskArns) == 0 {
			return nil
		}
		d, err := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: l.TaskArns})
		if err != nil {
			t.Fatal(err)
		}
		return d.Tasks
	}
	var svcTask string
	for _, tk := range webTasks(types.DesiredStatusRunning) {
		if onLost(tk) {
			svcTask = aws.ToString(tk.TaskArn)
		}
	}
	if svcTask == "" {
		t.Fatal("no service task on the instance to lose")
	}
	runOn := func(az string) string {
		run, err := e.ecs.RunTask(cx, &ecs.RunTaskInput{TaskDefinition: aws.String(td), PlacementConstraints: []types.PlacementConstraint{{
			Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.availability-zone == " + az)}}})
		if err != nil || len(run.Tasks) != 1 {
			t.Fatalf("run task in %s: %v %+v", az, err, run)
		}
		return aws.ToString(run.Tasks[0].TaskArn)
	}
	soloTask := runOn(lost.AZ)
	describe := func(arns ...string) []types.Task {
		d, err := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: arns})
		if err != nil || len(d.Tasks) != len(arns) {
			t.Fatalf("describe tasks: %v %+v", err, d)
		}
		return d.Tasks
	}
	eventuallyTrue(t, "standalone task RUNNING", 10*time.Second, func() bool {
		return aws.ToString(describe(soloTask)[0].LastStatus) == "RUNNING"
	})
	failedBefore := e.describe(t, "web").Deployments[0].FailedTasks

	start := time.Now()
	lost.Stop() // the agent goes away; its presence key goes with it
	var replacedAfter time.Duration
	eventuallyTrue(t, "service task replaced elsewhere", 10*time.Second, func() bool {
		n := 0
		for _, tk := range webTasks(types.DesiredStatusRunning) {
			if aws.ToString(tk.LastStatus) == "RUNNING" && !onLost(tk) {
				n++
			}
		}
		replacedAfter = time.Since(start)
		return n == 3
	})
	if time.Since(start) < 3*time.Second {
		for _, tk := range describe(svcTask, soloTask) {
			if aws.ToString(tk.LastStatus) != "RUNNING" || aws.ToString(tk.DesiredStatus) != "RUNNING" {
				t.Fatalf("task on the disconnected instance before the lost timeout: last %s desired %s", aws.ToString(tk.LastStatus), aws.ToString(tk.DesiredStatus))
			}
		}
	}
	var stoppedAfter time.Duration
	eventuallyTrue(t, "the lost instance's tasks STOPPED", 20*time.Second, func() bool {
		for _, tk := range describe(svcTask, soloTask) {
			if aws.ToString(tk.LastStatus) != "STOPPED" {
				return false
			}
		}
		stoppedAfter = time.Since(start)
		return true
	})
	wantReason := "Host EC2 (instance " + ec2ID + ") is unreachable: its agent has not reported for 4s."
	for _, tk := range describe(svcTask, soloTask) {
		if tk.StopCode != types.TaskStopCodeTerminationNotice || aws.ToString(tk.StoppedReason) != wantReason ||
			aws.ToString(tk.DesiredStatus) != "STOPPED" || tk.StoppedAt == nil || tk.ExecutionStoppedAt == nil || tk.StoppingAt == nil {
			b, _ := json.MarshalIndent(tk, "", " ")
			t.Fatalf("lost task:\n%s", b)
		}
		for _, c := range tk.Containers {
			if aws.ToString(c.LastStatus) != "STOPPED" {
				t.Fatalf("container %s of a STOPPED task is %s", aws.ToString(c.Name), aws.ToString(c.LastStatus))
			}
		}
	}
	if stoppedAfter < 4*time.Second || stoppedAfter > 10*time.Second {
		t.Errorf("tasks STOPPED %s after the agent stopped; want the lost timeout (4 s) and a few seconds", stoppedAfter)
	}
	svc := e.waitStable(t, "web", 20*time.Second)
	t.Logf("agent stopped -> service task RUNNING elsewhere in %s, its tasks STOPPED in %s",
		replacedAfter.Round(100*time.Millisecond), stoppedAfter.Round(100*time.Millisecond))
	if svc.RunningCount != 3 || svc.Deployments[0].FailedTasks != failedBefore || svc.Deployments[0].RolloutState == types.DeploymentRolloutStateFailed {
		t.Fatalf("service after the loss: running %d, deployment %+v (failed tasks before %d)", svc.RunningCount, svc.Deployments[0], failedBefore)
	}
	for _, ev := range svc.Events {
		if strings.Contains(aws.ToString(ev.Message), "unable to consistently start") || strings.Contains(aws.ToString(ev.Message), "deployment failed") {
			t.Fatalf("failure event after losing an instance: %s", aws.ToString(ev.Message))
		}
	}
	ci, err = e.ecs.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{ContainerInstances: []string{lost.InstanceID}})
	if err != nil || len(ci.ContainerInstances) != 1 {
		t.Fatalf("describe instance: %v %+v", err, ci)
	}
	if got := ci.ContainerInstances[0]; got.AgentConnected || aws.ToString(got.Status) != "ACTIVE" || got.RunningTasksCount != 0 || got.PendingTasksCount != 0 {
		t.Fatalf("lost instance: connected %v, status %s, running %d, pending %d", got.AgentConnected, aws.ToString(got.Status), got.RunningTasksCount, got.PendingTasksCount)
	}

	// Forced deregistration of an instance whose agent is away: its tasks
	// are STOPPED at once, with the deregistration's stop code.
	gone := e.nodes.Nodes[1]
	solo2 := runOn(gone.AZ)
	eventuallyTrue(t, "second standalone task RUNNING", 10*time.Second, func() bool {
		return aws.ToString(describe(solo2)[0].LastStatus) == "RUNNING"
	})
	gone.Stop()
	if _, err := e.ecs.DeregisterContainerInstance(cx, &ecs.DeregisterContainerInstanceInput{ContainerInstance: aws.String(gone.InstanceID), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	dereg := time.Now()
	eventuallyTrue(t, "the deregistered instance's task STOPPED", 3*time.Second, func() bool {
		return aws.ToString(describe(solo2)[0].LastStatus) == "STOPPED"
	})
	if tk := describe(solo2)[0]; tk.StopCode != types.TaskStopCodeUserInitiated || aws.ToString(tk.StoppedReason) != "Container instance deregistered" {
		t.Fatalf("task of the deregistered instance: %s %q", tk.StopCode, aws.ToString(tk.StoppedReason))
	}
	t.Logf("forced deregistration -> task STOPPED in %s", time.Since(dereg).Round(100*time.Millisecond))
}

func TestWaitServicesStableCLIOnHollowNodes(t *testing.T) {
	clis := berthtest.CLIs(t)
	e := startHollow(t, 1, []string{"zone-a"})
	cx := ctx(t)
	td := e.taskDef(t, "web", "nginx:1")
	if _, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	e.waitStable(t, "web", 20*time.Second)
	for _, c := range clis {
		if c.Name != "aws-v1" {
			continue
		}
		_, stderr, code := c.Run(t, e.s, "ecs", "wait", "services-stable", "--cluster", "default", "--services", "web")
		if code != 0 {
			t.Fatalf("%s wait services-stable: exit %d: %s", c.Name, code, stderr)
		}
		_, _, code = c.Run(t, e.s, "ecs", "wait", "services-stable", "--cluster", "default", "--services", "ghost")
		if code == 0 {
			t.Fatalf("%s wait services-stable on a MISSING service succeeded", c.Name)
		}
	}
}

// TestBenchServicesOnHollowNodes is the services benchmark: BERTH_BENCH=1
// runs it (sizes: BERTH_BENCH_NODES, default 1000; BERTH_BENCH_SERVICES,
// default 100; BERTH_BENCH_TASKS, default 20000 in total; BERTH_BENCH_MINUTES,
// default 30, gives up after that long). It reports committed placements
// per second (tasks created / time until the last was committed), the time
// until every service is stable, and the p99 latency of DescribeServices
// and ListTasks calls made throughout.
func TestBenchServicesOnHollowNodes(t *testing.T) {
	if os.Getenv("BERTH_BENCH") != "1" {
		t.Skip("set BERTH_BENCH=1 to run the services benchmark on hollow nodes")
	}
	envInt := func(k string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
			return v
		}
		return def
	}
	nNodes, nSvc, nTasks := envInt("BERTH_BENCH_NODES", 1000), envInt("BERTH_BENCH_SERVICES", 100), envInt("BERTH_BENCH_TASKS", 20000)
	t0 := time.Now()
	e := startHollow(t, nNodes, []string{"zone-a", "zone-b", "zone-c"})
	t.Logf("%d hollow nodes joined in %s", nNodes, time.Since(t0).Round(time.Millisecond))
	cx, cancel := context.WithTimeout(context.Background(), time.Duration(envInt("BERTH_BENCH_MINUTES", 30))*time.Minute)
	defer cancel()
	td := e.taskDef(t, "bench", "bench:1")
	per := nTasks / nSvc
	total := per * nSvc
	st := e.s.Daemon.Store()
	// countTasks counts the service tasks committed and those RUNNING.
	countTasks := func() (committed, running int) {
		res, err := st.List(cx, "/berth/ecs/tasks/", store.ListOptions{})
		if err != nil {
			return -1, -1
		}
		for _, kv := range res.KVs {
			var tr struct{ LastStatus string }
			if json.Unmarshal(kv.Value, &tr) == nil {
				committed++
				if tr.LastStatus == "RUNNING" {
					running++
				}
			}
		}
		return committed, running
	}
	// Committed placements: creations of assignment entries (small; one
	// per task, written in the task's transaction) seen on a watch.
	var mu sync.Mutex
	var allCommitted time.Duration
	created := 0
	wctx, wcancel := context.WithCancel(cx)
	defer wcancel()
	rev, err := st.Get(cx, "/berth/ecs/clusters/default")
	if err != nil {
		t.Fatal(err)
	}
	watch := st.Watch(wctx, "/berth/ecs/assign/", rev.ModRevision+1)
	start := time.Now()
	go func() {
		for wr := range watch {
			for _, ev := range wr.Events {
				if ev.Type == store.EventPut && ev.KV.Version == 1 {
					mu.Lock()
					if created++; created == total {
						allCommitted = time.Since(start)
					}
					mu.Unlock()
				}
			}
		}
	}()
	// Services are created ten at a time, as Terraform (parallelism 10)
	// or a CI pipeline would.
	names := make(chan string)
	var cwg sync.WaitGroup
	for range 10 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for name := range names {
				if _, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String(name),
					TaskDefinition: aws.String(td), DesiredCount: aws.Int32(int32(per))}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range nSvc {
		names <- fmt.Sprintf("svc-%03d", i)
	}
	close(names)
	cwg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d services created in %s", nSvc, time.Since(start).Round(time.Millisecond))
	var descLat, listLat []time.Duration
	done := make(chan struct{})
	var wg sync.WaitGroup
	sample := func(lat *[]time.Duration, call func(i int) error) {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			t0 := time.Now()
			if err := call(i); err != nil && cx.Err() == nil {
				t.Error(err)
			}
			mu.Lock()
			*lat = append(*lat, time.Since(t0))
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}
	wg.Add(3)
	go sample(&descLat, func(i int) error {
		_, err := e.ecs.DescribeServices(cx, &ecs.DescribeServicesInput{Services: []string{fmt.Sprintf("svc-%03d", i%nSvc)}})
		return err
	})
	go sample(&listLat, func(i int) error {
		_, err := e.ecs.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String(fmt.Sprintf("svc-%03d", i%nSvc))})
		return err
	})
	go func() { // progress
		defer wg.Done()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			// From the watch, not the store: reading 20,000 task records
			// here would load the store the run measures.
			mu.Lock()
			c := created
			mu.Unlock()
			t.Logf("%6.1fs: %d/%d tasks committed", time.Since(start).Seconds(), c, total)
		}
	}()
	for i := range nSvc {
		name := fmt.Sprintf("svc-%03d", i)
		for {
			out, err := e.ecs.DescribeServices(cx, &ecs.DescribeServicesInput{Services: []string{name}})
			if err != nil {
				t.Fatal(err)
			}
			s := out.Services[0]
			if len(s.Deployments) == 1 && s.RunningCount == s.DesiredCount {
				break
			}
			if cx.Err() != nil {
				c, r := countTasks()
				t.Fatalf("timed out after %s: %s running %d/%d; %d/%d tasks committed, %d RUNNING",
					time.Since(start).Round(time.Second), name, s.RunningCount, s.DesiredCount, c, total, r)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	close(done)
	wg.Wait()
	mu.Lock()
	if allCommitted == 0 {
		t.Errorf("saw %d task creations of %d", created, total)
		allCommitted = elapsed
	}
	mu.Unlock()
	p := func(lat []time.Duration, q int) time.Duration {
		slices.Sort(lat)
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, len(lat)*q/100)].Round(100 * time.Microsecond)
	}
	t.Logf("%d hollow nodes, %d services, %d tasks: all committed within %s (%.0f committed placements/s), all RUNNING and stable in %s (%.0f/s); "+
		"DescribeServices p50 %s p99 %s over %d calls; ListTasks p50 %s p99 %s over %d calls",
		nNodes, nSvc, total, allCommitted.Round(time.Millisecond), float64(total)/allCommitted.Seconds(),
		elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(),
		p(descLat, 50), p(descLat, 99), len(descLat), p(listLat, 50), p(listLat, 99), len(listLat))
}

// CreateService with a clientToken is idempotent (the same request again
// answers the same service; another request with the token is refused),
// and a service task stopped by hand is replaced.
func TestServiceClientTokenAndStopTaskByHandOnHollowNodes(t *testing.T) {
	e := startHollow(t, 3, []string{"zone-a", "zone-b", "zone-c"})
	cx := ctx(t)
	td := e.taskDef(t, "web", "web:1")
	in := &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(2), ClientToken: aws.String("token-1")}
	first, err := e.ecs.CreateService(cx, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.ecs.CreateService(cx, in)
	if err != nil || aws.ToString(again.Service.ServiceArn) != aws.ToString(first.Service.ServiceArn) {
		t.Fatalf("same request with the same clientToken: %+v %v", again, err)
	}
	other := *in
	other.DesiredCount = aws.Int32(3)
	_, err = e.ecs.CreateService(cx, &other)
	wantCode(t, err, "InvalidParameterException")
	if svc := e.waitStable(t, "web", 20*time.Second); svc.DesiredCount != 2 || svc.RunningCount != 2 {
		t.Fatalf("after the refused request: %+v", svc)
	}

	lt, err := e.ecs.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String("web")})
	if err != nil || len(lt.TaskArns) != 2 {
		t.Fatalf("list tasks %v %v", lt, err)
	}
	victim := lt.TaskArns[0]
	if _, err := e.ecs.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(victim), Reason: aws.String("by hand")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		lt, err = e.ecs.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String("web")})
		if err == nil && len(lt.TaskArns) == 2 && !slices.Contains(lt.TaskArns, victim) {
			if svc := e.describe(t, "web"); svc.RunningCount == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stopped task not replaced: %v %v", lt, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	dt, err := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: []string{victim}})
	if err != nil || len(dt.Tasks) != 1 || dt.Tasks[0].StopCode != types.TaskStopCodeUserInitiated ||
		aws.ToString(dt.Tasks[0].StoppedReason) != "by hand" {
		t.Fatalf("stopped task %+v %v", dt, err)
	}
}

// A service's placement constraints and strategies rule where its tasks
// go: memberOf keeps them in one zone, binpack on memory fills one
// instance before the next.
func TestServicePlacementRulesOnHollowNodes(t *testing.T) {
	e := startHollow(t, 6, []string{"zone-a", "zone-b", "zone-c"})
	cx := ctx(t)
	td := e.taskDef(t, "web", "web:1")
	instancesOf := func(name string) map[string]int {
		lt, err := e.ecs.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		dt, err := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: lt.TaskArns})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, tk := range dt.Tasks {
			out[aws.ToString(tk.ContainerInstanceArn)+" "+aws.ToString(tk.AvailabilityZone)]++
		}
		return out
	}
	if _, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("zoned"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(4), PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf,
			Expression: aws.String("attribute:ecs.availability-zone == zone-b")}}}); err != nil {
		t.Fatal(err)
	}
	e.waitStable(t, "zoned", 20*time.Second)
	zoned := instancesOf("zoned")
	for k, n := range zoned {
		if !strings.HasSuffix(k, " zone-b") {
			t.Fatalf("memberOf zone-b placed %d tasks on %s", n, k)
		}
	}
	if len(zoned) != 2 { // two instances in zone-b, spread over both
		t.Fatalf("4 tasks over the 2 zone-b instances: %v", zoned)
	}
	if _, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("packed"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(5), PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack,
			Field: aws.String("memory")}}}); err != nil {
		t.Fatal(err)
	}
	e.waitStable(t, "packed", 20*time.Second)
	if packed := instancesOf("packed"); len(packed) != 1 {
		t.Fatalf("binpack on memory used %d instances for 5 small tasks: %v", len(packed), packed)
	}
}
