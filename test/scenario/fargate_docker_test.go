package scenario

import (
	"context"
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
	run, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("fg"), TaskDefinition: aws.String("fgmeta"),
		LaunchType: types.LaunchTypeFargate, NetworkConfiguration: net})
	if err != nil || len(run.Tasks) != 1 {
		t.Fatalf("RunTask: %v %+v", err, run)
	}
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

	// A Fargate service of three tasks, rolled to a second revision.
	for range 2 {
		if _, err := c.RegisterTaskDefinition(cx, fargateToolTaskDef("fgweb", []string{"term:0", "sleep:1h"})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("fg"), ServiceName: aws.String("web"),
		TaskDefinition: aws.String("fgweb:1"), DesiredCount: aws.Int32(3), LaunchType: types.LaunchTypeFargate, NetworkConfiguration: net,
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
	for _, tk := range dt.Tasks {
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
	// The Fargate hosts are no container instances of the cluster.
	li, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{Cluster: aws.String("fg")})
	if err != nil || len(li.ContainerInstanceArns) != 0 {
		t.Fatalf("fg's instances %v %v", li, err)
	}
}
