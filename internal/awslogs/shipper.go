package awslogs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/errs"
)

// Source is where containers' output comes from (Docker).
type Source interface {
	// Logs reads a container's stdout and stderr, timestamped, from since
	// (zero: the first message). With follow the stream stays open while
	// the container runs and ends once it has stopped (Docker 20.10 can
	// end it before the last lines: a last read without follow gets them).
	Logs(ctx context.Context, id string, since time.Time, follow bool) (io.ReadCloser, error)
	// State says whether the container runs, whether it ever started (a
	// created container has no output yet), and whether it has a TTY.
	State(ctx context.Context, id string) (ContainerState, error)
}

// ContainerState is what a shipper needs to know of its container.
type ContainerState struct {
	Running, Started, TTY bool
}

// Sink is where batches go (the control plane: agentapi.Client).
type Sink interface {
	PutLogs(ctx context.Context, req agentapi.LogsRequest) error
}

// Target is where a container's output goes.
type Target struct {
	TaskARN   string
	Container string // name in the task definition
	DockerID  string
	Group     string
	Stream    string
}

func (t Target) request(events []agentapi.LogEvent) agentapi.LogsRequest {
	return agentapi.LogsRequest{TaskArn: t.TaskARN, Container: t.Container, Group: t.Group, Stream: t.Stream, Events: events}
}

// Timing of shippers. Zero fields take the defaults.
type Timing struct {
	// Flush sends a batch at the latest this long after its first event
	// (default 200ms).
	Flush time.Duration
	// Idle sends a batch earlier when the container wrote nothing for
	// this long (default 25ms): a burst is batched, a lone line is not
	// held back.
	Idle time.Duration
	// MultilineIdle ends a multiline event that got no new line for this
	// long (default 1s): the next line may never come.
	MultilineIdle time.Duration
	// Call bounds one call to the control plane (default 10s).
	Call time.Duration
	// MaxBackoff caps the wait between retries (default 5s).
	MaxBackoff time.Duration
}

func (t Timing) withDefaults() Timing {
	if t.Flush <= 0 {
		t.Flush = 200 * time.Millisecond
	}
	if t.Idle <= 0 {
		t.Idle = 25 * time.Millisecond
	}
	if t.MultilineIdle <= 0 {
		t.MultilineIdle = time.Second
	}
	if t.Call <= 0 {
		t.Call = 10 * time.Second
	}
	if t.MaxBackoff <= 0 {
		t.MaxBackoff = 5 * time.Second
	}
	return t
}

// shipper follows one container.
type shipper struct {
	m      *Manager
	t      Target
	opts   Options
	log    *slog.Logger
	done   chan struct{}
	cp     Checkpoint
	finish bool // the container stopped and its output was read to the end
}

// run ships until the container's output is all acknowledged (it stopped)
// or ctx ends.
func (s *shipper) run(ctx context.Context) {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	last := false // the container stopped: read once more without follow
	for ctx.Err() == nil {
		progressed, err := s.follow(ctx, !last)
		if ctx.Err() != nil {
			return
		}
		st, serr := s.m.src.State(ctx, s.t.DockerID)
		switch {
		case errs.Is(serr, errs.NotFound):
			s.log.Warn("container removed before its output was shipped", "err", err)
			return
		case serr == nil && !st.Started:
			return // not started yet: the runner ships again after the start
		case serr == nil && !st.Running && err == nil && !last:
			last = true
			continue
		case serr == nil && !st.Running && err == nil:
			s.cp.Done = true
			if err := s.m.cps.Save(s.t.DockerID, s.cp); err != nil {
				s.log.Warn("awslogs checkpoint", "err", err)
			}
			return
		}
		if progressed {
			backoff = 100 * time.Millisecond
		}
		if err != nil {
			s.log.Warn("container log stream broke; reconnecting", "err", err, "in", backoff)
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, s.m.timing.MaxBackoff)
	}
}

// follow reads the container's output once from the checkpoint to the
// end of the stream, shipping as it goes. It returns nil when the stream
// ended cleanly (everything read was acknowledged).
func (s *shipper) follow(ctx context.Context, follow bool) (progressed bool, err error) {
	st, err := s.m.src.State(ctx, s.t.DockerID)
	if err != nil {
		return false, err
	}
	resume := NewResume(s.cp.At)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, err := s.m.src.Logs(rctx, s.t.DockerID, resume.Since(), follow)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	recs := make(chan Record, 256)
	rerr := make(chan error, 1)
	go func() {
		defer close(recs)
		sr := NewStreamReader(rc, st.TTY)
		for {
			r, err := sr.Next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				rerr <- err
				return
			}
			select {
			case recs <- r:
			case <-rctx.Done():
				rerr <- rctx.Err()
				return
			}
		}
	}()

	// One batch is in flight while the next fills: a sender goroutine
	// delivers them in order and checkpoints each.
	out := make(chan readyBatch, 1)
	sent := make(chan error, 1)
	go func() {
		var err error
		for r := range out {
			if err == nil {
				err = s.ship(ctx, r)
			}
		}
		sent <- err
	}()
	outClosed := false
	defer func() {
		if !outClosed {
			close(out)
			<-sent
		}
	}()
	send := func(b *Batch) error {
		r := prepare(b)
		b.Reset()
		select {
		case out <- r:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	var lines Lines
	g := Grouper{Pattern: s.opts.Multiline}
	var b Batch
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	add := func(evs []Event) error {
		for _, e := range evs {
			if !b.Fits(e) {
				if err := send(&b); err != nil {
					return err
				}
				progressed = true
			}
			b.Add(e, time.Now())
			if b.Full() {
				if err := send(&b); err != nil {
					return err
				}
				progressed = true
			}
		}
		return nil
	}
	var lastRec time.Time
	batchDue := func() time.Time {
		return minTime(b.Opened.Add(s.m.timing.Flush), lastRec.Add(s.m.timing.Idle))
	}
	for {
		// Wake when the batch is due or the pending event's idle end.
		var wake time.Time
		if len(b.Events) > 0 {
			wake = batchDue()
		}
		if last, ok := g.Pending(); ok {
			if w := last.Add(s.m.timing.MultilineIdle); wake.IsZero() || w.Before(wake) {
				wake = w
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !wake.IsZero() {
			timer.Reset(max(time.Until(wake), 0))
		}
		select {
		case <-ctx.Done():
			return progressed, ctx.Err()
		case r, ok := <-recs:
			if !ok {
				// The stream ended: ship everything read.
				err := <-rerr
				var evs []Event
				for _, l := range lines.Flush() {
					evs = append(evs, g.Add(l, time.Now())...)
				}
				evs = append(evs, g.Flush()...)
				if aerr := add(evs); aerr != nil {
					return progressed, aerr
				}
				if len(b.Events) > 0 {
					if serr := send(&b); serr != nil {
						return progressed, serr
					}
					progressed = true
				}
				outClosed = true
				close(out)
				if serr := <-sent; serr != nil {
					return progressed, serr
				}
				return progressed, err
			}
			lastRec = time.Now()
			if resume.Skip(r.Pos) {
				continue
			}
			if l, ok := lines.Add(r); ok {
				if err := add(g.Add(l, time.Now())); err != nil {
					return progressed, err
				}
			}
		case now := <-timer.C:
			if last, ok := g.Pending(); ok && !now.Before(last.Add(s.m.timing.MultilineIdle)) {
				if err := add(g.Flush()); err != nil {
					return progressed, err
				}
			}
			if len(b.Events) > 0 && !now.Before(batchDue()) {
				if err := send(&b); err != nil {
					return progressed, err
				}
				progressed = true
			}
		}
	}
}

// readyBatch is a batch on its way: its events in chronological order and
// where to resume once they are acknowledged.
type readyBatch struct {
	events []agentapi.LogEvent
	end    Position
}

func prepare(b *Batch) readyBatch {
	events := make([]agentapi.LogEvent, len(b.Events))
	for i, e := range b.Events {
		events[i] = agentapi.LogEvent{Timestamp: e.Timestamp, Message: e.Message}
	}
	// PutLogEvents wants chronological order; Docker's stdout and stderr
	// timestamps can interleave by a hair.
	slices.SortStableFunc(events, func(a, b agentapi.LogEvent) int { return int(a.Timestamp - b.Timestamp) })
	return readyBatch{events: events, end: b.End()}
}

// ship delivers a batch, retrying with back-off until it is acknowledged
// or refused for good (logged: the batch cannot ever be accepted), then
// checkpoints its end. It fails only when ctx ends.
func (s *shipper) ship(ctx context.Context, r readyBatch) error {
	events, end := r.events, r.end
	for _, part := range splitRequest(events) {
		if err := s.deliver(ctx, part); err != nil {
			return err
		}
	}
	s.m.delivered(len(events))
	s.cp.At = end
	if err := s.m.cps.Save(s.t.DockerID, s.cp); err != nil {
		s.log.Warn("awslogs checkpoint", "err", err)
	}
	return nil
}

// MaxRequestBytes bounds the JSON body of one call to the control plane
// (its agent gateway reads at most 4 MiB). A batch within PutLogEvents'
// 1 MiB can exceed it when JSON escapes its characters (up to 6 bytes for
// a control character), so such a batch goes in several calls.
const MaxRequestBytes = 3 << 20

// splitRequest cuts events into parts whose JSON stays under
// MaxRequestBytes.
func splitRequest(events []agentapi.LogEvent) [][]agentapi.LogEvent {
	total := 0
	for _, e := range events {
		total += len(e.Message)
	}
	if total*6+len(events)*64 < MaxRequestBytes {
		return [][]agentapi.LogEvent{events}
	}
	var out [][]agentapi.LogEvent
	start, size := 0, 0
	for i, e := range events {
		b, _ := json.Marshal(e.Message)
		n := len(b) + 64
		if size+n > MaxRequestBytes && i > start {
			out = append(out, events[start:i])
			start, size = i, 0
		}
		size += n
	}
	return append(out, events[start:])
}

// deliver sends events, retrying with back-off until they are
// acknowledged or refused for good (logged: they cannot ever be
// accepted). It fails only when ctx ends.
func (s *shipper) deliver(ctx context.Context, events []agentapi.LogEvent) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, s.m.timing.Call)
		err := s.m.sink.PutLogs(cctx, s.t.request(events))
		cancel()
		if err == nil {
			if attempt > 1 {
				s.log.Info("log batch delivered after retries", "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if final(err) {
			s.log.Error("log batch refused by the control plane; its events are dropped",
				"events", len(events), "group", s.t.Group, "stream", s.t.Stream, "err", err)
			return nil
		}
		if attempt == 1 || attempt%20 == 0 {
			s.log.Warn("log batch not delivered; retrying", "attempt", attempt, "err", err)
		}
		if !sleep(ctx, jitter(backoff)) {
			return ctx.Err()
		}
		backoff = min(backoff*2, s.m.timing.MaxBackoff)
	}
}

// final reports whether a refused batch would be refused again.
func final(err error) bool {
	switch errs.KindOf(err) {
	case errs.Invalid, errs.NotFound, errs.Forbidden:
		return true
	}
	return false
}

func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Manager runs the agent's shippers, one per awslogs container.
type Manager struct {
	src    Source
	sink   Sink
	cps    *Checkpoints
	timing Timing
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	shippers map[string]*shipper // by Docker id
	events   int64
}

// Config configures a Manager.
type Config struct {
	Source Source
	Sink   Sink
	// Dir holds the checkpoints (in the agent's data directory).
	Dir    string
	Timing Timing
	Log    *slog.Logger
}

// NewManager returns a Manager; Close stops its shippers (their
// containers keep running and keep writing to Docker's log file, from
// which the next agent process resumes).
func NewManager(cfg Config) (*Manager, error) {
	cps, err := NewCheckpoints(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{src: cfg.Source, sink: cfg.Sink, cps: cps, timing: cfg.Timing.withDefaults(), log: cfg.Log,
		ctx: ctx, cancel: cancel, shippers: map[string]*shipper{}}, nil
}

// Prepare readies a container's log stream before the container starts
// (creating the group when the definition says awslogs-create-group).
// A missing group is an error of kind NotFound whose message is ECS's
// stopped reason for it.
func (m *Manager) Prepare(ctx context.Context, t Target) error {
	cctx, cancel := context.WithTimeout(ctx, m.timing.Call)
	defer cancel()
	err := m.sink.PutLogs(cctx, t.request(nil))
	if err == nil {
		return nil
	}
	var ae *agentapi.Error
	if errors.As(err, &ae) && ae.Code == "ResourceNotFoundException" {
		return errs.E(errs.NotFound, "CannotStartContainerError: Error response from daemon: failed to initialize logging driver: "+
			"failed to create Cloudwatch log stream: ResourceNotFoundException: %s", ae.Message)
	}
	if errors.As(err, &ae) && final(err) {
		return errs.E(errs.Invalid, "CannotStartContainerError: Error response from daemon: failed to initialize logging driver: %s", ae.Message)
	}
	return err
}

// Ship starts following a container's output into its stream, from its
// checkpoint; it does nothing if a shipper runs for it already or if its
// output was shipped to the end.
func (m *Manager) Ship(t Target, opts Options) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	if s, ok := m.shippers[t.DockerID]; ok {
		select {
		case <-s.done:
		default:
			return
		}
	}
	cp, err := m.cps.Load(t.DockerID)
	if err != nil {
		m.log.Warn("awslogs checkpoint unreadable; shipping from the start", "container", t.Container, "err", err)
	}
	if cp.Done {
		return
	}
	s := &shipper{m: m, t: t, opts: opts, cp: cp, done: make(chan struct{}),
		log: m.log.With("task", t.TaskARN, "container", t.Container, "group", t.Group, "stream", t.Stream)}
	m.shippers[t.DockerID] = s
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s.run(m.ctx)
		m.mu.Lock()
		if m.shippers[t.DockerID] == s {
			delete(m.shippers, t.DockerID)
		}
		m.mu.Unlock()
	}()
}

// Wait waits, at most d, until the shippers of these containers have
// shipped their stopped container's output; it reports whether they all
// did.
func (m *Manager) Wait(ids []string, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for _, id := range ids {
		m.mu.Lock()
		s := m.shippers[id]
		m.mu.Unlock()
		if s == nil {
			continue
		}
		select {
		case <-s.done:
		case <-deadline.C:
			return false
		}
	}
	return true
}

// Forget drops a removed container's checkpoint.
func (m *Manager) Forget(id string) {
	if err := m.cps.Remove(id); err != nil {
		m.log.Warn("awslogs checkpoint", "err", err)
	}
}

// Delivered is the number of events acknowledged since the start.
func (m *Manager) Delivered() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.events
}

func (m *Manager) delivered(n int) {
	m.mu.Lock()
	m.events += int64(n)
	m.mu.Unlock()
}

// Close stops every shipper and waits for them.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

// DockerSource reads containers' output from Docker.
func DockerSource(d *dockerdriver.Driver) Source { return dockerSource{d} }

type dockerSource struct{ d *dockerdriver.Driver }

func (s dockerSource) Logs(ctx context.Context, id string, since time.Time, follow bool) (io.ReadCloser, error) {
	return s.d.ContainerLogs(ctx, id, dockerdriver.LogsOptions{Since: since, Follow: follow})
}

func (s dockerSource) State(ctx context.Context, id string) (ContainerState, error) {
	info, err := s.d.InspectContainer(ctx, id)
	if err != nil {
		return ContainerState{}, err
	}
	started := info.Running || !info.StartedAt.IsZero() || info.Status == "exited" || info.Status == "dead"
	if info.Status == "created" {
		started = false
	}
	return ContainerState{Running: info.Running || info.Status == "restarting" || info.Status == "paused", Started: started, TTY: info.TTY}, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
