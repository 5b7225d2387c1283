// Package hollow runs hollow nodes: simulated container instances (like
// Kubernetes' kubemark) with no Docker behind them. Each node is the real
// agent shell (package agent: join, assignment stream, batched reports)
// with a simulated task runner that acts out a task's lifecycle with
// configurable delays and optional failure injection.
//
// Hollow nodes are never a default and never stand in for real behaviour
// in end-to-end tests: they exist for scale tests, benchmarks and tests of
// the scheduler's logic. docs/hollow-nodes.md.
package hollow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
)

// Delays are how long the simulated runner takes for each step.
type Delays struct {
	Pull  time.Duration // PENDING: pulling images
	Start time.Duration // ACTIVATING: creating and starting containers
	Stop  time.Duration // from desired STOPPED to STOPPED
}

// Config configures a set of hollow nodes.
type Config struct {
	Endpoint  string // control plane URL
	Region    string
	JoinToken string // reusable until it expires; every node joins with it
	Cluster   string // empty: default
	Count     int
	// AZs are assigned round-robin as ecs.availability-zone.
	AZs []string
	// Resources of each node; defaults 4096 CPU units and 8192 MiB.
	CPU, MemoryMiB int
	// Attributes are custom attributes of every node.
	Attributes map[string]string
	// Capabilities are capability attributes every node registers
	// (ecs.capability.fargate makes a Fargate host; with Cluster
	// berth.fargate one of the hidden pool).
	Capabilities []string
	Delays       Delays
	// FailImages: a task with a container whose image contains one of
	// these strings fails to start (TaskFailedToStart,
	// CannotPullContainerError) after the pull delay.
	FailImages []string
	// StateDir holds each node's agent state; a temp dir when empty
	// (removed by Close).
	StateDir string
	Log      *slog.Logger
	// Hostname, when set, is every node's hostname (e.g. "127.0.0.1", so
	// that ELBv2 instance targets on hollow nodes resolve); default
	// hollow-<index>.
	Hostname string
}

// Node is one hollow node.
type Node struct {
	Index      int
	InstanceID string
	AZ         string
	agent      *agent.Agent
	cancel     context.CancelFunc
	done       chan struct{}
	stopOnce   sync.Once
}

// Stop stops the node's agent (its tasks are left as they are, as when a
// host is lost) and waits for it.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		n.cancel()
		<-n.done
	})
}

// Nodes is a running set of hollow nodes.
type Nodes struct {
	Nodes   []*Node
	tempDir string
}

// Start joins cfg.Count hollow nodes and runs them until ctx ends or
// Close. It returns once every node's first assignment sync was handled.
func Start(ctx context.Context, cfg Config) (*Nodes, error) {
	if cfg.Count <= 0 {
		return nil, errors.New("hollow: Count must be positive")
	}
	if cfg.CPU == 0 {
		cfg.CPU = 4096
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 8192
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ns := &Nodes{}
	if cfg.StateDir == "" {
		d, err := os.MkdirTemp("", "berth-hollow-")
		if err != nil {
			return nil, err
		}
		cfg.StateDir, ns.tempDir = d, d
	}
	type result struct {
		n   *Node
		err error
	}
	results := make(chan result, cfg.Count)
	sem := make(chan struct{}, 32)
	for i := range cfg.Count {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			n, err := startNode(ctx, cfg, i)
			results <- result{n, err}
		}()
	}
	ns.Nodes = make([]*Node, cfg.Count)
	var firstErr error
	for range cfg.Count {
		r := <-results
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		ns.Nodes[r.n.Index] = r.n
	}
	if firstErr != nil {
		ns.Close()
		return nil, firstErr
	}
	return ns, nil
}

func startNode(ctx context.Context, cfg Config, i int) (*Node, error) {
	az := ""
	if len(cfg.AZs) > 0 {
		az = cfg.AZs[i%len(cfg.AZs)]
	}
	sim := &simulator{delays: cfg.Delays, failImages: cfg.FailImages}
	a, err := agent.New(ctx, agent.Config{
		Endpoint: cfg.Endpoint, Region: cfg.Region, JoinToken: cfg.JoinToken,
		StateDir: filepath.Join(cfg.StateDir, fmt.Sprintf("node-%05d", i)),
		Join: agentapi.JoinRequest{
			Cluster: cfg.Cluster, Hostname: cmp.Or(cfg.Hostname, fmt.Sprintf("hollow-%05d", i)), AvailabilityZone: az,
			InstanceType: "hollow", Attributes: cfg.Attributes,
			Resources:   agentapi.Resources{CPU: cfg.CPU, MemoryMiB: cfg.MemoryMiB, OSType: "linux", CPUArch: "x86_64", Capabilities: cfg.Capabilities},
			VersionInfo: agentapi.VersionInfo{AgentVersion: "1.0.0-hollow", DockerVersion: "hollow"},
		},
		NewRunner:  sim.newRunner,
		Log:        cfg.Log.With("hollow", i),
		HTTPClient: sharedHTTP,
	})
	if err != nil {
		return nil, fmt.Errorf("hollow node %d: %w", i, err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &Node{Index: i, InstanceID: a.State().InstanceID, AZ: az, agent: a, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		a.Run(rctx)
	}()
	go func() {
		select {
		case <-ctx.Done():
			cancel()
		case <-n.done:
		}
	}()
	select {
	case <-a.Ready():
	case <-ctx.Done():
		n.Stop()
		return nil, ctx.Err()
	case <-n.done:
		return nil, fmt.Errorf("hollow node %d stopped before it was ready", i)
	case <-time.After(30 * time.Second):
		n.Stop()
		return nil, fmt.Errorf("hollow node %d: no assignment stream after 30s", i)
	}
	return n, nil
}

// Close stops every node.
func (ns *Nodes) Close() {
	var wg sync.WaitGroup
	for _, n := range ns.Nodes {
		if n != nil {
			wg.Add(1)
			go func() { defer wg.Done(); n.Stop() }()
		}
	}
	wg.Wait()
	if ns.tempDir != "" {
		os.RemoveAll(ns.tempDir)
	}
}

// simulator makes simulated runners.
type simulator struct {
	delays     Delays
	failImages []string
	hostPorts  atomic.Int32 // simulated host ports of proxy listeners
}

func ptr[T any](v T) *T { return &v }

func (s *simulator) newRunner(a agentapi.Assignment, report func(agentapi.TaskReport)) agent.Runner {
	r := &runner{sim: s, report: report, done: make(chan struct{}), notify: make(chan struct{}, 1), arn: a.TaskArn}
	r.containers = containerNames(a)
	r.bindings = portBindings(a)
	if sc := a.ServiceConnect; sc != nil {
		// The Service Connect proxy container, its inbound listeners
		// published on simulated host ports (as in bridge mode).
		r.proxy = sc.ProxyContainerName
		for _, in := range sc.Inbound {
			r.proxyBindings = append(r.proxyBindings, ecsapi.NetworkBinding{
				ContainerPort: ptr(int32(in.ListenPort)), HostPort: ptr(int32(40000 + s.hostPorts.Add(1)%20000)),
				Protocol: ptr(ecsapi.TransportProtocolTcp), BindIP: ptr("0.0.0.0")})
		}
	}
	r.fail = s.fails(a)
	r.healthChecked = healthChecked(a)
	go r.run()
	return r
}

func containerNames(a agentapi.Assignment) []string {
	var out []string
	if a.TaskDefinition != nil {
		for _, c := range a.TaskDefinition.ContainerDefinitions {
			if c.Name != nil {
				out = append(out, *c.Name)
			}
		}
	}
	return out
}

// dynamicPorts hands out made-up dynamic host ports.
var dynamicPorts atomic.Int32

// portBindings simulates the network bindings of a bridge or host mode
// task: each port mapping bound on the host, hostPort 0 to a made-up
// port from the ephemeral range (nothing listens on it).
func portBindings(a agentapi.Assignment) map[string][]ecsapi.NetworkBinding {
	out := map[string][]ecsapi.NetworkBinding{}
	if a.TaskDefinition == nil {
		return out
	}
	for _, c := range a.TaskDefinition.ContainerDefinitions {
		for _, m := range c.PortMappings {
			hp := m.HostPort
			if hp == nil || *hp == 0 {
				v := 49153 + dynamicPorts.Add(1)%16000
				hp = &v
			}
			proto := m.Protocol
			if proto == nil {
				tcp := ecsapi.TransportProtocolTcp
				proto = &tcp
			}
			ip := "0.0.0.0"
			out[deref(c.Name)] = append(out[deref(c.Name)], ecsapi.NetworkBinding{BindIP: &ip, ContainerPort: m.ContainerPort, HostPort: hp, Protocol: proto})
		}
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (s *simulator) fails(a agentapi.Assignment) string {
	if a.TaskDefinition == nil {
		return ""
	}
	for _, c := range a.TaskDefinition.ContainerDefinitions {
		if c.Image == nil {
			continue
		}
		for _, f := range s.failImages {
			if f != "" && strings.Contains(*c.Image, f) {
				return *c.Image
			}
		}
	}
	return ""
}

func healthChecked(a agentapi.Assignment) bool {
	if a.TaskDefinition == nil {
		return false
	}
	for _, c := range a.TaskDefinition.ContainerDefinitions {
		if c.HealthCheck != nil {
			return true
		}
	}
	return false
}

// runner acts out one task: PENDING (pull delay), ACTIVATING (start
// delay), RUNNING; on desired STOPPED, STOPPED after the stop delay.
type runner struct {
	sim           *simulator
	report        func(agentapi.TaskReport)
	arn           string
	containers    []string
	fail          string
	healthChecked bool
	proxy         string // Service Connect proxy container; "" without
	proxyBindings []ecsapi.NetworkBinding
	// bindings are the simulated network bindings per container: the
	// port mappings, a dynamic host port made up where hostPort is 0.
	bindings map[string][]ecsapi.NetworkBinding
	notify   chan struct{} // an assignment arrived
	done     chan struct{}
	mu       sync.Mutex
	desired  string // "" until the first assignment; only moves forward
	version  int64
}

func (r *runner) Update(a agentapi.Assignment) {
	r.mu.Lock()
	r.version = a.Version
	if r.desired != "STOPPED" {
		r.desired = a.DesiredStatus
	}
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *runner) want() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.desired
}

func (r *runner) Done() <-chan struct{} { return r.done }

func (r *runner) containerReports(status string, exit *int32, reason string) []agentapi.ContainerReport {
	out := make([]agentapi.ContainerReport, 0, len(r.containers))
	for _, c := range r.containers {
		cr := agentapi.ContainerReport{Name: c, KnownStatus: status, ExitCode: exit, Reason: reason, RuntimeID: "hollow-" + c}
		if r.healthChecked && status == "RUNNING" {
			cr.HealthStatus = "HEALTHY"
		}
		if status == "RUNNING" {
			cr.NetworkBindings = r.bindings[c]
		}
		out = append(out, cr)
	}
	if r.proxy != "" {
		cr := agentapi.ContainerReport{Name: r.proxy, KnownStatus: status, ExitCode: exit, Reason: reason, RuntimeID: "hollow-" + r.proxy}
		if status == "RUNNING" {
			cr.NetworkBindings = r.proxyBindings
		}
		out = append(out, cr)
	}
	return out
}

func (r *runner) send(tr agentapi.TaskReport) {
	r.mu.Lock()
	tr.Version = r.version
	r.mu.Unlock()
	tr.TaskArn = r.arn
	r.report(tr)
}

// wait sleeps d unless the task is desired STOPPED meanwhile.
func (r *runner) wait(d time.Duration, stopped *bool) {
	if *stopped {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		if r.want() == "STOPPED" {
			*stopped = true
			return
		}
		select {
		case <-t.C:
			return
		case <-r.notify:
		}
	}
}

func (r *runner) run() {
	defer close(r.done)
	for r.want() == "" {
		<-r.notify
	}
	stopped := r.want() == "STOPPED"
	if !stopped {
		now := time.Now().UTC()
		r.send(agentapi.TaskReport{KnownStatus: "PENDING", PullStartedAt: &now, Containers: r.containerReports("PENDING", nil, "")})
		r.wait(r.sim.delays.Pull, &stopped)
		if !stopped && r.fail != "" {
			now := time.Now().UTC()
			reason := fmt.Sprintf("CannotPullContainerError: hollow node: injected failure pulling image %s", r.fail)
			r.send(agentapi.TaskReport{KnownStatus: "STOPPED", PullStoppedAt: &now, ExecutionStoppedAt: &now, StoppedAt: &now,
				StopCode: "TaskFailedToStart", StoppedReason: reason, Containers: r.containerReports("STOPPED", nil, reason)})
			return
		}
	}
	if !stopped {
		now := time.Now().UTC()
		r.send(agentapi.TaskReport{KnownStatus: "ACTIVATING", PullStoppedAt: &now, Containers: r.containerReports("PENDING", nil, "")})
		r.wait(r.sim.delays.Start, &stopped)
	}
	if !stopped {
		now := time.Now().UTC()
		tr := agentapi.TaskReport{KnownStatus: "RUNNING", StartedAt: &now, ConnectivityAt: &now, Containers: r.containerReports("RUNNING", nil, "")}
		if r.healthChecked {
			tr.HealthStatus = "HEALTHY"
		}
		r.send(tr)
		for r.want() != "STOPPED" {
			<-r.notify
		}
	}
	time.Sleep(r.sim.delays.Stop)
	now := time.Now().UTC()
	exit := int32(0)
	r.send(agentapi.TaskReport{KnownStatus: "STOPPED", ExecutionStoppedAt: &now, StoppedAt: &now, Containers: r.containerReports("STOPPED", &exit, "")})
}

// sharedHTTP is the hollow agents' client: one process holds many agents,
// each with a stream and report connections, so the idle pool must hold
// them all or every report dials anew.
var sharedHTTP = &http.Client{Transport: &http.Transport{
	MaxIdleConns:        8192,
	MaxIdleConnsPerHost: 8192,
	IdleConnTimeout:     90 * time.Second,
}}
