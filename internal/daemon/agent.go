package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/awslogs"
	"github.com/berthdev/berth/internal/capacityprovider"
	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/metadata"
	"github.com/berthdev/berth/internal/taskrun"
	"github.com/berthdev/berth/internal/taskstats"
)

// AgentConfig configures a node agent (`berth agent`, and the one inside
// `berth up`).
type AgentConfig struct {
	Endpoint  string // control plane URL
	Region    string
	DataDir   string // agent state (identity, stream position)
	JoinToken string // first start only
	// CACert is the control plane's CA (PEM), for an agent started with
	// its server (berth up); others pin the CA from the join token.
	CACert           []byte
	Cluster          string // default "default"
	AvailabilityZone string
	InstanceType     string
	Attributes       map[string]string // custom attributes
	DockerHost       string            // default: environment / unix socket
	PullBehavior     dockerdriver.PullBehavior
	StopTimeout      time.Duration // ECS_CONTAINER_STOP_TIMEOUT; default 30s
	// MaxConcurrentStarts bounds the container creates and starts the
	// agent asks Docker for at once (taskrun.Config); 0: DefaultMaxConcurrentStarts,
	// negative: unbounded.
	MaxConcurrentStarts int
	// MetadataAddr is where the task metadata endpoint listens
	// ("0.0.0.0:51679" by default: reachable from every bridge network).
	MetadataAddr string
	// TaskDNS, when set, is the DNS server task containers resolve through
	// (berth up: the control plane's Cloud Map DNS; decision 15).
	TaskDNS taskrun.DNSListener
	// StatsInterval is how often the agent samples its containers' Docker
	// stats (default 5s) and StatsReportInterval how often it sends its
	// tasks' usage to the control plane (default agentapi.StatsInterval).
	StatsInterval       time.Duration
	StatsReportInterval time.Duration
	// Fargate makes the agent offer Fargate capacity (the instance
	// attribute ecs.FargateCapability; docs/fargate.md). With Cluster
	// empty and FargateOnly, the agent joins the hidden Fargate pool
	// instead of a cluster.
	Fargate     bool
	FargateOnly bool
	// FargateRuntime names a sandboxed OCI runtime (runsc, kata-runtime)
	// for Fargate tasks. The agent tries it once at start; if it does not
	// work, Fargate tasks use Docker's default runtime and the agent says
	// why (decision 20).
	FargateRuntime string
	// CapacityPool puts the instance in a capacity pool: the Auto Scaling
	// group of the capacity provider whose autoScalingGroupArn names it
	// (the attribute capacityprovider.PoolAttribute;
	// docs/capacity-providers.md).
	CapacityPool string
	Version      string
	Log          *slog.Logger
}

// DefaultMaxConcurrentStarts is how many container creates and starts an
// agent runs at once unless told otherwise: docs/benchmarks.md, "Tasks on
// Docker", has the measurements it comes from.
const DefaultMaxConcurrentStarts = 0

func maxStarts(n int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return DefaultMaxConcurrentStarts
	}
	return n
}

// Capabilities this agent's runtime supports; task definitions whose
// requiresAttributes ask for anything else are not placed on it.
func agentCapabilities() []string {
	caps := []string{
		"com.amazonaws.ecs.capability.logging-driver.awslogs",
		"com.amazonaws.ecs.capability.logging-driver.json-file",
		"com.amazonaws.ecs.capability.logging-driver.none",
		"com.amazonaws.ecs.capability.privileged-container",
		"ecs.capability.container-health-check",
		"ecs.capability.container-ordering",
		"ecs.capability.task-eni",
		"ecs.capability.service-connect-v1",
		"ecs.capability.docker-plugin.local",
		// awslogs is done by the agent itself (internal/awslogs): no
		// execution role is needed for it to reach CloudWatch Logs.
		"ecs.capability.execution-role-awslogs",
	}
	for v := 17; v <= 41; v++ {
		caps = append(caps, fmt.Sprintf("com.amazonaws.ecs.capability.docker-remote-api.1.%d", v))
	}
	return caps
}

// Agent is a running node agent.
type Agent struct {
	shell   *agent.Agent
	rt      *taskrun.Runtime
	logs    *awslogs.Manager
	md      *metadata.Server
	driver  *dockerdriver.Driver
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closing sync.Once
	runErr  error
	stopped chan struct{} // closed when the agent shell's Run returns
	// fargate describes the agent's Fargate capacity for `berth up`'s
	// banner; empty when it offers none.
	fargate string
}

// StartAgent connects to Docker, joins (or re-joins) the cluster and runs
// the agent until Close. Stopping the agent leaves tasks running.
func StartAgent(ctx context.Context, cfg AgentConfig) (_ *Agent, err error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if _, err := agent.CheckEndpoint(cfg.Endpoint); err != nil {
		return nil, err
	}
	driver, err := dockerdriver.New(dockerdriver.Config{Host: cfg.DockerHost, Logger: log.With("component", "docker")})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			driver.Close()
		}
	}()
	// Docker may still be starting: wait for it a little.
	var info dockerdriver.HostInfo
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err = driver.Info(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("Docker Engine is not answering: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if cfg.AvailabilityZone == "" {
		cfg.AvailabilityZone = cfg.Region + "a"
	}
	hostname, _ := os.Hostname()
	arch := runtime.GOARCH
	if arch == "amd64" {
		arch = "x86_64"
	}
	caps := agentCapabilities()
	attrs := maps.Clone(cfg.Attributes)
	if cfg.CapacityPool != "" {
		if !capacityprovider.PoolNameOK(cfg.CapacityPool) {
			return nil, fmt.Errorf("capacity pool %q: a pool name is 1 to 255 printable characters", cfg.CapacityPool)
		}
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs[capacityprovider.PoolAttribute] = cfg.CapacityPool
	}
	fargateRuntime := ""
	if cfg.Fargate {
		caps = append(caps, ecs.FargateCapability)
		if attrs == nil {
			attrs = map[string]string{}
		}
		fargateRuntime = fargateSandbox(ctx, driver, info, cfg.FargateRuntime, attrs, log)
		if cfg.FargateOnly && cfg.Cluster == "" {
			cfg.Cluster = ecs.FargatePool
		}
	}
	var rt *taskrun.Runtime
	shell, err := agent.New(ctx, agent.Config{
		Endpoint:  cfg.Endpoint,
		Region:    cfg.Region,
		StateDir:  cfg.DataDir,
		JoinToken: cfg.JoinToken,
		CACert:    cfg.CACert,
		Join: agentapi.JoinRequest{
			Cluster:          cfg.Cluster,
			Hostname:         hostname,
			AvailabilityZone: cfg.AvailabilityZone,
			InstanceType:     cfg.InstanceType,
			Attributes:       attrs,
			Resources: agentapi.Resources{
				CPU:           info.CPUs * 1024,
				MemoryMiB:     int(info.MemoryBytes >> 20),
				ReservedPorts: []int{22, 2375, 2376, 51678, 51679},
				OSType:        "linux",
				CPUArch:       arch,
				Capabilities:  caps,
			},
			VersionInfo: agentapi.VersionInfo{AgentVersion: cfg.Version, DockerVersion: "DockerVersion: " + info.ServerVersion},
		},
		NewRunner: func(a agentapi.Assignment, report func(agentapi.TaskReport)) agent.Runner {
			return rt.NewRunner(a, report)
		},
		Adopt: func(ctx context.Context, id string) (map[string]agent.Runner, error) { return rt.Adopt(ctx, id) },
		Log:   log.With("component", "agent"),
	})
	if err != nil {
		return nil, err
	}
	st := shell.State()
	var md *metadata.Server
	stats := taskstats.New(taskstats.Config{Sampler: driver, Tasks: func() []metadata.Task { return md.Tasks() },
		Interval: cfg.StatsInterval, Log: log.With("component", "stats")})
	md = metadata.New(stats.Stats, log.With("component", "metadata"))
	addr := cfg.MetadataAddr
	if addr == "" {
		addr = "0.0.0.0:51679"
	}
	if err := md.Listen(addr); err != nil {
		return nil, fmt.Errorf("task metadata endpoint: %w", err)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		md.Close()
		return nil, fmt.Errorf("task metadata address %q: %w", addr, err)
	}
	mdPort, _ := strconv.Atoi(port)
	// The awslogs log driver: the agent ships its containers' output over
	// its own authenticated channel (docs/awslogs.md).
	logs, err := awslogs.NewManager(awslogs.Config{
		Source: awslogs.DockerSource(driver),
		Sink: &agentapi.Client{Endpoint: cfg.Endpoint, Region: cmp.Or(st.Region, cfg.Region), AccessKeyID: st.AccessKeyID,
			SecretAccessKey: st.SecretAccessKey, HTTP: &http.Client{Transport: shell.HTTPClient().Transport, Timeout: 30 * time.Second}},
		Dir: filepath.Join(cfg.DataDir, "awslogs"),
		Log: log.With("component", "awslogs"),
	})
	if err != nil {
		md.Close()
		return nil, err
	}
	// Service Connect: directory streams over the agent's channel, without
	// an overall timeout (docs/service-connect.md, "Data plane").
	scClient := &agentapi.Client{Endpoint: cfg.Endpoint, Region: cmp.Or(st.Region, cfg.Region), AccessKeyID: st.AccessKeyID,
		SecretAccessKey: st.SecretAccessKey, HTTP: &http.Client{Transport: shell.HTTPClient().Transport}}
	rt, err = taskrun.New(taskrun.Config{
		Driver:              driver,
		InstanceID:          st.InstanceID,
		InstanceARN:         st.ContainerInstanceArn,
		ClusterARN:          clusterARNOf(st.ContainerInstanceArn, st.Cluster),
		PullBehavior:        cfg.PullBehavior,
		DefaultStopTimeout:  cfg.StopTimeout,
		MaxConcurrentStarts: maxStarts(cfg.MaxConcurrentStarts),
		Metadata:            md,
		MetadataPort:        mdPort,
		Logs:                logs,
		AvailabilityZone:    cfg.AvailabilityZone,
		FargateRuntime:      fargateRuntime,
		PausePool:           pausePool(cfg.Fargate),
		DNS:                 cfg.TaskDNS,
		ServiceConnect: &taskrun.ServiceConnectConfig{Version: cfg.Version,
			Directory: taskrun.NewDirectoryHub(scClient.ServiceConnect, log.With("component", "serviceconnect"))},
		Report: shell.Report,
		Log:    log.With("component", "taskrun"),
	})
	if err != nil {
		logs.Close()
		md.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a := &Agent{shell: shell, rt: rt, logs: logs, md: md, driver: driver, cancel: cancel, stopped: make(chan struct{})}
	if cfg.Fargate {
		a.fargate = "Fargate tasks run under " + attrs[AttrFargateRuntime]
		if sb := attrs[AttrSandboxRuntimes]; sb != "" {
			a.fargate += " (sandboxed runtimes Docker has: " + sb + ")"
		} else {
			a.fargate += " (Docker has no sandboxed runtime: runsc or kata)"
		}
	}
	report := cfg.StatsReportInterval
	if report <= 0 {
		report = agentapi.StatsInterval
	}
	a.wg.Add(4)
	go func() {
		defer a.wg.Done()
		_ = stats.Run(runCtx)
	}()
	go func() {
		defer a.wg.Done()
		sendStats(runCtx, shell, stats, rt, report, log)
	}()
	go func() {
		defer a.wg.Done()
		if err := rt.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("task runtime stopped", "err", err)
		}
	}()
	go func() {
		defer a.wg.Done()
		a.runErr = shell.Run(runCtx)
		if a.runErr != nil {
			log.Error("agent stopped", "err", a.runErr)
		}
		close(a.stopped)
	}()
	return a, nil
}

// Instance attributes a Fargate agent reports (docs/fargate.md).
const (
	// AttrSandboxRuntimes lists the sandboxed OCI runtimes Docker has
	// configured (runsc, kata...), used or not.
	AttrSandboxRuntimes = "berth.sandbox-runtimes"
	// AttrFargateRuntime is the runtime Fargate tasks run under: the
	// sandbox asked for when it works, else runc.
	AttrFargateRuntime = "berth.fargate-runtime"
)

// fargateSandbox reports Docker's sandboxed runtimes in attrs and returns
// the runtime Fargate tasks use: want when it is configured and a probe
// container runs under it, else "" (Docker's default).
func fargateSandbox(ctx context.Context, d *dockerdriver.Driver, info dockerdriver.HostInfo, want string, attrs map[string]string, log *slog.Logger) string {
	if sb := taskrun.SandboxRuntimes(info.Runtimes); len(sb) > 0 {
		attrs[AttrSandboxRuntimes] = strings.Join(sb, ",")
	}
	attrs[AttrFargateRuntime] = "runc"
	if want == "" {
		return ""
	}
	if !slices.Contains(info.Runtimes, want) {
		log.Warn("the Fargate sandbox runtime is not configured in Docker; Fargate tasks run under runc", "runtime", want, "configured", info.Runtimes)
		return ""
	}
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := taskrun.ProbeRuntime(pctx, d, want); err != nil {
		log.Warn("the Fargate sandbox runtime does not work on this host; Fargate tasks run under runc", "runtime", want, "err", err)
		return ""
	}
	log.Info("Fargate tasks run under a sandboxed runtime", "runtime", want)
	attrs[AttrFargateRuntime] = want
	return want
}

// sendStats sends the tasks' usage to the control plane every interval
// until ctx ends. A failed send is not retried: the next one carries
// fresher figures.
func sendStats(ctx context.Context, shell *agent.Agent, c *taskstats.Collector, rt *taskrun.Runtime, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		u := c.Usage()
		if len(u) == 0 {
			continue
		}
		// Service Connect proxies' traffic since the previous report.
		if sc := rt.ServiceConnectTraffic(ctx); len(sc) > 0 {
			for i := range u {
				if t, ok := sc[u[i].TaskArn]; ok {
					u[i].ServiceConnect = &t
				}
			}
		}
		sctx, cancel := context.WithTimeout(ctx, every)
		err := shell.SendStats(sctx, agentapi.StatsReport{Tasks: u})
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			log.Warn("task usage not sent to the control plane", "err", err)
		case err == nil && failing:
			failing = false
			log.Info("task usage sent to the control plane again")
		}
	}
}

// clusterARNOf derives the cluster ARN from a container instance ARN
// (arn:aws:ecs:r:a:container-instance/<cluster>/<id>).
func clusterARNOf(instanceARN, cluster string) string {
	i := strings.Index(instanceARN, ":container-instance/")
	if i < 0 {
		return ""
	}
	return instanceARN[:i] + ":cluster/" + cluster
}

// Fargate describes the agent's Fargate capacity and the runtime its
// Fargate tasks use; empty when it offers none.
func (a *Agent) Fargate() string { return a.fargate }

// State returns the agent's identity.
func (a *Agent) State() agent.State { return a.shell.State() }

// Ready is closed once the agent has its first assignment sync.
func (a *Agent) Ready() <-chan struct{} { return a.shell.Ready() }

// Stopped is closed when the agent stops by itself (the control plane
// refused it: its instance was deregistered) or after Close; Close then
// returns why.
func (a *Agent) Stopped() <-chan struct{} { return a.stopped }

// Close stops the agent, leaving its tasks' containers running.
func (a *Agent) Close() error {
	a.closing.Do(func() {
		a.cancel()
		a.wg.Wait()
		a.rt.Close()
		a.logs.Close()
		a.md.Close()
		a.driver.Close()
	})
	return a.runErr
}

// pausePool is how many network namespace containers an agent keeps
// started ahead of Fargate tasks: taskrun.DefaultPausePool on a Fargate
// host, none otherwise (docs/fargate.md, "Start time").
func pausePool(fargate bool) int {
	if fargate {
		return taskrun.DefaultPausePool
	}
	return 0
}
