package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/taskrun"
	"github.com/berthdev/berth/internal/testimage"
)

// statsToolImage is the test image under a tag of this test's own: the
// burn step is newer than the shared tag other checkouts may rebuild.
const statsToolImage = "berth-test/tool:stats"

// TestMetadataStatsAndECSMetricsThroughBerthUp runs `berth up` (the real
// binary, with its agent) and checks, from inside containers in bridge,
// awsvpc and host mode, that the task metadata endpoint answers /, /task,
// /taskWithTags, /stats and /task/stats; from the host, that /stats holds
// real Docker figures (memory in use, CPU time, the previous sample); and
// that a service burning CPU gets AWS/ECS CPUUtilization and
// MemoryUtilization datapoints, read back with `aws cloudwatch
// get-metric-statistics`, after one short metrics period.
func TestMetadataStatsAndECSMetricsThroughBerthUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers")
	}
	t.Parallel()
	berthtest.NeedDocker(t)
	cli := berthtest.CLIs(t)[0]
	dc, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	bctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	if err := testimage.BuildToolAs(bctx, dc, statsToolImage); err != nil {
		t.Fatal(err)
	}
	cancel()

	md := freeAnyAddr(t)
	_, mdPort, _ := net.SplitHostPort(md)
	p := berthtest.StartProcess(t, "up", t.TempDir(), []string{"ECS_IMAGE_PULL_BEHAVIOR=prefer-cached"},
		"--agent=true", "--metadata-addr", md, "--metrics-period", "5s", "--throttle=false", "--log-level", "warn")
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

	// Probes: each step exits non-zero if its path does not answer 200 with
	// the text; "print:ALLOK" comes only after every one passed.
	probe := func(mode types.NetworkMode) string {
		family := "mdprobe-" + string(mode)
		_, err := c.RegisterTaskDefinition(cx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String(family), NetworkMode: mode,
			ContainerDefinitions: []types.ContainerDefinition{{
				Name: aws.String("main"), Image: aws.String(statsToolImage), Memory: aws.Int32(64), StopTimeout: aws.Int32(2),
				Command: []string{"alloc:16", "meta::\"DockerId\"", "meta:/task:" + family, "meta:/taskWithTags:\"team\"",
					"meta:/stats:\"memory_stats\"", "meta:/stats:\"cpu_stats\"", "meta:/task/stats:\"total_usage\"",
					"print:ALLOK", "sleep:1h"},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		// The instance takes placements once its agent's stream is open.
		deadline := time.Now().Add(berthtest.Scale(30 * time.Second))
		for {
			r, err := c.RunTask(cx, &ecs.RunTaskInput{TaskDefinition: aws.String(family),
				Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("metrics")}}})
			if err != nil {
				t.Fatalf("RunTask %s: %v", mode, err)
			}
			if len(r.Tasks) == 1 {
				return aws.ToString(r.Tasks[0].TaskArn)
			}
			if time.Now().After(deadline) {
				t.Fatalf("RunTask %s: failures %s", mode, aws.ToString(r.Failures[0].Reason))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, mode := range []types.NetworkMode{types.NetworkModeBridge, types.NetworkModeAwsvpc, types.NetworkModeHost} {
		arn := probe(mode)
		task := waitTask(t, c, "default", arn, 90*time.Second, func(tk types.Task) bool {
			if aws.ToString(tk.LastStatus) == "STOPPED" {
				t.Fatalf("%s probe stopped: %s (exit %v) %s\n%s", mode, aws.ToString(tk.StoppedReason), exitCode(tk),
					containerLogs(t, dc, tk), p.Output.String())
			}
			return aws.ToString(tk.LastStatus) == "RUNNING" && strings.Contains(containerLogs(t, dc, tk), "ALLOK")
		})
		id := aws.ToString(task.Containers[0].RuntimeId)
		info, err := dc.ContainerInspect(cx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		env := strings.Join(info.Container.Config.Env, "\n")
		if !strings.Contains(env, "ECS_CONTAINER_METADATA_URI_V4=http://") {
			t.Fatalf("%s: no metadata URL in the environment:\n%s", mode, env)
		}
		// From the host, on the same endpoint and token: real figures.
		base := fmt.Sprintf("http://127.0.0.1:%s/v4/%s", mdPort, info.Container.Config.Labels[taskrun.LabelMetadataToken])
		var st statsDoc
		eventuallyTrue(t, string(mode)+" stats with a previous sample", 30*time.Second, func() bool {
			st = getStats(t, base+"/stats")
			return st.PreCPU.Usage.Total > 0
		})
		if st.Memory.Usage == 0 || st.CPU.Usage.Total == 0 || st.CPU.Usage.Total < st.PreCPU.Usage.Total || !st.PreRead.Before(st.Read) {
			t.Fatalf("%s /stats: %+v", mode, st)
		}
		if st.Memory.Usage < 16<<20 {
			t.Fatalf("%s: memory usage %d, below the 16 MiB the container holds", mode, st.Memory.Usage)
		}
		var all map[string]*statsDoc
		getJSON(t, base+"/task/stats", &all)
		if s := all[id]; s == nil || s.Memory.Usage == 0 {
			t.Fatalf("%s /task/stats: %v", mode, all)
		}
		if _, err := c.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
	}

	// A service whose task keeps one core busy.
	if _, err := c.RegisterTaskDefinition(cx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("burner"), Cpu: aws.String("256"), Memory: aws.String("128"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String(statsToolImage), StopTimeout: aws.Int32(2),
			Command: []string{"burn:1h", "alloc:8", "sleep:1h"},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("burner"), TaskDefinition: aws.String("burner"),
		DesiredCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	stat := func(metric string, dims ...string) []float64 {
		now := time.Now().UTC()
		args := []string{"cloudwatch", "get-metric-statistics", "--namespace", "AWS/ECS", "--metric-name", metric,
			"--start-time", now.Add(-10 * time.Minute).Format(time.RFC3339), "--end-time", now.Add(time.Minute).Format(time.RFC3339),
			"--period", "60", "--statistics", "Average", "--dimensions"}
		args = append(args, dims...)
		out, errOut, code := cli.Run(t, p.Server, args...)
		if code != 0 {
			t.Fatalf("get-metric-statistics %s: %s", metric, errOut)
		}
		var r struct{ Datapoints []struct{ Average float64 } }
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var avgs []float64
		for _, d := range r.Datapoints {
			avgs = append(avgs, d.Average)
		}
		return avgs
	}
	service := []string{"Name=ClusterName,Value=default", "Name=ServiceName,Value=burner"}
	var cpu []float64
	eventuallyTrue(t, "service CPUUtilization datapoints", 90*time.Second, func() bool {
		cpu = stat("CPUUtilization", service...)
		return slices.ContainsFunc(cpu, func(v float64) bool { return v > 10 })
	})
	// One core of 256 units reserved is up to 400%; on a loaded machine it
	// gets less, but far more than an idle task's.
	t.Logf("service CPUUtilization averages: %v", cpu)
	// Datapoints of earlier minutes may hold the probes alone (they reserve
	// no CPU): check the largest.
	top := func(vs []float64) float64 {
		m := -1.0
		for _, v := range vs {
			m = max(m, v)
		}
		return m
	}
	if mem := stat("MemoryUtilization", service...); top(mem) <= 0 {
		t.Fatalf("service MemoryUtilization: %v", mem)
	}
	// The burner reserves 256 of the instance's registered CPU units.
	if res := stat("CPUReservation", "Name=ClusterName,Value=default"); top(res) <= 0 || top(res) > 100 {
		t.Fatalf("cluster CPUReservation: %v", res)
	}
	if u := stat("CPUUtilization", "Name=ClusterName,Value=default"); top(u) <= 0 {
		t.Fatalf("cluster CPUUtilization: %v", u)
	}
}

type statsDoc struct {
	Read    time.Time `json:"read"`
	PreRead time.Time `json:"preread"`
	CPU     struct {
		Usage struct {
			Total uint64 `json:"total_usage"`
		} `json:"cpu_usage"`
	} `json:"cpu_stats"`
	PreCPU struct {
		Usage struct {
			Total uint64 `json:"total_usage"`
		} `json:"cpu_usage"`
	} `json:"precpu_stats"`
	Memory struct {
		Usage uint64 `json:"usage"`
	} `json:"memory_stats"`
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}

func getStats(t *testing.T, url string) statsDoc {
	var s statsDoc
	getJSON(t, url, &s)
	return s
}

func exitCode(tk types.Task) any {
	if len(tk.Containers) == 0 || tk.Containers[0].ExitCode == nil {
		return nil
	}
	return *tk.Containers[0].ExitCode
}

// containerLogs returns the first container's output (both streams,
// Docker's multiplexing headers left in).
func containerLogs(t *testing.T, dc *client.Client, tk types.Task) string {
	if len(tk.Containers) == 0 || aws.ToString(tk.Containers[0].RuntimeId) == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := dc.ContainerLogs(ctx, aws.ToString(tk.Containers[0].RuntimeId), client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return ""
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}
