package scenario

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/berthdev/berth/internal/berthtest"
)

// TestCloudWatchProtocolsThroughRealClients drives CloudWatch on the real
// binary through the three wire protocols its clients speak: the AWS SDK
// for Go v2 (Smithy RPC v2 CBOR), the pip AWS CLI v1 (JSON 1.0, query
// compatible) and Debian's AWS CLI v2.9 (the query protocol, XML answers).
// Each puts datapoints, lists and reads them back, and gets the legacy
// error codes of failed calls.
func TestCloudWatchProtocolsThroughRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	t.Parallel()
	p := berthtest.StartProcess(t, "up", t.TempDir(), nil)
	at := time.Now().UTC().Add(-2 * time.Minute).Truncate(time.Minute)

	t.Run("go-sdk-cbor", func(t *testing.T) {
		cfg := p.AWSConfig()
		var cborCalls atomic.Int32
		base := cfg.HTTPClient
		cfg.HTTPClient = doerFunc(func(r *http.Request) (*http.Response, error) {
			if r.Header.Get("Smithy-Protocol") == "rpc-v2-cbor" && strings.HasPrefix(r.URL.Path, "/service/GraniteServiceVersion20100801/operation/") {
				cborCalls.Add(1)
			}
			return base.Do(r)
		})
		cfg.RetryMaxAttempts = 1
		cw := cloudwatch.NewFromConfig(cfg)
		ns := "Berth/Proto/sdk"
		_, err := cw.PutMetricData(ctx(t), &cloudwatch.PutMetricDataInput{
			Namespace: aws.String(ns),
			MetricData: []cwtypes.MetricDatum{{
				MetricName: aws.String("Latency"),
				Dimensions: []cwtypes.Dimension{{Name: aws.String("Service"), Value: aws.String("web")}},
				Timestamp:  aws.Time(at),
				Values:     []float64{10, 20},
				Counts:     []float64{1, 2},
				Unit:       cwtypes.StandardUnitMilliseconds,
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		l, err := cw.ListMetrics(ctx(t), &cloudwatch.ListMetricsInput{Namespace: aws.String(ns)})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Metrics) != 1 || aws.ToString(l.Metrics[0].MetricName) != "Latency" || len(l.Metrics[0].Dimensions) != 1 ||
			aws.ToString(l.Metrics[0].Dimensions[0].Value) != "web" {
			t.Fatalf("ListMetrics: %+v", l.Metrics)
		}
		st, err := cw.GetMetricStatistics(ctx(t), &cloudwatch.GetMetricStatisticsInput{
			Namespace: aws.String(ns), MetricName: aws.String("Latency"),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("Service"), Value: aws.String("web")}},
			StartTime:  aws.Time(at.Add(-time.Minute)), EndTime: aws.Time(at.Add(time.Minute)), Period: aws.Int32(60),
			Statistics: []cwtypes.Statistic{cwtypes.StatisticSum, cwtypes.StatisticSampleCount},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Datapoints) != 1 || aws.ToFloat64(st.Datapoints[0].Sum) != 50 || aws.ToFloat64(st.Datapoints[0].SampleCount) != 3 ||
			!st.Datapoints[0].Timestamp.Equal(at) {
			t.Fatalf("GetMetricStatistics: %s", jsonOf(st.Datapoints))
		}

		_, err = cw.PutMetricData(ctx(t), &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/EC2"),
			MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("x"), Value: aws.Float64(1)}}})
		var ipv *cwtypes.InvalidParameterValueException
		if !errors.As(err, &ipv) || ipv.ErrorCode() != "InvalidParameterValue" || httpStatus(err) != 400 {
			t.Fatalf("reserved namespace: %v", err)
		}
		_, err = cw.SetAlarmState(ctx(t), &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("nope"),
			StateValue: cwtypes.StateValueOk, StateReason: aws.String("test")})
		var rnf *cwtypes.ResourceNotFound
		if !errors.As(err, &rnf) || rnf.ErrorCode() != "ResourceNotFound" || httpStatus(err) != 404 {
			t.Fatalf("missing alarm: %v (status %d)", err, httpStatus(err))
		}
		if n := cborCalls.Load(); n != 5 {
			t.Fatalf("%d of 5 calls were CBOR", n)
		}
	})

	for _, cli := range berthtest.CLIs(t) {
		t.Run(cli.Name, func(t *testing.T) {
			// How each CLI speaks to CloudWatch, as its --debug log shows.
			wantWire := map[string][]string{
				"aws-v1": {"'Content-Type': 'application/x-amz-json-1.0'", "'X-Amz-Target': 'GraniteServiceVersion20100801.ListMetrics'"},
				"aws-v2": {"'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8'", "'body': {'Action': 'ListMetrics', 'Version': '2010-08-01'"},
			}[cli.Name]
			var debugLog string
			run := func(args ...string) map[string]any {
				t.Helper()
				out, errOut, code := cli.Run(t, p.Server, args...)
				if code != 0 {
					t.Fatalf("%s %v: exit %d: %s", cli.Name, args, code, errOut)
				}
				debugLog = errOut
				var m map[string]any
				if strings.TrimSpace(out) != "" {
					if err := json.Unmarshal([]byte(out), &m); err != nil {
						t.Fatalf("%v: not JSON: %s", args, out)
					}
				}
				return m
			}
			ns := "Berth/Proto/" + cli.Name
			run("cloudwatch", "put-metric-data", "--namespace", ns, "--metric-name", "Latency",
				"--dimensions", "Service=web,Cluster=prod", "--value", "12.5", "--unit", "Milliseconds",
				"--timestamp", at.Format(time.RFC3339))
			run("cloudwatch", "put-metric-data", "--namespace", ns, "--metric-data", fmt.Sprintf(
				`[{"MetricName":"Requests","Timestamp":"%s","StatisticValues":{"SampleCount":4,"Sum":10,"Minimum":1,"Maximum":4},"Unit":"Count"}]`,
				at.Format(time.RFC3339)))

			l := run("cloudwatch", "list-metrics", "--namespace", ns, "--debug")
			for _, w := range wantWire {
				if !strings.Contains(debugLog, w) {
					t.Fatalf("list-metrics --debug: no %q in the log", w)
				}
			}
			metrics, _ := l["Metrics"].([]any)
			names := map[string]int{}
			for _, m := range metrics {
				mm := m.(map[string]any)
				names[mm["MetricName"].(string)] = len(mm["Dimensions"].([]any))
			}
			if len(metrics) != 2 || names["Latency"] != 2 || names["Requests"] != 0 {
				t.Fatalf("list-metrics: %v", l)
			}
			st := run("cloudwatch", "get-metric-statistics", "--namespace", ns, "--metric-name", "Requests",
				"--start-time", at.Add(-time.Minute).Format(time.RFC3339), "--end-time", at.Add(time.Minute).Format(time.RFC3339),
				"--period", "60", "--statistics", "Sum", "Maximum", "SampleCount")
			dps, _ := st["Datapoints"].([]any)
			if len(dps) != 1 {
				t.Fatalf("get-metric-statistics: %v", st)
			}
			dp := dps[0].(map[string]any)
			// CLI v1 prints timestamps as they came (epoch seconds over
			// JSON); v2 as ISO 8601.
			var ts time.Time
			switch v := dp["Timestamp"].(type) {
			case float64:
				ts = time.UnixMilli(int64(v * 1000))
			case string:
				ts, _ = time.Parse(time.RFC3339, v)
			}
			if dp["Sum"] != 10.0 || dp["Maximum"] != 4.0 || dp["SampleCount"] != 4.0 || dp["Unit"] != "Count" || !ts.Equal(at) {
				t.Fatalf("get-metric-statistics: %v", dp)
			}

			// A large put: botocore gzips bodies over 10 KiB (the pip CLI;
			// Debian's 2.9 predates request compression).
			var bulk []string
			for i := range 300 {
				bulk = append(bulk, fmt.Sprintf(`{"MetricName":"Bulk","Dimensions":[{"Name":"Shard","Value":"s%03d"}],"Value":%d,"Timestamp":"%s"}`, i, i, at.Format(time.RFC3339)))
			}
			file := filepath.Join(t.TempDir(), "bulk.json")
			if err := os.WriteFile(file, []byte("["+strings.Join(bulk, ",")+"]"), 0o644); err != nil {
				t.Fatal(err)
			}
			run("cloudwatch", "put-metric-data", "--namespace", ns+"/bulk", "--metric-data", "file://"+file, "--debug")
			if gz := strings.Contains(debugLog, "Compressing request with gzip encoding."); gz != (cli.Name == "aws-v1") {
				t.Fatalf("%s: gzip compression %v", cli.Name, gz)
			}
			if n := len(run("cloudwatch", "list-metrics", "--namespace", ns+"/bulk")["Metrics"].([]any)); n != 300 {
				t.Fatalf("list-metrics after the bulk put: %d metrics", n)
			}

			// Failed calls: the CLI prints the legacy (query) error code.
			_, errOut, code := cli.Run(t, p.Server, "cloudwatch", "put-metric-data", "--namespace", "AWS/EC2", "--metric-name", "x", "--value", "1")
			if code == 0 || !strings.Contains(errOut, "(InvalidParameterValue)") || !strings.Contains(errOut, "The value AWS/EC2 for parameter Namespace is invalid.") {
				t.Fatalf("reserved namespace: exit %d: %s", code, errOut)
			}
			_, errOut, code = cli.Run(t, p.Server, "cloudwatch", "set-alarm-state", "--alarm-name", "nope", "--state-value", "OK", "--state-reason", "test")
			if code == 0 || !strings.Contains(errOut, "(ResourceNotFound)") {
				t.Fatalf("missing alarm: exit %d: %s", code, errOut)
			}
			_, errOut, code = cli.Run(t, p.Server, "cloudwatch", "describe-alarms", "--state-value", "MAYBE")
			if code == 0 || !strings.Contains(errOut, "ValidationError") || !strings.Contains(errOut, "Member must satisfy enum value set") {
				// botocore rejects a bad enum before sending only for some
				// parameters; this one reaches the server.
				t.Fatalf("bad enum: exit %d: %s", code, errOut)
			}
		})
	}
}

type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// httpStatus returns the HTTP status of a failed SDK call, or 0.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
