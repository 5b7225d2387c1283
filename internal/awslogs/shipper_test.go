package awslogs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/errs"
)

// fakeContainer is a container's output as Docker serves it: followed
// streams see new records until the container stops.
type fakeContainer struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	frames  []fakeFrame
	running bool
	started bool
	// cutFollow ends followed streams as soon as the container stopped,
	// before the last lines, as Docker 20.10's json-file follow can.
	cutFollow bool
}

type fakeFrame struct {
	ts     time.Time
	stderr bool
	msg    string
}

func newFakeContainer() *fakeContainer {
	return &fakeContainer{changed: make(chan struct{}), running: true, started: true}
}

func (c *fakeContainer) write(stderr bool, msg string) {
	c.mu.Lock()
	ts := time.Now().UTC()
	if n := len(c.frames); n > 0 && !ts.After(c.frames[n-1].ts) {
		ts = c.frames[n-1].ts.Add(time.Nanosecond)
	}
	c.frames = append(c.frames, fakeFrame{ts: ts, stderr: stderr, msg: msg})
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *fakeContainer) stop() {
	c.mu.Lock()
	c.running = false
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *fakeContainer) Logs(ctx context.Context, id string, since time.Time, follow bool) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		i := 0
		for {
			c.mu.Lock()
			frames, running, changed, cut := c.frames, c.running, c.changed, c.cutFollow
			c.mu.Unlock()
			if follow && cut && !running {
				pw.Close()
				return
			}
			for ; i < len(frames); i++ {
				f := frames[i]
				if f.ts.Before(since) {
					continue
				}
				stream := byte(1)
				if f.stderr {
					stream = 2
				}
				if _, err := pw.Write(frame(stream, f.ts, f.msg)); err != nil {
					return
				}
			}
			if !running || !follow {
				pw.Close()
				return
			}
			select {
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			case <-changed:
			}
		}
	}()
	return pr, nil
}

func (c *fakeContainer) State(ctx context.Context, id string) (ContainerState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ContainerState{Running: c.running, Started: c.started}, nil
}

// fakeSink records what the control plane acknowledged; it fails the
// first failures calls.
type fakeSink struct {
	mu       sync.Mutex
	failures int
	refuse   bool
	got      []agentapi.LogsRequest
	calls    int
}

func (s *fakeSink) PutLogs(ctx context.Context, req agentapi.LogsRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failures > 0 {
		s.failures--
		return errs.E(errs.Unavailable, "server restarting")
	}
	if s.refuse {
		return errs.E(errs.Invalid, "refused")
	}
	if len(req.Events) > 0 {
		s.got = append(s.got, req)
	}
	return nil
}

func (s *fakeSink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.got {
		for i, e := range r.Events {
			if i > 0 && e.Timestamp < r.Events[i-1].Timestamp {
				panic("batch out of order")
			}
			out = append(out, e.Message)
		}
	}
	return out
}

func newTestManager(t *testing.T, dir string, src Source, sink Sink) *Manager {
	t.Helper()
	m, err := NewManager(Config{Source: src, Sink: sink, Dir: dir, Log: slog.New(slog.DiscardHandler),
		Timing: Timing{Flush: 20 * time.Millisecond, MultilineIdle: 50 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var target = Target{TaskARN: "arn:aws:ecs:us-east-1:000000000000:task/default/abc", Container: "app", DockerID: "d0c0", Group: "g", Stream: "p/app/abc"}

func waitFor(t *testing.T, within time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkAll checks that every line arrived, in order, counting repeats.
func checkAll(t *testing.T, got []string, n int) (repeats int) {
	t.Helper()
	next := 0
	for _, m := range got {
		var i int
		if _, err := fmt.Sscanf(m, "line %d", &i); err != nil {
			t.Fatalf("unexpected message %q", m)
		}
		switch {
		case i == next:
			next++
		case i < next:
			repeats++
		default:
			t.Fatalf("line %d arrived before line %d: lost", i, next)
		}
	}
	if next != n {
		t.Fatalf("%d of %d lines arrived", next, n)
	}
	return repeats
}

func TestShipperResumesAfterAgentRestart(t *testing.T) {
	dir := t.TempDir()
	c := newFakeContainer()
	sink := &fakeSink{}
	m := newTestManager(t, dir, c, sink)
	o, _ := ParseOptions(map[string]string{"awslogs-group": "g"})
	m.Ship(target, o)
	const n = 400
	for i := 0; i < n/2; i++ {
		c.write(i%3 == 0, fmt.Sprintf("line %d\n", i))
		if i%50 == 0 {
			time.Sleep(30 * time.Millisecond)
		}
	}
	waitFor(t, 5*time.Second, "some lines", func() bool { return len(sink.messages()) > 0 })
	m.Close() // the agent stops; the container keeps writing
	for i := n / 2; i < n; i++ {
		c.write(false, fmt.Sprintf("line %d\n", i))
	}
	m2 := newTestManager(t, dir, c, sink)
	defer m2.Close()
	m2.Ship(target, o)
	c.write(false, "\n") // an empty line: no event
	c.stop()
	if !m2.Wait([]string{target.DockerID}, 5*time.Second) {
		t.Fatal("shipper did not finish after the container stopped")
	}
	repeats := checkAll(t, sink.messages(), n)
	t.Logf("%d lines, %d repeated", n, repeats)
	if repeats > 0 {
		t.Errorf("%d lines repeated although the checkpoint was written", repeats)
	}
	// Shipped to the end: a third agent ships nothing again.
	cp, _ := m2.cps.Load(target.DockerID)
	if !cp.Done {
		t.Fatalf("checkpoint %+v not done", cp)
	}
	before := len(sink.messages())
	m2.Ship(target, o)
	time.Sleep(50 * time.Millisecond)
	if len(sink.messages()) != before {
		t.Fatal("a finished container was shipped again")
	}
}

func TestShipperRetriesUntilDelivered(t *testing.T) {
	c := newFakeContainer()
	sink := &fakeSink{failures: 5}
	m := newTestManager(t, t.TempDir(), c, sink)
	defer m.Close()
	o, _ := ParseOptions(map[string]string{"awslogs-group": "g"})
	m.Ship(target, o)
	for i := 0; i < 50; i++ {
		c.write(false, fmt.Sprintf("line %d\n", i))
	}
	c.stop()
	if !m.Wait([]string{target.DockerID}, 5*time.Second) {
		t.Fatal("not drained")
	}
	checkAll(t, sink.messages(), 50)
	if sink.calls < 6 {
		t.Fatalf("%d calls: the failures were not retried", sink.calls)
	}
}

func TestShipperDropsRefusedBatchAndGoesOn(t *testing.T) {
	c := newFakeContainer()
	sink := &fakeSink{refuse: true}
	m := newTestManager(t, t.TempDir(), c, sink)
	defer m.Close()
	o, _ := ParseOptions(map[string]string{"awslogs-group": "g"})
	m.Ship(target, o)
	c.write(false, "line 0\n")
	waitFor(t, 5*time.Second, "a call", func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return sink.calls > 0 })
	sink.mu.Lock()
	sink.refuse = false
	sink.mu.Unlock()
	c.write(false, "line 1\n")
	c.stop()
	if !m.Wait([]string{target.DockerID}, 5*time.Second) {
		t.Fatal("a refused batch blocked the shipper")
	}
	if got := sink.messages(); len(got) != 1 || got[0] != "line 1" {
		t.Fatalf("got %q", got)
	}
}

func TestShipperFlushesQuicklyAndGroupsMultiline(t *testing.T) {
	c := newFakeContainer()
	sink := &fakeSink{}
	m := newTestManager(t, t.TempDir(), c, sink)
	defer m.Close()
	o, _ := ParseOptions(map[string]string{"awslogs-group": "g", "awslogs-multiline-pattern": "^ERROR"})
	m.Ship(target, o)
	start := time.Now()
	c.write(false, "ERROR boom\n")
	c.write(true, "  at main.go:1\n")
	c.write(true, "  at main.go:2\n")
	// The event ends when no line follows for MultilineIdle, then the
	// batch is flushed within Flush.
	waitFor(t, 2*time.Second, "the grouped event", func() bool { return len(sink.messages()) == 1 })
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %s", d)
	}
	_ = strings.Join
	c.stop()
	m.Wait([]string{target.DockerID}, 5*time.Second)
}

func TestShipperSeparatesStdoutAndStderrParts(t *testing.T) {
	c := newFakeContainer()
	sink := &fakeSink{}
	m := newTestManager(t, t.TempDir(), c, sink)
	defer m.Close()
	o, _ := ParseOptions(map[string]string{"awslogs-group": "g"})
	m.Ship(target, o)
	c.write(false, "out-a ")    // a long stdout line split by Docker ...
	c.write(true, "err line\n") // ... with a stderr line in between
	c.write(false, "out-b\n")
	c.stop()
	m.Wait([]string{target.DockerID}, 5*time.Second)
	got := sink.messages()
	if len(got) != 2 || got[0] != "err line" || got[1] != "out-a out-b" {
		t.Fatalf("got %q", got)
	}
}

func TestPrepareMapsMissingGroup(t *testing.T) {
	sink := sinkFunc(func(ctx context.Context, req agentapi.LogsRequest) error {
		if len(req.Events) != 0 {
			t.Fatal("prepare sent events")
		}
		return &errs.Error{Kind: errs.NotFound, Msg: "x", Err: &agentapi.Error{Status: 404, Code: "ResourceNotFoundException", Message: "The specified log group does not exist."}}
	})
	m := newTestManager(t, t.TempDir(), newFakeContainer(), sink)
	defer m.Close()
	err := m.Prepare(context.Background(), target)
	want := "CannotStartContainerError: Error response from daemon: failed to initialize logging driver: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist."
	if !errs.Is(err, errs.NotFound) || errs.MessageOf(err) != want {
		t.Fatalf("got %v", err)
	}
}

type sinkFunc func(ctx context.Context, req agentapi.LogsRequest) error

func (f sinkFunc) PutLogs(ctx context.Context, req agentapi.LogsRequest) error { return f(ctx, req) }

func TestShipperReadsTheEndAfterACutFollowStream(t *testing.T) {
	c := newFakeContainer()
	c.cutFollow = true
	sink := &fakeSink{}
	m := newTestManager(t, t.TempDir(), c, sink)
	defer m.Close()
	o, _ := ParseOptions(map[string]string{"awslogs-group": "g"})
	m.Ship(target, o)
	c.write(false, "line 0\n")
	waitFor(t, 5*time.Second, "the first line", func() bool { return len(sink.messages()) == 1 })
	// The rest is written and the container stops before the follower
	// sees any of it: its stream ends early.
	c.mu.Lock()
	for i := 1; i < 100; i++ {
		c.frames = append(c.frames, fakeFrame{ts: time.Now().UTC().Add(time.Duration(i) * time.Microsecond), msg: fmt.Sprintf("line %d\n", i)})
	}
	c.running = false
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	if !m.Wait([]string{target.DockerID}, 5*time.Second) {
		t.Fatal("not drained")
	}
	checkAll(t, sink.messages(), 100)
}
