package scenario

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	sd "github.com/aws/aws-sdk-go-v2/service/servicediscovery"
	sdtypes "github.com/aws/aws-sdk-go-v2/service/servicediscovery/types"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/hollow"
	"github.com/berthdev/berth/internal/serviceconnect"
	"github.com/berthdev/berth/internal/sigv4"
)

// scTaskDef registers the seed's webui task definition: a bridge task with
// the named port mapping webui-port.
func scTaskDef(t *testing.T, c *ecs.Client, family string, mode types.NetworkMode) string {
	t.Helper()
	out, err := c.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: mode,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("web"), Image: aws.String("nginx"),
			Memory: aws.Int32(64), Cpu: 64, Essential: aws.Bool(true),
			PortMappings: []types.PortMapping{{Name: aws.String("webui-port"), ContainerPort: aws.Int32(8080), AppProtocol: types.ApplicationProtocolHttp}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// TestServiceConnectControlPlane is the seed's control-plane flow through
// the Go SDK on hollow nodes: a cluster whose serviceConnectDefaults
// create the namespace, a webui service with a client alias, its
// configuration and resources in DescribeServices, the proxy container in
// DescribeTasks, the tasks registered in Cloud Map, the directory stream
// an agent follows, ECS's refusals, and the namespace in use.
func TestServiceConnectControlPlane(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, nil)
	cx := ctx(t)
	c := ecs.NewFromConfig(s.AWSConfig())
	cm := cloudMapClient(s)

	cl, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("svc-cluster-2"),
		ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("svc-namespace")}})
	if err != nil {
		t.Fatal(err)
	}
	nsArn := aws.ToString(cl.Cluster.ServiceConnectDefaults.Namespace)
	nss, err := cm.ListNamespaces(cx, &sd.ListNamespacesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var nsID string
	for _, n := range nss.Namespaces {
		if aws.ToString(n.Name) == "svc-namespace" {
			nsID = aws.ToString(n.Id)
			if aws.ToString(n.Arn) != nsArn || n.Type != sdtypes.NamespaceTypeHttp {
				t.Fatalf("namespace %+v, cluster shows %s", n, nsArn)
			}
		}
	}
	if nsID == "" {
		t.Fatalf("create-cluster did not create the namespace: %+v", nss.Namespaces)
	}

	tok, err := agentgw.CreateJoinToken(cx, s.Endpoint, s.Region, s.Creds.AccessKeyID, s.Creds.SecretAccessKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	nodes, err := hollow.Start(cx, hollow.Config{Endpoint: s.Endpoint, Region: s.Region, JoinToken: tok.Token, Count: 1, Cluster: "svc-cluster-2",
		Delays: hollow.Delays{Pull: 10 * time.Millisecond, Start: 10 * time.Millisecond, Stop: 10 * time.Millisecond}, StateDir: stateDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nodes.Close)

	td := scTaskDef(t, c, "webui-svc-cluster", types.NetworkModeBridge)
	scc := &types.ServiceConnectConfiguration{Enabled: true, Services: []types.ServiceConnectService{{
		PortName: aws.String("webui-port"), DiscoveryName: aws.String("webui-svc"),
		ClientAliases: []types.ServiceConnectClientAlias{{Port: aws.Int32(80), DnsName: aws.String("webui-svc-domain")}}}}}
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("svc-cluster-2"), ServiceName: aws.String("webui"),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2), ServiceConnectConfiguration: scc}); err != nil {
		t.Fatal(err)
	}
	desc := func(name string) types.Service {
		out, err := c.DescribeServices(cx, &ecs.DescribeServicesInput{Cluster: aws.String("svc-cluster-2"), Services: []string{name}})
		if err != nil || len(out.Services) != 1 {
			t.Fatalf("describe %s: %v %+v", name, err, out)
		}
		return out.Services[0]
	}
	sv := desc("webui")
	dep := sv.Deployments[0]
	got := dep.ServiceConnectConfiguration
	if got == nil || !got.Enabled || aws.ToString(got.Namespace) != nsArn || len(got.Services) != 1 ||
		aws.ToString(got.Services[0].DiscoveryName) != "webui-svc" || aws.ToString(got.Services[0].ClientAliases[0].DnsName) != "webui-svc-domain" {
		b, _ := json.Marshal(dep)
		t.Fatalf("deployment shows %s", b)
	}
	if len(dep.ServiceConnectResources) != 1 || aws.ToString(dep.ServiceConnectResources[0].DiscoveryName) != "webui-svc" {
		t.Fatalf("serviceConnectResources %+v", dep.ServiceConnectResources)
	}
	srvArn := aws.ToString(dep.ServiceConnectResources[0].DiscoveryArn)
	srvID := srvArn[strings.LastIndexByte(srvArn, '/')+1:]
	if g, err := cm.GetService(cx, &sd.GetServiceInput{Id: aws.String(srvID)}); err != nil || aws.ToString(g.Service.Name) != "webui-svc" || aws.ToString(g.Service.NamespaceId) != nsID {
		t.Fatalf("cloud map service %s: %v %+v", srvID, err, g)
	}

	// ECS's refusals change nothing.
	refused := []struct {
		name, code string
		in         *ecs.CreateServiceInput
	}{
		{"unknown portName", "InvalidParameterException", &ecs.CreateServiceInput{ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true,
			Services: []types.ServiceConnectService{{PortName: aws.String("nope")}}}}},
		{"discovery name in use", "InvalidParameterException", &ecs.CreateServiceInput{ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true,
			Services: []types.ServiceConnectService{{PortName: aws.String("webui-port"), DiscoveryName: aws.String("webui-svc")}}}}},
		{"alias in use", "InvalidParameterException", &ecs.CreateServiceInput{ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true,
			Services: []types.ServiceConnectService{{PortName: aws.String("webui-port"), DiscoveryName: aws.String("other"),
				ClientAliases: []types.ServiceConnectClientAlias{{Port: aws.Int32(80), DnsName: aws.String("webui-svc-domain")}}}}}}},
		{"tls", "InvalidParameterException", &ecs.CreateServiceInput{ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true,
			Services: []types.ServiceConnectService{{PortName: aws.String("webui-port"), DiscoveryName: aws.String("tls"),
				Tls: &types.ServiceConnectTlsConfiguration{IssuerCertificateAuthority: &types.ServiceConnectTlsCertificateAuthority{AwsPcaAuthorityArn: aws.String("arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/x")}}}}}}},
		{"unknown namespace", "NamespaceNotFoundException", &ecs.CreateServiceInput{ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true,
			Namespace: aws.String("arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-nothere")}}},
	}
	for _, r := range refused {
		r.in.Cluster, r.in.ServiceName, r.in.TaskDefinition, r.in.DesiredCount = aws.String("svc-cluster-2"), aws.String("bad"), aws.String(td), aws.Int32(0)
		if _, err := c.CreateService(cx, r.in); apiCode(err) != r.code {
			t.Errorf("%s: got %v, want %s", r.name, err, r.code)
		}
	}
	hostTD := scTaskDef(t, c, "hostmode", types.NetworkModeHost)
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("svc-cluster-2"), ServiceName: aws.String("bad"), TaskDefinition: aws.String(hostTD),
		DesiredCount: aws.Int32(0), ServiceConnectConfiguration: scc}); apiCode(err) != "InvalidParameterException" || !strings.Contains(err.Error(), "host") {
		t.Errorf("host network mode: %v", err)
	}
	if out, _ := c.DescribeServices(cx, &ecs.DescribeServicesInput{Cluster: aws.String("svc-cluster-2"), Services: []string{"bad"}}); len(out.Services) != 0 {
		t.Errorf("a refused service exists: %+v", out.Services)
	}

	// The tasks run with their proxy container and register in Cloud Map
	// with ECS's attributes.
	var tasks []types.Task
	eventuallyTrue(t, "two RUNNING tasks with their proxy", 10*time.Second, func() bool {
		l, err := c.ListTasks(cx, &ecs.ListTasksInput{Cluster: aws.String("svc-cluster-2"), ServiceName: aws.String("webui")})
		if err != nil || len(l.TaskArns) != 2 {
			return false
		}
		d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Cluster: aws.String("svc-cluster-2"), Tasks: l.TaskArns})
		if err != nil {
			return false
		}
		tasks = d.Tasks
		for _, tk := range tasks {
			if aws.ToString(tk.LastStatus) != "RUNNING" || len(tk.Containers) != 2 || !strings.HasPrefix(aws.ToString(tk.Containers[1].Name), "ecs-service-connect-") ||
				len(tk.Containers[1].NetworkBindings) != 1 {
				return false
			}
		}
		return true
	})
	eventuallyTrue(t, "two Cloud Map instances", 10*time.Second, func() bool {
		li, err := cm.ListInstances(cx, &sd.ListInstancesInput{ServiceId: aws.String(srvID)})
		if err != nil || len(li.Instances) != 2 {
			return false
		}
		for _, in := range li.Instances {
			a := in.Attributes
			if a["ECS_SERVICE_NAME"] != "webui" || a["ECS_CLUSTER_NAME"] != "svc-cluster-2" || a["ECS_TASK_DEFINITION_FAMILY"] != "webui-svc-cluster" ||
				a["AWS_INSTANCE_IPV4"] == "" || a["AWS_INSTANCE_PORT"] == "" || a["AVAILABILITY_ZONE"] == "" {
				t.Logf("attributes %v", a)
				return false
			}
		}
		return true
	})

	// The directory stream, as the node's agent follows it.
	st, err := agent.LoadState(filepath.Join(stateDir, "node-00000"))
	if err != nil {
		t.Fatal(err)
	}
	open := func(ns string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(cx, http.MethodGet, s.Endpoint+agentapi.PathServiceConnect+"?namespace="+url.QueryEscape(ns), nil)
		sigv4.Sign(req, nil, st.AccessKeyID, st.SecretAccessKey, s.Region, agentapi.SigningService, time.Now())
		return http.DefaultClient.Do(req)
	}
	other, err := cm.CreateHttpNamespace(cx, &sd.CreateHttpNamespaceInput{Name: aws.String("unused-namespace")})
	if err != nil {
		t.Fatal(err)
	}
	op := waitOp(t, cm, other.OperationId)
	if resp, err := open("arn:aws:servicediscovery:" + s.Region + ":000000000000:namespace/" + op.Targets["NAMESPACE"]); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a namespace no task of the instance uses: %v %v", err, resp)
	}
	resp, err := open(nsArn)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("directory stream: %v %v", err, resp)
	}
	defer resp.Body.Close()
	lines := make(chan serviceconnect.Directory, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "" {
				continue // heartbeat
			}
			var d serviceconnect.Directory
			if json.Unmarshal(sc.Bytes(), &d) == nil {
				lines <- d
			}
		}
		close(lines)
	}()
	healthy := func(d serviceconnect.Directory) (n, all int) {
		for _, sv := range d.Services {
			if sv.DiscoveryName != "webui-svc" {
				continue
			}
			for _, e := range sv.Endpoints {
				all++
				if e.Healthy {
					n++
				}
				if e.Address == "" || e.Port == 0 {
					t.Errorf("endpoint without address: %+v", e)
				}
			}
		}
		return n, all
	}
	waitLine := func(what string, ok func(serviceconnect.Directory) bool) time.Time {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case d, more := <-lines:
				if !more {
					t.Fatalf("stream ended waiting for %s", what)
				}
				if ok(d) {
					return time.Now()
				}
			case <-timeout:
				t.Fatalf("no directory line with %s", what)
			}
		}
	}
	waitLine("two healthy endpoints", func(d serviceconnect.Directory) bool { n, _ := healthy(d); return d.NamespaceArn == nsArn && n == 2 })
	// Stopping a task: its endpoint turns unhealthy (then goes), and the
	// replacement appears.
	if _, err := c.StopTask(cx, &ecs.StopTaskInput{Cluster: aws.String("svc-cluster-2"), Task: tasks[0].TaskArn}); err != nil {
		t.Fatal(err)
	}
	waitLine("the stopped task not healthy", func(d serviceconnect.Directory) bool {
		for _, sv := range d.Services {
			for _, e := range sv.Endpoints {
				if e.TaskArn == aws.ToString(tasks[0].TaskArn) && e.Healthy {
					return false
				}
			}
		}
		return true
	})
	waitLine("two healthy endpoints again", func(d serviceconnect.Directory) bool { n, _ := healthy(d); return n == 2 })

	// A client-only service in another cluster of the same namespace.
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("svc-cluster-1")}); err != nil {
		t.Fatal(err)
	}
	cli, err := c.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("svc-cluster-1"), ServiceName: aws.String("client"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(0), ServiceConnectConfiguration: &types.ServiceConnectConfiguration{Enabled: true, Namespace: aws.String("svc-namespace")}})
	if err != nil {
		t.Fatal(err)
	}
	if d := cli.Service.Deployments[0]; d.ServiceConnectConfiguration == nil || aws.ToString(d.ServiceConnectConfiguration.Namespace) != nsArn || len(d.ServiceConnectResources) != 0 {
		t.Fatalf("client-only deployment %+v", d)
	}

	// A new task definition must still have the named port.
	plain, err := c.RegisterTaskDefinition(cx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("webui-svc-cluster"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("web"), Image: aws.String("nginx"), Memory: aws.Int32(64), Essential: aws.Bool(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Cluster: aws.String("svc-cluster-2"), Service: aws.String("webui"),
		TaskDefinition: plain.TaskDefinition.TaskDefinitionArn}); apiCode(err) != "InvalidParameterException" || !strings.Contains(err.Error(), "webui-port") {
		t.Fatalf("update to a task definition without the port name: %v", err)
	}

	// Changing the configuration rolls a new deployment.
	scc.Services[0].ClientAliases = append(scc.Services[0].ClientAliases, types.ServiceConnectClientAlias{Port: aws.Int32(8080)})
	up, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Cluster: aws.String("svc-cluster-2"), Service: aws.String("webui"), ServiceConnectConfiguration: scc})
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Service.Deployments) < 2 || aws.ToString(up.Service.Deployments[0].Id) == aws.ToString(dep.Id) ||
		len(up.Service.Deployments[0].ServiceConnectConfiguration.Services[0].ClientAliases) != 2 ||
		aws.ToString(up.Service.Deployments[0].ServiceConnectConfiguration.Services[0].ClientAliases[1].DnsName) != "webui-svc.svc-namespace" {
		b, _ := json.Marshal(up.Service.Deployments)
		t.Fatalf("update did not roll a deployment with the new alias: %s", b)
	}

	// The namespace is in use.
	if _, err := cm.DeleteNamespace(cx, &sd.DeleteNamespaceInput{Id: aws.String(nsID)}); apiCode(err) != "ResourceInUse" {
		t.Fatalf("delete-namespace in use: %v", err)
	}
}

// TestServiceConnectCLIAgainstBinary runs the seed's commands through both
// AWS CLIs against the real binary (berth up): create-cluster
// --service-connect-defaults, create-service
// --service-connect-configuration, describe-services, ECS's refusal of an
// unknown portName, and the namespace that cannot be deleted.
func TestServiceConnectCLIAgainstBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	t.Parallel()
	p := berthtest.StartProcess(t, "up", t.TempDir(), nil)
	c := ecs.NewFromConfig(p.AWSConfig())
	scTaskDef(t, c, "webui-svc-cluster", types.NetworkModeBridge)
	berthtest.EachCLI(t, berthtest.CLIs(t), func(t *testing.T, _ int, cli berthtest.CLI) {
		runSCFlow(t, cli, func(args ...string) (string, string, int) { return cli.Run(t, p.Server, args...) })
	})
}

// runSCFlow is the seed's CLI flow with one CLI.
func runSCFlow(t *testing.T, cli berthtest.CLI, run func(args ...string) (string, string, int)) {
	t.Helper()
	do := func(args ...string) map[string]any {
		t.Helper()
		out, errOut, code := run(args...)
		if code != 0 {
			t.Fatalf("%s %v: %d %s", cli.Name, args, code, errOut)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%s %v: %v: %s", cli.Name, args, err, out)
		}
		return m
	}
	cluster, ns := "svc-cluster-"+cli.Name, "svc-namespace-"+cli.Name
	cl := do("ecs", "create-cluster", "--cluster-name", cluster, "--service-connect-defaults", "namespace="+ns)["cluster"].(map[string]any)
	nsArn, _ := cl["serviceConnectDefaults"].(map[string]any)["namespace"].(string)
	if !strings.Contains(nsArn, ":namespace/ns-") {
		t.Fatalf("%s: cluster's default namespace %q", cli.Name, nsArn)
	}
	conf := `{"enabled":true,"namespace":"` + ns + `","services":[{"portName":"webui-port","discoveryName":"webui-svc","clientAliases":[{"port":80,"dnsName":"webui-svc-domain"}]}]}`
	do("ecs", "create-service", "--cluster", cluster, "--service-name", "webui", "--task-definition", "webui-svc-cluster",
		"--desired-count", "0", "--service-connect-configuration", conf)
	sv := do("ecs", "describe-services", "--cluster", cluster, "--services", "webui")["services"].([]any)[0].(map[string]any)
	dep := sv["deployments"].([]any)[0].(map[string]any)
	b, _ := json.Marshal(dep)
	if !strings.Contains(string(b), `"discoveryName":"webui-svc"`) || !strings.Contains(string(b), `"dnsName":"webui-svc-domain"`) ||
		!strings.Contains(string(b), `"discoveryArn":"arn:aws:servicediscovery:`) || !strings.Contains(string(b), nsArn) {
		t.Fatalf("%s: deployment %s", cli.Name, b)
	}
	_, errOut, code := run("ecs", "create-service", "--cluster", cluster, "--service-name", "bad", "--task-definition", "webui-svc-cluster",
		"--desired-count", "0", "--service-connect-configuration", `{"enabled":true,"services":[{"portName":"nope"}]}`)
	if code == 0 || !strings.Contains(errOut, "InvalidParameterException") || !strings.Contains(errOut, "portName") {
		t.Fatalf("%s: unknown portName: %d %s", cli.Name, code, errOut)
	}
	nsID := nsArn[strings.LastIndexByte(nsArn, '/')+1:]
	_, errOut, code = run("servicediscovery", "delete-namespace", "--id", nsID)
	if code == 0 || !strings.Contains(errOut, "ResourceInUse") {
		t.Fatalf("%s: delete-namespace in use: %d %s", cli.Name, code, errOut)
	}
}
