package scenario

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/errs"
)

// TestAgentStatsRouteFeedsECSMetrics drives the agent stats route with a
// joined agent's own credential (no Docker): a signed report becomes the
// service's AWS/ECS CPUUtilization after one metrics period, and its
// ECS/ContainerInsights CpuUtilized once the cluster's containerInsights
// setting is on; unsigned reports and wrong signatures are refused.
func TestAgentStatsRouteFeedsECSMetrics(t *testing.T) {
	s := berthtest.Start(t, func(c *daemon.Config) { c.MetricsPeriod = time.Second })
	cx := context.Background()
	tok, err := s.Daemon.JoinToken(cx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	anon := &agentapi.Client{Endpoint: s.Endpoint, Region: s.Region}
	j, err := anon.Join(cx, agentapi.JoinRequest{Token: tok, Hostname: "h", Resources: agentapi.Resources{CPU: 2048, MemoryMiB: 4096, OSType: "linux", CPUArch: "x86_64"}})
	if err != nil {
		t.Fatal(err)
	}
	c := ecs.NewFromConfig(s.AWSConfig())
	if _, err := c.UpdateClusterSettings(cx, &ecs.UpdateClusterSettingsInput{Cluster: aws.String("default"),
		Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}}}); err != nil {
		t.Fatal(err)
	}
	agent := &agentapi.Client{Endpoint: s.Endpoint, Region: s.Region, AccessKeyID: j.AccessKeyID, SecretAccessKey: j.SecretAccessKey}

	// Refused: unsigned, and signed but malformed.
	resp, err := http.Post(s.Endpoint+agentapi.PathStats, "application/json", bytes.NewReader([]byte(`{"tasks":[]}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned stats report: %d", resp.StatusCode)
	}
	used := func(v float64) *float64 { return &v }
	rep := agentapi.StatsReport{Tasks: []agentapi.TaskUsage{
		{TaskArn: "arn:aws:ecs:us-east-1:000000000000:task/default/a", Family: "web", Group: "service:web",
			CPUReserved: 256, MemoryReservedMiB: 512, CPUUsed: used(64), MemoryUsedMiB: 128, At: time.Now()},
		{TaskArn: "arn:aws:ecs:us-east-1:000000000000:task/default/b", Family: "web", Group: "service:web",
			CPUReserved: 256, MemoryReservedMiB: 512, CPUUsed: used(192), MemoryUsedMiB: 384, At: time.Now()},
	}}
	deadline := time.Now().Add(15 * time.Second)
	var dps []cloudwatchapi.Datapoint
	for time.Now().Before(deadline) {
		if err := agent.Stats(cx, rep); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		out, err := s.Daemon.CloudWatch().GetMetricStatistics(cx, &cloudwatchapi.GetMetricStatisticsInput{
			Namespace: ptrTo("AWS/ECS"), MetricName: ptrTo("CPUUtilization"), Period: ptrTo(int32(60)),
			StartTime: &awsproto.Time{Time: now.Add(-5 * time.Minute)}, EndTime: &awsproto.Time{Time: now.Add(time.Minute)},
			Statistics: []cloudwatchapi.Statistic{cloudwatchapi.StatisticAverage, cloudwatchapi.StatisticMinimum, cloudwatchapi.StatisticMaximum},
			Dimensions: []cloudwatchapi.Dimension{{Name: ptrTo("ClusterName"), Value: ptrTo("default")}, {Name: ptrTo("ServiceName"), Value: ptrTo("web")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if dps = out.Datapoints; len(dps) > 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(dps) == 0 {
		t.Fatal("no CPUUtilization datapoint for the service")
	}
	// (64 + 192) / (256 + 256) = 50 %; tasks at 25 % and 75 %.
	d := dps[0]
	if *d.Average != 50 || *d.Minimum != 25 || *d.Maximum != 75 {
		t.Fatalf("datapoint %+v: avg %v min %v max %v", d, *d.Average, *d.Minimum, *d.Maximum)
	}

	ci, err := s.Daemon.CloudWatch().GetMetricStatistics(cx, &cloudwatchapi.GetMetricStatisticsInput{
		Namespace: ptrTo("ECS/ContainerInsights"), MetricName: ptrTo("CpuUtilized"), Period: ptrTo(int32(60)),
		StartTime: &awsproto.Time{Time: time.Now().Add(-5 * time.Minute)}, EndTime: &awsproto.Time{Time: time.Now().Add(time.Minute)},
		Statistics: []cloudwatchapi.Statistic{cloudwatchapi.StatisticSum, cloudwatchapi.StatisticSampleCount},
		Dimensions: []cloudwatchapi.Dimension{{Name: ptrTo("ClusterName"), Value: ptrTo("default")}, {Name: ptrTo("ServiceName"), Value: ptrTo("web")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ci.Datapoints) == 0 || *ci.Datapoints[0].Sum/(*ci.Datapoints[0].SampleCount) != 128 {
		t.Fatalf("Container Insights CpuUtilized: %+v", ci.Datapoints)
	}

	err = agent.Stats(cx, agentapi.StatsReport{Tasks: []agentapi.TaskUsage{{TaskArn: "x", At: time.Now()}}})
	if err != nil {
		t.Fatalf("a well-formed report: %v", err)
	}
	bad := &agentapi.Client{Endpoint: s.Endpoint, Region: s.Region, AccessKeyID: j.AccessKeyID, SecretAccessKey: "wrong"}
	if err := bad.Stats(cx, rep); !errs.Is(err, errs.Unauthenticated) && !errs.Is(err, errs.Forbidden) {
		t.Fatalf("a report signed with a wrong secret: %v", err)
	}
}

func ptrTo[T any](v T) *T { return &v }
