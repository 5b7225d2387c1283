// Package cli is the `berth` command line: it parses subcommands and flags
// into typed configuration and runs them. main only maps errors to exit
// codes; everything else is here and testable.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/audit"
	"github.com/berthdev/berth/internal/console"
	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/ecs/instancemon"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/taskrun"
)

// Version is set at build time with -ldflags "-X .../cli.Version=...".
var Version = "dev"

// UsageError is a command-line mistake (exit code 2).
type UsageError struct{ msg string }

func (u UsageError) Error() string { return u.msg }

const usage = `berth: a self-hosted Amazon ECS

Usage:
  berth up       [flags]   everything on one machine (control plane, embedded store)
  berth server   [flags]   the control plane
  berth agent    [flags]   a node agent: joins a cluster and runs its tasks on Docker
  berth env      [flags]   print the shell exports for the AWS CLI and SDKs
  berth join-token [flags] make a token an agent joins a cluster with
  berth spot-interrupt [flags] interrupt a FARGATE_SPOT task (SIGTERM, then SpotInterruption)
  berth console  [flags]   print a one-time sign-in link for the web console
  berth bench [tasks|services|fargate|awslogs|alb|lbservice|dns|scproxy] [flags]  run the benchmarks that need a whole Berth
                           (API churn; "tasks": RunTask on Docker beside docker run and Swarm;
                           "fargate": RunTask FARGATE beside docker run;
                           "services": services on Docker beside Swarm, rolling bounds, recovery;
                           "alb": the load balancer data plane beside nginx, with wrk;
                           "lbservice": a service of 20 behind an ALB under load, rolling and a kill;
                           "dns": the Cloud Map DNS server beside nsd under dnsperf;
                           "scproxy": the Service Connect proxy beside nginx, with wrk)
  berth version            print the version

Run 'berth <command> -h' for a command's flags.
`

// Run runs the berth command line with args (without the program name).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return UsageError{"no command given"}
	}
	switch args[0] {
	case "up":
		return runServer(ctx, "up", args[1:], stdout, stderr)
	case "server":
		return runServer(ctx, "server", args[1:], stdout, stderr)
	case "env":
		return runEnv(args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "agent":
		return runAgent(ctx, args[1:], stdout, stderr)
	case "join-token":
		return runJoinToken(ctx, args[1:], stdout, stderr)
	case "spot-interrupt":
		return runSpotInterrupt(ctx, args[1:], stdout, stderr)
	case "console":
		return runConsole(args[1:], stdout, stderr)
	case "scproxy": // internal: the Service Connect proxy in a task's proxy container
		return runSCProxy(ctx, args[1:], stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "berth %s\n", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return UsageError{fmt.Sprintf("unknown command %q", args[0])}
}

// defaultDataDir is $BERTH_DATA_DIR, else ./.berth.
func defaultDataDir() string {
	if d := os.Getenv("BERTH_DATA_DIR"); d != "" {
		return d
	}
	return ".berth"
}

func envCredentials() iam.Credentials {
	return iam.Credentials{AccessKeyID: os.Getenv("BERTH_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("BERTH_SECRET_ACCESS_KEY")}
}

// DefaultDNSListen is where the Cloud Map DNS server listens unless
// --dns-listen says otherwise: loopback, on a port that needs no privilege.
const DefaultDNSListen = "127.0.0.1:8053"

type serverFlags struct {
	listen, dataDir, region, account, etcd, logLevel string
	throttle, agent                                  bool
	fargate                                          bool
	fargateRuntime                                   string
	capacityPool                                     string
	az, metadataAddr                                 string
	metricsListen                                    string
	dnsListen                                        string
	taskDNS                                          bool
	elbListenHost                                    string
	auditRetention, metricsPeriod                    time.Duration
	disconnectGrace, instanceLostAfter               time.Duration
	auditMaxBytes                                    int64
	tlsCert, tlsKey                                  string
	etcdCA, etcdCert, etcdKey                        string
	tlsNames                                         listFlag
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func (f *serverFlags) register(fs *flag.FlagSet, mode string) {
	fs.StringVar(&f.listen, "listen", daemon.DefaultListen, "address of the AWS API listener")
	fs.StringVar(&f.dataDir, "data-dir", defaultDataDir(), "data directory (store, credentials); env BERTH_DATA_DIR")
	fs.StringVar(&f.region, "region", envOr("BERTH_REGION", daemon.DefaultRegion), "region in ARNs; env BERTH_REGION")
	fs.StringVar(&f.account, "account-id", envOr("BERTH_ACCOUNT_ID", daemon.DefaultAccount), "12-digit account id in ARNs; env BERTH_ACCOUNT_ID")
	if mode == "server" {
		fs.StringVar(&f.etcd, "etcd-endpoints", "", "comma-separated external etcd endpoints; empty runs an embedded etcd")
		fs.StringVar(&f.etcdCA, "etcd-cacert", "", "CA bundle that verifies the external etcd's server certificates (as etcdctl --cacert)")
		fs.StringVar(&f.etcdCert, "etcd-cert", "", "client certificate for the external etcd (as etcdctl --cert)")
		fs.StringVar(&f.etcdKey, "etcd-key", "", "key of --etcd-cert (as etcdctl --key)")
	}
	fs.BoolVar(&f.throttle, "throttle", true, "apply ECS's request rate limits per access key")
	fs.DurationVar(&f.auditRetention, "audit-retention", 90*24*time.Hour, "how long audit records are kept")
	fs.Int64Var(&f.auditMaxBytes, "audit-max-bytes", audit.DefaultMaxBytes, "the most the audit trail may hold in the store, in bytes; the oldest records are deleted past it")
	fs.DurationVar(&f.metricsPeriod, "metrics-period", time.Minute, "how often the ECS metrics (AWS/ECS, ECS/ContainerInsights) are published; ECS's is 1m, shorter scales faster")
	fs.DurationVar(&f.disconnectGrace, "disconnect-grace", ecs.DefaultDisconnectGrace, "how long a container instance's agent may be disconnected before its service tasks are started elsewhere (the old ones keep running until the agent returns)")
	fs.DurationVar(&f.instanceLostAfter, "instance-lost-after", instancemon.DefaultLostAfter, "how long a container instance's agent may be disconnected before its tasks are written STOPPED (TerminationNotice); 0: never, as ECS (deregister the instance with --force instead)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.elbListenHost, "elb-listen-host", "127.0.0.1", "the address every ELBv2 load balancer listener listens on (docs/load-balancing.md)")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "also serve GET /metrics (Prometheus, no authentication) on this address; /metrics is always on --listen")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate (chain) the API port presents to HTTPS clients instead of the one Berth's CA issues; agents always get Berth's")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.Var(&f.tlsNames, "tls-name", "extra DNS name or IP address for the certificate Berth's CA issues (repeatable or comma-separated); it always covers localhost, the host name and the host's addresses")
	fs.StringVar(&f.dnsListen, "dns-listen", DefaultDNSListen, "UDP and TCP address of the Cloud Map DNS server (private DNS namespaces; other names go to the host's resolvers); empty: no DNS server")
	if mode == "up" {
		fs.BoolVar(&f.agent, "agent", true, "run a node agent in the cluster default (needs Docker Engine)")
		fs.BoolVar(&f.fargate, "fargate", true, "the local agent also offers Fargate capacity: FARGATE tasks of every cluster run on it (docs/fargate.md)")
		fs.StringVar(&f.fargateRuntime, "fargate-runtime", "", "sandboxed OCI runtime for Fargate tasks (runsc, kata-runtime), used if a probe container runs under it")
		fs.StringVar(&f.capacityPool, "capacity-pool", "", "the local agent joins this capacity pool, the Auto Scaling group of a capacity provider (docs/capacity-providers.md)")
		fs.StringVar(&f.az, "availability-zone", "", "the agent's ecs.availability-zone (default <region>a)")
		fs.StringVar(&f.metadataAddr, "metadata-addr", "0.0.0.0:51679", "the agent's task metadata endpoint address")
		fs.BoolVar(&f.taskDNS, "task-dns", true, "task containers resolve through the Cloud Map DNS server, which then also listens on port 53 of their networks' gateways (needs --dns-listen)")
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, UsageError{fmt.Sprintf("bad -log-level %q", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func runServer(ctx context.Context, mode string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("berth "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serverFlags
	f.register(fs, mode)
	if err := fs.Parse(args); err != nil {
		return UsageError{err.Error()}
	}
	if f.metricsPeriod < time.Second || f.metricsPeriod%time.Second != 0 {
		return UsageError{fmt.Sprintf("-metrics-period must be a whole number of seconds, at least 1s; got %s", f.metricsPeriod)}
	}
	if f.disconnectGrace <= 0 {
		return UsageError{fmt.Sprintf("-disconnect-grace must be positive; got %s", f.disconnectGrace)}
	}
	lostAfter := f.instanceLostAfter
	switch {
	case lostAfter == 0:
		lostAfter = -1 // never
	case lostAfter < f.disconnectGrace:
		return UsageError{fmt.Sprintf("-instance-lost-after must be 0 (never) or at least -disconnect-grace (%s); got %s", f.disconnectGrace, lostAfter)}
	}
	log, err := newLogger(f.logLevel, stderr)
	if err != nil {
		return err
	}
	var endpoints []string
	if f.etcd != "" {
		endpoints = strings.Split(f.etcd, ",")
	}
	cfg := daemon.Config{
		Listen:         f.listen,
		DataDir:        f.dataDir,
		EtcdEndpoints:  endpoints,
		EtcdTLS:        store.TLSFiles{CACert: f.etcdCA, Cert: f.etcdCert, Key: f.etcdKey},
		Region:         f.region,
		Account:        f.account,
		Credentials:    envCredentials(),
		Throttle:       f.throttle,
		AuditRetention: f.auditRetention,
		AuditMaxBytes:  f.auditMaxBytes,
		MetricsListen:  f.metricsListen,
		ELBListenHost:  f.elbListenHost,
		MetricsPeriod:  f.metricsPeriod,
		TLSCertFile:    f.tlsCert,
		TLSKeyFile:     f.tlsKey,
		TLSNames:       f.tlsNames,
		DNSListen:      f.dnsListen,
		Log:            log,

		DisconnectGrace:   f.disconnectGrace,
		InstanceLostAfter: lostAfter,
	}
	srv, err := daemon.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	creds, created := srv.RootCredentials()
	if created {
		fmt.Fprintf(stdout, "Created the root access key pair (shown once; kept in %s):\n  AWS_ACCESS_KEY_ID=%s\n  AWS_SECRET_ACCESS_KEY=%s\n",
			filepath.Join(cfg.DataDir, iam.RootKeyFile), creds.AccessKeyID, creds.SecretAccessKey)
	}
	fmt.Fprintf(stdout, "Berth is up at %s (region %s). Point the AWS CLI at it with:\n  eval \"$(%s env --data-dir %s --endpoint %s)\"\n",
		srv.Endpoint(), cfg.Region, os.Args[0], cfg.DataDir, srv.Endpoint())
	// The console's sign-in link: one use, valid console.TokenTTL; berth
	// console prints a fresh one.
	fmt.Fprintf(stdout, "Web console (one-time sign-in link, valid %s; `berth console` makes another):\n  %s\n",
		console.TokenTTL, console.SignInURL(srv.Endpoint(), console.MintToken(creds.AccessKeyID, creds.SecretAccessKey, time.Now(), console.TokenTTL)))
	fmt.Fprintf(stdout, "HTTPS on the same port: %s (CA bundle %s, pin %s)\n",
		srv.HTTPSEndpoint(), filepath.Join(cfg.DataDir, "tls", "ca.crt"), srv.CAPin())
	if a := srv.DNSAddr(); a != "" {
		fmt.Fprintf(stdout, "Cloud Map DNS (private DNS namespaces) answers on %s (udp and tcp)\n", a)
	}
	var ag *daemon.Agent
	if mode == "up" && f.agent {
		ag, err = startLocalAgent(ctx, srv, f, log)
		if err != nil {
			ag = nil
			log.Warn("no agent: tasks cannot run until Docker Engine answers and berth up restarts", "err", err)
			fmt.Fprintf(stderr, "berth: warning: the local agent did not start: %v\n", err)
		} else {
			defer ag.Close()
			fmt.Fprintf(stdout, "Agent joined cluster %s as %s\n", ag.State().Cluster, ag.State().ContainerInstanceArn)
			if fg := ag.Fargate(); fg != "" {
				fmt.Fprintf(stdout, "Fargate capacity for every cluster: %s\n", fg)
			}
		}
	}
	<-ctx.Done()
	log.Info("shutting down")
	// The agent first (its tasks keep running), so that it does not retry
	// against a server that is going away.
	if ag != nil {
		ag.Close() //nolint:errcheck // it logged why it stopped, if it did
	}
	return srv.Close()
}

// startLocalAgent runs berth up's agent in the cluster "default".
func startLocalAgent(ctx context.Context, srv *daemon.Server, f serverFlags, log *slog.Logger) (*daemon.Agent, error) {
	behavior, err := dockerdriver.ParsePullBehavior(envOr("ECS_IMAGE_PULL_BEHAVIOR", "default"))
	if err != nil {
		return nil, err
	}
	tok, err := srv.JoinToken(ctx, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	return daemon.StartAgent(ctx, daemon.AgentConfig{
		// Over TLS to its own server's CA, so that it works whatever
		// --listen says (a wildcard or another interface).
		Endpoint:            srv.AgentEndpoint(),
		CACert:              srv.CACertPEM(),
		Region:              srv.Config().Region,
		DataDir:             filepath.Join(f.dataDir, "agent"),
		JoinToken:           tok,
		AvailabilityZone:    f.az,
		PullBehavior:        behavior,
		StopTimeout:         envDuration("ECS_CONTAINER_STOP_TIMEOUT", 30*time.Second),
		MetadataAddr:        f.metadataAddr,
		MaxConcurrentStarts: envInt("BERTH_MAX_CONCURRENT_STARTS", 0),
		TaskDNS:             taskDNS(srv, f.taskDNS),
		// The agent reports at least once per metrics period.
		StatsInterval:       min(5*time.Second, f.metricsPeriod),
		StatsReportInterval: min(agentapi.StatsInterval, f.metricsPeriod),
		Fargate:             f.fargate,
		FargateRuntime:      f.fargateRuntime,
		CapacityPool:        f.capacityPool,
		Version:             Version,
		Log:                 log,
	})
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}

func envDuration(k string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(k)); err == nil && d > 0 {
		return d
	}
	return def
}

type attrFlag map[string]string

func (a attrFlag) String() string { return fmt.Sprint(map[string]string(a)) }
func (a attrFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("attributes are name=value, got %q", v)
	}
	a[k] = val
	return nil
}

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("berth agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", envOr("BERTH_ENDPOINT", "http://"+daemon.DefaultListen), "control plane URL; env BERTH_ENDPOINT")
	region := fs.String("region", envOr("BERTH_REGION", daemon.DefaultRegion), "region")
	dataDir := fs.String("data-dir", envOr("BERTH_AGENT_DATA_DIR", ".berth-agent"), "agent state directory")
	token := fs.String("join-token", os.Getenv("BERTH_JOIN_TOKEN"), "join token (first start only); env BERTH_JOIN_TOKEN")
	cluster := fs.String("cluster", "", "cluster to join (default: the join token's cluster, or default)")
	az := fs.String("availability-zone", "", "the ecs.availability-zone attribute (default <region>a)")
	itype := fs.String("instance-type", "", "the ecs.instance-type attribute")
	pull := fs.String("image-pull-behavior", envOr("ECS_IMAGE_PULL_BEHAVIOR", "default"), "default, always, once or prefer-cached; env ECS_IMAGE_PULL_BEHAVIOR")
	stopTimeout := fs.Duration("stop-timeout", envDuration("ECS_CONTAINER_STOP_TIMEOUT", 30*time.Second), "default container stop timeout; env ECS_CONTAINER_STOP_TIMEOUT")
	mdAddr := fs.String("metadata-addr", "0.0.0.0:51679", "task metadata endpoint address")
	maxStarts := fs.Int("max-concurrent-starts", envInt("BERTH_MAX_CONCURRENT_STARTS", 0),
		"container creates and starts asked of Docker at once (0: the default, -1: unbounded); env BERTH_MAX_CONCURRENT_STARTS")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fargate := fs.Bool("fargate", false, "offer Fargate capacity: without --cluster the agent joins the hidden Fargate pool (no cluster lists it); with --cluster it is that cluster's EC2 capacity too (docs/fargate.md)")
	fargateRuntime := fs.String("fargate-runtime", "", "sandboxed OCI runtime for Fargate tasks (runsc, kata-runtime), used if a probe container runs under it")
	pool := fs.String("capacity-pool", "", "join this capacity pool: the Auto Scaling group of the capacity provider whose autoScalingGroupArn ends autoScalingGroupName/<pool> (docs/capacity-providers.md)")
	attrs := attrFlag{}
	fs.Var(attrs, "attribute", "custom attribute name=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return UsageError{err.Error()}
	}
	behavior, err := dockerdriver.ParsePullBehavior(*pull)
	if err != nil {
		return UsageError{err.Error()}
	}
	log, err := newLogger(*logLevel, stderr)
	if err != nil {
		return err
	}
	ag, err := daemon.StartAgent(ctx, daemon.AgentConfig{
		Endpoint: *endpoint, Region: *region, DataDir: *dataDir, JoinToken: *token, Cluster: *cluster,
		AvailabilityZone: *az, InstanceType: *itype, Attributes: attrs, PullBehavior: behavior,
		StopTimeout: *stopTimeout, MetadataAddr: *mdAddr, MaxConcurrentStarts: *maxStarts, Version: Version, Log: log,
		Fargate: *fargate, FargateOnly: *fargate, FargateRuntime: *fargateRuntime, CapacityPool: *pool,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Agent joined cluster %s as %s\n", ag.State().Cluster, ag.State().ContainerInstanceArn)
	if fg := ag.Fargate(); fg != "" {
		fmt.Fprintf(stdout, "Fargate capacity: %s\n", fg)
	}
	select {
	case <-ctx.Done():
	case <-ag.Stopped(): // refused by the control plane: exit with its reason
	}
	return ag.Close()
}

func runEnv(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("berth env", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", defaultDataDir(), "data directory of the server")
	endpoint := fs.String("endpoint", "http://"+daemon.DefaultListen, "the server's URL")
	region := fs.String("region", envOr("BERTH_REGION", daemon.DefaultRegion), "region")
	https := fs.Bool("https", false, "use HTTPS: the endpoint's scheme becomes https and AWS_CA_BUNDLE names the server's CA (<data-dir>/tls/ca.crt)")
	if err := fs.Parse(args); err != nil {
		return UsageError{err.Error()}
	}
	creds := envCredentials()
	if creds.AccessKeyID == "" {
		c, err := iam.LoadRoot(*dataDir)
		if err != nil {
			return fmt.Errorf("%w: start berth first, or set BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY", err)
		}
		creds = c
	}
	if *https {
		ca, err := filepath.Abs(filepath.Join(*dataDir, "tls", "ca.crt"))
		if err != nil {
			return err
		}
		if _, err := os.Stat(ca); err != nil {
			return fmt.Errorf("no CA bundle: %w (start berth first)", err)
		}
		*endpoint = "https://" + strings.TrimPrefix(*endpoint, "http://")
		fmt.Fprintf(stdout, "export AWS_CA_BUNDLE=%s\n", ca)
	}
	fmt.Fprintf(stdout, "export AWS_ACCESS_KEY_ID=%s\n", creds.AccessKeyID)
	fmt.Fprintf(stdout, "export AWS_SECRET_ACCESS_KEY=%s\n", creds.SecretAccessKey)
	fmt.Fprintf(stdout, "export AWS_REGION=%s\n", *region)
	fmt.Fprintf(stdout, "export AWS_DEFAULT_REGION=%s\n", *region)
	fmt.Fprintf(stdout, "export AWS_ENDPOINT_URL=%s\n", *endpoint)
	fmt.Fprintln(stdout, "unset AWS_SESSION_TOKEN AWS_PROFILE")
	return nil
}

// runConsole prints a one-time sign-in link for the web console, minted
// with the root credentials of a data dir (or BERTH_ACCESS_KEY_ID and
// BERTH_SECRET_ACCESS_KEY): no call to the server is needed.
func runConsole(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("berth console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", defaultDataDir(), "data directory of the server (its root credentials sign the link)")
	endpoint := fs.String("endpoint", "http://"+daemon.DefaultListen, "the server's URL")
	ttl := fs.Duration("ttl", console.TokenTTL, "how long the link can be used (once)")
	if err := fs.Parse(args); err != nil {
		return UsageError{err.Error()}
	}
	if *ttl <= 0 || *ttl > time.Hour {
		return UsageError{fmt.Sprintf("-ttl must be between 1s and 1h, got %s", *ttl)}
	}
	creds := envCredentials()
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		c, err := iam.LoadRoot(*dataDir)
		if err != nil {
			return fmt.Errorf("%w: start berth first, or set BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY", err)
		}
		creds = c
	}
	fmt.Fprintln(stdout, console.SignInURL(*endpoint, console.MintToken(creds.AccessKeyID, creds.SecretAccessKey, time.Now(), *ttl)))
	return nil
}

func runJoinToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("berth join-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", defaultDataDir(), "data directory of the server (for its root credentials)")
	endpoint := fs.String("endpoint", "http://"+daemon.DefaultListen, "the server's URL")
	region := fs.String("region", envOr("BERTH_REGION", daemon.DefaultRegion), "region")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	cluster := fs.String("cluster", "", "bind the token to this cluster: an agent joining with it lands there and may not ask for another")
	singleUse := fs.Bool("single-use", false, "the token is good for one join only")
	caBundle := fs.String("ca-bundle", "", "CA bundle to verify an https --endpoint (default <data-dir>/tls/ca.crt)")
	if err := fs.Parse(args); err != nil {
		return UsageError{err.Error()}
	}
	creds := envCredentials()
	if creds.AccessKeyID == "" {
		c, err := iam.LoadRoot(*dataDir)
		if err != nil {
			return fmt.Errorf("%w: set BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY, or run on the server with --data-dir", err)
		}
		creds = c
	}
	hc, err := httpsClient(*endpoint, *caBundle, filepath.Join(*dataDir, "tls", "ca.crt"))
	if err != nil {
		return err
	}
	tok, err := agentgw.AdminClient{Endpoint: *endpoint, Region: *region, AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, HTTP: hc}.
		CreateJoinToken(ctx, agentgw.JoinTokenRequest{TTLSeconds: int(*ttl / time.Second), Cluster: *cluster, SingleUse: *singleUse})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok.Token)
	return nil
}

// runSpotInterrupt interrupts a FARGATE_SPOT task as AWS reclaims Spot
// capacity (docs/fargate.md).
func runSpotInterrupt(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("berth spot-interrupt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", defaultDataDir(), "data directory of the server (for its root credentials)")
	endpoint := fs.String("endpoint", "http://"+daemon.DefaultListen, "the server's URL")
	region := fs.String("region", envOr("BERTH_REGION", daemon.DefaultRegion), "region")
	cluster := fs.String("cluster", "", "the task's cluster (default: default)")
	task := fs.String("task", "", "the FARGATE_SPOT task (ARN or id)")
	warning := fs.Duration("warning", 2*time.Minute, "time between SIGTERM and SIGKILL (AWS gives two minutes)")
	caBundle := fs.String("ca-bundle", "", "CA bundle to verify an https --endpoint (default <data-dir>/tls/ca.crt)")
	if err := fs.Parse(args); err != nil {
		return UsageError{err.Error()}
	}
	if *task == "" {
		return UsageError{"--task is required"}
	}
	if *warning < time.Second {
		return UsageError{"--warning must be at least 1s"}
	}
	creds := envCredentials()
	if creds.AccessKeyID == "" {
		c, err := iam.LoadRoot(*dataDir)
		if err != nil {
			return fmt.Errorf("%w: set BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY, or run on the server with --data-dir", err)
		}
		creds = c
	}
	hc, err := httpsClient(*endpoint, *caBundle, filepath.Join(*dataDir, "tls", "ca.crt"))
	if err != nil {
		return err
	}
	out, err := agentgw.AdminClient{Endpoint: *endpoint, Region: *region, AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, HTTP: hc}.
		InterruptSpotTask(ctx, agentgw.SpotInterruptionRequest{Cluster: *cluster, Task: *task, WarningSeconds: int(*warning / time.Second)})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s interrupted: SIGTERM now, stopped within %s (stopCode SpotInterruption)\n", out.TaskArn, *warning)
	return nil
}

// httpsClient returns a client trusting caBundle (or fallback when it
// exists) for an https endpoint; nil (the default client) otherwise.
func httpsClient(endpoint, caBundle, fallback string) (*http.Client, error) {
	if !strings.HasPrefix(endpoint, "https://") {
		return nil, nil
	}
	path := caBundle
	if path == "" {
		if _, err := os.Stat(fallback); err != nil {
			return nil, nil // the system's roots (an operator's certificate)
		}
		path = fallback
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", path)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: time.Minute}, nil
}

func taskDNS(srv *daemon.Server, on bool) taskrun.DNSListener {
	if !on {
		return nil
	}
	return srv.TaskDNS()
}
