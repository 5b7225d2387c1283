package console_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/console"
)

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}

func signIn(t *testing.T, s *berthtest.Server, tok string) *http.Response {
	t.Helper()
	resp, err := noRedirect.Get(console.SignInURL(s.Endpoint, tok))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func call(t *testing.T, s *berthtest.Server, method, path, cookie, csrf, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.Endpoint+path, strings.NewReader(body))
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: console.CookieName, Value: cookie})
	}
	if csrf != "" {
		req.Header.Set(console.CSRFHeader, csrf)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A token signs in once; forged, expired, replayed tokens and forged or
// missing cookies are refused; a POST without the CSRF token is refused;
// AWS calls answer what the API answers.
func TestConsoleSignInSessionAndCSRF(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, nil)
	now := time.Now()
	tok := console.MintToken(s.Creds.AccessKeyID, s.Creds.SecretAccessKey, now, time.Minute)

	// Forged: a different secret, a changed expiry, garbage.
	forged := console.MintToken(s.Creds.AccessKeyID, "not-the-secret", now, time.Minute)
	parts := strings.Split(tok, ".")
	longer := strings.Join([]string{parts[0], "9999999999", parts[2], parts[3]}, ".")
	expired := console.MintToken(s.Creds.AccessKeyID, s.Creds.SecretAccessKey, now.Add(-time.Hour), time.Minute)
	for name, bad := range map[string]string{"forged": forged, "extended": longer, "expired": expired, "garbage": "x.y", "empty": ""} {
		if resp := signIn(t, s, bad); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
			t.Errorf("%s token: status %d, cookies %v; want 401 and no cookie", name, resp.StatusCode, resp.Cookies())
		}
	}

	resp := signIn(t, s, tok)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != console.Prefix {
		t.Fatalf("sign-in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != console.Prefix || cookie.MaxAge <= 0 {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console/, Max-Age", cookie)
	}
	if again := signIn(t, s, tok); again.StatusCode != http.StatusUnauthorized {
		t.Errorf("replayed token: status %d, want 401", again.StatusCode)
	}

	// No session, a forged one: refused, reads included.
	for _, c := range []string{"", "forged-session-id", cookie.Value + "x"} {
		if code, _ := call(t, s, "GET", "/console/api/session", c, "", ""); code != http.StatusUnauthorized {
			t.Errorf("session with cookie %q: %d, want 401", c, code)
		}
		if code, _ := call(t, s, "GET", "/console/api/stream", c, "", ""); code != http.StatusUnauthorized {
			t.Errorf("stream with cookie %q: %d, want 401", c, code)
		}
	}
	code, body := call(t, s, "GET", "/console/api/session", cookie.Value, "", "")
	if code != 200 || !strings.Contains(body, `"arn":"arn:aws:iam::000000000000:root"`) {
		t.Fatalf("session: %d %s", code, body)
	}
	csrf := body[strings.Index(body, `"csrf":"`)+8:]
	csrf = csrf[:strings.IndexByte(csrf, '"')]

	// A state-changing call without (or with a wrong) CSRF token is refused
	// and changes nothing.
	for _, h := range []string{"", "wrong"} {
		if code, body := call(t, s, "POST", "/console/api/aws/ecs/CreateCluster", cookie.Value, h, `{"clusterName":"nocsrf"}`); code != http.StatusForbidden {
			t.Errorf("CreateCluster with CSRF %q: %d %s, want 403", h, code, body)
		}
	}
	if code, body := call(t, s, "POST", "/console/api/aws/ecs/CreateCluster", cookie.Value, csrf, `{"clusterName":"web"}`); code != 200 || !strings.Contains(body, `"clusterName":"web"`) {
		t.Fatalf("CreateCluster: %d %s", code, body)
	}
	ctx := context.Background()
	client := ecs.NewFromConfig(s.AWSConfig())
	out, err := client.ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.ClusterArns) != 1 || !strings.HasSuffix(out.ClusterArns[0], "/web") {
		t.Errorf("clusters after the console's calls: %v, want only web", out.ClusterArns)
	}
	// Errors are the API's: code and message.
	_, sdkErr := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("nope"), Services: []string{"x"}})
	code, body = call(t, s, "POST", "/console/api/aws/ecs/DescribeServices", cookie.Value, csrf, `{"cluster":"nope","services":["x"]}`)
	if code != 400 || !strings.Contains(body, "ClusterNotFoundException") || sdkErr == nil || !strings.Contains(sdkErr.Error(), "ClusterNotFoundException") {
		t.Errorf("DescribeServices of a missing cluster: console %d %s; SDK %v", code, body, sdkErr)
	}
	code, body = call(t, s, "POST", "/console/api/aws/ecs/UpdateService", cookie.Value, csrf, `{"cluster":"web","service":"x","desiredCount":-1}`)
	if code != 400 {
		t.Errorf("UpdateService with a negative count: %d %s", code, body)
	}
	if code, _ := call(t, s, "POST", "/console/api/aws/ecs/NoSuchOp", cookie.Value, csrf, `{}`); code != 400 {
		t.Errorf("unknown operation: %d", code)
	}

	// The live stream lists the state, then follows changes.
	req, _ := http.NewRequest("GET", s.Endpoint+"/console/api/stream?cluster=web", nil)
	req.AddCookie(&http.Cookie{Name: console.CookieName, Value: cookie.Value})
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sresp, err := http.DefaultClient.Do(req.WithContext(sctx))
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	if ct := sresp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream content type %q", ct)
	}
	lines := bufio.NewScanner(sresp.Body)
	lines.Buffer(nil, 1<<20)
	waitFor := func(sub string) {
		t.Helper()
		for lines.Scan() {
			if strings.Contains(lines.Text(), sub) {
				return
			}
		}
		t.Fatalf("stream ended before %q: %v", sub, lines.Err())
	}
	waitFor(`"kind":"synced"`)
	if _, err := client.RegisterTaskDefinition(ctx, regTD()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("web"), ServiceName: aws.String("api"), TaskDefinition: aws.String("console-web"), DesiredCount: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	waitFor(`"serviceName":"api"`)

	// Sign-out ends the session.
	if code, _ := call(t, s, "POST", "/console/api/signout", cookie.Value, csrf, ""); code != http.StatusNoContent {
		t.Errorf("sign-out: %d", code)
	}
	if code, _ := call(t, s, "GET", "/console/api/session", cookie.Value, "", ""); code != http.StatusUnauthorized {
		t.Errorf("session after sign-out: %d", code)
	}
}

// The shell is served from the embedded assets with a restrictive CSP.
func TestConsoleAssets(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, nil)
	for _, p := range []string{"/console/", "/console/app.js", "/console/style.css"} {
		resp, err := http.Get(s.Endpoint + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: %d, CSP %q", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
	// The API is not reachable through /console/ without a session, and a
	// SigV4-less API call is still refused by the front door.
	resp, err := http.PostForm(s.Endpoint+"/", url.Values{"Action": {"GetCallerIdentity"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned API call: %d, want 403", resp.StatusCode)
	}
}

// A watch runs reads as the session's identity, ELBv2 (a query-only
// service) included, sends each answer once and then only its changes,
// shows errors as the API answers them, and refuses writes and callers
// without a session.
func TestConsoleWatch(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, nil)
	resp := signIn(t, s, console.MintToken(s.Creds.AccessKeyID, s.Creds.SecretAccessKey, time.Now(), time.Minute))
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			cookie = c.Value
		}
	}
	q := func(calls string) string { return "/console/api/watch?every=1&q=" + url.QueryEscape(calls) }
	if code, _ := call(t, s, "GET", q(`[{"s":"elasticloadbalancing","o":"DescribeLoadBalancers"}]`), "", "", ""); code != http.StatusUnauthorized {
		t.Errorf("watch without a session: %d", code)
	}
	if code, body := call(t, s, "GET", q(`[{"s":"elasticloadbalancing","o":"CreateLoadBalancer","i":{"Name":"x"}}]`), cookie, "", ""); code != http.StatusBadRequest || !strings.Contains(body, "not a read") {
		t.Errorf("watch of a write: %d %s", code, body)
	}
	// One-off ELBv2 call in JSON: the query-only service's error shape.
	code, body := call(t, s, "POST", "/console/api/aws/elasticloadbalancing/DescribeLoadBalancers", cookie, "", `{"Names":["nope"]}`)
	if code != http.StatusForbidden {
		t.Errorf("POST without CSRF: %d %s", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.Endpoint+q(`[{"s":"elasticloadbalancing","o":"DescribeLoadBalancers"},{"s":"elasticloadbalancing","o":"DescribeLoadBalancers","i":{"Names":["nope"]}}]`), nil)
	req.AddCookie(&http.Cookie{Name: console.CookieName, Value: cookie})
	sresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	lines := bufio.NewScanner(sresp.Body)
	lines.Buffer(nil, 1<<20)
	next := func() string {
		t.Helper()
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, "data: ") {
				return l
			}
		}
		t.Fatalf("watch ended: %v", lines.Err())
		return ""
	}
	first, second := next(), next()
	if !strings.Contains(first, `"i":0,"status":200,"body":{"LoadBalancers":[]}`) {
		t.Errorf("first answer: %s", first)
	}
	if !strings.Contains(second, `"i":1,"status":400`) || !strings.Contains(second, "LoadBalancerNotFoundException") {
		t.Errorf("error answer: %s", second)
	}
	// Nothing changes: nothing is sent. A load balancer is created: call 0
	// is sent again, call 1 (still the same error) is not.
	c := elb.NewFromConfig(s.AWSConfig())
	if _, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("web"), Subnets: []string{"subnet-a", "subnet-b"}}); err != nil {
		t.Fatal(err)
	}
	third := next()
	if !strings.Contains(third, `"i":0,"status":200`) || !strings.Contains(third, `"LoadBalancerName":"web"`) {
		t.Errorf("after the create: %s", third)
	}
}
