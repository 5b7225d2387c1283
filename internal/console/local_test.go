package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/console"
	"github.com/berthdev/berth/internal/store"
)

func session(t *testing.T, s *berthtest.Server) string {
	t.Helper()
	resp := signIn(t, s, console.MintToken(s.Creds.AccessKeyID, s.Creds.SecretAccessKey, time.Now(), time.Minute))
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// fargateHost writes a Fargate-capable container instance into cluster
// (the hidden pool or a user's), as an agent's registration would.
func fargateHost(t *testing.T, s *berthtest.Server, cluster string, n int, runtime string, connected bool) {
	t.Helper()
	id := fmt.Sprintf("%032x", 0xfa0000+n)
	rec := map[string]any{"id": id, "arn": "arn:aws:ecs:us-east-1:000000000000:container-instance/" + cluster + "/" + id, "cluster": cluster,
		"ec2InstanceId": "i-" + id[:17], "hostname": "fg", "status": "ACTIVE",
		"registered": map[string]any{"cpu": 2048, "memory": 4096, "osType": "linux", "cpuArch": "x86_64"},
		"attributes": map[string]string{"ecs.capability.fargate": "", "ecs.capability.task-eni": "", "ecs.cpu-architecture": "x86_64",
			"ecs.os-type": "linux", "ecs.availability-zone": "us-east-1a", "berth.fargate-runtime": runtime},
		"versionInfo": map[string]any{"agentVersion": "1.0.0"}, "registeredAt": time.Now().UTC(), "accessKeyId": "ABIA" + id[:16], "version": 1}
	b, _ := json.Marshal(rec)
	st := s.Daemon.Store()
	ops := []store.Op{store.Put("/berth/ecs/instances/"+cluster+"/"+id, b)}
	if connected {
		lease, err := st.Grant(context.Background(), 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, store.PutWithLease("/berth/ecs/agents/"+id, []byte(`{}`), lease))
	}
	if _, err := st.Txn(context.Background(), nil, ops...); err != nil {
		t.Fatal(err)
	}
}

// sseReader reads a watch's result events.
func sseReader(t *testing.T, s *berthtest.Server, ctx context.Context, cookie, path string) func() string {
	req, _ := http.NewRequestWithContext(ctx, "GET", s.Endpoint+path, nil)
	req.AddCookie(&http.Cookie{Name: console.CookieName, Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	return func() string {
		t.Helper()
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, "data: ") {
				return l
			}
		}
		t.Fatalf("watch ended: %v", lines.Err())
		return ""
	}
}

// Berth's own reads: the Fargate capacity (hosts of the hidden pool and of
// a user's cluster, runtime, agent, resources; Fargate tasks per cluster
// and capacity provider), and a rule's delivery records, one-off and in a
// watch that sends a change; no session, no answer.
func TestConsoleBerthReads(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cookie := session(t, s)
	for _, p := range []string{"/console/api/berth/GetFargateCapacity", "/console/api/berth/ListRuleDeliveries?Rule=x"} {
		if code, _ := call(t, s, "GET", p, "", "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d", p, code)
		}
	}
	if code, body := call(t, s, "GET", "/console/api/berth/DeleteEverything", cookie, "", ""); code != http.StatusNotFound || !strings.Contains(body, "UnknownOperationException") {
		t.Errorf("unknown read: %d %s", code, body)
	}
	code, body := call(t, s, "GET", "/console/api/berth/GetFargateCapacity", cookie, "", "")
	if code != 200 || !strings.Contains(body, `"hosts":[]`) {
		t.Fatalf("no Fargate host yet: %d %s", code, body)
	}

	c := ecs.NewFromConfig(s.AWSConfig())
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("prod"), CapacityProviders: []string{"FARGATE", "FARGATE_SPOT"}}); err != nil {
		t.Fatal(err)
	}
	fargateHost(t, s, "berth.fargate", 1, "runsc", true)
	fargateHost(t, s, "berth.fargate", 2, "runc", false) // agent away: no placement there
	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("fg"), NetworkMode: types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate}, Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox")}}}); err != nil {
		t.Fatal(err)
	}
	net := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}
	if _, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("fg"), LaunchType: types.LaunchTypeFargate,
		Count: aws.Int32(2), NetworkConfiguration: net}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("fg"), NetworkConfiguration: net,
		CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	code, body = call(t, s, "GET", "/console/api/berth/GetFargateCapacity", cookie, "", "")
	if code != 200 {
		t.Fatalf("GetFargateCapacity: %d %s", code, body)
	}
	var fc struct {
		Hosts []struct {
			Cluster        string `json:"cluster"`
			Runtime        string `json:"runtime"`
			Pool           bool   `json:"pool"`
			AgentConnected bool   `json:"agentConnected"`
			Reg            int    `json:"registeredCpu"`
			Rem            int    `json:"remainingCpu"`
			RemMem         int    `json:"remainingMemoryMiB"`
			FargateTasks   int    `json:"fargateTasks"`
		} `json:"hosts"`
		Tasks []struct {
			Cluster          string `json:"cluster"`
			CapacityProvider string `json:"capacityProvider"`
			Running          int    `json:"running"`
			Pending          int    `json:"pending"`
			CPU              int    `json:"cpu"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(body), &fc); err != nil {
		t.Fatal(err)
	}
	if len(fc.Hosts) != 2 {
		t.Fatalf("hosts: %s", body)
	}
	h1, h2 := fc.Hosts[0], fc.Hosts[1]
	if h1.Cluster != "berth.fargate" || !h1.Pool || !h1.AgentConnected || h1.Runtime != "runsc" || h1.Reg != 2048 || h1.FargateTasks != 3 || h1.Rem != 2048-3*256 || h1.RemMem != 4096-3*512 {
		t.Errorf("connected host: %+v", h1)
	}
	if h2.AgentConnected || h2.Runtime != "runc" || h2.FargateTasks != 0 || h2.Rem != 2048 {
		t.Errorf("host without its agent: %+v", h2)
	}
	want := map[string]int{"prod/": 2, "prod/FARGATE_SPOT": 1}
	for _, tk := range fc.Tasks {
		if n := want[tk.Cluster+"/"+tk.CapacityProvider]; n != tk.Running+tk.Pending || tk.CPU != 256*n {
			t.Errorf("tasks %+v, want %d", tk, n)
		}
		delete(want, tk.Cluster+"/"+tk.CapacityProvider)
	}
	if len(want) != 0 {
		t.Errorf("task counts missing %v: %s", want, body)
	}

	// A rule whose target fails for good (a log group that does not
	// exist): its delivery record, live in a watch.
	eb := eventbridge.NewFromConfig(s.AWSConfig())
	if code, body := call(t, s, "GET", "/console/api/berth/ListRuleDeliveries?Rule=orders", cookie, "", ""); code != 400 || !strings.Contains(body, "ResourceNotFoundException") {
		t.Errorf("deliveries of a missing rule: %d %s", code, body)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("orders"), EventPattern: aws.String(`{"source":["shop"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("orders"), Targets: []ebtypes.Target{
		{Id: aws.String("lost"), Arn: aws.String("arn:aws:logs:us-east-1:000000000000:log-group:/nowhere")}}}); err != nil {
		t.Fatal(err)
	}
	next := sseReader(t, s, ctx, cookie, "/console/api/watch?every=1&q="+url.QueryEscape(`[{"s":"berth","o":"ListRuleDeliveries","i":{"EventBusName":"default","Rule":"orders"}},{"s":"berth","o":"GetFargateCapacity"}]`))
	first, second := next(), next()
	if !strings.Contains(first, `"i":0,"status":200,"body":{"Deliveries":[]}`) || !strings.Contains(second, `"i":1,"status":200`) {
		t.Errorf("first answers: %s\n%s", first, second)
	}
	pe, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{Source: aws.String("shop"), DetailType: aws.String("order"), Detail: aws.String(`{}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	third := next()
	if !strings.Contains(third, `"i":0,"status":200`) || !strings.Contains(third, `"eventId":"`+aws.ToString(pe.Entries[0].EventId)+`"`) ||
		!strings.Contains(third, `"outcome":"Failed"`) || !strings.Contains(third, `"targetId":"lost"`) || !strings.Contains(third, "/nowhere") {
		t.Errorf("after PutEvents: %s", third)
	}
}
