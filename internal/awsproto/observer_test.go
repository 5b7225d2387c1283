package awsproto

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/iam"
)

// fakeAuth takes the scope from an "X-Test-Scope: service/accesskey"
// header and accepts every access key but "bad".
type fakeAuth struct{}

func (fakeAuth) Scope(r *http.Request) (Scope, bool) {
	svc, ak, ok := strings.Cut(r.Header.Get("X-Test-Scope"), "/")
	return Scope{Service: svc, AccessKey: ak, Region: "us-east-1"}, ok
}

func (fakeAuth) Authenticate(r *http.Request, _ []byte, _ time.Time) (iam.Identity, error) {
	if _, ak, _ := strings.Cut(r.Header.Get("X-Test-Scope"), "/"); ak == "bad" {
		return iam.Identity{}, errors.New("unknown key")
	}
	return iam.Identity{AccessKey: "AK"}, nil
}

type observed struct {
	service, operation, code string
	took                     time.Duration
}

type recordingObserver struct {
	mu  sync.Mutex
	got []observed
}

func (o *recordingObserver) ObserveRequest(service, operation, code string, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, observed{service, operation, code, took})
}

// clock advances 3 ms every time it is read.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { c.t = c.t.Add(3 * time.Millisecond); return c.t }

func observerFrontDoor(obs Observer) *FrontDoor {
	c := &clock{t: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	svc := &Service{
		SigningName: "ecs", TargetPrefix: "AmazonEC2ContainerServiceV20141113", Protocol: JSON11,
		ValidationCode: "InvalidParameterException",
		Operations: map[string]*Operation{
			"ListClusters": {Name: "ListClusters", ReadOnly: true, Implemented: true,
				Decode: func([]byte, map[string][]string) (any, error) { return nil, nil },
				Call:   func(context.Context, any) (any, error) { return map[string]any{"clusterArns": []string{}}, nil }},
			"DescribeServices": {Name: "DescribeServices", ReadOnly: true, Implemented: true,
				Decode: func([]byte, map[string][]string) (any, error) { return nil, nil },
				Call: func(context.Context, any) (any, error) {
					return nil, NewError("ClusterNotFoundException", "Cluster not found.")
				}},
		},
	}
	return New(Config{Auth: fakeAuth{}, Now: c.now, Services: []*Service{svc}, Observer: obs,
		Registry: http.NotFoundHandler(), Agent: http.NotFoundHandler()})
}

func TestObserverSeesEveryAnsweredRequest(t *testing.T) {
	obs := &recordingObserver{}
	fd := observerFrontDoor(obs)
	call := func(method, path, scope, target string) int {
		r := httptest.NewRequest(method, path, strings.NewReader("{}"))
		if scope != "" {
			r.Header.Set("X-Test-Scope", scope)
		}
		if target != "" {
			r.Header.Set("X-Amz-Target", target)
		}
		w := httptest.NewRecorder()
		fd.ServeHTTP(w, r)
		return w.Code
	}
	const prefix = "AmazonEC2ContainerServiceV20141113."
	cases := []struct {
		name                        string
		method, path, scope, target string
		wantStatus                  int
		wantSvc, wantOp, wantCode   string
	}{
		{"success", "POST", "/", "ecs/AK", prefix + "ListClusters", 200, "ecs", "ListClusters", ""},
		{"service error", "POST", "/", "ecs/AK", prefix + "DescribeServices", 400, "ecs", "DescribeServices", "ClusterNotFoundException"},
		{"unknown operation is not a label", "POST", "/", "ecs/AK", prefix + "NoSuchOp", 400, "ecs", "", CodeUnknownOperation},
		{"unknown service", "POST", "/", "nosuch/AK", "Nope.Op", 400, "", "", CodeUnknownOperation},
		{"failed authentication", "POST", "/", "ecs/bad", prefix + "ListClusters", 403, "ecs", "", CodeUnrecognizedClient},
	}
	for _, tc := range cases {
		obs.got = nil
		if got := call(tc.method, tc.path, tc.scope, tc.target); got != tc.wantStatus {
			t.Fatalf("%s: status %d, want %d", tc.name, got, tc.wantStatus)
		}
		if len(obs.got) != 1 {
			t.Fatalf("%s: observed %d times, want once: %+v", tc.name, len(obs.got), obs.got)
		}
		o := obs.got[0]
		if o.service != tc.wantSvc || o.operation != tc.wantOp || o.code != tc.wantCode {
			t.Errorf("%s: observed (%q, %q, %q), want (%q, %q, %q)", tc.name, o.service, o.operation, o.code, tc.wantSvc, tc.wantOp, tc.wantCode)
		}
		if o.took != 3*time.Millisecond {
			t.Errorf("%s: took %v, want 3ms (one clock tick between start and answer)", tc.name, o.took)
		}
	}

	// Not API requests: health checks, the registry and the agent protocol.
	obs.got = nil
	for _, p := range []string{"/health", "/v2/", "/berth/agent/v1/report"} {
		call("GET", p, "", "")
	}
	if len(obs.got) != 0 {
		t.Fatalf("observed non-API requests: %+v", obs.got)
	}
}

func TestNoObserverIsFine(t *testing.T) {
	fd := observerFrontDoor(nil)
	r := httptest.NewRequest("POST", "/", strings.NewReader("{}"))
	r.Header.Set("X-Test-Scope", "ecs/AK")
	r.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters")
	w := httptest.NewRecorder()
	fd.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}
