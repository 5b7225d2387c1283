// Package agent is `berth agent`: it joins a cluster as a container
// instance, keeps the assignment stream open (resuming after any break),
// hands each task's desired state to its task runner, and sends what the
// runners observe back to the control plane in batches. The runners, which
// drive Docker, are behind the Runner interface (package taskrun).
//
// The agent survives its own restart: its identity and the last stream
// revision are in its state directory, and running containers are left
// running and re-attached by their labels.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/durable"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/tlsca"
)

// Runner runs one task. The agent calls Update with every new assignment
// of the task (desired status only moves forward) and never concurrently.
type Runner interface {
	Update(a agentapi.Assignment)
	// Done is closed once the task is STOPPED and that was reported.
	Done() <-chan struct{}
}

// RunnerFactory makes the runner of a task. report must be called with
// every change the runner observes; it never blocks for long.
type RunnerFactory func(a agentapi.Assignment, report func(agentapi.TaskReport)) Runner

// Config configures an agent.
type Config struct {
	Endpoint  string // control plane URL
	Region    string
	StateDir  string // identity and stream position; created 0700
	JoinToken string // needed only for the first start
	Join      agentapi.JoinRequest
	NewRunner RunnerFactory
	// Adopt is called once after joining with the instance id, before the
	// stream opens, so the runtime can re-attach to running containers.
	Adopt func(ctx context.Context, instanceID string) (map[string]Runner, error)
	Log   *slog.Logger
	// HTTPClient talks to the control plane; nil: http.DefaultClient.
	// Many agents in one process (hollow nodes) share one with a large
	// idle connection pool. With an https Endpoint, its transport (when
	// an *http.Transport) is cloned to trust only the pinned CA.
	HTTPClient *http.Client
	// CACert is the control plane's CA (PEM), when the caller has it
	// (berth up's own agent); otherwise an https Endpoint needs the CA
	// pin the join token carries. Once joined, the agent keeps the CA it
	// pinned in its state and trusts nothing else.
	CACert []byte
}

// State is what the agent keeps across restarts.
type State struct {
	ContainerInstanceArn string `json:"containerInstanceArn"`
	InstanceID           string `json:"instanceId"`
	Cluster              string `json:"cluster"`
	AccessKeyID          string `json:"accessKeyId"`
	SecretAccessKey      string `json:"secretAccessKey"`
	Region               string `json:"region"`
	Revision             int64  `json:"revision"`
	// CACert is the control plane CA the agent pinned when it joined
	// (PEM); empty for an agent that joined over loopback HTTP.
	CACert string `json:"caCert,omitempty"`
}

const stateFile = "agent-state.json"

// LoadState reads the agent state; NotFound when the agent never joined.
func LoadState(dir string) (State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, errs.E(errs.NotFound, "agent has not joined yet")
	}
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, errs.Wrap(errs.Internal, err, "agent state %s is corrupt", filepath.Join(dir, stateFile))
	}
	return st, nil
}

func saveState(dir string, st State) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	return durable.WriteFile(filepath.Join(dir, stateFile), b, 0o600)
}

// Agent is a running agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	client *agentapi.Client
	hc     *http.Client // to the control plane (TLS pinned for https)

	mu      sync.Mutex
	state   State             // identity and stream position; under mu
	runners map[string]Runner // by task ARN
	pending map[string]agentapi.TaskReport
	kick    chan struct{}
	ready   chan struct{}
}

// New prepares an agent: it loads its identity, or joins with the token.
func New(ctx context.Context, cfg Config) (*Agent, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.NewRunner == nil {
		return nil, errs.E(errs.Invalid, "agent: no task runner")
	}
	a := &Agent{cfg: cfg, log: cfg.Log, runners: map[string]Runner{}, pending: map[string]agentapi.TaskReport{},
		kick: make(chan struct{}, 1), ready: make(chan struct{})}
	st, err := LoadState(cfg.StateDir)
	switch {
	case err == nil:
		ca := []byte(st.CACert)
		if len(ca) == 0 {
			ca = cfg.CACert // joined over loopback HTTP before
		}
		a.hc, _, err = connect(ctx, cfg, ca, "")
		if err != nil {
			return nil, err
		}
	case errs.Is(err, errs.NotFound):
		if cfg.JoinToken == "" {
			return nil, errs.E(errs.Invalid, "agent: first start needs a join token (berth join-token)")
		}
		secret, pin := agentapi.ParseJoinToken(cfg.JoinToken)
		var ca []byte
		a.hc, ca, err = connect(ctx, cfg, cfg.CACert, pin)
		if err != nil {
			return nil, err
		}
		req := cfg.Join
		req.Token = secret
		c := &agentapi.Client{Endpoint: cfg.Endpoint, Region: cfg.Region, HTTP: a.hc}
		j, err := c.Join(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
		st = State{ContainerInstanceArn: j.ContainerInstanceArn, InstanceID: j.InstanceID, Cluster: j.Cluster,
			AccessKeyID: j.AccessKeyID, SecretAccessKey: j.SecretAccessKey, Region: j.Region, CACert: string(ca)}
		if err := saveState(cfg.StateDir, st); err != nil {
			return nil, fmt.Errorf("save agent state: %w", err)
		}
		a.log.Info("joined cluster", "cluster", j.Cluster, "instance", j.ContainerInstanceArn)
	default:
		return nil, err
	}
	a.state = st
	a.client = &agentapi.Client{Endpoint: cfg.Endpoint, Region: st.Region, AccessKeyID: st.AccessKeyID, SecretAccessKey: st.SecretAccessKey, HTTP: a.hc}
	return a, nil
}

// HTTPClient is the client the agent reaches the control plane with
// (over TLS to the pinned CA for an https endpoint); other agent
// components use its Transport.
func (a *Agent) HTTPClient() *http.Client { return a.hc }

// connect checks the endpoint and returns the HTTP client to reach it,
// and the CA it trusts (nil over plain HTTP). Plain HTTP is refused
// unless the server is on this host: the join token and the agent's
// signed calls would cross the network in clear. Over https the agent
// trusts only a pinned CA: ca when given (the state's, or berth up's
// own), else the one the server shows whose pin the join token carries.
func connect(ctx context.Context, cfg Config, ca []byte, pin string) (*http.Client, []byte, error) {
	u, err := CheckEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, nil, err
	}
	base := cfg.HTTPClient
	if base == nil {
		base = http.DefaultClient
	}
	if u.Scheme == "http" {
		return base, nil, nil
	}
	if len(ca) == 0 {
		if pin == "" {
			return nil, nil, errs.E(errs.Invalid, "agent: %s is https but no CA is pinned: join with a token from berth join-token (it carries the CA's pin)", cfg.Endpoint)
		}
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "443")
		}
		ca, err = tlsca.Discover(ctx, addr, pin)
		if err != nil {
			return nil, nil, fmt.Errorf("join: %w", err)
		}
	}
	tc, err := tlsca.ClientConfig(ca)
	if err != nil {
		return nil, nil, err
	}
	var tr *http.Transport
	if t, ok := base.Transport.(*http.Transport); ok {
		tr = t.Clone()
	} else {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	tr.TLSClientConfig = tc
	tr.ForceAttemptHTTP2 = false
	return &http.Client{Transport: tr, Timeout: base.Timeout}, ca, nil
}

// CheckEndpoint parses a control plane URL and refuses plain HTTP to a
// host other than this one (docs/security.md).
func CheckEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, errs.E(errs.Invalid, "agent: bad control plane endpoint %q", endpoint)
	}
	switch u.Scheme {
	case "http":
		if !loopbackHost(u.Hostname()) {
			return nil, errs.E(errs.Invalid, "agent: refusing plain HTTP to %s, which is not on this host: the join token and the agent's credential would cross the network in clear; use https://%s (docs/security.md)", u.Host, u.Host)
		}
	case "https":
	default:
		return nil, errs.E(errs.Invalid, "agent: the control plane endpoint %q must be http:// or https://", endpoint)
	}
	return u, nil
}

// loopbackHost says whether host names this machine's loopback.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// State returns the agent's identity and stream position.
func (a *Agent) State() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// saveState writes the agent's state to its state directory.
func (a *Agent) saveState() error { return saveState(a.cfg.StateDir, a.State()) }

// Ready is closed once the first assignment sync has been handled.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Run runs the agent until ctx ends (it returns nil then), or until the
// control plane refuses it: its instance was deregistered (Forbidden) or
// purged and its credential with it (Unauthenticated); Run returns that
// error. Stopping the agent leaves tasks running; they are re-attached at
// the next start.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.Adopt != nil {
		adopted, err := a.cfg.Adopt(ctx, a.State().InstanceID)
		if err != nil {
			return fmt.Errorf("re-attach to running tasks: %w", err)
		}
		a.mu.Lock()
		for arn, r := range adopted {
			a.runners[arn] = r
		}
		a.mu.Unlock()
		if len(adopted) > 0 {
			a.log.Info("re-attached to running tasks", "count", len(adopted))
		}
	}
	// The report loop ends with Run, also when Run returns because the
	// control plane refused the agent.
	rctx, stopReports := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.reportLoop(rctx) }()
	defer wg.Wait()
	defer stopReports()

	since := a.State().Revision
	backoff := 200 * time.Millisecond
	var readyOnce sync.Once
	for ctx.Err() == nil {
		connected := time.Now()
		err := a.client.Assignments(ctx, since, func(ev agentapi.Event) error {
			// Ready once the control plane answers: after the full sync on
			// a first stream, at any event (the server opens a resumed
			// stream with a heartbeat) on one resumed from a saved
			// revision.
			if ev.Type == agentapi.EventSync {
				a.sync(ev.Tasks)
			}
			readyOnce.Do(func() { close(a.ready) })
			switch ev.Type {
			case agentapi.EventTask:
				if ev.Task != nil {
					a.dispatch(*ev.Task)
				}
			}
			if ev.Revision > since {
				since = ev.Revision
				a.mu.Lock()
				a.state.Revision = since
				a.mu.Unlock()
			}
			return nil
		})
		if ctx.Err() != nil {
			break
		}
		if since > 0 {
			readyOnce.Do(func() { close(a.ready) })
		}
		if errs.Is(err, errs.Unauthenticated) || errs.Is(err, errs.Forbidden) {
			return fmt.Errorf("the control plane refused this agent: %w", err)
		}
		if time.Since(connected) > 30*time.Second {
			backoff = 200 * time.Millisecond
		}
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff)))
		a.log.Warn("assignment stream ended; reconnecting", "err", err, "in", wait.Round(time.Millisecond))
		if err := a.saveState(); err != nil {
			a.log.Warn("save agent state", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	if err := a.saveState(); err != nil {
		a.log.Warn("save agent state", "err", err)
	}
	return nil
}

// sync reconciles local runners with the full list of assignments: a task
// that is no longer assigned (collected after it stopped) is forgotten.
func (a *Agent) sync(tasks []agentapi.Assignment) {
	seen := map[string]bool{}
	for _, t := range tasks {
		seen[t.TaskArn] = true
		a.dispatch(t)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for arn, r := range a.runners {
		if seen[arn] {
			continue
		}
		select {
		case <-r.Done():
			delete(a.runners, arn)
		default:
			// Not assigned any more but still running: stop it.
			r.Update(agentapi.Assignment{TaskArn: arn, DesiredStatus: "STOPPED",
				StopCode: "TaskFailedToStart", StoppedReason: "Task is no longer assigned to this container instance"})
		}
	}
}

func (a *Agent) dispatch(t agentapi.Assignment) {
	a.mu.Lock()
	r, ok := a.runners[t.TaskArn]
	if !ok {
		if t.DesiredStatus == "STOPPED" && t.Version > 1 {
			// Stopped before this agent ever ran it (or after it forgot
			// it): report it stopped so the control plane can move on.
			a.mu.Unlock()
			now := time.Now().UTC()
			a.report(agentapi.TaskReport{TaskArn: t.TaskArn, KnownStatus: "STOPPED", Version: t.Version, StoppedAt: &now, ExecutionStoppedAt: &now})
			return
		}
		r = a.cfg.NewRunner(t, a.report)
		a.runners[t.TaskArn] = r
	}
	a.mu.Unlock()
	r.Update(t)
}

// SendStats sends the resource usage of the instance's tasks to the
// control plane.
func (a *Agent) SendStats(ctx context.Context, rep agentapi.StatsReport) error {
	return a.client.Stats(ctx, rep)
}

// Report queues a task's observed state for the control plane; the latest
// per task wins. Runners made by Config.Adopt report through it.
func (a *Agent) Report(tr agentapi.TaskReport) { a.report(tr) }

// report queues a task's observed state; the latest per task wins.
func (a *Agent) report(tr agentapi.TaskReport) {
	a.mu.Lock()
	a.pending[tr.TaskArn] = mergeReport(a.pending[tr.TaskArn], tr)
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// mergeReport combines a queued report with a newer one: the newer wins,
// but timestamps and containers the newer one lacks are kept.
func mergeReport(old, nw agentapi.TaskReport) agentapi.TaskReport {
	if old.TaskArn == "" {
		return nw
	}
	keep := func(dst **time.Time, src *time.Time) {
		if *dst == nil {
			*dst = src
		}
	}
	keep(&nw.PullStartedAt, old.PullStartedAt)
	keep(&nw.PullStoppedAt, old.PullStoppedAt)
	keep(&nw.StartedAt, old.StartedAt)
	keep(&nw.ConnectivityAt, old.ConnectivityAt)
	keep(&nw.ExecutionStoppedAt, old.ExecutionStoppedAt)
	keep(&nw.StoppedAt, old.StoppedAt)
	if nw.StopCode == "" {
		nw.StopCode, nw.StoppedReason = old.StopCode, old.StoppedReason
	}
	if agentapi.StatusRank(old.KnownStatus) > agentapi.StatusRank(nw.KnownStatus) {
		nw.KnownStatus = old.KnownStatus
	}
	for _, oc := range old.Containers {
		found := false
		for _, nc := range nw.Containers {
			found = found || nc.Name == oc.Name
		}
		if !found {
			nw.Containers = append(nw.Containers, oc)
		}
	}
	return nw
}

// reportLoop sends queued reports, retrying with back-off.
func (a *Agent) reportLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	lastSent := time.Now()
	for {
		heartbeat := false
		select {
		case <-ctx.Done():
			a.flush(context.WithoutCancel(ctx), 3*time.Second, false) //nolint:errcheck // best effort at shutdown
			return
		case <-a.kick:
		case <-time.After(time.Until(lastSent.Add(agentapi.AgentHeartbeatInterval))):
			heartbeat = true
		}
		sent, err := a.flush(ctx, 15*time.Second, heartbeat)
		if sent {
			lastSent = time.Now()
		}
		if err != nil {
			a.log.Warn("report failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			select {
			case a.kick <- struct{}{}:
			default:
			}
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

// flush sends the queued reports; with heartbeat it sends an empty
// report when nothing is queued, so the control plane hears from the
// agent at least every AgentHeartbeatInterval.
func (a *Agent) flush(ctx context.Context, timeout time.Duration, heartbeat bool) (sent bool, err error) {
	a.mu.Lock()
	if len(a.pending) == 0 && !heartbeat {
		a.mu.Unlock()
		return false, nil
	}
	batch := a.pending
	a.pending = map[string]agentapi.TaskReport{}
	a.mu.Unlock()
	rep := agentapi.Report{Tasks: make([]agentapi.TaskReport, 0, len(batch))}
	for _, tr := range batch {
		rep.Tasks = append(rep.Tasks, tr)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = a.client.Report(ctx, rep)
	if err != nil && !errs.Is(err, errs.Forbidden) && !errs.Is(err, errs.Invalid) {
		// Put the batch back under anything newer.
		a.mu.Lock()
		for arn, tr := range batch {
			if newer, ok := a.pending[arn]; ok {
				tr = mergeReport(tr, newer)
			}
			a.pending[arn] = tr
		}
		a.mu.Unlock()
		return false, err
	}
	if err != nil {
		a.log.Error("report refused; dropped", "err", err)
	}
	return true, nil
}
