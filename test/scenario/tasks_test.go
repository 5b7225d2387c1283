package scenario

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/store"
)

// These scenarios need no Docker: container instances are written into
// the store the way JoinInstance writes them, with an agent presence key
// under a lease standing in for a connected agent.

type fakeInstance struct {
	id, az    string
	cpu, mem  int
	connected bool
	attrs     map[string]string
}

// addInstance registers a fake container instance in cluster and returns
// its ARN.
func addInstance(t *testing.T, s *berthtest.Server, cluster string, fi fakeInstance) string {
	t.Helper()
	cx := ctx(t)
	arn := "arn:aws:ecs:us-east-1:000000000000:container-instance/" + cluster + "/" + fi.id
	attrs := map[string]string{
		"ecs.os-type":           "linux",
		"ecs.os-family":         "LINUX",
		"ecs.cpu-architecture":  "x86_64",
		"ecs.instance-type":     "berth.host",
		"ecs.availability-zone": fi.az,
	}
	for v := 17; v <= 44; v++ {
		attrs["com.amazonaws.ecs.capability.docker-remote-api.1."+strconv.Itoa(v)] = ""
	}
	for k, v := range fi.attrs {
		attrs[k] = v
	}
	rec := map[string]any{
		"id": fi.id, "arn": arn, "cluster": cluster, "ec2InstanceId": "i-" + fi.id[:17],
		"hostname": "host-" + fi.id[:4], "status": "ACTIVE",
		"registered": map[string]any{"cpu": fi.cpu, "memory": fi.mem, "reservedPorts": []int{22, 2375, 2376, 51678, 51679},
			"osType": "linux", "cpuArch": "x86_64"},
		"attributes":   attrs,
		"versionInfo":  map[string]any{"agentVersion": "1.0.0", "dockerVersion": "27.0.1"},
		"registeredAt": time.Now().UTC(),
		"tags":         []map[string]string{{"key": "rack", "value": "r1"}},
		"accessKeyId":  "ABIA" + fi.id[:16],
		"version":      1,
	}
	b, _ := json.Marshal(rec)
	st := s.Daemon.Store()
	ops := []store.Op{store.Put("/berth/ecs/instances/"+cluster+"/"+fi.id, b)}
	if fi.connected {
		lease, err := st.Grant(cx, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, store.PutWithLease("/berth/ecs/agents/"+fi.id, []byte(`{}`), lease))
	}
	if _, err := st.Txn(cx, nil, ops...); err != nil {
		t.Fatal(err)
	}
	return arn
}

func instID(n int) string { return fmt.Sprintf("%032x", n+0xabc0000) }

// tasksSetup starts Berth with a cluster, a task definition web (256 MiB)
// and n connected instances of 1024 CPU units and 1024 MiB.
func tasksSetup(t *testing.T, cluster string, n int) (*berthtest.Server, *ecs.Client, []string) {
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := ctx(t)
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterTaskDefinition(cx, webTaskDef("web")); err != nil {
		t.Fatal(err)
	}
	var arns []string
	for i := range n {
		az := []string{"us-east-1a", "us-east-1b"}[i%2]
		arns = append(arns, addInstance(t, s, cluster, fakeInstance{id: instID(i), az: az, cpu: 1024, mem: 1024, connected: true}))
	}
	return s, c, arns
}

func TestRunDescribeListStopTasks(t *testing.T) {
	_, c, insts := tasksSetup(t, "batch", 2)
	cx := ctx(t)

	run, err := c.RunTask(cx, &ecs.RunTaskInput{
		Cluster: aws.String("batch"), TaskDefinition: aws.String("web"), Count: aws.Int32(3),
		StartedBy: aws.String("nightly"), Tags: []types.Tag{{Key: aws.String("job"), Value: aws.String("n1")}},
		PropagateTags: types.PropagateTagsTaskDefinition,
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{
			Name: aws.String("web"), Command: []string{"echo", "hi"},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Tasks) != 3 || len(run.Failures) != 0 {
		t.Fatalf("run: %d tasks, failures %+v", len(run.Tasks), run.Failures)
	}
	for _, tk := range run.Tasks {
		arn := aws.ToString(tk.TaskArn)
		if len(arn) != len("arn:aws:ecs:us-east-1:000000000000:task/batch/")+32 {
			t.Fatalf("task ARN %s", arn)
		}
		if aws.ToString(tk.LastStatus) != "PROVISIONING" || aws.ToString(tk.DesiredStatus) != "RUNNING" || tk.Version != 1 ||
			aws.ToString(tk.Group) != "family:web" || tk.LaunchType != types.LaunchTypeEc2 || aws.ToString(tk.StartedBy) != "nightly" {
			t.Fatalf("new task %+v", tk)
		}
		if !slices.Contains(insts, aws.ToString(tk.ContainerInstanceArn)) || aws.ToString(tk.AvailabilityZone) == "" || tk.CreatedAt == nil {
			t.Fatalf("placement fields %+v", tk)
		}
		if len(tk.Containers) != 1 || aws.ToString(tk.Containers[0].Name) != "web" || aws.ToString(tk.Containers[0].LastStatus) != "PENDING" ||
			aws.ToString(tk.Containers[0].Memory) != "256" || aws.ToString(tk.Containers[0].Image) != "nginx:1.27" {
			t.Fatalf("containers %+v", tk.Containers)
		}
		if len(tk.Tags) != 1 || tk.Overrides == nil || len(tk.Overrides.ContainerOverrides[0].Command) != 2 {
			t.Fatalf("tags/overrides %+v %+v", tk.Tags, tk.Overrides)
		}
	}
	first := aws.ToString(run.Tasks[0].TaskArn)

	desc, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Cluster: aws.String("batch"),
		Tasks: []string{first, "0123456789abcdef0123456789abcdef"}, Include: []types.TaskField{types.TaskFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Tasks) != 1 || len(desc.Failures) != 1 || aws.ToString(desc.Failures[0].Reason) != "MISSING" ||
		aws.ToString(desc.Failures[0].Arn) != "arn:aws:ecs:us-east-1:000000000000:task/batch/0123456789abcdef0123456789abcdef" {
		t.Fatalf("describe %+v", desc)
	}
	if aws.ToString(desc.Tasks[0].TaskArn) != first || len(desc.Tasks[0].Tags) != 1 || desc.Tasks[0].HealthStatus != types.HealthStatusUnknown {
		t.Fatalf("described task %+v", desc.Tasks[0])
	}

	list := func(in *ecs.ListTasksInput) []string {
		t.Helper()
		in.Cluster = aws.String("batch")
		var all []string
		p := ecs.NewListTasksPaginator(c, in)
		for p.HasMorePages() {
			out, err := p.NextPage(cx)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, out.TaskArns...)
		}
		return all
	}
	if got := list(&ecs.ListTasksInput{MaxResults: aws.Int32(2)}); len(got) != 3 {
		t.Fatalf("list all: %v", got)
	}
	if got := list(&ecs.ListTasksInput{Family: aws.String("web"), StartedBy: aws.String("nightly")}); len(got) != 3 {
		t.Fatalf("list family: %v", got)
	}
	if got := list(&ecs.ListTasksInput{Family: aws.String("other")}); len(got) != 0 {
		t.Fatalf("list other family: %v", got)
	}
	if got := list(&ecs.ListTasksInput{ServiceName: aws.String("svc")}); len(got) != 0 {
		t.Fatalf("list service: %v", got)
	}
	onFirst := list(&ecs.ListTasksInput{ContainerInstance: run.Tasks[0].ContainerInstanceArn})
	if !slices.Contains(onFirst, first) {
		t.Fatalf("list by instance: %v", onFirst)
	}

	// Cluster counters: PROVISIONING tasks are pending.
	cl, err := c.DescribeClusters(cx, &ecs.DescribeClustersInput{Clusters: []string{"batch"}})
	if err != nil {
		t.Fatal(err)
	}
	if cl.Clusters[0].PendingTasksCount != 3 || cl.Clusters[0].RegisteredContainerInstancesCount != 2 {
		t.Fatalf("cluster counters %+v", cl.Clusters[0])
	}

	stop, err := c.StopTask(cx, &ecs.StopTaskInput{Cluster: aws.String("batch"), Task: aws.String(first)})
	if err != nil {
		t.Fatal(err)
	}
	st := stop.Task
	if aws.ToString(st.DesiredStatus) != "STOPPED" || st.StopCode != types.TaskStopCodeUserInitiated ||
		aws.ToString(st.StoppedReason) != "Task stopped by user" || st.StoppingAt == nil || st.Version != 2 {
		t.Fatalf("stopped task %+v", st)
	}
	again, err := c.StopTask(cx, &ecs.StopTaskInput{Cluster: aws.String("batch"), Task: aws.String(first), Reason: aws.String("again")})
	if err != nil || aws.ToString(again.Task.StoppedReason) != "Task stopped by user" || again.Task.Version != 2 {
		t.Fatalf("second stop changed the task: %v %+v", err, again)
	}
	if got := list(&ecs.ListTasksInput{DesiredStatus: types.DesiredStatusStopped}); len(got) != 1 || got[0] != first {
		t.Fatalf("list stopped: %v", got)
	}
	if got := list(&ecs.ListTasksInput{}); len(got) != 2 {
		t.Fatalf("list running after stop: %v", got)
	}
	_, err = c.StopTask(cx, &ecs.StopTaskInput{Cluster: aws.String("batch"), Task: aws.String("0123456789abcdef0123456789abcdef")})
	wantCode(t, err, "InvalidParameterException")
}

func TestRunTaskFailuresAndErrors(t *testing.T) {
	s, c, _ := tasksSetup(t, "small", 2)
	cx := ctx(t)

	// 1024 MiB instances: a 2048 MiB task fits nowhere.
	big, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("small"), TaskDefinition: aws.String("web"), Count: aws.Int32(2),
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("web"), Memory: aws.Int32(2048)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(big.Tasks) != 0 || len(big.Failures) != 2 || aws.ToString(big.Failures[0].Reason) != "RESOURCE:MEMORY" || aws.ToString(big.Failures[0].Arn) == "" {
		t.Fatalf("expected RESOURCE:MEMORY failures, got %+v", big)
	}

	// memberOf that matches nothing.
	mo, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("small"), TaskDefinition: aws.String("web"),
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.availability-zone == eu-west-1a")}}})
	if err != nil || len(mo.Failures) != 1 || aws.ToString(mo.Failures[0].Reason) != "MemberOf placement constraint unsatisfied." {
		t.Fatalf("memberOf: %v %+v", err, mo)
	}
	// memberOf that matches one zone: every task goes there.
	az, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("small"), TaskDefinition: aws.String("web"), Count: aws.Int32(2),
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.availability-zone == us-east-1b")}},
		PlacementStrategy:    []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}}})
	if err != nil || len(az.Tasks) != 2 {
		t.Fatalf("memberOf zone: %v %+v", err, az)
	}
	for _, tk := range az.Tasks {
		if aws.ToString(tk.AvailabilityZone) != "us-east-1b" {
			t.Fatalf("task placed in %s", aws.ToString(tk.AvailabilityZone))
		}
	}

	_, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("small"), TaskDefinition: aws.String("web"),
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("nope")}}}})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("small"), TaskDefinition: aws.String("web"), LaunchType: types.LaunchTypeFargate})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("small"), TaskDefinition: aws.String("missing")})
	wantCode(t, err, "ClientException")
	_, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("nosuch"), TaskDefinition: aws.String("web")})
	wantCode(t, err, "ClusterNotFoundException")
	_, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("small"), TaskDefinition: aws.String("web"), Count: aws.Int32(11)})
	wantCode(t, err, "InvalidParameterException")

	// A Fargate-only task definition is refused clearly.
	fg := webTaskDef("fg")
	fg.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
	fg.NetworkMode = types.NetworkModeAwsvpc
	fg.Cpu, fg.Memory = aws.String("256"), aws.String("512")
	if _, err := c.RegisterTaskDefinition(cx, fg); err != nil {
		t.Fatal(err)
	}
	_, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("small"), TaskDefinition: aws.String("fg")})
	wantCode(t, err, "InvalidParameterException")

	// An INACTIVE revision is a ClientException.
	if _, err := c.DeregisterTaskDefinition(cx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("fg:1")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("small"), TaskDefinition: aws.String("fg:1")})
	wantCode(t, err, "ClientException")

	// No instances at all.
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("empty"), TaskDefinition: aws.String("web")})
	wantCode(t, err, "InvalidParameterException")

	// A disconnected agent takes nothing.
	addInstance(t, s, "empty", fakeInstance{id: instID(50), az: "us-east-1a", cpu: 1024, mem: 1024})
	ag, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("empty"), TaskDefinition: aws.String("web")})
	if err != nil || len(ag.Failures) != 1 || aws.ToString(ag.Failures[0].Reason) != "AGENT" {
		t.Fatalf("disconnected agent: %v %+v", err, ag)
	}
}

func TestRunTaskClientToken(t *testing.T) {
	_, c, _ := tasksSetup(t, "idem", 1)
	cx := ctx(t)
	in := &ecs.RunTaskInput{Cluster: aws.String("idem"), TaskDefinition: aws.String("web"), Count: aws.Int32(2), ClientToken: aws.String("tok-1")}
	a, err := c.RunTask(cx, in)
	if err != nil || len(a.Tasks) != 2 {
		t.Fatalf("first: %v %+v", err, a)
	}
	b, err := c.RunTask(cx, in)
	if err != nil || len(b.Tasks) != 2 {
		t.Fatalf("second: %v %+v", err, b)
	}
	arns := func(ts []types.Task) []string {
		var out []string
		for _, t := range ts {
			out = append(out, aws.ToString(t.TaskArn))
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(arns(a.Tasks), arns(b.Tasks)) {
		t.Fatalf("same token made new tasks: %v vs %v", arns(a.Tasks), arns(b.Tasks))
	}
	list, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("idem")})
	if err != nil || len(list.TaskArns) != 2 {
		t.Fatalf("tasks after retry: %v %v", err, list)
	}
	in2 := *in
	in2.Count = aws.Int32(1)
	_, err = c.RunTask(cx, &in2)
	wantCode(t, err, "ConflictException")

	// Concurrent RunTasks with one token make the tasks once.
	in3 := &ecs.RunTaskInput{Cluster: aws.String("idem"), TaskDefinition: aws.String("web"), ClientToken: aws.String("tok-2")}
	var wg sync.WaitGroup
	results := make([][]string, 4)
	for i := range results {
		wg.Go(func() {
			out, err := c.RunTask(cx, in3)
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = arns(out.Tasks)
		})
	}
	wg.Wait()
	for _, r := range results[1:] {
		if !slices.Equal(r, results[0]) || len(r) != 1 {
			t.Fatalf("concurrent token results differ: %v", results)
		}
	}
}

func TestConcurrentRunTasksNeverOvercommit(t *testing.T) {
	_, c, insts := tasksSetup(t, "race", 2)
	cx := ctx(t)
	// Two instances of 1024 MiB hold eight 256 MiB tasks; twelve callers
	// compete for them.
	const callers = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	placed, failed := 0, 0
	for range callers {
		wg.Go(func() {
			out, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("race"), TaskDefinition: aws.String("web")})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			placed += len(out.Tasks)
			for _, f := range out.Failures {
				if aws.ToString(f.Reason) != "RESOURCE:MEMORY" {
					t.Errorf("unexpected failure %+v", f)
				}
				failed++
			}
		})
	}
	wg.Wait()
	if placed != 8 || failed != callers-8 {
		t.Fatalf("placed %d, failed %d; want 8 and %d", placed, failed, callers-8)
	}
	list, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("race")})
	if err != nil {
		t.Fatal(err)
	}
	desc, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Cluster: aws.String("race"), Tasks: list.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	perInstance := map[string]int{}
	for _, tk := range desc.Tasks {
		m, _ := strconv.Atoi(aws.ToString(tk.Containers[0].Memory))
		perInstance[aws.ToString(tk.ContainerInstanceArn)] += m
	}
	ci, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("race"), ContainerInstances: insts})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ci.ContainerInstances {
		sum := perInstance[aws.ToString(in.ContainerInstanceArn)]
		if sum > 1024 {
			t.Fatalf("instance %s overcommitted: %d MiB", aws.ToString(in.ContainerInstanceArn), sum)
		}
		if rem := resource(in.RemainingResources, "MEMORY"); rem != 1024-int32(sum) || rem < 0 {
			t.Fatalf("remaining memory %d, tasks take %d", rem, sum)
		}
	}
}

func resource(rs []types.Resource, name string) int32 {
	for _, r := range rs {
		if aws.ToString(r.Name) == name {
			return r.IntegerValue
		}
	}
	return -1
}

func TestContainerInstanceAPIs(t *testing.T) {
	s, c, insts := tasksSetup(t, "fleet", 2)
	cx := ctx(t)
	off := addInstance(t, s, "fleet", fakeInstance{id: instID(9), az: "us-east-1a", cpu: 2048, mem: 4096})

	d, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("fleet"),
		ContainerInstances: []string{insts[0], instID(9), "ffffffffffffffffffffffffffffffff"},
		Include:            []types.ContainerInstanceField{types.ContainerInstanceFieldTags, types.ContainerInstanceFieldContainerInstanceHealth}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.ContainerInstances) != 2 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" {
		t.Fatalf("describe %+v", d)
	}
	on, offd := d.ContainerInstances[0], d.ContainerInstances[1]
	if !on.AgentConnected || offd.AgentConnected || aws.ToString(on.Status) != "ACTIVE" || len(on.Tags) != 1 || on.HealthStatus == nil ||
		aws.ToString(on.VersionInfo.AgentVersion) != "1.0.0" || on.RegisteredAt == nil || aws.ToString(on.Ec2InstanceId) == "" {
		t.Fatalf("instance shape %+v / %+v", on, offd)
	}
	if resource(on.RegisteredResources, "CPU") != 1024 || resource(on.RegisteredResources, "MEMORY") != 1024 || len(on.RegisteredResources) != 4 {
		t.Fatalf("registered resources %+v", on.RegisteredResources)
	}
	if !slices.ContainsFunc(on.Attributes, func(a types.Attribute) bool {
		return aws.ToString(a.Name) == "ecs.availability-zone" && aws.ToString(a.Value) == "us-east-1a"
	}) {
		t.Fatalf("attributes %+v", on.Attributes)
	}

	// One task on insts[0] (the only instance in us-east-1a with an agent).
	run, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("fleet"), TaskDefinition: aws.String("web"),
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.availability-zone == us-east-1a")}}})
	if err != nil || len(run.Tasks) != 1 || aws.ToString(run.Tasks[0].ContainerInstanceArn) != insts[0] {
		t.Fatalf("run: %v %+v", err, run)
	}
	d2, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("fleet"), ContainerInstances: insts[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if ci := d2.ContainerInstances[0]; resource(ci.RemainingResources, "MEMORY") != 768 || ci.PendingTasksCount != 1 || ci.Version < 2 {
		t.Fatalf("after run: %+v", ci)
	}

	listCI := func(in *ecs.ListContainerInstancesInput) []string {
		t.Helper()
		in.Cluster = aws.String("fleet")
		out, err := c.ListContainerInstances(cx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out.ContainerInstanceArns
	}
	if got := listCI(&ecs.ListContainerInstancesInput{}); len(got) != 3 {
		t.Fatalf("list: %v", got)
	}
	if got := listCI(&ecs.ListContainerInstancesInput{Filter: aws.String("attribute:ecs.availability-zone == us-east-1b")}); !slices.Equal(got, insts[1:2]) {
		t.Fatalf("filter az: %v", got)
	}
	if got := listCI(&ecs.ListContainerInstancesInput{Filter: aws.String("agentConnected == false")}); !slices.Equal(got, []string{off}) {
		t.Fatalf("filter agentConnected: %v", got)
	}
	if got := listCI(&ecs.ListContainerInstancesInput{Filter: aws.String("task:group == family:web")}); !slices.Equal(got, insts[:1]) {
		t.Fatalf("filter task group: %v", got)
	}
	_, err = c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{Cluster: aws.String("fleet"), Filter: aws.String("attribute:x ==")})
	wantCode(t, err, "InvalidParameterException")
	if got := listCI(&ecs.ListContainerInstancesInput{MaxResults: aws.Int32(2)}); len(got) != 2 {
		t.Fatalf("page: %v", got)
	}

	// Attributes.
	_, err = c.PutAttributes(cx, &ecs.PutAttributesInput{Cluster: aws.String("fleet"), Attributes: []types.Attribute{
		{Name: aws.String("stack"), Value: aws.String("prod"), TargetId: aws.String(insts[1])},
		{Name: aws.String("gpu"), TargetId: aws.String(instID(1))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	la, err := c.ListAttributes(cx, &ecs.ListAttributesInput{Cluster: aws.String("fleet"), TargetType: types.TargetTypeContainerInstance,
		AttributeName: aws.String("stack"), AttributeValue: aws.String("prod")})
	if err != nil || len(la.Attributes) != 1 || aws.ToString(la.Attributes[0].TargetId) != insts[1] {
		t.Fatalf("list attributes: %v %+v", err, la)
	}
	if got := listCI(&ecs.ListContainerInstancesInput{Filter: aws.String("attribute:stack == prod and attribute:gpu exists")}); !slices.Equal(got, insts[1:2]) {
		t.Fatalf("filter custom attribute: %v", got)
	}
	var many []types.Attribute
	for i := range 11 {
		many = append(many, types.Attribute{Name: aws.String(fmt.Sprintf("a%d", i)), TargetId: aws.String(insts[1])})
	}
	_, err = c.PutAttributes(cx, &ecs.PutAttributesInput{Cluster: aws.String("fleet"), Attributes: many})
	wantCode(t, err, "AttributeLimitExceededException")
	_, err = c.PutAttributes(cx, &ecs.PutAttributesInput{Cluster: aws.String("fleet"), Attributes: many[:9]})
	wantCode(t, err, "AttributeLimitExceededException") // 2 + 9 > 10 on the instance
	_, err = c.PutAttributes(cx, &ecs.PutAttributesInput{Cluster: aws.String("fleet"), Attributes: []types.Attribute{
		{Name: aws.String("x"), TargetId: aws.String("ffffffffffffffffffffffffffffffff")}}})
	wantCode(t, err, "TargetNotFoundException")
	_, err = c.PutAttributes(cx, &ecs.PutAttributesInput{Cluster: aws.String("fleet"), Attributes: []types.Attribute{
		{Name: aws.String("ecs.availability-zone"), Value: aws.String("x"), TargetId: aws.String(insts[1])}}})
	wantCode(t, err, "InvalidParameterException")
	if _, err := c.DeleteAttributes(cx, &ecs.DeleteAttributesInput{Cluster: aws.String("fleet"), Attributes: []types.Attribute{
		{Name: aws.String("stack"), TargetId: aws.String(insts[1])}}}); err != nil {
		t.Fatal(err)
	}
	if got := listCI(&ecs.ListContainerInstancesInput{Filter: aws.String("attribute:stack exists")}); len(got) != 0 {
		t.Fatalf("deleted attribute still matches: %v", got)
	}

	// Draining: no new tasks there.
	up, err := c.UpdateContainerInstancesState(cx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String("fleet"),
		ContainerInstances: []string{insts[1], "ffffffffffffffffffffffffffffffff"}, Status: types.ContainerInstanceStatusDraining})
	if err != nil || len(up.ContainerInstances) != 1 || aws.ToString(up.ContainerInstances[0].Status) != "DRAINING" || len(up.Failures) != 1 {
		t.Fatalf("drain: %v %+v", err, up)
	}
	if got := listCI(&ecs.ListContainerInstancesInput{Status: types.ContainerInstanceStatusDraining}); !slices.Equal(got, insts[1:2]) {
		t.Fatalf("list draining: %v", got)
	}
	st, err := c.StartTask(cx, &ecs.StartTaskInput{Cluster: aws.String("fleet"), TaskDefinition: aws.String("web"),
		ContainerInstances: []string{insts[0], insts[1], off}})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, f := range st.Failures {
		reasons[aws.ToString(f.Arn)] = aws.ToString(f.Reason)
	}
	if len(st.Tasks) != 1 || aws.ToString(st.Tasks[0].ContainerInstanceArn) != insts[0] || reasons[insts[1]] != "DRAINING" || reasons[off] != "AGENT" {
		t.Fatalf("start task: %+v %v", st.Tasks, reasons)
	}

	// Deregistering an instance with tasks needs force.
	_, err = c.DeregisterContainerInstance(cx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("fleet"), ContainerInstance: aws.String(insts[0])})
	wantCode(t, err, "InvalidParameterException")
	dr, err := c.DeregisterContainerInstance(cx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("fleet"), ContainerInstance: aws.String(insts[0]), Force: aws.Bool(true)})
	if err != nil || aws.ToString(dr.ContainerInstance.Status) != "INACTIVE" {
		t.Fatalf("force deregister: %v %+v", err, dr)
	}
	stopped, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("fleet"), DesiredStatus: types.DesiredStatusStopped})
	if err != nil || len(stopped.TaskArns) != 2 {
		t.Fatalf("tasks of the deregistered instance: %v %+v", err, stopped)
	}
	if got := listCI(&ecs.ListContainerInstancesInput{}); len(got) != 2 || slices.Contains(got, insts[0]) {
		t.Fatalf("list after deregister: %v", got)
	}
	cl, err := c.DescribeClusters(cx, &ecs.DescribeClustersInput{Clusters: []string{"fleet"}})
	if err != nil || cl.Clusters[0].RegisteredContainerInstancesCount != 2 {
		t.Fatalf("cluster count: %v %+v", err, cl)
	}
	// An instance without tasks deregisters without force.
	if _, err := c.DeregisterContainerInstance(cx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("fleet"), ContainerInstance: aws.String(off)}); err != nil {
		t.Fatal(err)
	}
}

// TestTasksRunningAndStoppedWaiters: the SDK's tasks-running and
// tasks-stopped waiters (DescribeTasks polls reading lastStatus) finish on
// tasks run by agents (hollow nodes), and tasks-stopped waits for every
// task it is given.
func TestTasksRunningAndStoppedWaiters(t *testing.T) {
	e := startHollow(t, 2, []string{"us-east-1a"})
	cx := ctx(t)
	td := e.taskDef(t, "waiters", "busybox")
	rt, err := e.ecs.RunTask(cx, &ecs.RunTaskInput{TaskDefinition: aws.String(td), Count: aws.Int32(3)})
	if err != nil || len(rt.Tasks) != 3 {
		t.Fatalf("RunTask: %v %+v", err, rt)
	}
	var arns []string
	for _, tk := range rt.Tasks {
		arns = append(arns, aws.ToString(tk.TaskArn))
	}
	fast := func(o *ecs.TasksRunningWaiterOptions) { o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second }
	if err := ecs.NewTasksRunningWaiter(e.ecs, fast).Wait(cx, &ecs.DescribeTasksInput{Tasks: arns}, 30*time.Second); err != nil {
		t.Fatalf("tasks-running: %v", err)
	}
	for _, a := range arns[:2] {
		if _, err := e.ecs.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(a)}); err != nil {
			t.Fatal(err)
		}
	}
	fastStop := func(o *ecs.TasksStoppedWaiterOptions) { o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second }
	// The third task still runs: waiting for all three times out.
	if err := ecs.NewTasksStoppedWaiter(e.ecs, fastStop).Wait(cx, &ecs.DescribeTasksInput{Tasks: arns}, 3*time.Second); err == nil {
		t.Fatal("tasks-stopped returned while a task was still RUNNING")
	}
	out, err := ecs.NewTasksStoppedWaiter(e.ecs, fastStop).WaitForOutput(cx, &ecs.DescribeTasksInput{Tasks: arns[:2]}, 30*time.Second)
	if err != nil {
		d, _ := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: arns})
		for _, tk := range d.Tasks {
			t.Logf("%s last %s desired %s", aws.ToString(tk.TaskArn), aws.ToString(tk.LastStatus), aws.ToString(tk.DesiredStatus))
		}
		t.Fatalf("tasks-stopped: %v", err)
	}
	for _, tk := range out.Tasks {
		if aws.ToString(tk.LastStatus) != "STOPPED" || tk.StopCode != types.TaskStopCodeUserInitiated {
			t.Fatalf("stopped task: %s %s", aws.ToString(tk.LastStatus), tk.StopCode)
		}
	}
}
