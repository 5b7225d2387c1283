package awsproto_test

// One set of CloudWatch handlers (a small fake filling the generated
// cloudwatchapi.Handlers) served by the front door in its three encodings:
// JSON 1.0 (query-compatible), the query protocol and Smithy RPC v2 CBOR.

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
	"github.com/fxamacker/cbor/v2"

	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/sigv4"
)

const (
	testAK     = "AKIDPROTOTEST"
	testSecret = "secret-proto-test"
	testRegion = "us-east-1"
)

type testAuth struct{}

func (testAuth) Scope(r *http.Request) (awsproto.Scope, bool) {
	sc, ok := sigv4.ParseScope(r)
	return awsproto.Scope{AccessKey: sc.AccessKey, Region: sc.Region, Service: sc.Service}, ok
}

func (testAuth) Authenticate(r *http.Request, body []byte, now time.Time) (iam.Identity, error) {
	sc, err := sigv4.Verify(r, body, now, func(ak string) (string, bool) { return testSecret, ak == testAK })
	if err != nil {
		return iam.Identity{}, err
	}
	return iam.Identity{AccessKey: sc.AccessKey, Account: "000000000000"}, nil
}

// fakeCloudWatch keeps what PutMetricData received and answers ListMetrics
// from it; its other handlers echo inputs so each encoding's round trip
// can be checked.
type fakeCloudWatch struct {
	mu   sync.Mutex
	puts []*cloudwatchapi.PutMetricDataInput
}

func (f *fakeCloudWatch) handlers() *cloudwatchapi.Handlers {
	return &cloudwatchapi.Handlers{
		PutMetricData: func(_ context.Context, in *cloudwatchapi.PutMetricDataInput) (*cloudwatchapi.PutMetricDataResponse, error) {
			if strings.HasPrefix(*in.Namespace, "AWS/") {
				return nil, awsproto.NewError(cloudwatchapi.ErrInvalidParameterValueException, "The value AWS/ for parameter Namespace is invalid.")
			}
			f.mu.Lock()
			f.puts = append(f.puts, in)
			f.mu.Unlock()
			return nil, nil
		},
		ListMetrics: func(_ context.Context, in *cloudwatchapi.ListMetricsInput) (*cloudwatchapi.ListMetricsOutput, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			out := &cloudwatchapi.ListMetricsOutput{Metrics: []cloudwatchapi.Metric{}}
			for _, p := range f.puts {
				if in.Namespace != nil && *in.Namespace != *p.Namespace {
					continue
				}
				for _, d := range p.MetricData {
					out.Metrics = append(out.Metrics, cloudwatchapi.Metric{Namespace: p.Namespace, MetricName: d.MetricName, Dimensions: d.Dimensions})
				}
			}
			return out, nil
		},
		GetMetricStatistics: func(_ context.Context, in *cloudwatchapi.GetMetricStatisticsInput) (*cloudwatchapi.GetMetricStatisticsOutput, error) {
			return &cloudwatchapi.GetMetricStatisticsOutput{
				Label: in.MetricName,
				Datapoints: []cloudwatchapi.Datapoint{{
					Timestamp:          in.StartTime,
					Average:            aws.Float64(float64(*in.Period) / 4),
					ExtendedStatistics: map[string]float64{"p99": 1.5, "p50": -2},
					Unit:               in.Unit,
				}},
			}, nil
		},
		GetMetricWidgetImage: func(_ context.Context, in *cloudwatchapi.GetMetricWidgetImageInput) (*cloudwatchapi.GetMetricWidgetImageOutput, error) {
			return &cloudwatchapi.GetMetricWidgetImageOutput{MetricWidgetImage: append([]byte{0, 0xff, 0x80}, *in.MetricWidget...)}, nil
		},
		DeleteDashboards: func(_ context.Context, in *cloudwatchapi.DeleteDashboardsInput) (*cloudwatchapi.DeleteDashboardsOutput, error) {
			return nil, awsproto.NewError(cloudwatchapi.ErrDashboardNotFoundError, "Dashboard %s does not exist", in.DashboardNames[0])
		},
		DescribeAlarms: func(context.Context, *cloudwatchapi.DescribeAlarmsInput) (*cloudwatchapi.DescribeAlarmsOutput, error) {
			panic("a bug")
		},
	}
}

func (f *fakeCloudWatch) last(t *testing.T) *cloudwatchapi.PutMetricDataInput {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.puts) == 0 {
		t.Fatal("PutMetricData received nothing")
	}
	return f.puts[len(f.puts)-1]
}

func startCloudWatch(t *testing.T) (*httptest.Server, *fakeCloudWatch) {
	t.Helper()
	f := &fakeCloudWatch{}
	svc := f.handlers().Service()
	svc.ValidationCode = "ValidationError"
	fd := awsproto.New(awsproto.Config{Auth: testAuth{}, Region: testRegion, Services: []*awsproto.Service{svc}})
	srv := httptest.NewServer(fd)
	t.Cleanup(srv.Close)
	return srv, f
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// send signs and sends a raw request for the monitoring service.
func send(t *testing.T, srv *httptest.Server, path string, header map[string]string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	sigv4.Sign(req, body, testAK, testSecret, testRegion, "monitoring", time.Now())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func sendJSON(t *testing.T, srv *httptest.Server, op, body string) answer {
	return send(t, srv, "/", map[string]string{
		"Content-Type":      "application/x-amz-json-1.0",
		"X-Amz-Target":      "GraniteServiceVersion20100801." + op,
		"x-amzn-query-mode": "true",
	}, []byte(body))
}

func sendQuery(t *testing.T, srv *httptest.Server, form url.Values) answer {
	return send(t, srv, "/", map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, []byte(form.Encode()))
}

func sendCBOR(t *testing.T, srv *httptest.Server, op string, body []byte) answer {
	h := map[string]string{"Smithy-Protocol": "rpc-v2-cbor", "Accept": "application/cbor", "X-Amzn-Query-Mode": "true"}
	if len(body) > 0 {
		h["Content-Type"] = "application/cbor"
	}
	return send(t, srv, "/service/GraniteServiceVersion20100801/operation/"+op, h, body)
}

func cborBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ms(v int64) *awsproto.Time { return &awsproto.Time{Time: time.UnixMilli(v).UTC()} }

// wantPut is what every encoding's PutMetricData below must decode to.
func wantPut() *cloudwatchapi.PutMetricDataInput {
	unit := cloudwatchapi.StandardUnitMilliseconds
	return &cloudwatchapi.PutMetricDataInput{
		Namespace: aws.String("Berth/Test"),
		MetricData: []cloudwatchapi.MetricDatum{
			{
				MetricName: aws.String("Latency"),
				Dimensions: []cloudwatchapi.Dimension{
					{Name: aws.String("Service"), Value: aws.String("web")},
					{Name: aws.String("Cluster"), Value: aws.String("prod")},
				},
				Timestamp:         ms(1795316348983),
				Values:            []float64{1.5, 2, 1e-3},
				Counts:            []float64{3, 1, 7},
				StorageResolution: aws.Int32(1),
				Unit:              &unit,
			},
			{
				MetricName:      aws.String("Requests"),
				StatisticValues: &cloudwatchapi.StatisticSet{Maximum: aws.Float64(9), Minimum: aws.Float64(0.25), SampleCount: aws.Float64(4), Sum: aws.Float64(12.5)},
				Value:           aws.Float64(-0.5),
			},
		},
		EntityMetricData: []cloudwatchapi.EntityMetricData{{
			Entity: &cloudwatchapi.Entity{
				KeyAttributes: map[string]string{"Type": "Service", "Name": "web"},
				Attributes:    map[string]string{"Cluster": "prod"},
			},
			MetricData: []cloudwatchapi.MetricDatum{{MetricName: aws.String("Errors"), Value: aws.Float64(0)}},
		}},
		StrictEntityValidation: aws.Bool(false),
	}
}

// The query protocol's form of wantPut, as botocore writes it.
func wantPutForm() url.Values {
	return url.Values{
		"Action":                         {"PutMetricData"},
		"Version":                        {"2010-08-01"},
		"Namespace":                      {"Berth/Test"},
		"MetricData.member.1.MetricName": {"Latency"},
		"MetricData.member.1.Dimensions.member.1.Name":                 {"Service"},
		"MetricData.member.1.Dimensions.member.1.Value":                {"web"},
		"MetricData.member.1.Dimensions.member.2.Name":                 {"Cluster"},
		"MetricData.member.1.Dimensions.member.2.Value":                {"prod"},
		"MetricData.member.1.Timestamp":                                {"2026-11-22T02:59:08.983Z"},
		"MetricData.member.1.Values.member.1":                          {"1.5"},
		"MetricData.member.1.Values.member.2":                          {"2"},
		"MetricData.member.1.Values.member.3":                          {"0.001"},
		"MetricData.member.1.Counts.member.1":                          {"3"},
		"MetricData.member.1.Counts.member.2":                          {"1"},
		"MetricData.member.1.Counts.member.3":                          {"7"},
		"MetricData.member.1.StorageResolution":                        {"1"},
		"MetricData.member.1.Unit":                                     {"Milliseconds"},
		"MetricData.member.2.MetricName":                               {"Requests"},
		"MetricData.member.2.StatisticValues.Maximum":                  {"9"},
		"MetricData.member.2.StatisticValues.Minimum":                  {"0.25"},
		"MetricData.member.2.StatisticValues.SampleCount":              {"4"},
		"MetricData.member.2.StatisticValues.Sum":                      {"12.5"},
		"MetricData.member.2.Value":                                    {"-0.5"},
		"EntityMetricData.member.1.Entity.KeyAttributes.entry.1.key":   {"Type"},
		"EntityMetricData.member.1.Entity.KeyAttributes.entry.1.value": {"Service"},
		"EntityMetricData.member.1.Entity.KeyAttributes.entry.2.key":   {"Name"},
		"EntityMetricData.member.1.Entity.KeyAttributes.entry.2.value": {"web"},
		"EntityMetricData.member.1.Entity.Attributes.entry.1.key":      {"Cluster"},
		"EntityMetricData.member.1.Entity.Attributes.entry.1.value":    {"prod"},
		"EntityMetricData.member.1.MetricData.member.1.MetricName":     {"Errors"},
		"EntityMetricData.member.1.MetricData.member.1.Value":          {"0"},
		"StrictEntityValidation":                                       {"false"},
	}
}

func TestPutMetricDataDecodesAlikeInEveryEncoding(t *testing.T) {
	srv, f := startCloudWatch(t)
	want := wantPut()

	t.Run("JSON 1.0", func(t *testing.T) {
		body := `{"Namespace":"Berth/Test","MetricData":[
			{"MetricName":"Latency","Dimensions":[{"Name":"Service","Value":"web"},{"Name":"Cluster","Value":"prod"}],
			 "Timestamp":1795316348.983,"Values":[1.5,2,0.001],"Counts":[3,1,7],"StorageResolution":1,"Unit":"Milliseconds"},
			{"MetricName":"Requests","StatisticValues":{"Maximum":9,"Minimum":0.25,"SampleCount":4,"Sum":12.5},"Value":-0.5}],
			"EntityMetricData":[{"Entity":{"KeyAttributes":{"Type":"Service","Name":"web"},"Attributes":{"Cluster":"prod"}},
			 "MetricData":[{"MetricName":"Errors","Value":0}]}],"StrictEntityValidation":false}`
		a := sendJSON(t, srv, "PutMetricData", body)
		if a.status != 200 || string(a.body) != "{}" || a.header.Get("Content-Type") != "application/x-amz-json-1.0" {
			t.Fatalf("got %d %s %v", a.status, a.body, a.header)
		}
		if got := f.last(t); !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded\n%s\nwant\n%s", awsproto.FormatValue(got), awsproto.FormatValue(want))
		}
	})
	t.Run("query", func(t *testing.T) {
		a := sendQuery(t, srv, wantPutForm())
		if a.status != 200 {
			t.Fatalf("got %d %s", a.status, a.body)
		}
		// No output shape: no Result element.
		wantXML := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ResponseMetadata><RequestId>` +
			a.header.Get("x-amzn-RequestId") + `</RequestId></ResponseMetadata></PutMetricDataResponse>`
		if string(a.body) != wantXML || a.header.Get("Content-Type") != "text/xml" {
			t.Fatalf("got %s", a.body)
		}
		if got := f.last(t); !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded\n%s\nwant\n%s", awsproto.FormatValue(got), awsproto.FormatValue(want))
		}
	})
	t.Run("CBOR", func(t *testing.T) {
		b, err := awsproto.EncodeCBOR(want)
		if err != nil {
			t.Fatal(err)
		}
		a := sendCBOR(t, srv, "PutMetricData", b)
		if a.status != 200 || a.header.Get("Smithy-Protocol") != "rpc-v2-cbor" || a.header.Get("Content-Type") != "application/cbor" {
			t.Fatalf("got %d %x %v", a.status, a.body, a.header)
		}
		var m map[string]any
		if err := cbor.Unmarshal(a.body, &m); err != nil || len(m) != 0 {
			t.Fatalf("body %x: %v %v", a.body, m, err)
		}
		if got := f.last(t); !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded\n%s\nwant\n%s", awsproto.FormatValue(got), awsproto.FormatValue(want))
		}
	})
}

func TestQueryAnswersAreXMLWithMembers(t *testing.T) {
	srv, _ := startCloudWatch(t)
	if a := sendQuery(t, srv, wantPutForm()); a.status != 200 {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	a := sendQuery(t, srv, url.Values{"Action": {"ListMetrics"}, "Version": {"2010-08-01"}, "Namespace": {"Berth/Test"}})
	want := `<ListMetricsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ListMetricsResult><Metrics>` +
		`<member><Dimensions><member><Name>Service</Name><Value>web</Value></member><member><Name>Cluster</Name><Value>prod</Value></member></Dimensions><MetricName>Latency</MetricName><Namespace>Berth/Test</Namespace></member>` +
		`<member><MetricName>Requests</MetricName><Namespace>Berth/Test</Namespace></member>` +
		`</Metrics></ListMetricsResult><ResponseMetadata><RequestId>` + a.header.Get("x-amzn-RequestId") + `</RequestId></ResponseMetadata></ListMetricsResponse>`
	if a.status != 200 || !strings.HasSuffix(string(a.body), want) {
		t.Fatalf("got %d\n%s\nwant suffix\n%s", a.status, a.body, want)
	}
	// An empty list is written as an empty element.
	a = sendQuery(t, srv, url.Values{"Action": {"ListMetrics"}, "Version": {"2010-08-01"}, "Namespace": {"None"}})
	if !strings.Contains(string(a.body), "<ListMetricsResult><Metrics/></ListMetricsResult>") {
		t.Fatalf("got %s", a.body)
	}
	// Timestamps ISO 8601, maps as entries, numbers plain.
	a = sendQuery(t, srv, url.Values{"Action": {"GetMetricStatistics"}, "Version": {"2010-08-01"}, "Namespace": {"N"}, "MetricName": {"M"},
		"StartTime": {"2026-11-22T02:59:08.983Z"}, "EndTime": {"2026-11-22T01:59:08Z"}, "Period": {"60"}, "Statistics.member.1": {"Average"}, "Unit": {"Count"}})
	want = `<GetMetricStatisticsResult><Datapoints><member><Average>15</Average><ExtendedStatistics><entry><key>p50</key><value>-2</value></entry><entry><key>p99</key><value>1.5</value></entry></ExtendedStatistics>` +
		`<Timestamp>2026-11-22T02:59:08.983Z</Timestamp><Unit>Count</Unit></member></Datapoints><Label>M</Label></GetMetricStatisticsResult>`
	if a.status != 200 || !strings.Contains(string(a.body), want) {
		t.Fatalf("got %d\n%s\nwant\n%s", a.status, a.body, want)
	}
	// The document is well-formed XML in the service's namespace.
	var doc struct {
		XMLName xml.Name
	}
	if err := xml.Unmarshal(a.body, &doc); err != nil || doc.XMLName.Space != "http://monitoring.amazonaws.com/doc/2010-08-01/" {
		t.Fatalf("%v %v", doc.XMLName, err)
	}
	// Blobs base64.
	a = sendQuery(t, srv, url.Values{"Action": {"GetMetricWidgetImage"}, "Version": {"2010-08-01"}, "MetricWidget": {"{}"}})
	if !strings.Contains(string(a.body), "<MetricWidgetImage>AP+Ae30=</MetricWidgetImage>") {
		t.Fatalf("got %s", a.body)
	}
}

type queryError struct {
	Error struct {
		Type, Code, Message string
	}
	RequestID string `xml:"RequestId"`
}

func TestQueryErrors(t *testing.T) {
	srv, _ := startCloudWatch(t)
	cases := []struct {
		name       string
		form       url.Values
		status     int
		typ, code  string
		msgContain string
	}{
		{"modeled error from the handler", url.Values{"Action": {"PutMetricData"}, "Namespace": {"AWS/EC2"}, "MetricData.member.1.MetricName": {"x"}},
			400, "Sender", "InvalidParameterValue", "The value AWS/ for parameter Namespace is invalid."},
		{"modeled status", url.Values{"Action": {"DeleteDashboards"}, "DashboardNames.member.1": {"d"}},
			404, "Sender", "ResourceNotFound", "Dashboard d does not exist"},
		{"missing required member", url.Values{"Action": {"PutMetricData"}, "MetricData.member.1.Value": {"1"}},
			400, "Sender", "ValidationError", "2 validation errors detected: Value null at 'MetricData.1.member.MetricName' failed to satisfy constraint: Member must not be null; Value null at 'Namespace' failed to satisfy constraint: Member must not be null"},
		{"bad enum", url.Values{"Action": {"ListMetrics"}, "RecentlyActive": {"PT9H"}},
			400, "Sender", "ValidationError", "Value 'PT9H' at 'RecentlyActive' failed to satisfy constraint: Member must satisfy enum value set: [PT3H]"},
		{"not a number", url.Values{"Action": {"PutMetricData"}, "Namespace": {"N"}, "MetricData.member.1.MetricName": {"x"}, "MetricData.member.1.Value": {"lots"}},
			400, "Sender", "InvalidParameterValue", "Value 'lots' for parameter MetricData.member.1.Value is invalid: it must be a number"},
		{"integer out of range", url.Values{"Action": {"GetMetricStatistics"}, "Period": {"99999999999"}},
			400, "Sender", "InvalidParameterValue", "parameter Period is invalid: it must be an integer"},
		{"bad timestamp", url.Values{"Action": {"GetMetricStatistics"}, "StartTime": {"yesterday"}},
			400, "Sender", "InvalidParameterValue", "parameter StartTime is invalid"},
		{"bad boolean", url.Values{"Action": {"ListMetrics"}, "IncludeLinkedAccounts": {"yes"}},
			400, "Sender", "InvalidParameterValue", "it must be a boolean"},
		{"bad list index", url.Values{"Action": {"DeleteAlarms"}, "AlarmNames.member.0": {"a"}},
			400, "Sender", "InvalidParameterValue", "AlarmNames.member.0 has no valid index"},
		{"unknown action", url.Values{"Action": {"Launch"}, "Version": {"2010-08-01"}},
			400, "Sender", "InvalidAction", "Could not find operation Launch for version 2010-08-01"},
		{"not implemented", url.Values{"Action": {"PutDashboard"}, "DashboardName": {"d"}, "DashboardBody": {"{}"}},
			400, "Sender", "UnsupportedOperation", "Berth does not implement CloudWatch PutDashboard yet"},
		{"panic", url.Values{"Action": {"DescribeAlarms"}},
			500, "Receiver", "InternalFailure", "internal error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := sendQuery(t, srv, c.form)
			var e queryError
			if err := xml.Unmarshal(a.body, &e); err != nil {
				t.Fatalf("%s: %v", a.body, err)
			}
			if a.status != c.status || e.Error.Type != c.typ || e.Error.Code != c.code || !strings.Contains(e.Error.Message, c.msgContain) ||
				e.RequestID != a.header.Get("x-amzn-RequestId") || !strings.Contains(string(a.body), `<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">`) {
				t.Fatalf("got %d %s", a.status, a.body)
			}
		})
	}
}

func TestEmptyQueryListAndMap(t *testing.T) {
	var in cloudwatchapi.PutMetricDataInput
	form := url.Values{"MetricData": {""}, "EntityMetricData.member.1.Entity.KeyAttributes": {""}}
	if err := awsproto.DecodeForm(form, &in); err != nil {
		t.Fatal(err)
	}
	if in.MetricData == nil || len(in.MetricData) != 0 || in.EntityMetricData[0].Entity.KeyAttributes == nil || in.EntityMetricData[0].Entity.Attributes != nil {
		t.Fatalf("got %s", awsproto.FormatValue(in))
	}
}

func TestJSON10ErrorsCarryTheQueryCode(t *testing.T) {
	srv, _ := startCloudWatch(t)
	cases := []struct {
		name, op, body string
		status         int
		typ, header    string
		msgContain     string
	}{
		{"modeled error", "PutMetricData", `{"Namespace":"AWS/EC2","MetricData":[{"MetricName":"x"}]}`,
			400, "InvalidParameterValueException", "InvalidParameterValue;Sender", "The value AWS/ for parameter Namespace is invalid."},
		{"modeled status", "DeleteDashboards", `{"DashboardNames":["d"]}`,
			404, "ResourceNotFound", "ResourceNotFound;Sender", "Dashboard d does not exist"},
		{"validation", "PutMetricData", `{"MetricData":[]}`,
			400, "ValidationError", "ValidationError;Sender", "1 validation error detected: Value null at 'Namespace' failed to satisfy constraint: Member must not be null"},
		{"wrong type", "PutMetricData", `{"Namespace":5}`,
			400, "SerializationException", "InvalidParameterValue;Sender", "Unexpected number value for member Namespace: expected string"},
		{"unknown operation", "Launch", `{}`,
			400, "UnknownOperationException", "InvalidAction;Sender", "has no operation"},
		{"panic", "DescribeAlarms", `{}`,
			500, "InternalFailure", "InternalFailure;Receiver", "internal error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := sendJSON(t, srv, c.op, c.body)
			if a.status != c.status || a.header.Get("x-amzn-query-error") != c.header ||
				!strings.Contains(string(a.body), `"__type":"`+c.typ+`"`) || !strings.Contains(string(a.body), c.msgContain) {
				t.Fatalf("got %d %s %s", a.status, a.header.Get("x-amzn-query-error"), a.body)
			}
		})
	}
}

func TestCBORAnswersAndErrors(t *testing.T) {
	srv, _ := startCloudWatch(t)
	// An empty body is {}; answers carry Smithy-Protocol.
	a := sendCBOR(t, srv, "ListMetrics", nil)
	var out map[string]any
	if err := cbor.Unmarshal(a.body, &out); a.status != 200 || err != nil || a.header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
		t.Fatalf("got %d %x %v", a.status, a.body, err)
	}
	if m, ok := out["Metrics"].([]any); !ok || len(m) != 0 {
		t.Fatalf("got %#v", out)
	}
	// Timestamps are tag 1 with epoch seconds; maps and floats round-trip.
	a = sendCBOR(t, srv, "GetMetricStatistics", cborBody(t, map[string]any{
		"Namespace": "N", "MetricName": "M", "Period": 60, "Statistics": []string{"Average"}, "Unit": "Count",
		"StartTime": cbor.Tag{Number: 1, Content: 1795316348.983}, "EndTime": cbor.Tag{Number: 1, Content: 1795319948},
	}))
	var stats struct {
		Datapoints []struct {
			Average            float64
			ExtendedStatistics map[string]float64
			Timestamp          cbor.Tag
		}
		Label string
	}
	if err := cbor.Unmarshal(a.body, &stats); err != nil || a.status != 200 {
		t.Fatalf("got %d %x %v", a.status, a.body, err)
	}
	dp := stats.Datapoints[0]
	if stats.Label != "M" || dp.Average != 15 || dp.ExtendedStatistics["p99"] != 1.5 || dp.Timestamp.Number != 1 {
		t.Fatalf("got %+v", stats)
	}
	if f, ok := dp.Timestamp.Content.(float64); !ok || int64(f*1e3) != 1795316348983 {
		t.Fatalf("timestamp %#v", dp.Timestamp.Content)
	}
	// Blobs are byte strings.
	a = sendCBOR(t, srv, "GetMetricWidgetImage", cborBody(t, map[string]any{"MetricWidget": "{}"}))
	var img struct{ MetricWidgetImage []byte }
	if err := cbor.Unmarshal(a.body, &img); err != nil || !bytes.Equal(img.MetricWidgetImage, []byte{0, 0xff, 0x80, '{', '}'}) {
		t.Fatalf("got %x %v", a.body, err)
	}

	cases := []struct {
		name, op   string
		body       []byte
		status     int
		typ, query string
		msgContain string
	}{
		{"modeled error", "PutMetricData", cborBody(t, map[string]any{"Namespace": "AWS/EC2", "MetricData": []any{map[string]any{"MetricName": "x"}}}),
			400, "InvalidParameterValueException", "InvalidParameterValue;Sender", "The value AWS/ for parameter Namespace is invalid."},
		{"modeled status", "DeleteDashboards", cborBody(t, map[string]any{"DashboardNames": []string{"d"}}),
			404, "ResourceNotFound", "ResourceNotFound;Sender", "Dashboard d does not exist"},
		{"validation", "PutMetricData", nil,
			400, "ValidationError", "ValidationError;Sender", "Value null at 'Namespace' failed to satisfy constraint: Member must not be null"},
		{"wrong type", "PutMetricData", cborBody(t, map[string]any{"Namespace": 5}),
			400, "SerializationException", "InvalidParameterValue;Sender", "Unexpected positive integer value for member Namespace: expected string"},
		{"not a map", "PutMetricData", cborBody(t, []int{1}),
			400, "SerializationException", "InvalidParameterValue;Sender", "Start of structure or map expected"},
		{"truncated", "PutMetricData", cborBody(t, map[string]any{"Namespace": "abc"})[:5],
			400, "SerializationException", "InvalidParameterValue;Sender", "Malformed CBOR"},
		{"bad timestamp tag", "GetMetricStatistics", cborBody(t, map[string]any{"StartTime": cbor.Tag{Number: 0, Content: "2026-01-01T00:00:00Z"}}),
			400, "SerializationException", "InvalidParameterValue;Sender", "Invalid timestamp value"},
		{"unknown operation", "Launch", nil,
			400, "UnknownOperationException", "InvalidAction;Sender", "has no operation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := sendCBOR(t, srv, c.op, c.body)
			var e struct {
				Type    string `cbor:"__type"`
				Message string `cbor:"message"`
			}
			if err := cbor.Unmarshal(a.body, &e); err != nil {
				t.Fatalf("%x: %v", a.body, err)
			}
			if a.status != c.status || e.Type != c.typ || a.header.Get("X-Amzn-Query-Error") != c.query || !strings.Contains(e.Message, c.msgContain) ||
				a.header.Get("Smithy-Protocol") != "rpc-v2-cbor" || a.header.Get("Content-Type") != "application/cbor" {
				t.Fatalf("got %d %s %+v", a.status, a.header.Get("X-Amzn-Query-Error"), e)
			}
		})
	}
}

func TestUnsignedRequestsAnsweredInTheirProtocol(t *testing.T) {
	srv, _ := startCloudWatch(t)
	do := func(path string, h map[string]string, body string) answer {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header, b}
	}
	a := do("/service/GraniteServiceVersion20100801/operation/ListMetrics", map[string]string{"Smithy-Protocol": "rpc-v2-cbor"}, "")
	var e map[string]any
	if err := cbor.Unmarshal(a.body, &e); err != nil || a.status != 403 || e["__type"] != "MissingAuthenticationTokenException" || a.header.Get("X-Amzn-Query-Error") != "MissingAuthenticationToken;Sender" {
		t.Fatalf("CBOR: %d %v %v %v", a.status, e, err, a.header)
	}
	a = do("/", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "Action=ListMetrics&Version=2010-08-01")
	if a.status != 403 || !strings.Contains(string(a.body), "<Code>MissingAuthenticationToken</Code>") {
		t.Fatalf("query: %d %s", a.status, a.body)
	}
}

// The AWS SDK for Go v2 speaks CBOR to CloudWatch (>= v1.53): the same
// handlers must answer it, typed errors included.
func TestGoSDKSpeaksCBOR(t *testing.T) {
	srv, f := startCloudWatch(t)
	var sawCBOR bool
	client := cloudwatch.New(cloudwatch.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(testAK, testSecret, ""),
		HTTPClient: httpClientFunc(func(r *http.Request) (*http.Response, error) {
			sawCBOR = sawCBOR || r.Header.Get("Smithy-Protocol") == "rpc-v2-cbor"
			return srv.Client().Do(r)
		}),
		RetryMaxAttempts: 1,
	})
	ctx := context.Background()
	at := time.UnixMilli(1795316348983).UTC()
	_, err := client.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{
		Namespace: aws.String("Berth/Test"),
		MetricData: []cwtypes.MetricDatum{{
			MetricName: aws.String("Latency"),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("Service"), Value: aws.String("web")}},
			Timestamp:  &at,
			Values:     []float64{1.5, 2},
			Counts:     []float64{3, 1},
			Unit:       cwtypes.StandardUnitMilliseconds,
		}},
		EntityMetricData: []cwtypes.EntityMetricData{{
			Entity:     &cwtypes.Entity{KeyAttributes: map[string]string{"Type": "Service", "Name": "web"}},
			MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("Errors"), Value: aws.Float64(1)}},
		}},
		StrictEntityValidation: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawCBOR {
		t.Fatal("the SDK did not speak CBOR")
	}
	got := f.last(t)
	if !got.MetricData[0].Timestamp.Equal(at) || *got.StrictEntityValidation != true || got.EntityMetricData[0].Entity.KeyAttributes["Type"] != "Service" ||
		!reflect.DeepEqual(got.MetricData[0].Values, []float64{1.5, 2}) || *got.MetricData[0].Dimensions[0].Value != "web" {
		t.Fatalf("decoded %s", awsproto.FormatValue(got))
	}

	l, err := client.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String("Berth/Test")})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Metrics) != 1 || aws.ToString(l.Metrics[0].MetricName) != "Latency" || aws.ToString(l.Metrics[0].Dimensions[0].Name) != "Service" {
		t.Fatalf("got %+v", l.Metrics)
	}

	st, err := client.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("N"), MetricName: aws.String("M"),
		StartTime: &at, EndTime: aws.Time(at.Add(time.Hour)), Period: aws.Int32(60), Statistics: []cwtypes.Statistic{cwtypes.StatisticAverage}})
	if err != nil {
		t.Fatal(err)
	}
	if dp := st.Datapoints[0]; !dp.Timestamp.Equal(at) || *dp.Average != 15 || dp.ExtendedStatistics["p50"] != -2 {
		t.Fatalf("got %+v", st.Datapoints)
	}

	img, err := client.GetMetricWidgetImage(ctx, &cloudwatch.GetMetricWidgetImageInput{MetricWidget: aws.String("{}")})
	if err != nil || !bytes.Equal(img.MetricWidgetImage, []byte{0, 0xff, 0x80, '{', '}'}) {
		t.Fatalf("got %v %v", img, err)
	}

	_, err = client.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/EC2"), MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("x")}}})
	var ipv *cwtypes.InvalidParameterValueException
	if !errors.As(err, &ipv) || ipv.ErrorCode() != "InvalidParameterValue" || ipv.ErrorMessage() != "The value AWS/ for parameter Namespace is invalid." {
		t.Fatalf("got %v", err)
	}
	_, err = client.DeleteDashboards(ctx, &cloudwatch.DeleteDashboardsInput{DashboardNames: []string{"d"}})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ResourceNotFound" {
		t.Fatalf("got %v", err)
	}
	_, err = client.PutDashboard(ctx, &cloudwatch.PutDashboardInput{DashboardName: aws.String("d"), DashboardBody: aws.String("{}")})
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnsupportedOperation" {
		t.Fatalf("got %v", err)
	}
}

type httpClientFunc func(*http.Request) (*http.Response, error)

func (f httpClientFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }
