package cloudwatch

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/tsdb"
)

var (
	sharedStore store.Store
	storeOnce   sync.Once
	storeErr    error
	storeDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedStore != nil {
		sharedStore.Close()
		os.RemoveAll(storeDir)
	}
	os.Exit(code)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 2, 12, 10, 0, 0, 0, time.UTC)

// testService returns a service on a fresh tsdb and the shared embedded
// etcd (emptied of CloudWatch keys), with a clock the test moves.
func testService(t *testing.T) (*Service, *clock) {
	t.Helper()
	storeOnce.Do(func() {
		storeDir, _ = os.MkdirTemp("", "berth-cloudwatch-test")
		sharedStore, storeErr = store.Open(context.Background(), store.Config{DataDir: storeDir + "/etcd"})
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	if _, err := sharedStore.Txn(context.Background(), nil, store.DeletePrefix("/berth/cloudwatch/")); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: t0}
	db, err := tsdb.Open(t.TempDir(), tsdb.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := New(db, sharedStore, Config{Region: "us-east-1", Account: "000000000000"}, nil)
	s.SetClock(clk.Now)
	return s, clk
}

var ctx = context.Background()

func wantErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s: %s", code, msg)
	}
	e := MapError(err)
	if e == nil {
		t.Fatalf("unmapped error %v", err)
	}
	if e.Code != code || (msg != "" && e.Message != msg) {
		t.Fatalf("got %s: %s\nwant %s: %s", e.Code, e.Message, code, msg)
	}
}

func datum(name string, v float64, at time.Time, dims ...string) cloudwatchapi.MetricDatum {
	d := cloudwatchapi.MetricDatum{MetricName: ptr(name), Value: ptr(v), Timestamp: awsproto.NewTime(at)}
	for i := 0; i+1 < len(dims); i += 2 {
		d.Dimensions = append(d.Dimensions, cloudwatchapi.Dimension{Name: ptr(dims[i]), Value: ptr(dims[i+1])})
	}
	return d
}

func put(t *testing.T, s *Service, ns string, ds ...cloudwatchapi.MetricDatum) {
	t.Helper()
	if _, err := s.PutMetricData(ctx, &cloudwatchapi.PutMetricDataInput{Namespace: ptr(ns), MetricData: ds}); err != nil {
		t.Fatal(err)
	}
}

func TestPutMetricDataValidation(t *testing.T) {
	s, _ := testService(t)
	in := func(ds ...cloudwatchapi.MetricDatum) *cloudwatchapi.PutMetricDataInput {
		return &cloudwatchapi.PutMetricDataInput{Namespace: ptr("App"), MetricData: ds}
	}
	_, err := s.PutMetricData(ctx, &cloudwatchapi.PutMetricDataInput{Namespace: ptr("AWS/ECS"), MetricData: []cloudwatchapi.MetricDatum{datum("x", 1, t0)}})
	wantErr(t, err, "InvalidParameterValue", "The value AWS/ECS for parameter Namespace is invalid.")

	d := datum("x", 1, t0)
	d.StatisticValues = &cloudwatchapi.StatisticSet{Minimum: ptr(1.0), Maximum: ptr(1.0), Sum: ptr(1.0), SampleCount: ptr(1.0)}
	_, err = s.PutMetricData(ctx, in(d))
	wantErr(t, err, "InvalidParameterCombination", "The parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues are mutually exclusive and you have specified both.")

	d = cloudwatchapi.MetricDatum{MetricName: ptr("x")}
	_, err = s.PutMetricData(ctx, in(datum("ok", 1, t0), d))
	wantErr(t, err, "MissingParameter", "At least one of the parameters MetricData.member.2.Value, MetricData.member.2.StatisticValues or MetricData.member.2.Values must be specified.")

	d = cloudwatchapi.MetricDatum{MetricName: ptr("x"), Values: []float64{1, 2}, Counts: []float64{1}}
	_, err = s.PutMetricData(ctx, in(d))
	wantErr(t, err, "InvalidParameterValue", "The parameters MetricData.member.1.Values and MetricData.member.1.Counts must be of the same size.")

	d = cloudwatchapi.MetricDatum{MetricName: ptr("x"), Values: make([]float64, 151)}
	_, err = s.PutMetricData(ctx, in(d))
	wantErr(t, err, "InvalidParameterValue", "The collection MetricData.member.1.Values must not have a size greater than 150.")

	_, err = s.PutMetricData(ctx, in(datum("x", 1, t0.Add(-15*24*time.Hour))))
	wantErr(t, err, "InvalidParameterValue", "The parameter MetricData.member.1.Timestamp must specify a time no more than two weeks in the past.")
	_, err = s.PutMetricData(ctx, in(datum("x", 1, t0.Add(3*time.Hour))))
	wantErr(t, err, "InvalidParameterValue", "The parameter MetricData.member.1.Timestamp must specify a time no more than two hours in the future.")

	d = datum("x", 1, t0)
	d.StorageResolution = ptr(int32(30))
	_, err = s.PutMetricData(ctx, in(d))
	wantErr(t, err, "InvalidParameterValue", "The value 30 for parameter MetricData.member.1.StorageResolution is invalid: it must be 1 or 60.")

	_, err = s.PutMetricData(ctx, in(datum("x", 1, t0, "a", "1", "a", "2")))
	wantErr(t, err, "InvalidParameterValue", "No metric may have duplicate dimension names: a appears twice in MetricData.member.1.Dimensions.")

	_, err = s.PutMetricData(ctx, in(make([]cloudwatchapi.MetricDatum, 1001)...))
	wantErr(t, err, "InvalidParameterValue", "The collection MetricData must not have a size greater than 1000.")

	// The generated model validation answers ValidationError.
	svc := s.API()
	if svc.ValidationCode != "ValidationError" {
		t.Errorf("ValidationCode %s", svc.ValidationCode)
	}
	// Nothing was stored by the refused calls.
	if got := s.db.Series(""); len(got) != 0 {
		t.Errorf("refused puts stored %v", got)
	}
}

func TestGetMetricStatistics(t *testing.T) {
	s, clk := testService(t)
	clk.Add(time.Hour)
	// minute 0: 1..100 as values; minute 1: a statistic set; minute 2: values with counts
	vals := make([]float64, 100)
	for i := range vals {
		vals[i] = float64(i + 1)
	}
	put(t, s, "App", cloudwatchapi.MetricDatum{MetricName: ptr("Lat"), Values: vals, Timestamp: awsproto.NewTime(t0.Add(10 * time.Second)), Unit: ptr(cloudwatchapi.StandardUnitMilliseconds)})
	put(t, s, "App", cloudwatchapi.MetricDatum{MetricName: ptr("Lat"), Timestamp: awsproto.NewTime(t0.Add(70 * time.Second)), Unit: ptr(cloudwatchapi.StandardUnitMilliseconds),
		StatisticValues: &cloudwatchapi.StatisticSet{Minimum: ptr(2.0), Maximum: ptr(8.0), Sum: ptr(20.0), SampleCount: ptr(4.0)}})
	put(t, s, "App", cloudwatchapi.MetricDatum{MetricName: ptr("Lat"), Values: []float64{1, 10}, Counts: []float64{9, 1}, Timestamp: awsproto.NewTime(t0.Add(130 * time.Second)), Unit: ptr(cloudwatchapi.StandardUnitMilliseconds)})

	out, err := s.GetMetricStatistics(ctx, &cloudwatchapi.GetMetricStatisticsInput{Namespace: ptr("App"), MetricName: ptr("Lat"),
		StartTime: awsproto.NewTime(t0), EndTime: awsproto.NewTime(t0.Add(10 * time.Minute)), Period: ptr(int32(60)),
		Statistics: []cloudwatchapi.Statistic{"SampleCount", "Average", "Sum", "Minimum", "Maximum"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Datapoints) != 3 {
		t.Fatalf("datapoints %+v", out.Datapoints)
	}
	dp := out.Datapoints[0]
	if *dp.SampleCount != 100 || *dp.Average != 50.5 || *dp.Sum != 5050 || *dp.Minimum != 1 || *dp.Maximum != 100 || *dp.Unit != "Milliseconds" || !dp.Timestamp.Equal(t0) {
		t.Errorf("minute 0: %+v", dp)
	}
	if dp = out.Datapoints[1]; *dp.SampleCount != 4 || *dp.Average != 5 || *dp.Minimum != 2 || *dp.Maximum != 8 {
		t.Errorf("minute 1: %+v", dp)
	}
	if dp = out.Datapoints[2]; *dp.SampleCount != 10 || *dp.Sum != 19 {
		t.Errorf("minute 2: %+v", dp)
	}
	out, err = s.GetMetricStatistics(ctx, &cloudwatchapi.GetMetricStatisticsInput{Namespace: ptr("App"), MetricName: ptr("Lat"),
		StartTime: awsproto.NewTime(t0), EndTime: awsproto.NewTime(t0.Add(10 * time.Minute)), Period: ptr(int32(60)),
		ExtendedStatistics: []string{"p50", "p99", "p99.9", "p100"}})
	if err != nil {
		t.Fatal(err)
	}
	es := out.Datapoints[0].ExtendedStatistics
	if es["p50"] != 50 || es["p99"] != 99 || es["p99.9"] != 100 || es["p100"] != 100 {
		t.Errorf("percentiles of 1..100: %v", es)
	}
	if out.Datapoints[1].ExtendedStatistics != nil {
		t.Errorf("percentile over a statistic set: %v", out.Datapoints[1].ExtendedStatistics)
	}
	// 1 observed 9 times, 10 once: p50 and p90 are 1, p99 and p100 are 10.
	if es := out.Datapoints[2].ExtendedStatistics; es["p50"] != 1 || es["p99"] != 10 || es["p100"] != 10 {
		t.Errorf("percentiles with counts: %v", es)
	}
	// Unit filter: another unit has no data.
	out, _ = s.GetMetricStatistics(ctx, &cloudwatchapi.GetMetricStatisticsInput{Namespace: ptr("App"), MetricName: ptr("Lat"),
		StartTime: awsproto.NewTime(t0), EndTime: awsproto.NewTime(t0.Add(10 * time.Minute)), Period: ptr(int32(60)),
		Statistics: []cloudwatchapi.Statistic{"Sum"}, Unit: ptr(cloudwatchapi.StandardUnitSeconds)})
	if len(out.Datapoints) != 0 {
		t.Errorf("unit Seconds: %+v", out.Datapoints)
	}

	base := cloudwatchapi.GetMetricStatisticsInput{Namespace: ptr("App"), MetricName: ptr("Lat"), StartTime: awsproto.NewTime(t0), EndTime: awsproto.NewTime(t0.Add(time.Hour)), Period: ptr(int32(60)), Statistics: []cloudwatchapi.Statistic{"Sum"}}
	in := base
	in.Period = ptr(int32(45))
	_, err = s.GetMetricStatistics(ctx, &in)
	wantErr(t, err, "InvalidParameterValue", "The parameter Period must be 1, 5, 10, 30 or a multiple of 60.")
	in = base
	in.EndTime = awsproto.NewTime(t0.Add(1441 * time.Minute))
	_, err = s.GetMetricStatistics(ctx, &in)
	wantErr(t, err, "InvalidParameterCombination", "You have requested up to 1,441 datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.")
	in = base
	in.ExtendedStatistics = []string{"p99"}
	_, err = s.GetMetricStatistics(ctx, &in)
	wantErr(t, err, "InvalidParameterCombination", "The parameters Statistics and ExtendedStatistics are mutually exclusive and you have specified both.")
	in = base
	in.Statistics, in.ExtendedStatistics = nil, []string{"p101"}
	_, err = s.GetMetricStatistics(ctx, &in)
	wantErr(t, err, "InvalidParameterValue", "")
	in = base
	in.StartTime = in.EndTime
	_, err = s.GetMetricStatistics(ctx, &in)
	wantErr(t, err, "InvalidParameterValue", "The parameter StartTime must be less than the parameter EndTime.")
}

func TestListMetrics(t *testing.T) {
	s, clk := testService(t)
	put(t, s, "App", datum("Req", 1, t0, "svc", "a"), datum("Req", 1, t0, "svc", "b", "az", "1"), datum("Err", 1, t0, "svc", "a"))
	put(t, s, "Other", datum("Req", 1, t0))
	list := func(in cloudwatchapi.ListMetricsInput) []string {
		t.Helper()
		out, err := s.ListMetrics(ctx, &in)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range out.Metrics {
			n := *m.Namespace + "/" + *m.MetricName
			for _, d := range m.Dimensions {
				n += "," + *d.Name + "=" + *d.Value
			}
			names = append(names, n)
		}
		return names
	}
	if got := list(cloudwatchapi.ListMetricsInput{}); len(got) != 4 {
		t.Errorf("all: %v", got)
	}
	if got := list(cloudwatchapi.ListMetricsInput{Namespace: ptr("App"), MetricName: ptr("Req")}); len(got) != 2 {
		t.Errorf("App/Req: %v", got)
	}
	if got := list(cloudwatchapi.ListMetricsInput{Dimensions: []cloudwatchapi.DimensionFilter{{Name: ptr("svc"), Value: ptr("a")}}}); strings.Join(got, " ") != "App/Err,svc=a App/Req,svc=a" {
		t.Errorf("svc=a: %v", got)
	}
	if got := list(cloudwatchapi.ListMetricsInput{Dimensions: []cloudwatchapi.DimensionFilter{{Name: ptr("az")}}}); len(got) != 1 {
		t.Errorf("has az: %v", got)
	}
	clk.Add(4 * time.Hour)
	put(t, s, "App", datum("Req", 2, clk.Now(), "svc", "a"))
	if got := list(cloudwatchapi.ListMetricsInput{RecentlyActive: ptr(cloudwatchapi.RecentlyActivePt3h)}); strings.Join(got, " ") != "App/Req,svc=a" {
		t.Errorf("recently active: %v", got)
	}
	// Pages of 500.
	var ds []cloudwatchapi.MetricDatum
	for i := range 700 {
		ds = append(ds, datum("M", 1, clk.Now(), "i", strings.Repeat("x", i%7)+string(rune('a'+i%26))+strings.Repeat("y", i/26)))
	}
	put(t, s, "Many", ds[:350]...)
	put(t, s, "Many", ds[350:]...)
	out, err := s.ListMetrics(ctx, &cloudwatchapi.ListMetricsInput{Namespace: ptr("Many")})
	if err != nil || len(out.Metrics) != 500 || out.NextToken == nil {
		t.Fatalf("page 1: %d %v %v", len(out.Metrics), out.NextToken, err)
	}
	out2, err := s.ListMetrics(ctx, &cloudwatchapi.ListMetricsInput{Namespace: ptr("Many"), NextToken: out.NextToken})
	if err != nil || len(out2.Metrics) != 200 || out2.NextToken != nil {
		t.Fatalf("page 2: %d %v %v", len(out2.Metrics), out2.NextToken, err)
	}
}

func TestGetMetricData(t *testing.T) {
	s, clk := testService(t)
	clk.Add(time.Hour)
	for i := range 10 {
		at := t0.Add(time.Duration(i) * time.Minute)
		put(t, s, "App", datum("Req", float64(10*(i+1)), at, "svc", "a"), datum("Err", float64(i+1), at, "svc", "a"), datum("Req", 5, at, "svc", "b"))
	}
	ms := func(id, name, svc, stat string) cloudwatchapi.MetricDataQuery {
		return cloudwatchapi.MetricDataQuery{Id: ptr(id), MetricStat: &cloudwatchapi.MetricStat{Period: ptr(int32(60)), Stat: ptr(stat),
			Metric: &cloudwatchapi.Metric{Namespace: ptr("App"), MetricName: ptr(name), Dimensions: []cloudwatchapi.Dimension{{Name: ptr("svc"), Value: ptr(svc)}}}}}
	}
	expr := func(id, e string) cloudwatchapi.MetricDataQuery {
		return cloudwatchapi.MetricDataQuery{Id: ptr(id), Expression: ptr(e)}
	}
	hidden := func(q cloudwatchapi.MetricDataQuery) cloudwatchapi.MetricDataQuery {
		q.ReturnData = ptr(false)
		return q
	}
	in := &cloudwatchapi.GetMetricDataInput{StartTime: awsproto.NewTime(t0), EndTime: awsproto.NewTime(t0.Add(10 * time.Minute)),
		MetricDataQueries: []cloudwatchapi.MetricDataQuery{
			expr("rate", "100 * err / req"), hidden(ms("req", "Req", "a", "Sum")), hidden(ms("err", "Err", "a", "Sum")),
			ms("b", "Req", "b", "Average"), expr("total", "SUM(METRICS(\"req\")) + b"),
		}}
	out, err := s.GetMetricData(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.MetricDataResults) != 3 {
		t.Fatalf("results %+v", out.MetricDataResults)
	}
	rate := out.MetricDataResults[0]
	if *rate.Id != "rate" || len(rate.Values) != 10 || rate.Values[0] != 10 || !rate.Timestamps[0].Equal(t0.Add(9*time.Minute)) || *rate.StatusCode != "Complete" {
		t.Errorf("rate (descending): %+v", rate)
	}
	if tot := out.MetricDataResults[2]; tot.Values[0] != 105 || tot.Values[9] != 15 {
		t.Errorf("total: %v", tot.Values)
	}
	if b := out.MetricDataResults[1]; *b.Label != "Req" {
		t.Errorf("label of b: %s", *b.Label)
	}
	// Ascending, paged by MaxDatapoints.
	in.ScanBy = ptr(cloudwatchapi.ScanByTimestampAscending)
	in.MaxDatapoints = ptr(int32(25))
	out, err = s.GetMetricData(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.NextToken == nil || *out.MetricDataResults[2].StatusCode != "PartialData" || len(out.MetricDataResults[2].Values) != 5 || out.MetricDataResults[0].Values[0] != 10 {
		t.Fatalf("page 1: %+v", out)
	}
	in.NextToken = out.NextToken
	out, err = s.GetMetricData(ctx, in)
	if err != nil || out.NextToken != nil || len(out.MetricDataResults[2].Values) != 5 || len(out.MetricDataResults[0].Values) != 0 {
		t.Fatalf("page 2: %+v %v", out, err)
	}
	in.NextToken, in.MaxDatapoints = nil, nil

	bad := func(qs []cloudwatchapi.MetricDataQuery, code, msg string) {
		t.Helper()
		_, err := s.GetMetricData(ctx, &cloudwatchapi.GetMetricDataInput{StartTime: in.StartTime, EndTime: in.EndTime, MetricDataQueries: qs})
		wantErr(t, err, code, msg)
	}
	bad([]cloudwatchapi.MetricDataQuery{ms("m1", "Req", "a", "Sum"), ms("m1", "Req", "b", "Sum")}, "ValidationError", "The values for parameter id in MetricDataQueries are not unique.")
	bad([]cloudwatchapi.MetricDataQuery{ms("M1", "Req", "a", "Sum")}, "ValidationError", "Invalid metric data query id: M1. The Id must start with a lowercase letter and contain only letters, numbers and underscores.")
	bad([]cloudwatchapi.MetricDataQuery{expr("e1", "m1 +")}, "ValidationError", "Error in expression e1: unexpected end of expression at position 5")
	bad([]cloudwatchapi.MetricDataQuery{expr("e1", "m9 * 2")}, "ValidationError", "Error in expression e1: Unrecognized metric or expression id m9.")
	bad([]cloudwatchapi.MetricDataQuery{expr("e1", "e2 * 2"), expr("e2", "e1 + 1")}, "ValidationError", "Circular dependency between expressions involving e1.")
	bad([]cloudwatchapi.MetricDataQuery{ms("m1", "Req", "a", "Avg")}, "ValidationError", "")
	bad([]cloudwatchapi.MetricDataQuery{{Id: ptr("x")}}, "ValidationError", "Exactly one of MetricDataQueries.member.1.MetricStat and MetricDataQueries.member.1.Expression must be specified.")
	bad([]cloudwatchapi.MetricDataQuery{ms("m1", "Req", "a", "Sum"), expr("e1", "AVG(m1)")}, "ValidationError", "")
}

func alarmInput(name string) *cloudwatchapi.PutMetricAlarmInput {
	return &cloudwatchapi.PutMetricAlarmInput{AlarmName: ptr(name), Namespace: ptr("App"), MetricName: ptr("Lat"),
		Statistic: ptr(cloudwatchapi.StatisticMaximum), Period: ptr(int32(60)), EvaluationPeriods: ptr(int32(1)),
		Threshold: ptr(3.0), ComparisonOperator: ptr(cloudwatchapi.ComparisonOperatorGreaterThanThreshold),
		AlarmActions: []string{"arn:aws:sns:us-east-1:000000000000:ops"}}
}

func describe(t *testing.T, s *Service, name string) cloudwatchapi.MetricAlarm {
	t.Helper()
	out, err := s.DescribeAlarms(ctx, &cloudwatchapi.DescribeAlarmsInput{AlarmNames: []string{name}})
	if err != nil || len(out.MetricAlarms) != 1 {
		t.Fatalf("describe %s: %+v %v", name, out, err)
	}
	return out.MetricAlarms[0]
}

func TestAlarmLifecycle(t *testing.T) {
	s, clk := testService(t)
	if _, err := s.PutMetricAlarm(ctx, alarmInput("high-lat")); err != nil {
		t.Fatal(err)
	}
	a := describe(t, s, "high-lat")
	if *a.StateValue != "INSUFFICIENT_DATA" || *a.StateReason != "Unchecked: Initial alarm creation" || *a.AlarmArn != "arn:aws:cloudwatch:us-east-1:000000000000:alarm:high-lat" || !*a.ActionsEnabled {
		t.Fatalf("new alarm %+v", a)
	}
	// A breaching datapoint in the current period: ALARM at the next evaluation.
	clk.Add(10 * time.Second)
	put(t, s, "App", datum("Lat", 5, clk.Now()))
	if err := s.EvaluateNow(ctx); err != nil {
		t.Fatal(err)
	}
	a = describe(t, s, "high-lat")
	if *a.StateValue != "ALARM" || *a.StateReason != "Threshold Crossed: 1 datapoint [5.0 (12/02/26 10:00:00)] was greater than the threshold (3.0)." {
		t.Fatalf("after breach: %s %s", *a.StateValue, *a.StateReason)
	}
	var rd map[string]any
	if err := json.Unmarshal([]byte(*a.StateReasonData), &rd); err != nil || rd["statistic"] != "Maximum" {
		t.Errorf("reason data %s", *a.StateReasonData)
	}
	// The action was attempted and recorded as not deliverable.
	h, err := s.DescribeAlarmHistory(ctx, &cloudwatchapi.DescribeAlarmHistoryInput{AlarmName: ptr("high-lat")})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, it := range h.AlarmHistoryItems {
		types = append(types, string(*it.HistoryItemType)+": "+*it.HistorySummary)
	}
	want := []string{"Action: Failed to execute action arn:aws:sns:us-east-1:000000000000:ops", "StateUpdate: Alarm updated from INSUFFICIENT_DATA to ALARM", `ConfigurationUpdate: Alarm "high-lat" created`}
	if strings.Join(types, "|") != strings.Join(want, "|") {
		t.Errorf("history\n%v\nwant\n%v", types, want)
	}
	if !strings.Contains(*h.AlarmHistoryItems[0].HistoryData, "not deliverable in Berth") {
		t.Errorf("action data %s", *h.AlarmHistoryItems[0].HistoryData)
	}
	// SetAlarmState holds until the end of the period.
	if _, err := s.SetAlarmState(ctx, &cloudwatchapi.SetAlarmStateInput{AlarmName: ptr("high-lat"), StateValue: ptr(cloudwatchapi.StateValueOk), StateReason: ptr("testing")}); err != nil {
		t.Fatal(err)
	}
	clk.Add(20 * time.Second)
	s.EvaluateNow(ctx)
	if a = describe(t, s, "high-lat"); *a.StateValue != "OK" || *a.StateReason != "testing" {
		t.Fatalf("held state: %s", *a.StateValue)
	}
	clk.Add(40 * time.Second) // 10:01:10: the period is over, and the next one has no data yet
	s.EvaluateNow(ctx)
	if a = describe(t, s, "high-lat"); *a.StateValue != "ALARM" {
		t.Fatalf("after the hold: %s %s", *a.StateValue, *a.StateReason)
	}
	put(t, s, "App", datum("Lat", 1, clk.Now()))
	s.EvaluateNow(ctx)
	if a = describe(t, s, "high-lat"); *a.StateValue != "OK" {
		t.Fatalf("recovered: %s %s", *a.StateValue, *a.StateReason)
	}
	// Update keeps state; disable actions.
	in := alarmInput("high-lat")
	in.Threshold = ptr(10.0)
	if _, err := s.PutMetricAlarm(ctx, in); err != nil {
		t.Fatal(err)
	}
	if a = describe(t, s, "high-lat"); *a.StateValue != "OK" || *a.Threshold != 10 {
		t.Fatalf("after update: %+v", a)
	}
	s.DisableAlarmActions(ctx, &cloudwatchapi.DisableAlarmActionsInput{AlarmNames: []string{"high-lat"}})
	if a = describe(t, s, "high-lat"); *a.ActionsEnabled {
		t.Fatal("actions still enabled")
	}
	// Filters.
	in2 := alarmInput("other")
	in2.AlarmActions = nil
	s.PutMetricAlarm(ctx, in2)
	for _, c := range []struct {
		in   cloudwatchapi.DescribeAlarmsInput
		want int
	}{
		{cloudwatchapi.DescribeAlarmsInput{}, 2},
		{cloudwatchapi.DescribeAlarmsInput{AlarmNamePrefix: ptr("high")}, 1},
		{cloudwatchapi.DescribeAlarmsInput{StateValue: ptr(cloudwatchapi.StateValueInsufficientData)}, 1},
		{cloudwatchapi.DescribeAlarmsInput{ActionPrefix: ptr("arn:aws:sns:")}, 1},
		{cloudwatchapi.DescribeAlarmsInput{AlarmTypes: []cloudwatchapi.AlarmType{"CompositeAlarm"}}, 0},
	} {
		out, err := s.DescribeAlarms(ctx, &c.in)
		if err != nil || len(out.MetricAlarms) != c.want {
			t.Errorf("%+v: %d alarms, %v", c.in, len(out.MetricAlarms), err)
		}
	}
	out, _ := s.DescribeAlarms(ctx, &cloudwatchapi.DescribeAlarmsInput{MaxRecords: ptr(int32(1))})
	if len(out.MetricAlarms) != 1 || out.NextToken == nil {
		t.Fatal("no second page")
	}
	out, _ = s.DescribeAlarms(ctx, &cloudwatchapi.DescribeAlarmsInput{MaxRecords: ptr(int32(1)), NextToken: out.NextToken})
	if len(out.MetricAlarms) != 1 || *out.MetricAlarms[0].AlarmName != "other" || out.NextToken != nil {
		t.Fatal("second page wrong")
	}
	fm, _ := s.DescribeAlarmsForMetric(ctx, &cloudwatchapi.DescribeAlarmsForMetricInput{Namespace: ptr("App"), MetricName: ptr("Lat")})
	if len(fm.MetricAlarms) != 2 {
		t.Errorf("for metric: %d", len(fm.MetricAlarms))
	}
	// Tags.
	arn := "arn:aws:cloudwatch:us-east-1:000000000000:alarm:other"
	s.TagResource(ctx, &cloudwatchapi.TagResourceInput{ResourceARN: ptr(arn), Tags: []cloudwatchapi.Tag{{Key: ptr("team"), Value: ptr("a")}, {Key: ptr("env"), Value: ptr("p")}}})
	s.UntagResource(ctx, &cloudwatchapi.UntagResourceInput{ResourceARN: ptr(arn), TagKeys: []string{"env"}})
	tags, err := s.ListTagsForResource(ctx, &cloudwatchapi.ListTagsForResourceInput{ResourceARN: ptr(arn)})
	if err != nil || len(tags.Tags) != 1 || *tags.Tags[0].Key != "team" {
		t.Errorf("tags %+v %v", tags, err)
	}
	_, err = s.ListTagsForResource(ctx, &cloudwatchapi.ListTagsForResourceInput{ResourceARN: ptr(arn + "x")})
	wantErr(t, err, "ResourceNotFoundException", "")
	// Delete: all or nothing.
	_, err = s.DeleteAlarms(ctx, &cloudwatchapi.DeleteAlarmsInput{AlarmNames: []string{"other", "nope"}})
	wantErr(t, err, "ResourceNotFound", "Alarm nope not found")
	if _, err := s.DeleteAlarms(ctx, &cloudwatchapi.DeleteAlarmsInput{AlarmNames: []string{"other", "high-lat"}}); err != nil {
		t.Fatal(err)
	}
	if out, _ := s.DescribeAlarms(ctx, &cloudwatchapi.DescribeAlarmsInput{}); len(out.MetricAlarms) != 0 {
		t.Errorf("left after delete: %d", len(out.MetricAlarms))
	}
	_, err = s.SetAlarmState(ctx, &cloudwatchapi.SetAlarmStateInput{AlarmName: ptr("nope"), StateValue: ptr(cloudwatchapi.StateValueOk), StateReason: ptr("x")})
	wantErr(t, err, "ResourceNotFound", "Alarm nope not found")
}

func TestPutMetricAlarmValidation(t *testing.T) {
	s, _ := testService(t)
	for _, c := range []struct {
		mod       func(*cloudwatchapi.PutMetricAlarmInput)
		code, msg string
	}{
		{func(in *cloudwatchapi.PutMetricAlarmInput) { in.ExtendedStatistic = ptr("p99") }, "InvalidParameterCombination", "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both."},
		{func(in *cloudwatchapi.PutMetricAlarmInput) { in.Statistic = nil }, "MissingParameter", "One of the parameters Statistic or ExtendedStatistic must be specified."},
		{func(in *cloudwatchapi.PutMetricAlarmInput) { in.Period = ptr(int32(45)) }, "ValidationError", "Invalid value 45 for parameter Period: it must be 10, 20, 30 or a multiple of 60."},
		{func(in *cloudwatchapi.PutMetricAlarmInput) { in.DatapointsToAlarm = ptr(int32(2)) }, "ValidationError", "DatapointsToAlarm (2) must be less than or equal to EvaluationPeriods (1)."},
		{func(in *cloudwatchapi.PutMetricAlarmInput) { in.TreatMissingData = ptr("zero") }, "ValidationError", "Invalid value for parameter TreatMissingData: zero. Valid values are missing, notBreaching, breaching and ignore."},
		{func(in *cloudwatchapi.PutMetricAlarmInput) {
			in.ComparisonOperator = ptr(cloudwatchapi.ComparisonOperatorLessThanLowerOrGreaterThanUpperThreshold)
		}, "UnsupportedOperation", ""},
		{func(in *cloudwatchapi.PutMetricAlarmInput) { in.AlarmActions = []string{"not-an-arn"} }, "ValidationError", "Invalid arn syntax: not-an-arn"},
		{func(in *cloudwatchapi.PutMetricAlarmInput) {
			in.Period, in.EvaluationPeriods = ptr(int32(3600)), ptr(int32(169))
		}, "ValidationError", "The evaluation period multiplied by the number of evaluation periods (608400 s) must not exceed 604800 seconds."},
		{func(in *cloudwatchapi.PutMetricAlarmInput) {
			in.Metrics = []cloudwatchapi.MetricDataQuery{{Id: ptr("e1"), Expression: ptr("m1")}}
		}, "InvalidParameterCombination", ""},
	} {
		in := alarmInput("bad")
		c.mod(in)
		_, err := s.PutMetricAlarm(ctx, in)
		wantErr(t, err, c.code, c.msg)
	}
	if out, _ := s.DescribeAlarms(ctx, &cloudwatchapi.DescribeAlarmsInput{}); len(out.MetricAlarms) != 0 {
		t.Error("a refused alarm was stored")
	}
}

func TestMetricMathAlarm(t *testing.T) {
	s, clk := testService(t)
	q := func(id, name string) cloudwatchapi.MetricDataQuery {
		return cloudwatchapi.MetricDataQuery{Id: ptr(id), ReturnData: ptr(false), MetricStat: &cloudwatchapi.MetricStat{Period: ptr(int32(60)), Stat: ptr("Sum"),
			Metric: &cloudwatchapi.Metric{Namespace: ptr("App"), MetricName: ptr(name)}}}
	}
	in := &cloudwatchapi.PutMetricAlarmInput{AlarmName: ptr("err-rate"), EvaluationPeriods: ptr(int32(2)), DatapointsToAlarm: ptr(int32(2)),
		Threshold: ptr(10.0), ComparisonOperator: ptr(cloudwatchapi.ComparisonOperatorGreaterThanOrEqualToThreshold), TreatMissingData: ptr("notBreaching"),
		Metrics: []cloudwatchapi.MetricDataQuery{q("req", "Req"), q("err", "Err"), {Id: ptr("rate"), Expression: ptr("100 * err / req")}}}
	if _, err := s.PutMetricAlarm(ctx, in); err != nil {
		t.Fatal(err)
	}
	put(t, s, "App", datum("Req", 100, clk.Now()), datum("Err", 20, clk.Now()))
	s.EvaluateNow(ctx)
	if a := describe(t, s, "err-rate"); *a.StateValue != "OK" {
		t.Fatalf("1 of 2 breaching: %s %s", *a.StateValue, *a.StateReason)
	}
	clk.Add(time.Minute)
	put(t, s, "App", datum("Req", 100, clk.Now()), datum("Err", 10, clk.Now()))
	s.EvaluateNow(ctx)
	if a := describe(t, s, "err-rate"); *a.StateValue != "ALARM" || a.Metrics == nil || a.MetricName != nil {
		t.Fatalf("2 of 2 breaching: %s %s", *a.StateValue, *a.StateReason)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	s, _ := testService(t)
	s.cfg.HistoryPerAlarm = 5
	s.PutMetricAlarm(ctx, alarmInput("flappy"))
	for i := range 10 {
		st := cloudwatchapi.StateValueOk
		if i%2 == 0 {
			st = cloudwatchapi.StateValueAlarm
		}
		if _, err := s.SetAlarmState(ctx, &cloudwatchapi.SetAlarmStateInput{AlarmName: ptr("flappy"), StateValue: ptr(st), StateReason: ptr("flap")}); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := s.DescribeAlarmHistory(ctx, &cloudwatchapi.DescribeAlarmHistoryInput{AlarmName: ptr("flappy")})
	if len(h.AlarmHistoryItems) != 5 {
		t.Errorf("%d history items kept, want 5", len(h.AlarmHistoryItems))
	}
	h, _ = s.DescribeAlarmHistory(ctx, &cloudwatchapi.DescribeAlarmHistoryInput{AlarmName: ptr("flappy"), HistoryItemType: ptr(cloudwatchapi.HistoryItemTypeStateUpdate), MaxRecords: ptr(int32(2))})
	if len(h.AlarmHistoryItems) != 2 || h.NextToken == nil {
		t.Errorf("page: %d %v", len(h.AlarmHistoryItems), h.NextToken)
	}
	var data map[string]map[string]any
	json.Unmarshal([]byte(*h.AlarmHistoryItems[0].HistoryData), &data)
	if data["oldState"]["stateValue"] != "ALARM" || data["newState"]["stateValue"] != "OK" {
		t.Errorf("history data %s", *h.AlarmHistoryItems[0].HistoryData)
	}
}

func TestPublishAndController(t *testing.T) {
	s, clk := testService(t)
	// Publish takes AWS/ namespaces (Berth's own producers).
	key := tsdb.NewKey("AWS/ECS", "CPUUtilization", []tsdb.Dim{{Name: "ClusterName", Value: "prod"}})
	if err := s.Publish(ctx, []tsdb.Point{{Key: key, T: clk.Now(), Sample: tsdb.ValueSample(91, 1), Unit: "Percent"}}); err != nil {
		t.Fatal(err)
	}
	out, err := s.ListMetrics(ctx, &cloudwatchapi.ListMetricsInput{Namespace: ptr("AWS/ECS")})
	if err != nil || len(out.Metrics) != 1 {
		t.Fatalf("%+v %v", out, err)
	}
	in := alarmInput("cpu")
	in.Namespace, in.MetricName, in.Threshold = ptr("AWS/ECS"), ptr("CPUUtilization"), ptr(90.0)
	in.Dimensions = []cloudwatchapi.Dimension{{Name: ptr("ClusterName"), Value: ptr("prod")}}
	if _, err := s.PutMetricAlarm(ctx, in); err != nil {
		t.Fatal(err)
	}
	// The controller loop picks the alarm up on its own.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for *describe(t, s, "cpu").StateValue != "ALARM" {
		if time.Now().After(deadline) {
			t.Fatal("controller did not evaluate the alarm")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStateChangeOpsCommitWithTheChange: the operations of the state
// change hook are committed with a state change, and only with one.
func TestStateChangeOpsCommitWithTheChange(t *testing.T) {
	s, _ := testService(t)
	ctx := context.Background()
	var got []AlarmStateChange
	s.SetStateChangeOps(func(c AlarmStateChange) []store.Op {
		got = append(got, c)
		return []store.Op{store.Put("/berth/cloudwatch/test-hook", []byte(c.State))}
	})
	if _, err := s.PutMetricAlarm(ctx, alarmInput("hooked")); err != nil {
		t.Fatal(err)
	}
	for _, st := range []cloudwatchapi.StateValue{cloudwatchapi.StateValueAlarm, cloudwatchapi.StateValueAlarm} {
		if _, err := s.SetAlarmState(ctx, &cloudwatchapi.SetAlarmStateInput{AlarmName: ptr("hooked"), StateValue: ptr(st), StateReason: ptr("test")}); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := s.st.Get(ctx, "/berth/cloudwatch/test-hook")
	if err != nil || string(kv.Value) != "ALARM" {
		t.Fatalf("hook op: %v %v", kv, err)
	}
	if len(got) != 1 || got[0].OldState != "INSUFFICIENT_DATA" || got[0].State != "ALARM" || got[0].Reason != "test" || *got[0].Def.AlarmName != "hooked" {
		t.Fatalf("changes %+v", got)
	}
}
