package scenario

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/berthtest"
)

// fargateToolTaskDef is a Fargate task definition of the tool image.
func fargateToolTaskDef(family string, args []string) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Cpu:                     aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("main"), Image: aws.String(berthtest.ToolImage),
			Command: args, StopTimeout: aws.Int32(2),
			LinuxParameters: &types.LinuxParameters{Capabilities: &types.KernelCapabilities{Add: []string{"SYS_PTRACE"}}}}},
	}
}

// TestFargateOnDocker runs Fargate tasks through `berth up` (the real
// binary, whose agent offers Fargate capacity by default) in a cluster
// that has no container instance: a task reads the Fargate form of its
// metadata and finds it; its containers carry the task's size as limits
// and only SYS_PTRACE added; DescribeTasks shows the ENI, no container
// instance; a Fargate service of three tasks rolls to a new revision.
func TestFargateOnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers and the binary")
	}
	t.Parallel()
	berthtest.NeedDocker(t)
	dir := t.TempDir()
	md := freeAnyAddr(t)
	p := berthtest.StartProcess(t, "up", dir, []string{"ECS_IMAGE_PULL_BEHAVIOR=prefer-cached", "ECS_CONTAINER_STOP_TIMEOUT=2s"},
		"--agent=true", "--metadata-addr", md, "--log-level", "warn")
	t.Cleanup(func() {
		if st, err := agent.LoadState(filepath.Join(dir, "agent")); err == nil {
			berthtest.RemoveAgentContainers(t, st.ContainerInstanceArn)
		}
	})
	cx := context.Background()
	c := ecs.NewFromConfig(p.AWSConfig())
	waitInstances(t, c, 1)
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("fg")}); err != nil {
		t.Fatal(err)
	}
	net := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}, AssignPublicIp: types.AssignPublicIpEnabled}}

	// A task that checks its metadata: Fargate's launch type, the zone,
	// the task's limits and its ephemeral storage; it exits 4 otherwise.
	if _, err := c.RegisterTaskDefinition(cx, fargateToolTaskDef("fgmeta", []string{
		`meta:/task:"LaunchType": "FARGATE"`, `meta:/task:"AvailabilityZone": "us-east-1a"`,
		`meta:/task:"CPU": 0.25`, `meta:/task:"Reserved": 20480`, "sleep:1s"})); err != nil {
		t.Fatal(err)
	}
	// The agent's instance is listed before its assignment stream is up:
	// until then Fargate has no capacity (ECS's failure), so retry.
	var run *ecs.RunTaskOutput
	waitFor(t, "a Fargate host", 20*time.Second, func() bool {
		var err error
		run, err = c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("fg"), TaskDefinition: aws.String("fgmeta"),
			LaunchType: types.LaunchTypeFargate, NetworkConfiguration: net})
		if err != nil {
			t.Fatal(err)
		}
		if len(run.Failures) > 0 && !strings.HasPrefix(aws.ToString(run.Failures[0].Reason), "Capacity is unavailable") {
			t.Fatalf("RunTask failure %q", aws.ToString(run.Failures[0].Reason))
		}
		return len(run.Tasks) == 1
	})
	arn := aws.ToString(run.Tasks[0].TaskArn)
	running := waitTask(t, c, "fg", arn, 30*time.Second, func(tk types.Task) bool {
		return aws.ToString(tk.LastStatus) == "RUNNING" || aws.ToString(tk.LastStatus) == "STOPPED"
	})
	// The containers: the task's size as their limits, SYS_PTRACE only.
	dc, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	if rid := aws.ToString(running.Containers[0].RuntimeId); rid != "" && aws.ToString(running.LastStatus) == "RUNNING" {
		r, err := dc.ContainerInspect(cx, rid, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := r.Container.HostConfig
		if h.Memory != 512<<20 || h.NanoCPUs != 250_000_000 || strings.TrimPrefix(strings.Join(h.CapAdd, ","), "CAP_") != "SYS_PTRACE" || h.Privileged ||
			!strings.HasPrefix(string(h.NetworkMode), "container:") {
			t.Fatalf("container host config: memory %d, nanoCPUs %d, capAdd %v, privileged %v, network %s", h.Memory, h.NanoCPUs, h.CapAdd, h.Privileged, h.NetworkMode)
		}
	}
	done := waitTask(t, c, "fg", arn, 30*time.Second, func(tk types.Task) bool { return aws.ToString(tk.LastStatus) == "STOPPED" })
	if ec := done.Containers[0].ExitCode; ec == nil || *ec != 0 {
		t.Fatalf("metadata check failed: exit %v, reason %q\n%s", ec, aws.ToString(done.StoppedReason), p.Output.String())
	}
	if done.ContainerInstanceArn != nil || done.LaunchType != types.LaunchTypeFargate || done.PullStartedAt == nil || done.PullStoppedAt == nil ||
		done.Connectivity != types.ConnectivityConnected || aws.ToString(done.PlatformVersion) != "1.4.0" {
		t.Fatalf("Fargate task %+v", done)
	}
	eni := map[string]string{}
	for _, a := range done.Attachments {
		for _, kv := range a.Details {
			eni[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
		}
	}
	if eni["privateIPv4Address"] == "" || eni["macAddress"] == "" {
		t.Fatalf("ENI attachment %+v", done.Attachments)
	}
	if done.StopCode != types.TaskStopCodeEssentialContainerExited {
		t.Fatalf("stop code %q", done.StopCode)
	}

	// A Fargate service of three tasks on the strategy FARGATE base 1
	// weight 1 + FARGATE_SPOT weight 3, rolled to a second revision.
	if _, err := c.PutClusterCapacityProviders(cx, &ecs.PutClusterCapacityProvidersInput{Cluster: aws.String("fg"),
		CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"}, DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.RegisterTaskDefinition(cx, fargateToolTaskDef("fgweb", []string{"ignoreterm", "sleep:1h"})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("fg"), ServiceName: aws.String("web"),
		TaskDefinition: aws.String("fgweb:1"), DesiredCount: aws.Int32(3), NetworkConfiguration: net,
		CapacityProviderStrategy: []types.CapacityProviderStrategyItem{
			{CapacityProvider: aws.String("FARGATE"), Base: 1, Weight: 1}, {CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 3}},
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(200)}}); err != nil {
		t.Fatal(err)
	}
	steady := func(td string) func() bool {
		return func() bool {
			s, err := c.DescribeServices(cx, &ecs.DescribeServicesInput{Cluster: aws.String("fg"), Services: []string{"web"}})
			if err != nil || len(s.Services) != 1 {
				return false
			}
			sv := s.Services[0]
			return len(sv.Deployments) == 1 && strings.HasSuffix(aws.ToString(sv.Deployments[0].TaskDefinition), td) &&
				sv.Deployments[0].RunningCount == 3 && sv.RunningCount == 3
		}
	}
	waitFor(t, "three Fargate service tasks RUNNING", 40*time.Second, steady("fgweb:1"))
	if _, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Cluster: aws.String("fg"), Service: aws.String("web"), TaskDefinition: aws.String("fgweb:2")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the service rolled to fgweb:2", 60*time.Second, steady("fgweb:2"))
	lt, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("fg"), ServiceName: aws.String("web")})
	if err != nil || len(lt.TaskArns) != 3 {
		t.Fatalf("service tasks %v %v", lt, err)
	}
	dt, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Cluster: aws.String("fg"), Tasks: lt.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	ips := map[string]bool{}
	per := map[string]int{}
	spot := ""
	for _, tk := range dt.Tasks {
		per[aws.ToString(tk.CapacityProviderName)]++
		if aws.ToString(tk.CapacityProviderName) == "FARGATE_SPOT" {
			spot = aws.ToString(tk.TaskArn)
		}
		if tk.LaunchType != types.LaunchTypeFargate || !strings.HasSuffix(aws.ToString(tk.TaskDefinitionArn), "fgweb:2") {
			t.Fatalf("task %+v", tk)
		}
		for _, a := range tk.Attachments {
			for _, kv := range a.Details {
				if aws.ToString(kv.Name) == "privateIPv4Address" {
					ips[aws.ToString(kv.Value)] = true
				}
			}
		}
	}
	if len(ips) != 3 {
		t.Fatalf("task addresses %v, want three distinct", ips)
	}
	// 1 for FARGATE's base, then 2 split 1:3 (the larger deficit first:
	// FARGATE_SPOT, then a tie that goes to the first provider).
	if per["FARGATE"] != 2 || per["FARGATE_SPOT"] != 1 {
		t.Fatalf("providers %v, want FARGATE 2 FARGATE_SPOT 1", per)
	}

	// A Spot interruption through `berth spot-interrupt`: the task ignores
	// SIGTERM, so it is killed when the 3 s warning runs out; it stops
	// with SpotInterruption and the service replaces it.
	out, err := exec.Command(berthtest.Binary(t), "spot-interrupt", "--endpoint", p.Endpoint, "--data-dir", dir,
		"--cluster", "fg", "--task", spot, "--warning", "3s").CombinedOutput()
	if err != nil {
		t.Fatalf("berth spot-interrupt: %v\n%s", err, out)
	}
	gone := waitTask(t, c, "fg", spot, 30*time.Second, func(tk types.Task) bool { return aws.ToString(tk.LastStatus) == "STOPPED" })
	if gone.StopCode != types.TaskStopCodeSpotInterruption || aws.ToString(gone.StoppedReason) != "Your Spot Task was interrupted." {
		t.Fatalf("interrupted task: %q %q", gone.StopCode, aws.ToString(gone.StoppedReason))
	}
	if gone.ExecutionStoppedAt == nil || gone.StoppingAt == nil || gone.ExecutionStoppedAt.Sub(*gone.StoppingAt) < 2500*time.Millisecond {
		t.Fatalf("the task stopped %v after the interruption, want the 3s warning", gone.ExecutionStoppedAt.Sub(*gone.StoppingAt))
	}
	waitFor(t, "the interrupted task replaced", 30*time.Second, steady("fgweb:2"))
	// The Fargate hosts are no container instances of the cluster.
	li, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{Cluster: aws.String("fg")})
	if err != nil || len(li.ContainerInstanceArns) != 0 {
		t.Fatalf("fg's instances %v %v", li, err)
	}
}
