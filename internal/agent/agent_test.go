package agent_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/store"
)

// fakeRunner acts a task out instantly: RUNNING when desired RUNNING,
// STOPPED when desired STOPPED. A fake is fine here: this tests the
// agent's shell (join, stream, resume, reports), not Docker.
type fakeRunner struct {
	report func(agentapi.TaskReport)
	done   chan struct{}
	once   sync.Once
}

func (f *fakeRunner) Update(a agentapi.Assignment) {
	now := time.Now()
	if a.DesiredStatus == "STOPPED" {
		f.report(agentapi.TaskReport{TaskArn: a.TaskArn, KnownStatus: "STOPPED", StoppedAt: &now, ExecutionStoppedAt: &now})
		f.once.Do(func() { close(f.done) })
		return
	}
	f.report(agentapi.TaskReport{TaskArn: a.TaskArn, KnownStatus: "RUNNING", StartedAt: &now,
		Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: "RUNNING"}}})
}

func (f *fakeRunner) Done() <-chan struct{} { return f.done }

func newFake(a agentapi.Assignment, report func(agentapi.TaskReport)) agent.Runner {
	return &fakeRunner{report: report, done: make(chan struct{})}
}

func place(t *testing.T, st store.Store, instanceID, id, tdARN, desired string, version int64) {
	t.Helper()
	task := map[string]any{"id": id, "arn": "arn:aws:ecs:us-east-1:000000000000:task/default/" + id, "cluster": "default",
		"taskDefinitionArn": tdARN, "instanceId": instanceID, "desiredStatus": desired, "lastStatus": "PROVISIONING", "version": version}
	tb, _ := json.Marshal(task)
	ab, _ := json.Marshal(map[string]any{"cluster": "default", "taskId": id, "desiredStatus": desired, "version": version})
	if _, err := st.Txn(context.Background(), nil, store.Put("/berth/ecs/tasks/default/"+id, tb), store.Put("/berth/ecs/assign/"+instanceID+"/"+id, ab)); err != nil {
		t.Fatal(err)
	}
}

func lastStatus(t *testing.T, st store.Store, id string) string {
	kv, err := st.Get(context.Background(), "/berth/ecs/tasks/default/"+id)
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ LastStatus string }
	json.Unmarshal(kv.Value, &r)
	return r.LastStatus
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAgentJoinsRunsResumesAndRejoinsNothing(t *testing.T) {
	s := berthtest.Start(t, nil)
	st := s.Daemon.Store()
	ctx := context.Background()
	td, err := ecs.NewFromConfig(s.AWSConfig()).RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("fake"), ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("web"), Image: aws.String("x"), Memory: aws.Int32(32)}}})
	if err != nil {
		t.Fatal(err)
	}
	tdARN := aws.ToString(td.TaskDefinition.TaskDefinitionArn)
	tok, err := agentgw.CreateJoinToken(ctx, s.Endpoint, s.Region, s.Creds.AccessKeyID, s.Creds.SecretAccessKey, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := agent.Config{Endpoint: s.Endpoint, Region: s.Region, StateDir: dir, JoinToken: tok.Token, NewRunner: newFake,
		Join: agentapi.JoinRequest{Hostname: "h", Resources: agentapi.Resources{CPU: 1024, MemoryMiB: 512}}}
	a, err := agent.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := a.State().InstanceID
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	<-a.Ready()

	// State is read while Run moves the stream position (the race
	// detector checks it).
	var revs []int64
	place(t, st, id, "t1", tdARN, "RUNNING", 1)
	eventually(t, "t1 RUNNING", func() bool {
		revs = append(revs, a.State().Revision)
		return lastStatus(t, st, "t1") == "RUNNING"
	})
	if revs[len(revs)-1] == 0 {
		t.Fatalf("stream position not kept while running: %v", revs)
	}

	// Stop the agent; change state while it is away; a new agent from the
	// same state directory resumes without joining again.
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	place(t, st, id, "t1", tdARN, "STOPPED", 2)
	place(t, st, id, "t2", tdARN, "RUNNING", 1)
	cfg.JoinToken = "" // must not be needed
	a2, err := agent.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a2.State().InstanceID != id || a2.State().Revision == 0 {
		t.Fatalf("state not kept: %+v", a2.State())
	}
	runCtx2, stop2 := context.WithCancel(ctx)
	defer stop2()
	go a2.Run(runCtx2)
	// A resumed stream gets no sync; the server's opening heartbeat makes
	// the agent Ready at once (it used to wait forever).
	select {
	case <-a2.Ready():
	case <-time.After(2 * time.Second):
		t.Fatal("resumed agent not Ready within 2 s")
	}
	eventually(t, "t1 STOPPED and t2 RUNNING after resume", func() bool {
		return lastStatus(t, st, "t1") == "STOPPED" && lastStatus(t, st, "t2") == "RUNNING"
	})
}

// recRunner records the desired statuses it is given.
type recRunner struct {
	mu      sync.Mutex
	desired []string
	done    chan struct{}
}

func (r *recRunner) Update(a agentapi.Assignment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.desired = append(r.desired, a.DesiredStatus)
}

func (r *recRunner) Done() <-chan struct{} { return r.done }

func (r *recRunner) told() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.desired...)
}

// TestAgentBackFromAPauseKeepsTasksStillDesiredRunning: an agent that was
// away (here with its stream position lost, so the server sends a full
// sync) reconciles with the server's view: the task it re-attached to that
// is still desired RUNNING is not told to stop; one no longer assigned is.
func TestAgentBackFromAPauseKeepsTasksStillDesiredRunning(t *testing.T) {
	s := berthtest.Start(t, nil)
	st := s.Daemon.Store()
	ctx := context.Background()
	td, err := ecs.NewFromConfig(s.AWSConfig()).RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("fake"), ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("web"), Image: aws.String("x"), Memory: aws.Int32(32)}}})
	if err != nil {
		t.Fatal(err)
	}
	tdARN := aws.ToString(td.TaskDefinition.TaskDefinitionArn)
	tok, err := agentgw.CreateJoinToken(ctx, s.Endpoint, s.Region, s.Creds.AccessKeyID, s.Creds.SecretAccessKey, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kept, gone := &recRunner{done: make(chan struct{})}, &recRunner{done: make(chan struct{})}
	keptARN, goneARN := "arn:aws:ecs:us-east-1:000000000000:task/default/kept", "arn:aws:ecs:us-east-1:000000000000:task/default/gone"
	cfg := agent.Config{Endpoint: s.Endpoint, Region: s.Region, StateDir: dir, JoinToken: tok.Token, NewRunner: newFake,
		Join: agentapi.JoinRequest{Hostname: "h", Resources: agentapi.Resources{CPU: 1024, MemoryMiB: 512}},
		Adopt: func(context.Context, string) (map[string]agent.Runner, error) {
			return map[string]agent.Runner{keptARN: kept, goneARN: gone}, nil
		}}
	a, err := agent.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	place(t, st, a.State().InstanceID, "kept", tdARN, "RUNNING", 1)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go a.Run(runCtx)
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("agent not Ready")
	}
	eventually(t, "the task no longer assigned told to stop", func() bool {
		d := gone.told()
		return len(d) > 0 && d[len(d)-1] == "STOPPED"
	})
	for _, d := range kept.told() {
		if d != "RUNNING" {
			t.Fatalf("the task still desired RUNNING was told %v", kept.told())
		}
	}
	if len(kept.told()) == 0 {
		t.Fatal("the task still desired RUNNING was not reconciled")
	}
}
