// Package taskrun runs ECS tasks on Docker for `berth agent`: one runner
// per task, a goroutine that moves the task's known status toward its
// desired status with ECS's semantics (image pulls, dependsOn, essential
// containers, health, stop order and timeouts, network modes), reports
// every change, and keeps the task metadata endpoint's view current.
//
// The decisions are pure functions (next, TaskHealth, stopCause) tested by
// tables; the runner applies them through internal/dockerdriver. The
// Runtime owns what runners share: the Docker event stream, the awsvpc
// network and its pause image, the metadata endpoint addresses, and
// re-attaching to the containers of a previous agent process (Adopt).
// docs/task-runner.md has the design.
package taskrun

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awslogs"
	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/metadata"
)

// Labels the runner adds to the containers it makes (besides the driver's).
const (
	// LabelMetadataToken carries the container's metadata endpoint token,
	// so a restarted agent serves the URL baked into its environment.
	LabelMetadataToken = "berth.metadata-token"
	// PauseContainerName is the task-definition-level name of an awsvpc
	// task's network namespace container (ECS's is "~internal~ecs~pause").
	PauseContainerName = "~internal~ecs~pause"
)

// Config configures a Runtime. Zero fields take the documented defaults.
type Config struct {
	Driver      *dockerdriver.Driver
	InstanceID  string
	InstanceARN string // labelled on containers (berth.instance); empty: InstanceID
	ClusterARN  string
	// PullBehavior is ECS_IMAGE_PULL_BEHAVIOR.
	PullBehavior dockerdriver.PullBehavior
	// DefaultStopTimeout is ECS_CONTAINER_STOP_TIMEOUT (default 30s).
	DefaultStopTimeout time.Duration
	// ContainerStartTimeout is ECS_CONTAINER_START_TIMEOUT: a dependency's
	// startTimeout when its definition has none (default 3m).
	ContainerStartTimeout time.Duration
	// Metadata is the task metadata endpoint; nil: containers get no
	// metadata URL.
	Metadata *metadata.Server
	// MetadataPort is the endpoint's port (default metadata.DefaultPort).
	MetadataPort int
	// MetadataURL overrides the URL base given to containers of a network
	// mode ("bridge", "host", "none", "awsvpc"); the runner appends
	// "/v4/<token>" (and "/v3/<token>"). Nil: the Docker bridge's gateway,
	// the berth-awsvpc gateway, or 127.0.0.1 in host mode.
	MetadataURL func(networkMode string) string
	// DNS, when set, answers the task containers' DNS queries (Cloud Map
	// namespaces, the rest forwarded): the runtime has it listen on port
	// 53 of the gateway of the container's network and gives containers
	// that address as their resolver (decision 15). Nil: Docker's default.
	DNS DNSListener
	// FargateRuntime is the OCI runtime of Fargate tasks' containers (a
	// sandboxed one that passed ProbeRuntime); empty: Docker's default.
	FargateRuntime string
	// AvailabilityZone is served by the metadata endpoint.
	AvailabilityZone string
	// AwsvpcNetwork and AwsvpcSubnet name the Docker bridge network awsvpc
	// tasks live on (default "berth-awsvpc", "10.213.0.0/16").
	AwsvpcNetwork string
	AwsvpcSubnet  string
	// CleanupWait is how long the stopped containers of a task are kept
	// before they are removed (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION,
	// default 3h).
	CleanupWait time.Duration
	// PollInterval is how often a runner re-inspects its containers
	// besides Docker events (default 1s while it changes, 10x that while
	// it is steadily RUNNING).
	PollInterval time.Duration
	// MaxConcurrentStarts bounds how many container creates and starts
	// this runtime asks Docker for at the same time, across all its
	// runners (0: unbounded). When a hundred tasks arrive at once, Docker
	// on a small host gets through them sooner a few at a time than all
	// at once (docs/benchmarks.md, "Tasks on Docker").
	MaxConcurrentStarts int
	// PausePool is how many network namespace (pause) containers are kept
	// started ahead of Fargate tasks (0: none); a Fargate awsvpc task
	// without Service Connect takes one instead of starting its own
	// (pausepool.go, docs/fargate.md "Start time").
	PausePool int
	// Labels are added to every container (tests mark theirs).
	Labels map[string]string
	// Logs ships the output of awslogs containers to CloudWatch Logs
	// (they run with Docker's json-file driver). Nil: a definition with
	// awslogs fails at create as an unsupported log driver.
	Logs *awslogs.Manager
	// LogDrainTimeout bounds how long a stopping task waits for its
	// containers' last output to be shipped before it reports STOPPED
	// (default 3s); shipping goes on after it.
	LogDrainTimeout time.Duration
	// ServiceConnect lets the runtime run Service Connect proxies; nil:
	// tasks with Service Connect fail.
	ServiceConnect *ServiceConnectConfig
	// Report receives the reports of runners made by Adopt (NewRunner's
	// caller passes its own).
	Report func(agentapi.TaskReport)
	Log    *slog.Logger
}

// Runtime makes task runners and feeds them Docker's events.
type Runtime struct {
	cfg    Config
	d      *dockerdriver.Driver
	log    *slog.Logger
	ctx    context.Context // ends at agent shutdown: containers keep running
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	runners map[string]*runner // by task ARN
	closed  bool

	netMu     sync.Mutex
	awsvpcGW  string // gateway of the awsvpc network, once ensured
	awsvpcNet string // its subnet
	bridgeGW  string
	pauseOK   bool

	sc        scRuntime  // Service Connect proxies (serviceconnect.go)
	scImageMu sync.Mutex // one proxy image build at a time

	// starts holds a token per create or start in flight; nil: unbounded.
	starts chan struct{}

	pool pausePool // pausepool.go

	// pauseStartHook, when set (tests), runs before a pause container's
	// start; an error fails the start.
	pauseStartHook func(ctx context.Context, id string) error
}

// New returns a Runtime. It does not contact Docker.
func New(cfg Config) (*Runtime, error) {
	if cfg.Driver == nil {
		return nil, errs.E(errs.Invalid, "taskrun: no Docker driver")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.InstanceARN == "" {
		cfg.InstanceARN = cfg.InstanceID
	}
	if cfg.PullBehavior == "" {
		cfg.PullBehavior = dockerdriver.PullDefault
	}
	if cfg.DefaultStopTimeout <= 0 {
		cfg.DefaultStopTimeout = dockerdriver.DefaultStopTimeout
	}
	if cfg.ContainerStartTimeout <= 0 {
		cfg.ContainerStartTimeout = 3 * time.Minute
	}
	if cfg.MetadataPort == 0 {
		cfg.MetadataPort = metadata.DefaultPort
	}
	if cfg.AwsvpcNetwork == "" {
		cfg.AwsvpcNetwork = "berth-awsvpc"
	}
	if cfg.AwsvpcSubnet == "" {
		cfg.AwsvpcSubnet = "10.213.0.0/16"
	}
	if cfg.CleanupWait <= 0 {
		cfg.CleanupWait = 3 * time.Hour
	}
	if cfg.LogDrainTimeout <= 0 {
		cfg.LogDrainTimeout = 3 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt := &Runtime{cfg: cfg, d: cfg.Driver, log: cfg.Log, ctx: ctx, cancel: cancel, runners: map[string]*runner{}}
	rt.pool.kick = make(chan struct{}, 1)
	if cfg.MaxConcurrentStarts > 0 {
		rt.starts = make(chan struct{}, cfg.MaxConcurrentStarts)
	}
	return rt, nil
}

// startSlot waits for a turn to create or start a container and returns
// its release; it gives up when ctx ends.
func (rt *Runtime) startSlot(ctx context.Context) (release func(), err error) {
	if rt.starts == nil {
		return func() {}, nil
	}
	select {
	case rt.starts <- struct{}{}:
		return func() { <-rt.starts }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close is the agent's shutdown: every runner stops watching, and every
// container is left as it is, to be re-attached by the next Adopt.
func (rt *Runtime) Close() {
	rt.mu.Lock()
	rt.closed = true
	rt.mu.Unlock()
	rt.cancel()
	rt.wg.Wait()
}

// NewRunner makes and starts the runner of a task (an agent.RunnerFactory).
func (rt *Runtime) NewRunner(a agentapi.Assignment, report func(agentapi.TaskReport)) agent.Runner {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if r, ok := rt.runners[a.TaskArn]; ok {
		return r
	}
	r := newRunner(rt, a.TaskArn, report)
	rt.runners[a.TaskArn] = r
	rt.startLocked(r)
	return r
}

func (rt *Runtime) startLocked(r *runner) {
	if rt.closed {
		close(r.exited)
		return
	}
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		r.run(rt.ctx)
		rt.mu.Lock()
		if rt.runners[r.arn] == r {
			delete(rt.runners, r.arn)
		}
		rt.mu.Unlock()
	}()
}

// Adopt re-attaches to the containers a previous agent process of this
// instance left: it lists the containers labelled with the instance,
// groups them by task, and returns a runner per task that watches them
// without restarting anything. A runner acts once the task's assignment
// arrives (the next sync); its reports go to Config.Report.
func (rt *Runtime) Adopt(ctx context.Context, instanceID string) (map[string]agent.Runner, error) {
	cs, err := rt.d.ListContainers(ctx, dockerdriver.ListOptions{All: true,
		Labels: map[string]string{dockerdriver.LabelInstance: "", dockerdriver.LabelManaged: "true"}})
	if err != nil {
		return nil, err
	}
	byTask := map[string][]dockerdriver.ContainerSummary{}
	for _, c := range cs {
		inst := c.Labels[dockerdriver.LabelInstance]
		if inst != instanceID && inst != rt.cfg.InstanceARN && !strings.HasSuffix(inst, "/"+instanceID) {
			continue
		}
		arn := c.Labels[dockerdriver.LabelTaskARN]
		if arn == "" {
			continue
		}
		byTask[arn] = append(byTask[arn], c)
	}
	out := map[string]agent.Runner{}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for arn, list := range byTask {
		if r, ok := rt.runners[arn]; ok {
			out[arn] = r
			continue
		}
		report := rt.cfg.Report
		if report == nil {
			report = func(agentapi.TaskReport) {}
		}
		r := newRunner(rt, arn, report)
		hasPause, netContainer := false, ""
		for _, c := range list {
			name := c.Labels[dockerdriver.LabelContainerName]
			hasPause = hasPause || name == PauseContainerName
			if id := c.Labels[LabelNetworkContainer]; id != "" {
				netContainer = id
			}
			r.adopted = append(r.adopted, adoptedContainer{name: name, id: c.ID, token: c.Labels[LabelMetadataToken]})
		}
		if !hasPause && netContainer != "" {
			// The task took a pool container (pausepool.go): it carries
			// no task label; its containers name it.
			r.adopted = append(r.adopted, adoptedContainer{name: PauseContainerName, id: netContainer})
		}
		rt.runners[arn] = r
		rt.startLocked(r)
		out[arn] = r
		rt.log.Info("re-attached to task", "task", arn, "containers", len(list))
	}
	return out, nil
}

// Run follows Docker's container events and wakes the runner of the task
// each one concerns, until ctx ends. When the stream breaks (Docker
// restarted) it reconnects from the last event's time and wakes every
// runner, which re-inspects its containers.
func (rt *Runtime) Run(ctx context.Context) error {
	poolDone := make(chan struct{})
	go func() { defer close(poolDone); rt.runPausePool(ctx) }()
	defer func() { <-poolDone }()
	var since time.Time
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		evs, errc := rt.d.Events(ctx, dockerdriver.EventOptions{Since: since,
			Actions: []string{dockerdriver.EventStart, dockerdriver.EventDie, dockerdriver.EventOOM, dockerdriver.EventHealthStatus},
			Labels:  map[string]string{dockerdriver.LabelManaged: "true"}})
		rt.wakeAll()
		got := false
		for ev := range evs {
			got = true
			if ev.Time.After(since) {
				since = ev.Time
			}
			if ev.Attributes[LabelPausePool] == "true" && ev.Action == dockerdriver.EventDie {
				rt.dropPause(ev.ContainerID)
			}
			rt.mu.Lock()
			r := rt.runners[ev.Attributes[dockerdriver.LabelTaskARN]]
			rt.mu.Unlock()
			if r != nil {
				r.poke()
			}
		}
		err := <-errc
		if ctx.Err() != nil {
			break
		}
		if got {
			backoff = 100 * time.Millisecond
		}
		rt.log.Warn("docker event stream ended; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

func (rt *Runtime) wakeAll() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, r := range rt.runners {
		r.poke()
	}
}

// metadataBase returns the metadata endpoint URL base for a network mode,
// starting a listener on the matching host address if needed. Empty: no
// endpoint.
func (rt *Runtime) metadataBase(ctx context.Context, mode string) string {
	if rt.cfg.MetadataURL != nil {
		return rt.cfg.MetadataURL(mode)
	}
	if rt.cfg.Metadata == nil {
		return ""
	}
	var host string
	switch mode {
	case "host", "none":
		host = "127.0.0.1"
	case "awsvpc":
		host = rt.awsvpcGateway()
	default:
		host = rt.bridgeGateway(ctx)
	}
	if host == "" {
		return ""
	}
	addr := net.JoinHostPort(host, strconv.Itoa(rt.cfg.MetadataPort))
	if err := rt.cfg.Metadata.Listen(addr); err != nil {
		rt.log.Warn("task metadata endpoint cannot listen", "addr", addr, "err", err)
		return ""
	}
	return "http://" + addr
}

// DNSListener is a DNS server that can listen on more addresses
// (cloudmap.DNSServer).
type DNSListener interface {
	Listen(addr string) error
}

// taskDNS returns the resolver address for containers of a network mode:
// the gateway of its network, where the DNS server is made to listen on
// port 53; nil when there is no task DNS, in host and none modes, or when
// it cannot listen (logged).
func (rt *Runtime) taskDNS(ctx context.Context, mode string) []netip.Addr {
	if rt.cfg.DNS == nil {
		return nil
	}
	var host string
	switch mode {
	case "host", "none":
		return nil
	case "awsvpc":
		host = rt.awsvpcGateway()
	default:
		host = rt.bridgeGateway(ctx)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil
	}
	if err := rt.cfg.DNS.Listen(net.JoinHostPort(host, "53")); err != nil {
		rt.log.Warn("task DNS cannot listen; containers use Docker's resolver", "addr", host, "err", err)
		return nil
	}
	return []netip.Addr{ip}
}

// bridgeGateway is the host's address on Docker's default bridge: the
// address of its interface (docker0), else the subnet's first address.
func (rt *Runtime) bridgeGateway(ctx context.Context) string {
	rt.netMu.Lock()
	defer rt.netMu.Unlock()
	if rt.bridgeGW != "" {
		return rt.bridgeGW
	}
	n, err := rt.d.InspectNetwork(ctx, "bridge")
	if err != nil {
		rt.log.Warn("inspect the docker bridge network", "err", err)
		return ""
	}
	gw := ""
	if len(n.Subnets) > 0 {
		gw = firstHost(n.Subnets[0])
	}
	if ifc, err := net.InterfaceByName("docker0"); err == nil {
		if addrs, err := ifc.Addrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
					gw = ipn.IP.String()
					break
				}
			}
		}
	}
	rt.bridgeGW = gw
	return gw
}

func (rt *Runtime) awsvpcGateway() string {
	rt.netMu.Lock()
	defer rt.netMu.Unlock()
	return rt.awsvpcGW
}
