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
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"

	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/berthtest"
)

// TestServiceConnectSeedOnDocker is the seed end to end on real Docker and
// the real binary: `berth up` as the control plane, one `berth agent` in
// svc-cluster-2 (created with the default namespace) running the webui
// server, one in svc-cluster-1 running a client service of the same
// namespace that calls http://webui-svc-domain:80 through its proxy.
func TestServiceConnectSeedOnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("real Docker")
	}
	t.Parallel()
	berthtest.NeedDocker(t)
	p := berthtest.StartProcess(t, "up", t.TempDir(), nil)
	c := ecs.NewFromConfig(p.AWSConfig())
	cx := context.Background()
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("svc-cluster-2"),
		ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("svc-namespace")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("svc-cluster-1")}); err != nil {
		t.Fatal(err)
	}
	tok, err := agentgw.CreateJoinToken(cx, p.Endpoint, p.Region, p.Creds.AccessKeyID, p.Creds.SecretAccessKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, cluster := range []string{"svc-cluster-2", "svc-cluster-1"} {
		cmd := exec.Command(berthtest.Binary(t), "agent", "--endpoint", p.Endpoint, "--data-dir", t.TempDir(), "--metadata-addr", freeAnyAddr(t),
			"--image-pull-behavior", "prefer-cached", "--stop-timeout", "2s", "--log-level", "warn", "--join-token", tok.Token, "--cluster", cluster)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := berthtest.StartCommand(cmd); err != nil {
			t.Fatal(err)
		}
		var inst string
		waitFor(t, "agent of "+cluster, 60*time.Second, func() bool {
			out, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster)})
			if err != nil || len(out.ContainerInstanceArns) == 0 {
				return false
			}
			inst = out.ContainerInstanceArns[0]
			return true
		})
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			berthtest.RemoveAgentContainers(t, inst)
		})
	}
	reg := func(family string, command []string, ports []types.PortMapping) {
		t.Helper()
		if _, err := c.RegisterTaskDefinition(cx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(family), NetworkMode: types.NetworkModeBridge,
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("main"), Image: aws.String(berthtest.ToolImage), Memory: aws.Int32(64),
				Essential: aws.Bool(true), Command: command, StopTimeout: aws.Int32(2), PortMappings: ports}}}); err != nil {
			t.Fatal(err)
		}
	}
	// As in the seed, the application listens on port 80 (every address)
	// behind an alias on port 80: the task's own proxy serves that alias
	// too, on another port its namespace redirects <alias VIP>:80 to
	// (docs/service-connect.md); the tool exits when it cannot bind.
	reg("webui-svc-cluster", []string{"serve:80", "sleep:1h"},
		[]types.PortMapping{{Name: aws.String("webui-port"), ContainerPort: aws.Int32(80), AppProtocol: types.ApplicationProtocolHttp}})
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("svc-cluster-2"), ServiceName: aws.String("webui"),
		TaskDefinition: aws.String("webui-svc-cluster"), DesiredCount: aws.Int32(1),
		ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true, Namespace: aws.String("svc-namespace"),
			Services: []types.ServiceConnectService{{PortName: aws.String("webui-port"), DiscoveryName: aws.String("webui-svc"),
				ClientAliases: []types.ServiceConnectClientAlias{{Port: aws.Int32(80), DnsName: aws.String("webui-svc-domain")}}}}}}); err != nil {
		t.Fatal(err)
	}
	// The server's task runs and its endpoint is in Cloud Map.
	cm := cloudMapClient(p.Server)
	waitFor(t, "webui's endpoint", 3*time.Minute, func() bool {
		d, err := c.DescribeServices(cx, &ecs.DescribeServicesInput{Cluster: aws.String("svc-cluster-2"), Services: []string{"webui"}})
		if err != nil || len(d.Services) != 1 || d.Services[0].RunningCount != 1 {
			return false
		}
		res := d.Services[0].Deployments[0].ServiceConnectResources
		if len(res) != 1 {
			return false
		}
		arn := aws.ToString(res[0].DiscoveryArn)
		li, err := cm.ListInstances(cx, &sd.ListInstancesInput{ServiceId: aws.String(arn[strings.LastIndexByte(arn, '/')+1:])})
		if err != nil || len(li.Instances) != 1 {
			return false
		}
		t.Logf("webui endpoint %v", li.Instances[0].Attributes)
		return true
	})
	// The client exits 42 once it got an answer through the alias (the
	// tool's get exits 3 when it cannot within 10 s). It listens on port 80
	// itself meanwhile, as a client that is also a server would.
	reg("client", []string{"serve:80", "get:http://webui-svc-domain:80/", "exit:42"}, nil)
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("svc-cluster-1"), ServiceName: aws.String("client"),
		TaskDefinition: aws.String("client"), DesiredCount: aws.Int32(1),
		ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true, Namespace: aws.String("svc-namespace")}}); err != nil {
		t.Fatal(err)
	}
	// A client task that got its answer exits 42. On a loaded machine the
	// tool's 10 s of retries can run out before the first task's proxy
	// has the directory; the service replaces the task, and the next one
	// must get through.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, cl := range []string{"svc-cluster-2", "svc-cluster-1"} {
			l, _ := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String(cl), DesiredStatus: types.DesiredStatusStopped})
			if l != nil && len(l.TaskArns) > 0 {
				d, _ := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Cluster: aws.String(cl), Tasks: l.TaskArns})
				for _, tk := range d.Tasks {
					t.Logf("%s task %s: %s %s %q", cl, aws.ToString(tk.TaskArn), aws.ToString(tk.LastStatus), tk.StopCode, aws.ToString(tk.StoppedReason))
					for _, ct := range tk.Containers {
						b, _ := json.Marshal(ct.NetworkBindings)
						t.Logf("  container %s %s exit %v reason %q bindings %s", aws.ToString(ct.Name), aws.ToString(ct.LastStatus), aws.ToInt32(ct.ExitCode), aws.ToString(ct.Reason), b)
					}
				}
			}
		}
	})
	waitFor(t, "a client task to get through", 3*time.Minute, func() bool {
		l, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("svc-cluster-1"), ServiceName: aws.String("client"), DesiredStatus: types.DesiredStatusStopped})
		if err != nil || len(l.TaskArns) == 0 {
			return false
		}
		d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Cluster: aws.String("svc-cluster-1"), Tasks: l.TaskArns})
		if err != nil {
			return false
		}
		for _, tk := range d.Tasks {
			for _, ct := range tk.Containers {
				if aws.ToString(ct.Name) == "main" && ct.ExitCode != nil && aws.ToString(tk.LastStatus) == "STOPPED" {
					if *ct.ExitCode == 42 {
						return true
					}
				}
			}
		}
		return false
	})
}
