package events

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

var (
	storeOnce   sync.Once
	storeDir    string
	sharedStore store.Store
	storeErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedStore != nil {
		sharedStore.Close()
	}
	if storeDir != "" {
		os.RemoveAll(storeDir)
	}
	os.Exit(code)
}

const (
	testAccount = "000000000000"
	testRegion  = "us-east-1"
)

// testService returns a service on the shared embedded etcd, emptied of
// EventBridge's keys. Tests using it do not run in parallel.
func testService(t testing.TB, deps Deps) *Service {
	t.Helper()
	storeOnce.Do(func() {
		storeDir, _ = os.MkdirTemp("", "berth-events-test")
		sharedStore, storeErr = store.Open(context.Background(), store.Config{DataDir: storeDir + "/etcd"})
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	if _, err := sharedStore.Txn(context.Background(), nil, store.DeletePrefix(keyRoot)); err != nil {
		t.Fatal(err)
	}
	return New(sharedStore, Config{Region: testRegion, Account: testAccount}, deps, nil)
}

// wireCode is the AWS error code err maps to.
func wireCode(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ve *awsproto.ValidationError
	if errors.As(err, &ve) {
		return "ValidationException"
	}
	e := MapError(err)
	if e == nil {
		t.Fatalf("unmapped error %v", err)
	}
	return e.Code
}

func wireMsg(err error) string {
	if e := MapError(err); e != nil {
		return e.Message
	}
	return err.Error()
}

func s(v string) *string { return &v }

// invocations records what targets received.
type invocations struct {
	mu  sync.Mutex
	got []invocation
	ch  chan invocation
}

type invocation struct {
	Target string
	Body   []byte
	At     time.Time
}

func newInvocations() *invocations { return &invocations{ch: make(chan invocation, 1000)} }

func (r *invocations) add(i invocation) {
	r.mu.Lock()
	r.got = append(r.got, i)
	r.mu.Unlock()
	select {
	case r.ch <- i:
	default:
	}
}

func (r *invocations) wait(t testing.TB, timeout time.Duration) invocation {
	t.Helper()
	select {
	case i := <-r.ch:
		return i
	case <-time.After(timeout):
		t.Fatalf("no invocation within %v", timeout)
	}
	return invocation{}
}

// fakeLogs is a LogWriter that records.
type fakeLogs struct {
	inv    *invocations
	groups map[string]bool
}

func (f *fakeLogs) WriteLog(_ context.Context, group, stream string, ts int64, msg string) error {
	if !f.groups[group] {
		return errNotFoundGroup
	}
	f.inv.add(invocation{Target: "logs:" + group + "/" + stream, Body: []byte(msg), At: time.Now()})
	return nil
}

var errNotFoundGroup = errorsNotFound("The specified log group does not exist.")

// fakeTasks is a TaskRunner that records RunTask calls.
type fakeTasks struct {
	mu   sync.Mutex
	runs []*ecsapi.RunTaskRequest
	inv  *invocations
}

func (f *fakeTasks) RunTask(_ context.Context, in *ecsapi.RunTaskRequest) (*ecsapi.RunTaskResponse, error) {
	f.mu.Lock()
	f.runs = append(f.runs, in)
	f.mu.Unlock()
	b, _ := json.Marshal(in)
	f.inv.add(invocation{Target: "ecs", Body: b, At: time.Now()})
	return &ecsapi.RunTaskResponse{Tasks: []ecsapi.Task{{TaskArn: s("arn:aws:ecs:us-east-1:000000000000:task/c/1")}}}, nil
}

func mustPutRule(t testing.TB, svc *Service, in *eventsapi.PutRuleRequest) {
	t.Helper()
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutRule(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

func mustPutTargets(t testing.TB, svc *Service, rule string, targets ...eventsapi.Target) {
	t.Helper()
	in := &eventsapi.PutTargetsRequest{Rule: s(rule), Targets: targets}
	if bus, name, ok := strings.Cut(rule, "/"); ok {
		in.EventBusName, in.Rule = s(bus), s(name)
	}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutTargets(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

func errorsNotFound(msg string) error { return errs.E(errs.NotFound, "%s", msg) }
