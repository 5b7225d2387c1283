package telemetry

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/sigv4"
)

// The overhead of the front door's instrumentation: one cheap read
// operation (it answers a constant) served by awsproto.FrontDoor with and
// without the Observer, with SigV4 verification (what every real call
// pays) and without authentication (the worst case for the ratio: the
// front door's own work only). Run:
//
//	go test ./internal/telemetry -run '^$' -bench FrontDoor -count 6
//
// docs/benchmarks.md, "Prometheus instrumentation".
func BenchmarkFrontDoor(b *testing.B) {
	for _, auth := range []string{"sigv4", "none"} {
		for _, instrumented := range []bool{false, true} {
			name := auth + "/plain"
			if instrumented {
				name = auth + "/instrumented"
			}
			b.Run(name, func(b *testing.B) {
				fd, newReq := benchFrontDoor(b, auth == "sigv4", instrumented)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					w := httptest.NewRecorder()
					fd.ServeHTTP(w, newReq())
					if w.Code != 200 {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		}
	}
}

const benchTarget = "AmazonEC2ContainerServiceV20141113.ListClusters"

func benchFrontDoor(b *testing.B, signed, instrumented bool) (*awsproto.FrontDoor, func() *http.Request) {
	creds := iam.Credentials{AccessKeyID: "AKIABENCHMARK0000000", SecretAccessKey: "benchmark-secret"}
	keys := iam.NewKeyring()
	keys.Add(creds, iam.RootIdentity("000000000000"))
	svc := &awsproto.Service{
		SigningName: "ecs", TargetPrefix: "AmazonEC2ContainerServiceV20141113", Protocol: awsproto.JSON11,
		Operations: map[string]*awsproto.Operation{
			"ListClusters": {Name: "ListClusters", ReadOnly: true, Implemented: true,
				Decode: func([]byte, map[string][]string) (any, error) { return nil, nil },
				Call: func(context.Context, any) (any, error) {
					return map[string]any{"clusterArns": []string{"arn:aws:ecs:us-east-1:000000000000:cluster/default"}}, nil
				}},
		},
	}
	cfg := awsproto.Config{Auth: benchAuth{keys: keys, signed: signed}, Services: []*awsproto.Service{svc}}
	if instrumented {
		cfg.Observer = New(Options{})
	}
	fd := awsproto.New(cfg)

	body := []byte("{}")
	tmpl := httptest.NewRequest("POST", "http://127.0.0.1:4566/", bytes.NewReader(body))
	tmpl.Header.Set("Content-Type", "application/x-amz-json-1.1")
	tmpl.Header.Set("X-Amz-Target", benchTarget)
	if signed {
		sigv4.Sign(tmpl, body, creds.AccessKeyID, creds.SecretAccessKey, "us-east-1", "ecs", time.Now())
	}
	return fd, func() *http.Request {
		r := tmpl.Clone(context.Background())
		r.Body = readCloser{bytes.NewReader(body)}
		return r
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// benchAuth is the daemon's SigV4 authentication (signed) or none.
type benchAuth struct {
	keys   *iam.Keyring
	signed bool
}

func (a benchAuth) Scope(r *http.Request) (awsproto.Scope, bool) {
	if !a.signed {
		return awsproto.Scope{Service: "ecs", AccessKey: "AK"}, true
	}
	sc, ok := sigv4.ParseScope(r)
	return awsproto.Scope{AccessKey: sc.AccessKey, Region: sc.Region, Service: sc.Service}, ok
}

func (a benchAuth) Authenticate(r *http.Request, body []byte, now time.Time) (iam.Identity, error) {
	if !a.signed {
		return iam.Identity{AccessKey: "AK"}, nil
	}
	sc, err := sigv4.Verify(r, body, now, a.keys.Secret)
	if err != nil {
		return iam.Identity{}, err
	}
	id, _ := a.keys.Identity(sc.AccessKey)
	return id, nil
}

// BenchmarkFrontDoorInterleaved runs the same cheap call through a plain
// and an instrumented front door in alternating batches of 200, so that a
// busy machine slows both alike. It measures each batch by the CPU time of
// the benchmark's OS thread (so time spent waiting for a core does not
// count) and by wall time, and reports per call: the mean CPU time of
// each, the ratio of those means, and the fastest batch's wall time of
// each and its ratio. b.N counts pairs of batches.
func BenchmarkFrontDoorInterleaved(b *testing.B) {
	for _, auth := range []string{"sigv4", "none"} {
		b.Run(auth, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			plain, plainReq := benchFrontDoor(b, auth == "sigv4", false)
			inst, instReq := benchFrontDoor(b, auth == "sigv4", true)
			const batch = 200
			run := func(fd *awsproto.FrontDoor, newReq func() *http.Request) (cpu, wall time.Duration) {
				c0, t0 := threadCPU(b), time.Now()
				for range batch {
					w := httptest.NewRecorder()
					fd.ServeHTTP(w, newReq())
					if w.Code != 200 {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
				return threadCPU(b) - c0, time.Since(t0)
			}
			var cpuP, cpuI time.Duration
			minP, minI := time.Hour, time.Hour
			for range b.N {
				cp, wp := run(plain, plainReq)
				ci, wi := run(inst, instReq)
				cpuP, cpuI = cpuP+cp, cpuI+ci
				minP, minI = min(minP, wp), min(minI, wi)
			}
			n := float64(b.N * batch)
			b.ReportMetric(float64(cpuP.Nanoseconds())/n, "plain-cpu-ns/call")
			b.ReportMetric(float64(cpuI.Nanoseconds())/n, "instr-cpu-ns/call")
			b.ReportMetric(float64(cpuI)/float64(cpuP), "cpu-ratio")
			b.ReportMetric(float64(minP.Nanoseconds())/batch, "plain-best-ns/call")
			b.ReportMetric(float64(minI.Nanoseconds())/batch, "instr-best-ns/call")
			b.ReportMetric(float64(minI)/float64(minP), "best-ratio")
		})
	}
}

// threadCPU is the CPU time the calling OS thread has used.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is Linux's RUSAGE_THREAD.
const rusageThread = 1

// BenchmarkObserveRequest is the instrumentation's own cost per call: one
// counter and one histogram observation.
func BenchmarkObserveRequest(b *testing.B) {
	m := New(Options{})
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest("ecs", "ListClusters", "", 350*time.Microsecond)
	}
}
