package scenario

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/hollow"
)

// promScrape is one GET /metrics, parsed as Prometheus parses it.
type promScrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, base string) promScrape {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s/metrics: %d %s", base, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics Content-Type %q, want Prometheus text", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// metrics returns the series of family name whose labels include want.
func (s promScrape) metrics(name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
next:
	for _, m := range s[name].GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// value sums the counters, gauges or histogram counts of the matching
// series (0 when none).
func (s promScrape) value(name string, labels map[string]string) float64 {
	var v float64
	for _, m := range s.metrics(name, labels) {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
	}
	return v
}

func lbl(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestPrometheusMetricsThroughBinaryOnHollowNodes drives `berth up` (the
// real binary) and reads GET /metrics as a Prometheus scraper does (no
// signature): API counters move by exactly the calls made, with the
// failing one under its AWS error code; latency histograms, store latency,
// scheduler work (tasks placed, a placement failure), connected agents
// (hollow nodes: the real agent shell, no Docker) and registry traffic (a
// blob pushed and pulled) show; etcd's own metrics are there; the
// --metrics-listen address serves /metrics and nothing else.
func TestPrometheusMetricsThroughBinaryOnHollowNodes(t *testing.T) {
	var maddr string
	p := berthtest.StartProcessFresh(t, "up", t.TempDir(), nil, func() []string {
		maddr = berthtest.FreeAddr(t)
		return []string{"--metrics-listen", maddr}
	})
	cx := ctx(t)
	client := ecs.NewFromConfig(p.AWSConfig())

	// API requests: exactly these four calls between two scrapes.
	before := scrapeMetrics(t, p.Endpoint)
	if _, err := client.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("metrics")}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := client.ListClusters(cx, &ecs.ListClustersInput{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := client.DescribeServices(cx, &ecs.DescribeServicesInput{Cluster: aws.String("no-such-cluster"), Services: []string{"web"}})
	wantCode(t, err, "ClusterNotFoundException")
	after := scrapeMetrics(t, p.Endpoint)

	delta := func(name string, l map[string]string) float64 { return after.value(name, l) - before.value(name, l) }
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{lbl("service", "ecs", "operation", "CreateCluster", "code", "ok"), 1},
		{lbl("service", "ecs", "operation", "ListClusters", "code", "ok"), 2},
		{lbl("service", "ecs", "operation", "DescribeServices", "code", "ClusterNotFoundException"), 1},
		{lbl("service", "ecs", "operation", "DescribeServices", "code", "ok"), 0},
		{nil, 4}, // nothing else was counted
	} {
		if got := delta("berth_api_requests_total", c.labels); got != c.want {
			t.Errorf("berth_api_requests_total%v moved by %v, want %v", c.labels, got, c.want)
		}
	}
	if got := delta("berth_api_request_duration_seconds", lbl("service", "ecs", "operation", "ListClusters")); got != 2 {
		t.Errorf("ListClusters latency observations moved by %v, want 2", got)
	}
	if got := delta("berth_api_request_duration_seconds", nil); got != 4 {
		t.Errorf("latency observations moved by %v, want 4", got)
	}
	if delta("berth_store_request_duration_seconds", lbl("op", "txn")) < 1 {
		t.Error("CreateCluster's store transaction was not observed")
	}
	if after.value("etcd_server_has_leader", nil) != 1 {
		t.Error("etcd's own metrics (etcd_server_has_leader) are missing")
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "berth_agents_connected"} {
		if after[name] == nil {
			t.Errorf("%s missing", name)
		} else if after[name].GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}

	// Agents and the scheduler: two hollow nodes, a service of two tasks,
	// and a service whose task fits nowhere.
	placedBefore := after.value("berth_scheduler_tasks_placed_total", nil)
	tok, err := agentgw.CreateJoinToken(cx, p.Endpoint, p.Region, p.Creds.AccessKeyID, p.Creds.SecretAccessKey, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := hollow.Start(cx, hollow.Config{Endpoint: p.Endpoint, Region: p.Region, JoinToken: tok.Token, Count: 2,
		Cluster: "metrics", StateDir: t.TempDir(),
		Delays: hollow.Delays{Pull: 20 * time.Millisecond, Start: 20 * time.Millisecond, Stop: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer nodes.Close()
	if got := scrapeMetrics(t, p.Endpoint).value("berth_agents_connected", nil); got != 2 {
		t.Fatalf("berth_agents_connected = %v with two agents connected", got)
	}
	for _, svc := range []struct {
		name   string
		memory int32
		count  int32
	}{{"web", 128, 2}, {"huge", 1 << 20, 1}} {
		td, err := client.RegisterTaskDefinition(cx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String(svc.name),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("c"), Image: aws.String("busybox"),
				Memory: aws.Int32(svc.memory), Essential: aws.Bool(true)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.CreateService(cx, &ecs.CreateServiceInput{Cluster: aws.String("metrics"), ServiceName: aws.String(svc.name),
			TaskDefinition: td.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(svc.count)}); err != nil {
			t.Fatal(err)
		}
	}
	var m promScrape
	eventuallyTrue(t, "two tasks placed, a RESOURCE:MEMORY placement failure and agent reports", 30*time.Second, func() bool {
		m = scrapeMetrics(t, p.Endpoint)
		return m.value("berth_scheduler_tasks_placed_total", nil)-placedBefore >= 2 &&
			m.value("berth_scheduler_placement_failures_total", lbl("reason", "RESOURCE:MEMORY")) >= 1 &&
			m.value("berth_agent_reports_total", lbl("result", "ok")) >= 2
	})
	// web is stable at two tasks: no pass places more.
	eventuallyTrue(t, "service web running 2 tasks", 30*time.Second, func() bool {
		out, err := client.DescribeServices(cx, &ecs.DescribeServicesInput{Cluster: aws.String("metrics"), Services: []string{"web"}})
		return err == nil && len(out.Services) == 1 && out.Services[0].RunningCount == 2
	})
	m = scrapeMetrics(t, p.Endpoint)
	if got := m.value("berth_scheduler_tasks_placed_total", nil) - placedBefore; got != 2 {
		t.Errorf("tasks placed moved by %v, want 2 (service web's two tasks; huge fits nowhere)", got)
	}
	if m.value("berth_scheduler_passes_total", lbl("result", "ok")) < 1 || m.value("berth_scheduler_pass_duration_seconds", nil) < 1 {
		t.Error("no service controller pass observed")
	}
	if m.value("berth_store_watch_events_total", nil) < 1 {
		t.Error("no store watch events counted")
	}
	nodes.Close()
	eventuallyTrue(t, "berth_agents_connected back to 0", 15*time.Second, func() bool {
		return scrapeMetrics(t, p.Endpoint).value("berth_agents_connected", nil) == 0
	})

	// Registry: push one blob (POST, then PUT with the body) and pull it.
	ecrc := ecr.NewFromConfig(p.AWSConfig())
	if _, err := ecrc.CreateRepository(cx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("metrics/app")}); err != nil {
		t.Fatal(err)
	}
	auth, err := ecrc.GetAuthorizationToken(cx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(auth.AuthorizationData[0].AuthorizationToken))
	_, pass, _ := strings.Cut(string(raw), ":")
	blob := make([]byte, 300_000)
	rand.Read(blob)
	sum := sha256.Sum256(blob)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	reg := func(method, path string, body []byte) *http.Response {
		t.Helper()
		if !strings.HasPrefix(path, "http") {
			path = p.Endpoint + path
		}
		req, _ := http.NewRequest(method, path, bytes.NewReader(body))
		req.SetBasicAuth("AWS", pass)
		if body != nil {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	rb := scrapeMetrics(t, p.Endpoint)
	r := reg("POST", "/v2/metrics/app/blobs/uploads/", nil)
	r.Body.Close()
	if r.StatusCode != 202 {
		t.Fatalf("start upload: %d", r.StatusCode)
	}
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = p.Endpoint + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	r = reg("PUT", loc+sep+"digest="+digest, blob)
	r.Body.Close()
	if r.StatusCode != 201 {
		t.Fatalf("finish upload: %d", r.StatusCode)
	}
	r = reg("GET", "/v2/metrics/app/blobs/"+digest, nil)
	got, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !bytes.Equal(got, blob) {
		t.Fatalf("pull blob: %d, %d bytes", r.StatusCode, len(got))
	}
	ra := scrapeMetrics(t, p.Endpoint)
	rdelta := func(name string, l map[string]string) float64 { return ra.value(name, l) - rb.value(name, l) }
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{lbl("method", "POST", "route", "upload", "code", "202"), 1},
		{lbl("method", "PUT", "route", "upload", "code", "201"), 1},
		{lbl("method", "GET", "route", "blob", "code", "200"), 1},
		{nil, 3},
	} {
		if got := rdelta("berth_registry_requests_total", c.labels); got != c.want {
			t.Errorf("berth_registry_requests_total%v moved by %v, want %v", c.labels, got, c.want)
		}
	}
	if got := rdelta("berth_registry_blob_received_bytes_total", nil); got != float64(len(blob)) {
		t.Errorf("blob bytes received moved by %v, want %d", got, len(blob))
	}
	if got := rdelta("berth_registry_blob_sent_bytes_total", nil); got != float64(len(blob)) {
		t.Errorf("blob bytes sent moved by %v, want %d", got, len(blob))
	}
	// The registry's requests are not AWS API requests; ECR's two are.
	if got := rdelta("berth_api_requests_total", nil); got != 0 {
		t.Errorf("registry traffic moved berth_api_requests_total by %v", got)
	}

	// The separate metrics listener serves /metrics only.
	ms := scrapeMetrics(t, "http://"+maddr)
	if ms.value("berth_api_requests_total", lbl("service", "ecr", "operation", "GetAuthorizationToken")) != 1 {
		t.Error("the --metrics-listen address does not serve the same metrics")
	}
	resp, err := http.Get("http://" + maddr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /health on the metrics listener: %d, want 404", resp.StatusCode)
	}
}

// TestPrometheusAgentGaugeWithDockerAgent: `berth up` with its node agent
// on Docker Engine; the agent's assignment stream shows in
// berth_agents_connected.
func TestPrometheusAgentGaugeWithDockerAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary with a Docker agent")
	}
	berthtest.NeedDocker(t)
	p := berthtest.StartProcessFresh(t, "up", t.TempDir(), nil, func() []string {
		return []string{"--agent=true", "--metadata-addr", berthtest.FreeAddr(t)}
	})
	eventuallyTrue(t, "berth up's agent connected", 60*time.Second, func() bool {
		return scrapeMetrics(t, p.Endpoint).value("berth_agents_connected", nil) == 1
	})
	m := scrapeMetrics(t, p.Endpoint)
	if m.value("berth_agent_streams_opened_total", nil) < 1 {
		t.Error("no assignment stream counted as opened")
	}
	// The agent registered its instance through the agent protocol, not
	// the AWS API: one container instance is listed.
	out, err := ecs.NewFromConfig(p.AWSConfig()).ListContainerInstances(ctx(t), &ecs.ListContainerInstancesInput{})
	if err != nil || len(out.ContainerInstanceArns) != 1 {
		t.Fatalf("ListContainerInstances: %v %v", out, err)
	}
}
