package scenario

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/testimage"
)

const scToolImage = "berth-test/tool:sc"

// TestServiceConnectDataPlaneThroughBerthUp runs Service Connect end to
// end through the real binary (berth up, its agent, real containers): a
// webui service whose tasks serve on a named port, with a client alias; a
// client-only service whose container calls http://webui-svc-domain:80/
// and prints CALLED only when the call succeeded (through its proxy, the
// directory, and the webui task's proxy). Both tasks show their
// ecs-service-connect container RUNNING in DescribeTasks. The caller goes
// on calling, once a second for a minute; the metrics its proxies report
// (AWS/ECS, published every 5 s here) draw the edge caller -> webui-svc in
// the web console's Service Connect graph, checked in headless Chromium
// (consoleSCTraffic). Then, with a loader task calling webui through its
// proxy 20 times a second, not one call may fail through a forced rolling
// deployment, a stopped task, a server restart (berth up killed -9 and
// started again on its data) and a webui task's proxy killed (that task
// stops as for an essential container and is replaced). With the proxy's
// retries off the last of these failed in 3 of 5 runs; the others hold by
// the drain alone (endpoints leave the directory before their tasks stop).
func TestServiceConnectDataPlaneThroughBerthUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers")
	}
	berthtest.NeedDocker(t)
	t.Parallel()
	dc, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	bctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	if err := testimage.BuildToolAs(bctx, dc, scToolImage); err != nil {
		t.Fatal(err)
	}
	cancel()
	// A fixed address, data directory and arguments: the server is restarted below.
	addr, dataDir, env := berthtest.FreeAddr(t), t.TempDir(), []string{"ECS_IMAGE_PULL_BEHAVIOR=prefer-cached"}
	upArgs := []string{"--agent=true", "--metadata-addr", freeAnyAddr(t), "--throttle=false", "--log-level", "warn", "--metrics-period=5s"}
	p := berthtest.StartProcessAt(t, addr, "up", dataDir, env, upArgs...)
	c := ecs.NewFromConfig(p.AWSConfig())
	cx := context.Background()
	var instanceARN string
	eventuallyTrue(t, "agent joined", 30*time.Second, func() bool {
		out, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{})
		if err != nil || len(out.ContainerInstanceArns) == 0 {
			return false
		}
		instanceARN = out.ContainerInstanceArns[0]
		return true
	})
	t.Cleanup(func() { berthtest.RemoveAgentContainers(t, instanceARN) })

	// The namespace, made by a cluster's serviceConnectDefaults as in the seed.
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("sc-holder"),
		ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("sc-e2e")}}); err != nil {
		t.Fatal(err)
	}
	reg := func(family string, cd types.ContainerDefinition) {
		cd.Image, cd.Memory, cd.StopTimeout, cd.Essential = aws.String(scToolImage), aws.Int32(64), aws.Int32(2), aws.Bool(true)
		if _, err := c.RegisterTaskDefinition(cx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(family),
			NetworkMode: types.NetworkModeAwsvpc, ContainerDefinitions: []types.ContainerDefinition{cd}}); err != nil {
			t.Fatal(err)
		}
	}
	reg("webui", types.ContainerDefinition{Name: aws.String("web"), Command: []string{"serve:8080", "sleep:1h"},
		PortMappings: []types.PortMapping{{Name: aws.String("webui-port"), ContainerPort: aws.Int32(8080), AppProtocol: types.ApplicationProtocolHttp}}})
	callerCmd := []string{"get:http://webui-svc-domain:80/", "print:CALLED"}
	for range 60 {
		callerCmd = append(callerCmd, "sleep:1s", "get:http://webui-svc-domain:80/")
	}
	reg("caller", types.ContainerDefinition{Name: aws.String("caller"), Command: append(callerCmd, "sleep:1h")})
	awsvpc := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-berth"}}}
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("webui"), TaskDefinition: aws.String("webui"),
		DesiredCount: aws.Int32(1), NetworkConfiguration: awsvpc,
		ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true, Namespace: aws.String("sc-e2e"),
			Services: []types.ServiceConnectService{{PortName: aws.String("webui-port"), DiscoveryName: aws.String("webui-svc"),
				ClientAliases: []types.ServiceConnectClientAlias{{Port: aws.Int32(80), DnsName: aws.String("webui-svc-domain")}}}}}}); err != nil {
		t.Fatal(err)
	}
	running := func(service string) types.Task {
		t.Helper()
		var arn string
		eventuallyTrue(t, service+" task placed", 60*time.Second, func() bool {
			out, err := c.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String(service)})
			if err != nil || len(out.TaskArns) == 0 {
				return false
			}
			arn = out.TaskArns[0]
			return true
		})
		return waitTask(t, c, "default", arn, 150*time.Second, func(tk types.Task) bool {
			if aws.ToString(tk.LastStatus) == "STOPPED" {
				t.Fatalf("%s task stopped: %s %s\n%s", service, tk.StopCode, aws.ToString(tk.StoppedReason), containerLogs(t, dc, tk))
			}
			return aws.ToString(tk.LastStatus) == "RUNNING"
		})
	}
	proxyOf := func(tk types.Task) types.Container {
		for _, ct := range tk.Containers {
			if strings.HasPrefix(aws.ToString(ct.Name), "ecs-service-connect-") {
				return ct
			}
		}
		t.Fatalf("no ecs-service-connect container in %s", aws.ToString(tk.TaskArn))
		return types.Container{}
	}
	web := running("webui")
	if pc := proxyOf(web); aws.ToString(pc.LastStatus) != "RUNNING" || aws.ToString(pc.RuntimeId) == "" {
		t.Fatalf("webui proxy container: %s %s", aws.ToString(pc.LastStatus), aws.ToString(pc.RuntimeId))
	}

	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("caller"), TaskDefinition: aws.String("caller"),
		DesiredCount: aws.Int32(1), NetworkConfiguration: awsvpc,
		ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true, Namespace: aws.String("sc-e2e")}}); err != nil {
		t.Fatal(err)
	}
	caller := running("caller")
	proxyOf(caller)
	waitTask(t, c, "default", aws.ToString(caller.TaskArn), 30*time.Second, func(tk types.Task) bool {
		if aws.ToString(tk.LastStatus) == "STOPPED" {
			t.Fatalf("caller stopped (the call failed?): %s\n%s", aws.ToString(tk.StoppedReason), containerLogs(t, dc, tk))
		}
		return strings.Contains(containerLogs(t, dc, tk), "CALLED")
	})

	// The console's traffic view, from the metrics of those requests.
	rows := consoleSCTraffic(t, p, "sc-e2e", []scEdge{{From: "caller", To: "webui-svc"}}, 2*time.Minute)
	if r := rows[scEdge{"caller", "webui-svc"}]; r != nil {
		// Client service, target, requests/s, 5xx, latency.
		if len(r) != 5 || parseRate(r[2]) <= 0 || r[3] != "0%" || !strings.HasSuffix(r[4], " ms") {
			t.Errorf("edge caller -> webui-svc shows %q; want a rate, 0%% 5xx and a latency", r)
		}
	}

	// A rolling deployment and a killed task under load: webui at two tasks, a loader service
	// calling it through its proxy 20 times a second; a forced new deployment, then one of the
	// new tasks stopped. Not one call may fail (endpoints leave the directory before their
	// tasks stop; the proxy retries a refused or reset call on another endpoint).
	webuiState := func(what string, within time.Duration, ok func(types.Service) bool) types.Service {
		t.Helper()
		var svc types.Service
		eventuallyTrue(t, what, within, func() bool {
			out, err := c.DescribeServices(cx, &ecs.DescribeServicesInput{Services: []string{"webui"}})
			if err != nil || len(out.Services) != 1 {
				return false
			}
			svc = out.Services[0]
			return ok(svc)
		})
		return svc
	}
	settled := func(s types.Service) bool {
		return s.RunningCount == 2 && len(s.Deployments) == 1 && s.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted
	}
	if _, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("webui"), DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	before := webuiState("webui at two tasks", 2*time.Minute, settled)
	reg("loader", types.ContainerDefinition{Name: aws.String("loader"), Command: []string{"load:50ms:http://webui-svc-domain:80/", "sleep:1h"}})
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("loader"), TaskDefinition: aws.String("loader"),
		DesiredCount: aws.Int32(1), NetworkConfiguration: awsvpc,
		ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true, Namespace: aws.String("sc-e2e")}}); err != nil {
		t.Fatal(err)
	}
	loader := running("loader")
	loadRe := regexp.MustCompile(`LOAD ok=(\d+) fail=(\d+)`)
	counts := func() (ok, fail int) {
		t.Helper()
		m := loadRe.FindAllStringSubmatch(containerLogs(t, dc, loader), -1)
		if len(m) == 0 {
			return 0, 0
		}
		ok, _ = strconv.Atoi(m[len(m)-1][1])
		fail, _ = strconv.Atoi(m[len(m)-1][2])
		return ok, fail
	}
	eventuallyTrue(t, "the loader's calls answered", time.Minute, func() bool { ok, _ := counts(); return ok >= 20 })
	if _, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("webui"), ForceNewDeployment: true}); err != nil {
		t.Fatal(err)
	}
	after := webuiState("the forced deployment completed", 3*time.Minute, func(s types.Service) bool {
		return settled(s) && aws.ToString(s.Deployments[0].Id) != aws.ToString(before.Deployments[0].Id)
	})
	okRolled, failRolled := counts()
	listed, err := c.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String("webui"), DesiredStatus: types.DesiredStatusRunning})
	if err != nil || len(listed.TaskArns) == 0 {
		t.Fatalf("webui tasks after the deployment: %v %v", listed, err)
	}
	killed := listed.TaskArns[0]
	if _, err := c.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(killed), Reason: aws.String("killed under load")}); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "a replacement for the stopped webui task", 2*time.Minute, func() bool {
		out, err := c.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String("webui"), DesiredStatus: types.DesiredStatusRunning})
		if err != nil || len(out.TaskArns) != 2 || slices.Contains(out.TaskArns, killed) {
			return false
		}
		d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: out.TaskArns})
		if err != nil {
			return false
		}
		for _, tk := range d.Tasks {
			if aws.ToString(tk.LastStatus) != "RUNNING" {
				return false
			}
		}
		return true
	})
	time.Sleep(3 * time.Second)
	ok, fail := counts()
	t.Logf("loader: %d calls answered before the deployment completed (%s), %d by the end; failed: %d then, %d by the end",
		okRolled, aws.ToString(after.Deployments[0].Id), ok, failRolled, fail)
	if fail != 0 || ok <= okRolled {
		t.Fatalf("calls through Service Connect during the deployment and the kill: %d answered, %d failed\n%s", ok, fail, containerLogs(t, dc, loader))
	}

	// A server restart leaves running traffic untouched: berth up killed (-9, its agent with it)
	// and started again on the same data; the proxies serve on with what they have, and the
	// restarted agent takes the same tasks back.
	okKill := ok
	p.Kill9()
	p = berthtest.StartProcessAt(t, addr, "up", dataDir, env, upArgs...)
	c = ecs.NewFromConfig(p.AWSConfig())
	eventuallyTrue(t, "the agent connected again", time.Minute, func() bool {
		out, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{ContainerInstances: []string{instanceARN}})
		return err == nil && len(out.ContainerInstances) == 1 && out.ContainerInstances[0].AgentConnected
	})
	loaderNow := waitTask(t, c, "default", aws.ToString(loader.TaskArn), 30*time.Second, func(tk types.Task) bool { return aws.ToString(tk.LastStatus) == "RUNNING" })
	if aws.ToString(loaderNow.Containers[0].RuntimeId) != aws.ToString(loader.Containers[0].RuntimeId) {
		t.Fatal("the loader task was restarted across the server restart")
	}
	time.Sleep(3 * time.Second)
	ok, fail = counts()
	t.Logf("loader across the server restart: %d answered by then, %d now; failed %d", okKill, ok, fail)
	if fail != 0 || ok <= okKill {
		t.Fatalf("calls through Service Connect across a server restart: %d answered, %d failed\n%s", ok, fail, containerLogs(t, dc, loader))
	}

	// A proxy that dies: its task stops as for any essential container and is replaced, and the
	// callers' proxies take the calls elsewhere.
	listed, err = c.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String("webui"), DesiredStatus: types.DesiredStatusRunning})
	if err != nil || len(listed.TaskArns) == 0 {
		t.Fatalf("webui tasks: %v %v", listed, err)
	}
	victim := listed.TaskArns[0]
	d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: []string{victim}})
	if err != nil || len(d.Tasks) != 1 {
		t.Fatalf("describe %s: %v", victim, err)
	}
	kctx, kcancel := context.WithTimeout(cx, 10*time.Second)
	_, err = dc.ContainerKill(kctx, aws.ToString(proxyOf(d.Tasks[0]).RuntimeId), client.ContainerKillOptions{Signal: "KILL"})
	kcancel()
	if err != nil {
		t.Fatal(err)
	}
	stopped := waitTask(t, c, "default", victim, time.Minute, func(tk types.Task) bool { return aws.ToString(tk.LastStatus) == "STOPPED" })
	if stopped.StopCode != types.TaskStopCodeEssentialContainerExited {
		t.Errorf("task whose proxy died: stop code %q (%s), want EssentialContainerExited", stopped.StopCode, aws.ToString(stopped.StoppedReason))
	}
	okDied := ok
	eventuallyTrue(t, "a replacement for the task whose proxy died", 2*time.Minute, func() bool {
		out, err := c.DescribeServices(cx, &ecs.DescribeServicesInput{Services: []string{"webui"}})
		return err == nil && len(out.Services) == 1 && out.Services[0].RunningCount == 2
	})
	time.Sleep(3 * time.Second)
	ok, fail = counts()
	t.Logf("loader across a webui proxy's death: %d answered by then, %d now; failed %d", okDied, ok, fail)
	if fail != 0 || ok <= okDied {
		t.Fatalf("calls through Service Connect when a server task's proxy died: %d answered, %d failed\n%s", ok, fail, containerLogs(t, dc, loader))
	}
}
