package scenario

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/throttle"
)

type rawResp struct {
	status    int
	body      map[string]any
	raw       string
	requestID string
}

// rawCall sends a JSON 1.1 request signed by the AWS SDK's signer with
// the given secret and time (zero: now; secret "": unsigned).
func rawCall(t *testing.T, s *berthtest.Server, target, body, secret string, at time.Time) rawResp {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.Endpoint+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if secret != "" {
		if at.IsZero() {
			at = time.Now()
		}
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: s.Creds.AccessKeyID, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ecs", s.Region, at); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := rawResp{status: resp.StatusCode, raw: string(b), requestID: resp.Header.Get("x-amzn-RequestId")}
	json.Unmarshal(b, &r.body)
	return r
}

func clusterCount(t *testing.T, s *berthtest.Server) int {
	t.Helper()
	l, err := ecs.NewFromConfig(s.AWSConfig()).ListClusters(ctx(t), &ecs.ListClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.ClusterArns)
}

func TestBadInputGetsExactErrorAndChangesNothing(t *testing.T) {
	s := berthtest.Start(t, func(c *daemon.Config) { c.MaxBody = 64 << 10 })
	secret := s.Creds.SecretAccessKey
	const create = "AmazonEC2ContainerServiceV20141113.CreateCluster"
	before := clusterCount(t, s)

	cases := []struct {
		name, target, body, secret string
		at                         time.Time
		status                     int
		code                       string
	}{
		{"malformed JSON", create, `{"clusterName": "x"`, secret, time.Time{}, 400, "SerializationException"},
		{"not an object", create, `["x"]`, secret, time.Time{}, 400, "SerializationException"},
		{"wrong-typed member", create, `{"clusterName": 42}`, secret, time.Time{}, 400, "SerializationException"},
		{"wrong-typed nested member", create, `{"clusterName":"x","tags":[{"key":1}]}`, secret, time.Time{}, 400, "SerializationException"},
		{"bad enum", create, `{"clusterName":"x","settings":[{"name":"turbo","value":"on"}]}`, secret, time.Time{}, 400, "InvalidParameterException"},
		{"missing required member", "AmazonEC2ContainerServiceV20141113.DeleteCluster", `{}`, secret, time.Time{}, 400, "InvalidParameterException"},
		{"unknown operation", "AmazonEC2ContainerServiceV20141113.LaunchRockets", `{}`, secret, time.Time{}, 400, "UnknownOperationException"},
		{"unknown target prefix", "NoSuchService_20990101.CreateCluster", `{}`, secret, time.Time{}, 400, "UnknownOperationException"},
		{"invalid cluster name", create, `{"clusterName":"has spaces"}`, secret, time.Time{}, 400, "InvalidParameterException"},
		{"oversized body", create, `{"clusterName":"` + strings.Repeat("x", 70<<10) + `"}`, secret, time.Time{}, 413, "RequestEntityTooLargeException"},
		{"unsigned", create, `{"clusterName":"x"}`, "", time.Time{}, 403, "MissingAuthenticationTokenException"},
		{"wrong secret", create, `{"clusterName":"x"}`, "not-the-secret", time.Time{}, 403, "InvalidSignatureException"},
		{"expired signature", create, `{"clusterName":"x"}`, secret, time.Now().Add(-20 * time.Minute), 403, "InvalidSignatureException"},
		{"signature from the future", create, `{"clusterName":"x"}`, secret, time.Now().Add(20 * time.Minute), 403, "InvalidSignatureException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rawCall(t, s, tc.target, tc.body, tc.secret, tc.at)
			if r.status != tc.status || r.body["__type"] != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
			if r.requestID == "" {
				t.Fatal("no x-amzn-RequestId")
			}
		})
	}
	if after := clusterCount(t, s); after != before {
		t.Fatalf("bad requests changed state: %d clusters, had %d", after, before)
	}

	// An unknown access key.
	s2 := *s
	s2.Creds.AccessKeyID = "AKIAUNKNOWNUNKNOWN00"
	r := rawCall(t, &s2, create, `{}`, secret, time.Time{})
	if r.status != 403 || r.body["__type"] != "UnrecognizedClientException" {
		t.Fatalf("unknown key: %d %s", r.status, r.raw)
	}
	// A well-formed call works and answers JSON 1.1.
	r = rawCall(t, s, create, `{"clusterName":"ok"}`, secret, time.Time{})
	if r.status != 200 || r.body["cluster"] == nil {
		t.Fatalf("good call: %d %s", r.status, r.raw)
	}
}

func TestNotImplementedOperationSaysSo(t *testing.T) {
	s := berthtest.Start(t, nil)
	r := rawCall(t, s, "AmazonEC2ContainerServiceV20141113.CreateTaskSet", `{"cluster":"default","service":"web","taskDefinition":"web:1"}`, s.Creds.SecretAccessKey, time.Time{})
	if r.status != 400 || r.body["__type"] != "UnsupportedOperation" || !strings.Contains(r.raw, "Berth") {
		t.Fatalf("got %d %s", r.status, r.raw)
	}
}

func TestSTSGetCallerIdentity(t *testing.T) {
	s := berthtest.Start(t, nil)
	out, err := sts.NewFromConfig(s.AWSConfig()).GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Account) != "000000000000" || aws.ToString(out.Arn) != "arn:aws:iam::000000000000:root" {
		t.Fatalf("got %+v", out)
	}
	// A wrong secret gets the query protocol's error code.
	cfg := s.AWSConfig()
	cfg.Credentials = aws.NewCredentialsCache(credentialsFunc(s.Creds.AccessKeyID, "wrong"))
	_, err = sts.NewFromConfig(cfg).GetCallerIdentity(ctx(t), &sts.GetCallerIdentityInput{})
	wantCode(t, err, "SignatureDoesNotMatch")
}

func credentialsFunc(ak, sk string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, nil
	})
}

func TestAuditTrailThroughCloudTrail(t *testing.T) {
	s := berthtest.Start(t, nil)
	cx := ctx(t)
	c := ecs.NewFromConfig(s.AWSConfig())
	ct := cloudtrail.NewFromConfig(s.AWSConfig())
	start := time.Now().Add(-time.Second)

	for _, n := range []string{"a1", "a2", "a3"} {
		if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.DeleteCluster(cx, &ecs.DeleteClusterInput{Cluster: aws.String("ghost")}) // fails: audited with its error
	if _, err := c.ListClusters(cx, &ecs.ListClustersInput{}); err != nil {           // read: not audited
		t.Fatal(err)
	}
	rawCall(t, s, "AmazonEC2ContainerServiceV20141113.CreateCluster", `{"clusterName":"x"}`, "wrong", time.Time{}) // failed auth

	all, err := ct.LookupEvents(cx, &cloudtrail.LookupEventsInput{StartTime: aws.Time(start)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range all.Events {
		names = append(names, aws.ToString(e.EventName))
	}
	// Newest first: failed auth, failed delete, three creates.
	if strings.Join(names, ",") != "CreateCluster,DeleteCluster,CreateCluster,CreateCluster,CreateCluster" {
		t.Fatalf("events: %v", names)
	}
	var first map[string]any
	json.Unmarshal([]byte(aws.ToString(all.Events[0].CloudTrailEvent)), &first)
	if first["errorCode"] != "InvalidSignatureException" {
		t.Fatalf("failed auth event: %v", first)
	}
	var del map[string]any
	json.Unmarshal([]byte(aws.ToString(all.Events[1].CloudTrailEvent)), &del)
	if del["errorCode"] != "ClusterNotFoundException" || del["sourceIPAddress"] != "127.0.0.1" {
		t.Fatalf("failed call event: %v", del)
	}

	// Filter by resource name and by event name; paginate.
	byRes, err := ct.LookupEvents(cx, &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyResourceName, AttributeValue: aws.String("a2")}}})
	if err != nil || len(byRes.Events) != 1 || aws.ToString(byRes.Events[0].Resources[0].ResourceName) != "a2" {
		t.Fatalf("by resource: %v %+v", err, byRes)
	}
	var n int
	p := cloudtrail.NewLookupEventsPaginator(ct, &cloudtrail.LookupEventsInput{
		MaxResults:       aws.Int32(2),
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateCluster")}},
	})
	for p.HasMorePages() {
		pg, err := p.NextPage(cx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(pg.Events)
	}
	if n != 4 {
		t.Fatalf("paginated CreateCluster events: %d", n)
	}
	_, err = ct.LookupEvents(cx, &cloudtrail.LookupEventsInput{StartTime: aws.Time(time.Now()), EndTime: aws.Time(time.Now().Add(-time.Hour))})
	wantCode(t, err, "InvalidTimeRangeException")
	_, err = ct.LookupEvents(cx, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(51)})
	wantCode(t, err, "InvalidMaxResultsException")
}

func TestAuditRedactsSecrets(t *testing.T) {
	s := berthtest.Start(t, nil)
	cx := ctx(t)
	// A sensitive member: the model marks nothing in CreateCluster, so use
	// a member our fixed list always redacts.
	r := rawCall(t, s, "AmazonEC2ContainerServiceV20141113.CreateCluster", `{"clusterName":"r1","password":"hunter2"}`, s.Creds.SecretAccessKey, time.Time{})
	if r.status != 200 {
		t.Fatal(r.raw)
	}
	ev, err := cloudtrail.NewFromConfig(s.AWSConfig()).LookupEvents(cx, &cloudtrail.LookupEventsInput{})
	if err != nil || len(ev.Events) == 0 {
		t.Fatal(err)
	}
	raw := aws.ToString(ev.Events[0].CloudTrailEvent)
	if strings.Contains(raw, "hunter2") || !strings.Contains(raw, "HIDDEN_DUE_TO_SECURITY_REASONS") {
		t.Fatalf("secret not redacted: %s", raw)
	}
}

func TestThrottling(t *testing.T) {
	s := berthtest.Start(t, func(c *daemon.Config) {
		c.Throttle = true
		c.ThrottleLimits = map[throttle.Class]throttle.Limit{throttle.ClassECSWrite: {Burst: 3, Rate: 0.5}}
	})
	cx := ctx(t)
	cfg := s.AWSConfig()
	noRetry := ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.Retryer = aws.NopRetryer{} })
	var throttled bool
	for i := 0; i < 6; i++ {
		_, err := noRetry.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("t")})
		if apiCode(err) == "ThrottlingException" {
			throttled = true
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !throttled {
		t.Fatal("never throttled past the burst")
	}
	// Reads have their own bucket.
	if _, err := noRetry.ListClusters(cx, &ecs.ListClustersInput{}); err != nil {
		t.Fatal(err)
	}
	// The SDK's standard retryer retries ThrottlingException until it passes.
	retrying := ecs.NewFromConfig(cfg, func(o *ecs.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 10
			so.MaxBackoff = 2 * time.Second
			so.RateLimiter = nopRateLimiter{}
		})
	})
	if _, err := retrying.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("t")}); err != nil {
		t.Fatalf("retried call failed: %v", err)
	}
	// Throttled calls are in the audit trail, as in CloudTrail.
	ev, err := cloudtrail.NewFromConfig(cfg).LookupEvents(cx, &cloudtrail.LookupEventsInput{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range ev.Events {
		found = found || strings.Contains(aws.ToString(e.CloudTrailEvent), `"errorCode":"ThrottlingException"`)
	}
	if !found {
		t.Fatal("no ThrottlingException event in the audit trail")
	}
}

type nopRateLimiter struct{}

func (nopRateLimiter) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (nopRateLimiter) AddTokens(uint) error { return nil }

func TestHealthAndRequestIDs(t *testing.T) {
	s := berthtest.Start(t, nil)
	resp, err := http.Get(s.Endpoint + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("x-amzn-RequestId") == "" {
		t.Fatalf("health: %d", resp.StatusCode)
	}
	r1 := rawCall(t, s, "AmazonEC2ContainerServiceV20141113.ListClusters", `{}`, s.Creds.SecretAccessKey, time.Time{})
	r2 := rawCall(t, s, "AmazonEC2ContainerServiceV20141113.ListClusters", ``, s.Creds.SecretAccessKey, time.Time{})
	if r1.status != 200 || r2.status != 200 || r1.requestID == r2.requestID {
		t.Fatalf("request ids: %v %v (%s %s)", r1.requestID, r2.requestID, r1.raw, r2.raw)
	}
}
