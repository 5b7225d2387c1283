package scenario

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/capacityprovider"
	"github.com/berthdev/berth/internal/hollow"
)

func asgARNFor(pool string) string {
	return "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:7d1e0c55-3b1f-4c8e-9a52-0f6b7c2d9e10:autoScalingGroupName/" + pool
}

// TestASGCapacityProvidersOnHollowNodes drives `berth up` (the real
// binary) with the AWS CLIs and the Go SDK: Auto Scaling group capacity
// providers whose groups are pools of hollow nodes (the real agent shell
// with the pool attribute, no Docker); a cluster associating them with a
// default strategy; RunTask and a service placing each provider's share
// of tasks, by ECS's base/weight arithmetic, on that provider's pool,
// through scale-out, scale-in and a replacement; ECS's refusals.
func TestASGCapacityProvidersOnHollowNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	t.Parallel()
	clis := berthtest.CLIs(t)
	p := berthtest.StartProcess(t, "up", t.TempDir(), nil, "--throttle=false")
	cx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := ecs.NewFromConfig(p.AWSConfig())

	// The CLIs create the providers (each CLI one) and see ECS's refusals.
	for i, pool := range []string{"blue", "green"} {
		cli := clis[i%len(clis)]
		out, errOut, code := cli.Run(t, p.Server, "ecs", "create-capacity-provider", "--name", pool,
			"--auto-scaling-group-provider", "autoScalingGroupArn="+asgARNFor(pool)+",managedScaling={status=DISABLED},managedTerminationProtection=DISABLED",
			"--tags", "key=team,value="+pool)
		if code != 0 || !strings.Contains(out, `"CREATE_COMPLETE"`) {
			t.Fatalf("%s create-capacity-provider %s: %d %s %s", cli.Name, pool, code, out, errOut)
		}
	}
	for _, cli := range clis {
		_, errOut, code := cli.Run(t, p.Server, "ecs", "create-capacity-provider", "--name", "fargate-mine",
			"--auto-scaling-group-provider", "autoScalingGroupArn="+asgARNFor("x"))
		if code == 0 || !strings.Contains(errOut, "InvalidParameterException") || !strings.Contains(errOut, `can't be prefixed with "aws", "ecs", or "fargate"`) {
			t.Fatalf("%s reserved prefix: %d %s", cli.Name, code, errOut)
		}
		_, errOut, code = cli.Run(t, p.Server, "ecs", "create-capacity-provider", "--name", "auto",
			"--auto-scaling-group-provider", "autoScalingGroupArn="+asgARNFor("x")+",managedScaling={status=ENABLED,targetCapacity=90}")
		if code == 0 || !strings.Contains(errOut, "Managed scaling is not available on Berth") {
			t.Fatalf("%s managed scaling: %d %s", cli.Name, code, errOut)
		}
		out, errOut, code := cli.Run(t, p.Server, "ecs", "describe-capacity-providers", "--include", "TAGS")
		var d struct {
			CapacityProviders []struct {
				Name, Status string
				Tags         []struct{ Key, Value string }
			}
		}
		if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
			t.Fatalf("%s describe-capacity-providers: %d %s %s", cli.Name, code, out, errOut)
		}
		var names []string
		for _, cp := range d.CapacityProviders {
			names = append(names, cp.Name)
			if (cp.Name == "blue" || cp.Name == "green") && (len(cp.Tags) != 1 || cp.Tags[0].Value != cp.Name) {
				t.Errorf("%s: %s tags %+v", cli.Name, cp.Name, cp.Tags)
			}
		}
		if strings.Join(names, ",") != "FARGATE,FARGATE_SPOT,blue,green" {
			t.Fatalf("%s describe-capacity-providers: %v", cli.Name, names)
		}
	}

	// A provider whose pool no agent joins.
	if _, err := c.CreateCapacityProvider(cx, &ecs.CreateCapacityProviderInput{Name: aws.String("idle"),
		AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(asgARNFor("idle"))}}); err != nil {
		t.Fatal(err)
	}
	strat := func(items ...types.CapacityProviderStrategyItem) []types.CapacityProviderStrategyItem { return items }
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("asg"), CapacityProviders: []string{"blue", "green", "idle"},
		DefaultCapacityProviderStrategy: strat(strategyItem("blue", 1, 1), strategyItem("green", 0, 1))}); err != nil {
		t.Fatal(err)
	}
	tok, err := agentgw.CreateJoinToken(cx, p.Endpoint, p.Region, p.Creds.AccessKeyID, p.Creds.SecretAccessKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pools := map[string]string{} // instance id -> pool
	for _, n := range []struct {
		pool  string
		count int
	}{{"blue", 2}, {"green", 1}, {"", 1}} {
		cfg := hollow.Config{Endpoint: p.Endpoint, Region: p.Region, JoinToken: tok.Token, Cluster: "asg", Count: n.count, StateDir: t.TempDir(),
			Delays: hollow.Delays{Pull: 20 * time.Millisecond, Start: 20 * time.Millisecond, Stop: 20 * time.Millisecond}}
		if n.pool != "" {
			cfg.Attributes = map[string]string{capacityprovider.PoolAttribute: n.pool}
		}
		nodes, err := hollow.Start(cx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nodes.Close)
		for _, nd := range nodes.Nodes {
			pools[nd.InstanceID] = n.pool
		}
	}
	instID := func(a string) string { return a[strings.LastIndex(a, "/")+1:] }

	// The instances show their provider.
	var arns []string
	for id := range pools {
		arns = append(arns, id)
	}
	di, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("asg"), ContainerInstances: arns})
	if err != nil || len(di.ContainerInstances) != 4 {
		t.Fatalf("describe instances: %v %+v", err, di)
	}
	for _, ci := range di.ContainerInstances {
		if got, want := aws.ToString(ci.CapacityProviderName), pools[instID(aws.ToString(ci.ContainerInstanceArn))]; got != want {
			t.Errorf("instance %s: capacityProviderName %q, want %q", aws.ToString(ci.ContainerInstanceArn), got, want)
		}
	}

	td, err := c.RegisterTaskDefinition(cx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("app"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"), Memory: aws.Int32(64), Essential: aws.Bool(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	tdARN := td.TaskDefinition.TaskDefinitionArn
	// checkSplit checks tasks' providers and that each is on its pool.
	checkSplit := func(what string, tasks []types.Task, want map[string]int) {
		t.Helper()
		got := map[string]int{}
		for _, tk := range tasks {
			prov := aws.ToString(tk.CapacityProviderName)
			got[prov]++
			if pool := pools[instID(aws.ToString(tk.ContainerInstanceArn))]; pool != prov {
				t.Errorf("%s: a %s task on instance %s of pool %q", what, prov, aws.ToString(tk.ContainerInstanceArn), pool)
			}
		}
		if len(got) != len(want) || got["blue"] != want["blue"] || got["green"] != want["green"] {
			t.Fatalf("%s: providers %v, want %v", what, got, want)
		}
	}

	// RunTask with neither launch type nor strategy uses the cluster's
	// default: blue base 1, then 1:1.
	rt, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("asg"), TaskDefinition: tdARN, Count: aws.Int32(5)})
	if err != nil || len(rt.Failures) != 0 {
		t.Fatalf("run-task: %v %+v", err, rt)
	}
	checkSplit("RunTask of 5", rt.Tasks, map[string]int{"blue": 3, "green": 2})
	for _, tk := range rt.Tasks {
		if _, err := c.StopTask(cx, &ecs.StopTaskInput{Cluster: aws.String("asg"), Task: tk.TaskArn}); err != nil {
			t.Fatal(err)
		}
	}
	// ECS's refusals.
	_, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("asg"), TaskDefinition: tdARN,
		CapacityProviderStrategy: strat(strategyItem("blue", 0, 1), strategyItem("FARGATE", 0, 1))})
	if err == nil || !strings.Contains(err.Error(), "cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers") {
		t.Fatalf("mixed strategy: %v", err)
	}
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("other"), CapacityProviders: []string{"green"}}); err == nil {
		t.Fatal("a second cluster associated green")
	}

	// A service with blue weight 1 and green weight 3, its placement
	// strategy applying within each pool.
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("asg"), ServiceName: aws.String("web"), TaskDefinition: tdARN,
		DesiredCount: aws.Int32(4), CapacityProviderStrategy: strat(strategyItem("blue", 0, 1), strategyItem("green", 0, 3)),
		PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("instanceId")}}}); err != nil {
		t.Fatal(err)
	}
	// No capacity: ECS's reason in the service's events.
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("asg"), ServiceName: aws.String("starved"), TaskDefinition: tdARN,
		DesiredCount: aws.Int32(1), CapacityProviderStrategy: strat(strategyItem("idle", 0, 1))}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the starved service's event", 60*time.Second, func() bool {
		ds, err := c.DescribeServices(cx, &ecs.DescribeServicesInput{Cluster: aws.String("asg"), Services: []string{"starved"}})
		if err != nil {
			return false
		}
		for _, ev := range ds.Services[0].Events {
			if strings.Contains(aws.ToString(ev.Message), "(service starved) was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your capacity provider.") {
				return true
			}
		}
		return false
	})
	if _, err := c.DeleteService(cx, &ecs.DeleteServiceInput{Cluster: aws.String("asg"), Service: aws.String("starved"), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	serviceTasks := func() []types.Task {
		lt, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("asg"), ServiceName: aws.String("web")})
		if err != nil || len(lt.TaskArns) == 0 {
			return nil
		}
		dt, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Cluster: aws.String("asg"), Tasks: lt.TaskArns})
		if err != nil {
			return nil
		}
		return dt.Tasks
	}
	settle := func(n int) []types.Task {
		t.Helper()
		var tasks []types.Task
		waitFor(t, "service web at "+string(rune('0'+n))+" running tasks", 60*time.Second, func() bool {
			tasks = serviceTasks()
			running := 0
			for _, tk := range tasks {
				if aws.ToString(tk.LastStatus) == "RUNNING" && aws.ToString(tk.DesiredStatus) == "RUNNING" {
					running++
				} else if aws.ToString(tk.DesiredStatus) == "RUNNING" {
					return false
				}
			}
			return running == n && len(tasks) == n
		})
		return tasks
	}
	checkSplit("service of 4", settle(4), map[string]int{"blue": 1, "green": 3})
	ds, err := c.DescribeServices(cx, &ecs.DescribeServicesInput{Cluster: aws.String("asg"), Services: []string{"web"}})
	if err != nil || ds.Services[0].LaunchType != "" || len(ds.Services[0].CapacityProviderStrategy) != 2 {
		t.Fatalf("describe service: %v %+v", err, ds)
	}
	scale := func(n int32) {
		t.Helper()
		if _, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Cluster: aws.String("asg"), Service: aws.String("web"), DesiredCount: aws.Int32(n)}); err != nil {
			t.Fatal(err)
		}
	}
	scale(8)
	checkSplit("scaled out to 8", settle(8), map[string]int{"blue": 2, "green": 6})
	scale(4)
	tasks := settle(4)
	checkSplit("scaled in to 4", tasks, map[string]int{"blue": 1, "green": 3})
	// A stopped blue task is replaced on blue.
	for _, tk := range tasks {
		if aws.ToString(tk.CapacityProviderName) == "blue" {
			if _, err := c.StopTask(cx, &ecs.StopTaskInput{Cluster: aws.String("asg"), Task: tk.TaskArn}); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkSplit("after a replacement", settle(4), map[string]int{"blue": 1, "green": 3})
	// A new strategy needs a new deployment, as on ECS; its tasks take the
	// new split.
	newStrat := strat(strategyItem("blue", 0, 1), strategyItem("green", 0, 1))
	_, err = c.UpdateService(cx, &ecs.UpdateServiceInput{Cluster: aws.String("asg"), Service: aws.String("web"), CapacityProviderStrategy: newStrat})
	if err == nil || !strings.Contains(err.Error(), "you must force a new deployment") {
		t.Fatalf("strategy change without force: %v", err)
	}
	if _, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Cluster: aws.String("asg"), Service: aws.String("web"), CapacityProviderStrategy: newStrat,
		ForceNewDeployment: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new deployment alone", 60*time.Second, func() bool {
		ds, err := c.DescribeServices(cx, &ecs.DescribeServicesInput{Cluster: aws.String("asg"), Services: []string{"web"}})
		return err == nil && len(ds.Services[0].Deployments) == 1 && ds.Services[0].RunningCount == 4
	})
	checkSplit("after the strategy change", settle(4), map[string]int{"blue": 2, "green": 2})

	// blue cannot leave the cluster while its tasks run, and a delete
	// fails as on ECS.
	_, err = c.PutClusterCapacityProviders(cx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("asg"),
		CapacityProviders: []string{"green"}, DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{}})
	if apiCode(err) != "ResourceInUseException" || !strings.Contains(err.Error(), "is in use and cannot be removed") {
		t.Fatalf("remove blue in use: %v", err)
	}
	del, err := c.DeleteCapacityProvider(cx, &ecs.DeleteCapacityProviderInput{CapacityProvider: aws.String("blue")})
	if err != nil || del.CapacityProvider.UpdateStatus != types.CapacityProviderUpdateStatusDeleteFailed ||
		!strings.Contains(aws.ToString(del.CapacityProvider.UpdateStatusReason), "associated with cluster: asg") {
		t.Fatalf("delete associated: %v %+v", err, del)
	}
	// Once nothing uses it: INACTIVE.
	if _, err := c.DeleteService(cx, &ecs.DeleteServiceInput{Cluster: aws.String("asg"), Service: aws.String("web"), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "blue removable", 60*time.Second, func() bool {
		_, err := c.PutClusterCapacityProviders(cx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("asg"),
			CapacityProviders: []string{"green"}, DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{}})
		return err == nil
	})
	del, err = c.DeleteCapacityProvider(cx, &ecs.DeleteCapacityProviderInput{CapacityProvider: aws.String("blue")})
	if err != nil || del.CapacityProvider.Status != types.CapacityProviderStatusInactive {
		t.Fatalf("delete: %v %+v", err, del)
	}
}

// TestAgentCapacityPoolFlag: `berth agent --capacity-pool` (the real
// binary, on Docker) joins its instance to a pool: the instance carries
// the pool attribute and DescribeContainerInstances names the provider
// whose Auto Scaling group is that pool.
func TestAgentCapacityPoolFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary and an agent")
	}
	t.Parallel()
	berthtest.NeedDocker(t)
	p := berthtest.StartProcess(t, "up", t.TempDir(), nil)
	cx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := ecs.NewFromConfig(p.AWSConfig())
	if _, err := c.CreateCapacityProvider(cx, &ecs.CreateCapacityProviderInput{Name: aws.String("batch"),
		AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String(asgARNFor("batch-pool"))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("pooled"), CapacityProviders: []string{"batch"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := agentgw.CreateJoinToken(cx, p.Endpoint, p.Region, p.Creds.AccessKeyID, p.Creds.SecretAccessKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(berthtest.Binary(t), "agent", "--endpoint", p.Endpoint, "--data-dir", t.TempDir(), "--metadata-addr", freeAnyAddr(t),
		"--log-level", "warn", "--join-token", tok.Token, "--cluster", "pooled", "--capacity-pool", "batch-pool")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var inst string
	waitFor(t, "the pooled agent", 60*time.Second, func() bool {
		out, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{Cluster: aws.String("pooled")})
		if err != nil || len(out.ContainerInstanceArns) == 0 {
			return false
		}
		inst = out.ContainerInstanceArns[0]
		return true
	})
	di, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("pooled"), ContainerInstances: []string{inst}})
	if err != nil || len(di.ContainerInstances) != 1 || aws.ToString(di.ContainerInstances[0].CapacityProviderName) != "batch" {
		t.Fatalf("instance: %v %+v", err, di)
	}
	found := false
	for _, a := range di.ContainerInstances[0].Attributes {
		found = found || (aws.ToString(a.Name) == capacityprovider.PoolAttribute && aws.ToString(a.Value) == "batch-pool")
	}
	if !found {
		t.Fatalf("no %s=batch-pool attribute: %+v", capacityprovider.PoolAttribute, di.ContainerInstances[0].Attributes)
	}
}
