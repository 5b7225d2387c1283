package awsproto_test

// Property: any generated CloudWatch input, written as JSON, as a query
// form (as botocore writes it) or as CBOR, decodes back to the same value.
// And fuzzing: no form or CBOR body makes the decoders (or the validation
// after them) panic.

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/awsproto"
)

var roundTripInputs = []func() any{
	func() any { return new(cloudwatchapi.PutMetricDataInput) },
	func() any { return new(cloudwatchapi.GetMetricDataInput) },
	func() any { return new(cloudwatchapi.PutMetricAlarmInput) },
	func() any { return new(cloudwatchapi.ListMetricsInput) },
	func() any { return new(cloudwatchapi.PutCompositeAlarmInput) },
	func() any { return new(cloudwatchapi.PutAnomalyDetectorInput) },
}

var (
	timeT  = reflect.TypeOf(awsproto.Time{})
	alphas = []string{"a", "Z", "9", " ", "&", "=", ".", "+", "%", "<", "é", "日", "/", "member", "entry"}
)

// fill sets v (settable) to a random value of its type. Structures get at
// least one member: an empty structure cannot be written in a form.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	t := v.Type()
	switch {
	case t == timeT:
		v.Set(reflect.ValueOf(awsproto.Time{Time: time.UnixMilli(r.Int63n(4e12) - 1e12).UTC()}))
		return
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		b := make([]byte, r.Intn(8))
		r.Read(b)
		v.SetBytes(b)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		fill(r, p.Elem(), depth)
		v.Set(p)
	case reflect.String:
		var b strings.Builder
		for range r.Intn(6) {
			b.WriteString(alphas[r.Intn(len(alphas))])
		}
		v.SetString(b.String())
	case reflect.Bool:
		v.SetBool(r.Intn(2) == 0)
	case reflect.Int32, reflect.Int64:
		n := r.Int63() >> (64 - t.Bits())
		if r.Intn(2) == 0 {
			n = -n
		}
		v.SetInt(n)
	case reflect.Float64:
		f := r.NormFloat64() * math.Pow(10, float64(r.Intn(30)-15))
		if r.Intn(5) == 0 {
			f = float64(r.Intn(100))
		}
		v.SetFloat(f)
	case reflect.Slice:
		n := r.Intn(4)
		if depth > 3 {
			n = 0
		}
		s := reflect.MakeSlice(t, n, n)
		for i := range n {
			fill(r, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		n := r.Intn(3)
		m := reflect.MakeMapWithSize(t, n)
		for range n {
			k, e := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
			fill(r, k, depth+1)
			fill(r, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		set := false
		for i := range t.NumField() {
			if depth < 4 && r.Intn(3) != 0 {
				fill(r, v.Field(i), depth+1)
				set = true
			}
		}
		if !set {
			fill(r, v.Field(0), depth+1)
		}
	default:
		panic("fill: " + t.String())
	}
}

// encodeForm writes v as botocore's query serializer does.
func encodeForm(form url.Values, prefix string, v reflect.Value) {
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		if !v.IsNil() {
			encodeForm(form, prefix, v.Elem())
		}
		return
	}
	switch {
	case t == timeT:
		form.Set(prefix, v.Interface().(awsproto.Time).UTC().Format("2006-01-02T15:04:05.000Z"))
		return
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		if !v.IsNil() {
			form.Set(prefix, base64.StdEncoding.EncodeToString(v.Bytes()))
		}
		return
	}
	switch t.Kind() {
	case reflect.String:
		form.Set(prefix, v.String())
	case reflect.Bool:
		form.Set(prefix, strconv.FormatBool(v.Bool()))
	case reflect.Int32, reflect.Int64:
		form.Set(prefix, strconv.FormatInt(v.Int(), 10))
	case reflect.Float64:
		form.Set(prefix, strconv.FormatFloat(v.Float(), 'g', -1, 64))
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		if v.Len() == 0 {
			form.Set(prefix, "")
		}
		for i := range v.Len() {
			encodeForm(form, fmt.Sprintf("%s.member.%d", prefix, i+1), v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		if v.Len() == 0 {
			form.Set(prefix, "")
		}
		for i, k := range v.MapKeys() {
			encodeForm(form, fmt.Sprintf("%s.entry.%d.key", prefix, i+1), k)
			encodeForm(form, fmt.Sprintf("%s.entry.%d.value", prefix, i+1), v.MapIndex(k))
		}
	case reflect.Struct:
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			p := name
			if prefix != "" {
				p = prefix + "." + name
			}
			encodeForm(form, p, v.Field(i))
		}
	}
}

func TestEveryEncodingRoundTripsGeneratedInputs(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := range 300 {
		newIn := roundTripInputs[i%len(roundTripInputs)]
		want := newIn()
		fill(r, reflect.ValueOf(want).Elem(), 0)

		b, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		fromJSON := newIn()
		if err := awsproto.DecodeJSON(b, fromJSON); err != nil {
			t.Fatalf("JSON %s: %v", b, err)
		}

		c, err := awsproto.EncodeCBOR(want)
		if err != nil {
			t.Fatal(err)
		}
		fromCBOR := newIn()
		if err := awsproto.DecodeCBOR(c, fromCBOR); err != nil {
			t.Fatalf("CBOR %x: %v", c, err)
		}

		form := url.Values{"Action": {"X"}, "Version": {"2010-08-01"}}
		encodeForm(form, "", reflect.ValueOf(want))
		// Through the wire form, as a client sends it.
		form, err = url.ParseQuery(form.Encode())
		if err != nil {
			t.Fatal(err)
		}
		fromForm := newIn()
		if err := awsproto.DecodeForm(form, fromForm); err != nil {
			t.Fatalf("form %v: %v", form, err)
		}

		for name, got := range map[string]any{"JSON": fromJSON, "CBOR": fromCBOR, "form": fromForm} {
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s round trip of %T:\n got %s\nwant %s", name, want, awsproto.FormatValue(got), awsproto.FormatValue(want))
			}
		}
	}
}

func TestGzippedBodies(t *testing.T) {
	srv, f := startCloudWatch(t)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(wantPutForm().Encode()))
	zw.Close()
	a := send(t, srv, "/", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"}, z.Bytes())
	if a.status != 200 {
		t.Fatalf("got %d %s", a.status, a.body)
	}
	if got := f.last(t); !reflect.DeepEqual(got, wantPut()) {
		t.Fatalf("decoded %s", awsproto.FormatValue(got))
	}
	// Not gzip: a serialization error, in the request's protocol.
	a = send(t, srv, "/", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"}, []byte("Action=ListMetrics"))
	if a.status != 400 || !strings.Contains(string(a.body), "<Code>InvalidParameterValue</Code><Message>The request body is not valid gzip data") {
		t.Fatalf("got %d %s", a.status, a.body)
	}
}

func TestGzipBombIsCapped(t *testing.T) {
	f := &fakeCloudWatch{}
	fd := awsproto.New(awsproto.Config{Auth: testAuth{}, MaxBody: 1 << 16, Services: []*awsproto.Service{f.handlers().Service()}})
	srv := newServer(t, fd)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(`{"Namespace":"` + strings.Repeat("a", 1<<20) + `"}`))
	zw.Close()
	a := send(t, srv, "/", map[string]string{"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "GraniteServiceVersion20100801.PutMetricData", "Content-Encoding": "gzip"}, z.Bytes())
	if a.status != 413 || !strings.Contains(string(a.body), "RequestEntityTooLargeException") || a.header.Get("x-amzn-query-error") != "RequestEntityTooLarge;Sender" {
		t.Fatalf("got %d %s %v", a.status, a.body, a.header)
	}
}

func validateAny(v any) {
	if val, ok := v.(interface{ Validate() error }); ok {
		val.Validate()
	}
}

func FuzzDecodeForm(f *testing.F) {
	f.Add(wantPutForm().Encode())
	f.Add("Action=ListMetrics&Dimensions.member.1.Name=a&Dimensions.member.2.Value=b&RecentlyActive=PT3H")
	f.Add("MetricData=&EntityMetricData.member.1.Entity.KeyAttributes.entry.1.key=k")
	f.Add("MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name=x&StartTime=2026-01-01T00:00:00Z&MaxDatapoints=5")
	f.Add("AlarmName=a&Threshold=1e400&EvaluationPeriods=-1&Tags.member.x.Key=k")
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		for _, newIn := range roundTripInputs {
			in := newIn()
			if err := awsproto.DecodeForm(form, in); err == nil {
				validateAny(in)
			}
		}
	})
}

func FuzzDecodeCBOR(f *testing.F) {
	for _, v := range []any{wantPut(), &cloudwatchapi.ListMetricsInput{}, map[string]any{"StartTime": 5}} {
		b, _ := awsproto.EncodeCBOR(v)
		f.Add(b)
	}
	f.Add([]byte{0xbf, 0x69, 'N', 'a', 'm', 'e', 's', 'p', 'a', 'c', 'e', 0x61, 'x', 0xff})
	f.Add([]byte{0xa1, 0x69, 'S', 't', 'a', 'r', 't', 'T', 'i', 'm', 'e', 0xc1, 0xfb, 0x41, 0xda, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newIn := range roundTripInputs {
			in := newIn()
			if err := awsproto.DecodeCBOR(body, in); err == nil {
				validateAny(in)
				if _, err := awsproto.EncodeCBOR(in); err != nil {
					t.Fatalf("decoded %x but cannot encode it: %v", body, err)
				}
			}
		}
	})
}
