package scenario

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/berthtest"
)

// TestCloudWatchGoSDK drives the metrics and alarms API through the AWS
// SDK for Go v2 (Smithy RPC v2 CBOR).
func TestCloudWatchGoSDK(t *testing.T) {
	s := berthtest.Start(t, nil)
	cw := cloudwatch.NewFromConfig(s.AWSConfig())
	ctx := context.Background()
	now := time.Now().Truncate(time.Minute)
	dims := []types.Dimension{{Name: aws.String("Service"), Value: aws.String("web")}}
	var data []types.MetricDatum
	for i := range 5 {
		data = append(data, types.MetricDatum{MetricName: aws.String("Latency"), Dimensions: dims, Unit: types.StandardUnitMilliseconds,
			Timestamp: aws.Time(now.Add(-time.Duration(i) * time.Minute)), Values: []float64{10, 20, 30, 40}, Counts: []float64{1, 1, 1, 1}})
	}
	if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Shop"), MetricData: data}); err != nil {
		t.Fatal(err)
	}
	st, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("Shop"), MetricName: aws.String("Latency"), Dimensions: dims,
		StartTime: aws.Time(now.Add(-10 * time.Minute)), EndTime: aws.Time(now.Add(time.Minute)), Period: aws.Int32(60),
		Statistics: []types.Statistic{types.StatisticAverage, types.StatisticSampleCount}})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Datapoints) != 5 || *st.Datapoints[0].Average != 25 || *st.Datapoints[0].SampleCount != 4 || st.Datapoints[0].Unit != types.StandardUnitMilliseconds {
		t.Fatalf("statistics: %+v", st.Datapoints)
	}
	ex, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("Shop"), MetricName: aws.String("Latency"), Dimensions: dims,
		StartTime: aws.Time(now.Add(-10 * time.Minute)), EndTime: aws.Time(now.Add(time.Minute)), Period: aws.Int32(600), ExtendedStatistics: []string{"p99", "p50"}})
	if err != nil || len(ex.Datapoints) == 0 || ex.Datapoints[0].ExtendedStatistics["p99"] != 40 {
		t.Fatalf("p99: %+v %v", ex.Datapoints, err)
	}
	md, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(now.Add(-10 * time.Minute)), EndTime: aws.Time(now.Add(time.Minute)),
		MetricDataQueries: []types.MetricDataQuery{
			{Id: aws.String("lat"), ReturnData: aws.Bool(false), MetricStat: &types.MetricStat{Period: aws.Int32(60), Stat: aws.String("Maximum"),
				Metric: &types.Metric{Namespace: aws.String("Shop"), MetricName: aws.String("Latency"), Dimensions: dims}}},
			{Id: aws.String("secs"), Expression: aws.String("lat / 1000"), Label: aws.String("seconds")},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.MetricDataResults) != 1 || len(md.MetricDataResults[0].Values) != 5 || md.MetricDataResults[0].Values[0] != 0.04 ||
		*md.MetricDataResults[0].Label != "seconds" || md.MetricDataResults[0].StatusCode != types.StatusCodeComplete {
		t.Fatalf("metric data: %+v", md.MetricDataResults)
	}
	lm, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("Shop")})
	if err != nil || len(lm.Metrics) != 1 || *lm.Metrics[0].MetricName != "Latency" {
		t.Fatalf("list metrics: %+v %v", lm, err)
	}
	// Errors keep CloudWatch's codes.
	_, err = cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/ECS"), MetricData: data[:1]})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterValue" || ae.ErrorMessage() != "The value AWS/ECS for parameter Namespace is invalid." {
		t.Fatalf("reserved namespace: %v", err)
	}
	_, err = cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("Shop"), MetricName: aws.String("Latency"),
		StartTime: aws.Time(now.Add(-48 * time.Hour)), EndTime: aws.Time(now), Period: aws.Int32(60), Statistics: []types.Statistic{types.StatisticSum}})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterCombination" {
		t.Fatalf("too many datapoints: %v", err)
	}
	// An alarm through the SDK.
	_, err = cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("slow"), Namespace: aws.String("Shop"), MetricName: aws.String("Latency"),
		Dimensions: dims, ExtendedStatistic: aws.String("p99"), Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(35),
		ComparisonOperator: types.ComparisonOperatorGreaterThanThreshold, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("shop")}}})
	if err != nil {
		t.Fatal(err)
	}
	waitAlarm(t, func() (string, string) {
		d, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"slow"}})
		if err != nil || len(d.MetricAlarms) != 1 {
			t.Fatalf("describe: %+v %v", d, err)
		}
		return string(d.MetricAlarms[0].StateValue), aws.ToString(d.MetricAlarms[0].StateReason)
	}, "ALARM", 15*time.Second)
	tags, err := cw.ListTagsForResource(ctx, &cloudwatch.ListTagsForResourceInput{ResourceARN: aws.String("arn:aws:cloudwatch:us-east-1:000000000000:alarm:slow")})
	if err != nil || len(tags.Tags) != 1 {
		t.Fatalf("tags: %+v %v", tags, err)
	}
	h, err := cw.DescribeAlarmHistory(ctx, &cloudwatch.DescribeAlarmHistoryInput{AlarmName: aws.String("slow"), HistoryItemType: types.HistoryItemTypeStateUpdate})
	if err != nil || len(h.AlarmHistoryItems) != 1 || *h.AlarmHistoryItems[0].HistorySummary != "Alarm updated from INSUFFICIENT_DATA to ALARM" {
		t.Fatalf("history: %+v %v", h, err)
	}
	if _, err := cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: []string{"slow"}}); err != nil {
		t.Fatal(err)
	}
}

func waitAlarm(t *testing.T, get func() (string, string), want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		st, reason := get()
		if st == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("alarm is %s (%s) after %v, want %s", st, reason, within, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestCloudWatchCLIs drives CloudWatch through both AWS CLIs: the pip CLI
// (botocore, JSON 1.0 with query compatibility) and Debian's CLI v2.9
// (the query protocol with XML).
func TestCloudWatchCLIs(t *testing.T) {
	s := berthtest.Start(t, nil)
	berthtest.EachCLI(t, berthtest.CLIs(t), func(t *testing.T, _ int, cli berthtest.CLI) {
		// each CLI uses its own namespace and alarm
		run := func(args ...string) map[string]any {
			t.Helper()
			return cli.RunJSON(t, s, args...)
		}
		ns := "CLI/" + cli.Name
		now := time.Now().UTC().Truncate(time.Second)
		ts := now.Format(time.RFC3339)
		run("cloudwatch", "put-metric-data", "--namespace", ns, "--metric-data",
			fmt.Sprintf(`[{"MetricName":"Queue","Dimensions":[{"Name":"Q","Value":"jobs"}],"Value":7,"Unit":"Count","Timestamp":"%s"},{"MetricName":"Queue","Dimensions":[{"Name":"Q","Value":"jobs"}],"StatisticValues":{"SampleCount":2,"Sum":10,"Minimum":4,"Maximum":6},"Unit":"Count","Timestamp":"%s"}]`, ts, ts))
		st := run("cloudwatch", "get-metric-statistics", "--namespace", ns, "--metric-name", "Queue", "--dimensions", "Name=Q,Value=jobs",
			"--start-time", now.Add(-5*time.Minute).Format(time.RFC3339), "--end-time", now.Add(5*time.Minute).Format(time.RFC3339),
			"--period", "600", "--statistics", "Sum", "Maximum", "SampleCount")
		dps, _ := st["Datapoints"].([]any)
		if len(dps) != 1 {
			t.Fatalf("datapoints: %v", st)
		}
		dp := dps[0].(map[string]any)
		if dp["Sum"] != 17.0 || dp["Maximum"] != 7.0 || dp["SampleCount"] != 3.0 || dp["Unit"] != "Count" {
			t.Fatalf("datapoint: %v", dp)
		}
		md := run("cloudwatch", "get-metric-data", "--start-time", now.Add(-5*time.Minute).Format(time.RFC3339), "--end-time", now.Add(5*time.Minute).Format(time.RFC3339),
			"--metric-data-queries", fmt.Sprintf(`[{"Id":"q","MetricStat":{"Metric":{"Namespace":"%s","MetricName":"Queue","Dimensions":[{"Name":"Q","Value":"jobs"}]},"Period":60,"Stat":"Sum"},"ReturnData":false},{"Id":"double","Expression":"SUM(METRICS()) * 2"}]`, ns))
		res := md["MetricDataResults"].([]any)
		if len(res) != 1 || res[0].(map[string]any)["Values"].([]any)[0] != 34.0 {
			t.Fatalf("metric data: %v", md)
		}
		lm := run("cloudwatch", "list-metrics", "--namespace", ns, "--dimensions", "Name=Q")
		if ms := lm["Metrics"].([]any); len(ms) != 1 {
			t.Fatalf("list-metrics: %v", lm)
		}
		// The alarm watches a metric with no data and ignores missing data,
		// so that no evaluation replaces the state set below however slow
		// the CLI calls are (each is a Python start-up).
		name := "queue-" + cli.Name
		run("cloudwatch", "put-metric-alarm", "--alarm-name", name, "--namespace", ns, "--metric-name", "Quiet", "--dimensions", "Name=Q,Value=jobs",
			"--statistic", "Maximum", "--period", "60", "--evaluation-periods", "1", "--threshold", "100", "--comparison-operator", "GreaterThanThreshold",
			"--treat-missing-data", "ignore", "--alarm-actions", "arn:aws:sns:us-east-1:000000000000:pager")
		run("cloudwatch", "set-alarm-state", "--alarm-name", name, "--state-value", "ALARM", "--state-reason", "drill")
		d := run("cloudwatch", "describe-alarms", "--alarm-names", name)
		a := d["MetricAlarms"].([]any)[0].(map[string]any)
		if a["StateValue"] != "ALARM" || a["StateReason"] != "drill" || a["TreatMissingData"] != "ignore" {
			t.Fatalf("alarm: %v", a)
		}
		h := run("cloudwatch", "describe-alarm-history", "--alarm-name", name, "--history-item-type", "Action")
		items := h["AlarmHistoryItems"].([]any)
		if len(items) != 1 || !strings.HasPrefix(items[0].(map[string]any)["HistorySummary"].(string), "Failed to execute action arn:aws:sns:") {
			t.Fatalf("action history: %v", h)
		}
		fm := run("cloudwatch", "describe-alarms-for-metric", "--namespace", ns, "--metric-name", "Quiet", "--dimensions", "Name=Q,Value=jobs")
		if len(fm["MetricAlarms"].([]any)) != 1 {
			t.Fatalf("for metric: %v", fm)
		}
		run("cloudwatch", "disable-alarm-actions", "--alarm-names", name)
		run("cloudwatch", "delete-alarms", "--alarm-names", name)
		// An error keeps its CloudWatch code in both protocols.
		_, errOut, code := cli.Run(t, s, "cloudwatch", "put-metric-data", "--namespace", "AWS/EC2", "--metric-name", "x", "--value", "1")
		if code == 0 || !strings.Contains(errOut, "InvalidParameterValue") || !strings.Contains(errOut, "The value AWS/EC2 for parameter Namespace is invalid.") {
			t.Fatalf("reserved namespace: %d %s", code, errOut)
		}
		_, errOut, code = cli.Run(t, s, "cloudwatch", "set-alarm-state", "--alarm-name", "nope", "--state-value", "OK", "--state-reason", "x")
		if code == 0 || !strings.Contains(errOut, "ResourceNotFound") {
			t.Fatalf("unknown alarm: %d %s", code, errOut)
		}
	})
}

// TestCloudWatchAlarmAgainstBinary: through the real binary, a breaching
// datapoint puts an alarm in ALARM within one period + 5 s, and the
// alarm and its state survive a restart.
func TestCloudWatchAlarmAgainstBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	dir := t.TempDir()
	p := berthtest.StartProcess(t, "up", dir, nil)
	cw := cloudwatch.NewFromConfig(p.Server.AWSConfig())
	ctx := context.Background()
	dims := []types.Dimension{{Name: aws.String("Host"), Value: aws.String("h1")}}
	put := func(v float64) {
		t.Helper()
		_, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Ops"),
			MetricData: []types.MetricDatum{{MetricName: aws.String("CPU"), Dimensions: dims, Value: aws.Float64(v), StorageResolution: aws.Int32(1)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	put(10)
	const period = 10
	_, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("cpu-high"), Namespace: aws.String("Ops"), MetricName: aws.String("CPU"),
		Dimensions: dims, Statistic: types.StatisticMaximum, Period: aws.Int32(period), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(80),
		ComparisonOperator: types.ComparisonOperatorGreaterThanOrEqualToThreshold, TreatMissingData: aws.String("notBreaching")})
	if err != nil {
		t.Fatal(err)
	}
	state := func() (string, string) {
		d, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{"cpu-high"}})
		if err != nil || len(d.MetricAlarms) != 1 {
			t.Fatalf("describe: %+v %v", d, err)
		}
		return string(d.MetricAlarms[0].StateValue), aws.ToString(d.MetricAlarms[0].StateReason)
	}
	waitAlarm(t, state, "OK", (period+5)*time.Second)
	put(95)
	took := waitAlarm(t, state, "ALARM", (period+5)*time.Second)
	t.Logf("ALARM %v after the breaching datapoint", took)
	st, reason := state()
	if !strings.HasPrefix(reason, "Threshold Crossed: 1 datapoint [95.0 (") || !strings.HasSuffix(reason, ")] was greater than or equal to the threshold (80.0).") {
		t.Fatalf("%s: %s", st, reason)
	}
	// A crash (SIGKILL) and a restart: the alarm, its state and the
	// acknowledged datapoints are still there.
	p.Kill9()
	p = berthtest.StartProcessAt(t, strings.TrimPrefix(p.Endpoint, "http://"), "up", dir, nil)
	cw = cloudwatch.NewFromConfig(p.Server.AWSConfig())
	// The alarm is still there with its history; its state may have
	// moved on to OK since (notBreaching once the breaching period is past).
	state()
	h, err := cw.DescribeAlarmHistory(ctx, &cloudwatch.DescribeAlarmHistoryInput{AlarmName: aws.String("cpu-high"), HistoryItemType: types.HistoryItemTypeStateUpdate,
		ScanBy: types.ScanByTimestampAscending})
	if err != nil || len(h.AlarmHistoryItems) < 2 || *h.AlarmHistoryItems[1].HistorySummary != "Alarm updated from OK to ALARM" {
		t.Fatalf("history after restart: %+v %v", h, err)
	}
	st2, err := cw.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("Ops"), MetricName: aws.String("CPU"), Dimensions: dims,
		StartTime: aws.Time(time.Now().Add(-5 * time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)), Period: aws.Int32(600), Statistics: []types.Statistic{types.StatisticMaximum, types.StatisticSampleCount}})
	if err != nil || len(st2.Datapoints) != 1 || *st2.Datapoints[0].Maximum != 95 || *st2.Datapoints[0].SampleCount != 2 {
		t.Fatalf("datapoints after restart: %+v %v", st2, err)
	}
	lm, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("Ops")})
	if err != nil || len(lm.Metrics) != 1 {
		t.Fatalf("metrics after restart: %+v %v", lm, err)
	}
}
