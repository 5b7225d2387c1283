package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/berthtest"
)

// fargateTaskDef is a Fargate task definition of one container.
func fargateTaskDef(family, cpu, mem string) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Cpu:                     aws.String(cpu), Memory: aws.String(mem),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("nginx:1.27"),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80)}}}},
	}
}

var fargateNet = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
	Subnets: []string{"subnet-0a1b2c3d"}, SecurityGroups: []string{"sg-0123"}, AssignPublicIp: types.AssignPublicIpEnabled}}

// fargateSetup starts Berth with cluster "prod" (no instance of its own)
// and n Fargate hosts in the hidden pool, alternating two zones.
func fargateSetup(t *testing.T, n int) (*berthtest.Server, *ecs.Client) {
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := ctx(t)
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		az := []string{"us-east-1a", "us-east-1b"}[i%2]
		addInstance(t, s, "berth.fargate", fakeInstance{id: instID(100 + i), az: az, cpu: 2048, mem: 4096, connected: true,
			attrs: map[string]string{"ecs.capability.fargate": "", "ecs.capability.task-eni": ""}})
	}
	return s, c
}

func TestFargateRunTask(t *testing.T) {
	t.Parallel()
	_, c := fargateSetup(t, 2)
	cx := ctx(t)
	if _, err := c.RegisterTaskDefinition(cx, fargateTaskDef("fg", "512", "1024")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterTaskDefinition(cx, webTaskDef("ec2only")); err != nil {
		t.Fatal(err)
	}
	arm := fargateTaskDef("fgarm", "256", "512")
	arm.RuntimePlatform = &types.RuntimePlatform{CpuArchitecture: types.CPUArchitectureArm64, OperatingSystemFamily: types.OSFamilyLinux}
	if _, err := c.RegisterTaskDefinition(cx, arm); err != nil {
		t.Fatal(err)
	}

	bad := []struct {
		name string
		in   ecs.RunTaskInput
		want string
	}{
		{"no network configuration", ecs.RunTaskInput{TaskDefinition: aws.String("fg")}, "Network Configuration must be provided when networkMode 'awsvpc' is specified."},
		{"unknown platform version", ecs.RunTaskInput{TaskDefinition: aws.String("fg"), NetworkConfiguration: fargateNet, PlatformVersion: aws.String("9.9.9")}, "The specified platform version 9.9.9 does not exist."},
		{"EC2 task definition", ecs.RunTaskInput{TaskDefinition: aws.String("ec2only"), NetworkConfiguration: fargateNet}, "Task definition does not support launch_type FARGATE."},
		{"placement strategy", ecs.RunTaskInput{TaskDefinition: aws.String("fg"), NetworkConfiguration: fargateNet,
			PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}}}, "not supported with the FARGATE launch type"},
		{"size override not a Fargate size", ecs.RunTaskInput{TaskDefinition: aws.String("fg"), NetworkConfiguration: fargateNet,
			Overrides: &types.TaskOverride{Memory: aws.String("3000")}}, "No Fargate configuration exists for given values: 512 CPU, 3000 memory."},
		{"ARM64 on x86_64 hosts", ecs.RunTaskInput{TaskDefinition: aws.String("fgarm"), NetworkConfiguration: fargateNet}, "no Fargate host with the ARM64 CPU architecture"},
	}
	for _, b := range bad {
		in := b.in
		in.Cluster, in.LaunchType = aws.String("prod"), types.LaunchTypeFargate
		if _, err := c.RunTask(cx, &in); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: err %v, want %q", b.name, err, b.want)
		}
	}
	if _, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("fg"), PlatformVersion: aws.String("LATEST")}); err == nil ||
		!strings.Contains(err.Error(), "The platform version must be null when specifying an EC2 launch type.") {
		t.Errorf("platform version on EC2: %v", err)
	}

	run, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("fg"), Count: aws.Int32(4),
		LaunchType: types.LaunchTypeFargate, NetworkConfiguration: fargateNet, PlatformVersion: aws.String("LATEST")})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Tasks) != 4 || len(run.Failures) != 0 {
		t.Fatalf("run: %d tasks, failures %+v", len(run.Tasks), run.Failures)
	}
	zones := map[string]int{}
	for _, tk := range run.Tasks {
		if tk.ContainerInstanceArn != nil || tk.LaunchType != types.LaunchTypeFargate || aws.ToString(tk.PlatformVersion) != "1.4.0" ||
			aws.ToString(tk.PlatformFamily) != "Linux" || tk.EphemeralStorage == nil || tk.EphemeralStorage.SizeInGiB != 20 ||
			aws.ToString(tk.Cpu) != "512" || aws.ToString(tk.Memory) != "1024" {
			t.Fatalf("Fargate task %+v", tk)
		}
		zones[aws.ToString(tk.AvailabilityZone)]++
	}
	if zones["us-east-1a"] != 2 || zones["us-east-1b"] != 2 {
		t.Fatalf("zones %v, want 2 and 2", zones)
	}
	// Hosts have 2048 units and 4096 MiB: four more tasks fill them, the
	// fifth gets Fargate's capacity failure.
	run, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("fg"), Count: aws.Int32(5),
		LaunchType: types.LaunchTypeFargate, NetworkConfiguration: fargateNet})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Tasks) != 4 || len(run.Failures) != 1 || aws.ToString(run.Failures[0].Reason) != "Capacity is unavailable at this time. Please try again later or in a different availability zone" {
		t.Fatalf("full: %d tasks, failures %+v", len(run.Tasks), run.Failures)
	}
	// The hosts are no container instances of the user's cluster, and the
	// pool is no cluster.
	li, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{Cluster: aws.String("prod")})
	if err != nil || len(li.ContainerInstanceArns) != 0 {
		t.Fatalf("prod's instances %v %v", li, err)
	}
	lc, err := c.ListClusters(cx, &ecs.ListClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range lc.ClusterArns {
		if strings.Contains(a, "fargate") {
			t.Fatalf("clusters %v", lc.ClusterArns)
		}
	}
	if _, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{Cluster: aws.String("berth.fargate")}); err == nil {
		t.Fatal("the hidden pool answered ListContainerInstances")
	}
	lt, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("prod"), LaunchType: types.LaunchTypeFargate})
	if err != nil || len(lt.TaskArns) != 8 {
		t.Fatalf("list Fargate tasks: %v %v", lt, err)
	}
	dc, err := c.DescribeClusters(cx, &ecs.DescribeClustersInput{Clusters: []string{"prod"}, Include: []types.ClusterField{types.ClusterFieldStatistics}})
	if err != nil {
		t.Fatal(err)
	}
	stats := map[string]string{}
	for _, kv := range dc.Clusters[0].Statistics {
		stats[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	if stats["pendingFargateTasksCount"] != "8" || stats["pendingEC2TasksCount"] != "0" || dc.Clusters[0].RegisteredContainerInstancesCount != 0 {
		t.Fatalf("cluster statistics %v, instances %d", stats, dc.Clusters[0].RegisteredContainerInstancesCount)
	}
}

func TestFargateService(t *testing.T) {
	t.Parallel()
	_, c := fargateSetup(t, 2)
	cx := ctx(t)
	if _, err := c.RegisterTaskDefinition(cx, fargateTaskDef("fgsvc", "256", "512")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("web"),
		TaskDefinition: aws.String("fgsvc"), DesiredCount: aws.Int32(3), LaunchType: types.LaunchTypeFargate}); err == nil ||
		!strings.Contains(err.Error(), "Network Configuration must be provided") {
		t.Fatalf("service without network configuration: %v", err)
	}
	out, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("web"),
		TaskDefinition: aws.String("fgsvc"), DesiredCount: aws.Int32(3), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: fargateNet})
	if err != nil {
		t.Fatal(err)
	}
	if out.Service.LaunchType != types.LaunchTypeFargate || aws.ToString(out.Service.PlatformVersion) != "1.4.0" ||
		aws.ToString(out.Service.PlatformFamily) != "Linux" || out.Service.NetworkConfiguration == nil {
		t.Fatalf("service %+v", out.Service)
	}
	var tasks []types.Task
	eventuallyTrue(t, "three Fargate tasks", 10*time.Second, func() bool {
		lt, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("web")})
		if err != nil || len(lt.TaskArns) != 3 {
			return false
		}
		d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: lt.TaskArns})
		if err != nil {
			return false
		}
		tasks = d.Tasks
		return true
	})
	for _, tk := range tasks {
		if tk.LaunchType != types.LaunchTypeFargate || tk.ContainerInstanceArn != nil {
			t.Fatalf("service task %+v", tk)
		}
	}
	// A second pass must not take the tasks for ones on lost instances.
	time.Sleep(1500 * time.Millisecond)
	lt, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("web"), DesiredStatus: types.DesiredStatusStopped})
	if err != nil || len(lt.TaskArns) != 0 {
		t.Fatalf("stopped service tasks %v %v", lt, err)
	}
	if _, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), PlatformVersion: aws.String("0.9")}); err == nil ||
		!strings.Contains(err.Error(), "platform version 0.9 does not exist") {
		t.Fatalf("update to a bad platform version: %v", err)
	}
	up, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), PlatformVersion: aws.String("1.3.0")})
	if err != nil || aws.ToString(up.Service.PlatformVersion) != "1.3.0" || len(up.Service.Deployments) != 2 {
		t.Fatalf("update platform version: %v %+v", err, up)
	}
	ls, err := c.ListServices(cx, &ecs.ListServicesInput{Cluster: aws.String("prod"), LaunchType: types.LaunchTypeFargate})
	if err != nil || len(ls.ServiceArns) != 1 {
		t.Fatalf("Fargate services %v %v", ls, err)
	}
}

func strategyItem(p string, base, weight int32) types.CapacityProviderStrategyItem {
	return types.CapacityProviderStrategyItem{CapacityProvider: aws.String(p), Base: base, Weight: weight}
}

func TestFargateCapacityProviders(t *testing.T) {
	t.Parallel()
	srv, c := fargateSetup(t, 2)
	cx := ctx(t)
	if _, err := c.RegisterTaskDefinition(cx, fargateTaskDef("cp", "256", "512")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("bad"), CapacityProviders: []string{"my-asg"}}); err == nil {
		t.Fatal("unknown capacity provider accepted")
	}
	strat := []types.CapacityProviderStrategyItem{strategyItem("FARGATE", 1, 1), strategyItem("FARGATE_SPOT", 0, 3)}
	// prod has no providers yet: the strategy names providers it lacks.
	_, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("cp"), CapacityProviderStrategy: strat, NetworkConfiguration: fargateNet})
	if err == nil || !strings.Contains(err.Error(), "cannot contain a capacity provider that is not associated with the cluster") {
		t.Fatalf("strategy without providers: %v", err)
	}
	pc, err := c.PutClusterCapacityProviders(cx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("prod"),
		CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"}, DefaultCapacityProviderStrategy: strat})
	if err != nil {
		t.Fatal(err)
	}
	if len(pc.Cluster.CapacityProviders) != 2 || len(pc.Cluster.DefaultCapacityProviderStrategy) != 2 {
		t.Fatalf("cluster %+v", pc.Cluster)
	}
	_, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("cp"), CapacityProviderStrategy: strat,
		LaunchType: types.LaunchTypeFargate, NetworkConfiguration: fargateNet})
	if err == nil || !strings.Contains(err.Error(), "Specifying both a launch type and capacity provider strategy is not supported.") {
		t.Fatalf("launch type and strategy: %v", err)
	}
	_, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("cp"), NetworkConfiguration: fargateNet,
		CapacityProviderStrategy: []types.CapacityProviderStrategyItem{strategyItem("FARGATE", 1, 0), strategyItem("FARGATE_SPOT", 1, 0)}})
	if err == nil || !strings.Contains(err.Error(), "Only one capacity provider in a capacity provider strategy can have a base defined.") {
		t.Fatalf("two bases: %v", err)
	}
	// The cluster's default strategy applies to a RunTask without launch
	// type or strategy: five tasks, one for the base, four split 1:3.
	run, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("cp"), Count: aws.Int32(5), NetworkConfiguration: fargateNet})
	if err != nil || len(run.Tasks) != 5 {
		t.Fatalf("RunTask: %v %+v", err, run)
	}
	per := map[string]int{}
	for _, tk := range run.Tasks {
		per[aws.ToString(tk.CapacityProviderName)]++
		if tk.LaunchType != types.LaunchTypeFargate {
			t.Fatalf("task %+v", tk)
		}
	}
	if per["FARGATE"] != 2 || per["FARGATE_SPOT"] != 3 {
		t.Fatalf("providers %v, want FARGATE 2 FARGATE_SPOT 3", per)
	}
	// A provider in use cannot be removed.
	if _, err := c.PutClusterCapacityProviders(cx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("prod"),
		CapacityProviders: []string{"FARGATE"}, DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{}}); err == nil {
		t.Fatal("removed a provider in use")
	}

	// A service with the strategy: 4 tasks are 1 base + 3 split 1:3.
	out, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String("spot"),
		TaskDefinition: aws.String("cp"), DesiredCount: aws.Int32(4), CapacityProviderStrategy: strat, NetworkConfiguration: fargateNet})
	if err != nil {
		t.Fatal(err)
	}
	if out.Service.LaunchType != "" || len(out.Service.CapacityProviderStrategy) != 2 {
		t.Fatalf("service %+v", out.Service)
	}
	svcTasks := func(desired types.DesiredStatus) []types.Task {
		lt, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("spot"), DesiredStatus: desired})
		if err != nil || len(lt.TaskArns) == 0 {
			return nil
		}
		d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: lt.TaskArns})
		if err != nil {
			return nil
		}
		return d.Tasks
	}
	eventuallyTrue(t, "four service tasks", 10*time.Second, func() bool { return len(svcTasks(types.DesiredStatusRunning)) == 4 })
	per = map[string]int{}
	var spotTask string
	for _, tk := range svcTasks(types.DesiredStatusRunning) {
		per[aws.ToString(tk.CapacityProviderName)]++
		if aws.ToString(tk.CapacityProviderName) == "FARGATE_SPOT" {
			spotTask = aws.ToString(tk.TaskArn)
		}
	}
	if per["FARGATE"] != 2 || per["FARGATE_SPOT"] != 2 {
		t.Fatalf("service providers %v, want 2 and 2", per)
	}
	// A Spot interruption stops the task with SpotInterruption; the
	// service replaces it on the provider the strategy picks.
	admin := agentgw.AdminClient{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.Creds.AccessKeyID, SecretAccessKey: srv.Creds.SecretAccessKey}
	if _, err := admin.InterruptSpotTask(cx, agentgw.SpotInterruptionRequest{Cluster: "prod", Task: per0(t, c, "FARGATE")}); err == nil ||
		!strings.Contains(err.Error(), "only Spot tasks can be interrupted") {
		t.Fatalf("interrupting a FARGATE task: %v", err)
	}
	if _, err := admin.InterruptSpotTask(cx, agentgw.SpotInterruptionRequest{Cluster: "prod", Task: spotTask, WarningSeconds: 3}); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "the interrupted task replaced", 10*time.Second, func() bool {
		stopped := svcTasks(types.DesiredStatusStopped)
		return len(stopped) == 1 && stopped[0].StopCode == types.TaskStopCodeSpotInterruption &&
			aws.ToString(stopped[0].StoppedReason) == "Your Spot Task was interrupted." && len(svcTasks(types.DesiredStatusRunning)) == 4
	})
}

// per0 is a running task of service spot on provider p.
func per0(t *testing.T, c *ecs.Client, p string) string {
	cx := ctx(t)
	lt, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("prod"), ServiceName: aws.String("spot")})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Cluster: aws.String("prod"), Tasks: lt.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range d.Tasks {
		if aws.ToString(tk.CapacityProviderName) == p {
			return aws.ToString(tk.TaskArn)
		}
	}
	t.Fatalf("no task on %s", p)
	return ""
}

// TestFargateThroughCLIs drives Fargate through both AWS CLIs against an
// in-process Berth with fake Fargate hosts: capacity providers on a
// cluster, a run-task with the shorthand network configuration, ECS's
// message for empty subnets.
func TestFargateThroughCLIs(t *testing.T) {
	t.Parallel()
	srv, c := fargateSetup(t, 2)
	if _, err := c.RegisterTaskDefinition(ctx(t), fargateTaskDef("clifg", "256", "512")); err != nil {
		t.Fatal(err)
	}
	berthtest.EachCLI(t, berthtest.CLIs(t), func(t *testing.T, _ int, cli berthtest.CLI) {
		cluster := "cli-fg-" + cli.Name
		if _, errOut, code := cli.Run(t, srv, "ecs", "create-cluster", "--cluster-name", cluster,
			"--capacity-providers", "FARGATE", "FARGATE_SPOT",
			"--default-capacity-provider-strategy", "capacityProvider=FARGATE,base=1,weight=1", "capacityProvider=FARGATE_SPOT,weight=3"); code != 0 {
			t.Fatalf("create-cluster: %s", errOut)
		}
		_, errOut, code := cli.Run(t, srv, "ecs", "run-task", "--cluster", cluster, "--launch-type", "FARGATE", "--task-definition", "clifg",
			"--network-configuration", `{"awsvpcConfiguration":{"subnets":[]}}`)
		if code == 0 || !strings.Contains(errOut, "subnets can not be empty.") {
			t.Fatalf("run-task with empty subnets: %d %s", code, errOut)
		}
		out, errOut, code := cli.Run(t, srv, "ecs", "run-task", "--cluster", cluster, "--task-definition", "clifg", "--count", "2",
			"--network-configuration", "awsvpcConfiguration={subnets=[subnet-1],securityGroups=[sg-1],assignPublicIp=ENABLED}")
		if code != 0 {
			t.Fatalf("run-task: %s", errOut)
		}
		for _, want := range []string{`"launchType": "FARGATE"`, `"capacityProviderName": "FARGATE"`, `"capacityProviderName": "FARGATE_SPOT"`, `"platformVersion": "1.4.0"`} {
			if !strings.Contains(out, want) {
				t.Fatalf("run-task output lacks %s:\n%s", want, out)
			}
		}
		if strings.Contains(out, "containerInstanceArn") {
			t.Fatalf("a Fargate task shows a container instance:\n%s", out)
		}
	})
}
