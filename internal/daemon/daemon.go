// Package daemon is Berth's composition root: the only package that sees
// every subsystem. It opens the store, loads identities, builds the AWS
// services and the front door, and runs the HTTP listener and the
// background loops. `berth up` and `berth server` are thin shells over it;
// tests start it in-process.
package daemon

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/alb"
	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/audit"
	"github.com/berthdev/berth/internal/autoscaling"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/cloudmap"
	"github.com/berthdev/berth/internal/cloudtrail"
	"github.com/berthdev/berth/internal/cloudwatch"
	"github.com/berthdev/berth/internal/console"
	"github.com/berthdev/berth/internal/ecr"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/ecs/instancemon"
	"github.com/berthdev/berth/internal/ecs/servicectl"
	"github.com/berthdev/berth/internal/ecs/taskgc"
	"github.com/berthdev/berth/internal/ecsmetrics"
	"github.com/berthdev/berth/internal/elbv2"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/events"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/logs"
	"github.com/berthdev/berth/internal/logstore"
	"github.com/berthdev/berth/internal/registry"
	"github.com/berthdev/berth/internal/scdirectory"
	"github.com/berthdev/berth/internal/seal"
	"github.com/berthdev/berth/internal/sigv4"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/sts"
	"github.com/berthdev/berth/internal/taskrun"
	"github.com/berthdev/berth/internal/telemetry"
	"github.com/berthdev/berth/internal/throttle"
	"github.com/berthdev/berth/internal/tlsca"
	"github.com/berthdev/berth/internal/tsdb"
)

// Defaults of Config.
const (
	DefaultListen  = "127.0.0.1:4566"
	DefaultRegion  = "us-east-1"
	DefaultAccount = "000000000000"
)

// Config configures a Berth control plane. It is not changed after Start.
type Config struct {
	Listen        string   // address to listen on; default DefaultListen
	DataDir       string   // data directory (required)
	EtcdEndpoints []string // external etcd; empty: embedded etcd in DataDir/etcd
	// EtcdTLS are the external etcd's client TLS files (etcdctl's
	// --cacert, --cert, --key). The embedded etcd needs none: it makes its
	// own in DataDir/etcd-pki and accepts no other client.
	EtcdTLS store.TLSFiles
	Region  string // default DefaultRegion
	Account string // 12-digit account id; default DefaultAccount
	// Credentials overrides the root key pair (from BERTH_ACCESS_KEY_ID and
	// BERTH_SECRET_ACCESS_KEY); empty: read or create it in DataDir.
	Credentials iam.Credentials
	// Throttle enables ECS's request rate limits (default on in berth up).
	Throttle       bool
	ThrottleLimits map[throttle.Class]throttle.Limit
	AuditRetention time.Duration // default audit.DefaultRetention
	// AuditMaxBytes is the audit trail's byte budget in the store; the
	// oldest records are deleted past it. Default audit.DefaultMaxBytes.
	AuditMaxBytes int64
	// TaskRetention is how long STOPPED tasks stay describable (ECS: at
	// least an hour); default 1h.
	TaskRetention time.Duration
	MaxBody       int64 // default awsproto.DefaultMaxBody
	// MetricsListen, when set, is a second address serving only GET
	// /metrics (Prometheus), for a scraper that must not reach the API
	// port. /metrics is always served on Listen too.
	MetricsListen string
	// ELBListenHost is the address every ELBv2 listener listens on;
	// default 127.0.0.1 (docs/load-balancing.md).
	ELBListenHost string
	// LogStore tunes the CloudWatch Logs store in DataDir/logs (its Dir
	// and Log are set by Start); zero values take logstore's defaults.
	LogStore logstore.Config
	// MetricsPeriod is how often the ECS metrics (AWS/ECS,
	// ECS/ContainerInsights) are published; default 60s as ECS does.
	MetricsPeriod time.Duration
	// DisconnectGrace is how long a container instance's agent may be
	// disconnected before its service tasks are started elsewhere (the old
	// ones keep running); default ecs.DefaultDisconnectGrace.
	DisconnectGrace time.Duration
	// InstanceLostAfter is how long a container instance's agent may be
	// disconnected before its tasks are written STOPPED; default
	// instancemon.DefaultLostAfter, negative: never (docs/agent.md).
	InstanceLostAfter time.Duration
	// TLSCertFile and TLSKeyFile are a certificate the API port presents
	// to HTTPS clients instead of the one Berth's CA issues (agents always
	// get Berth's, docs/security.md). Both or neither.
	TLSCertFile, TLSKeyFile string
	// TLSNames are extra DNS names or IP addresses for the serving
	// certificate Berth's CA issues (it always covers localhost, the
	// host name and the host's addresses).
	TLSNames []string
	// DNSListen is where the Cloud Map DNS server answers the private DNS
	// namespaces (UDP and TCP); empty: no DNS server (docs/cloud-map.md).
	DNSListen string
	// DNSUpstreams receive the queries for other names; nil: the host's
	// /etc/resolv.conf, empty non-nil: refused.
	DNSUpstreams []string
	Log          *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Account == "" {
		c.Account = DefaultAccount
	}
	if len(c.Account) != 12 {
		return fmt.Errorf("account id must have 12 digits, got %q", c.Account)
	}
	for _, r := range c.Account {
		if r < '0' || r > '9' {
			return fmt.Errorf("account id must have 12 digits, got %q", c.Account)
		}
	}
	if c.DataDir == "" {
		return errors.New("a data directory is required")
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	return nil
}

// Server is a running control plane.
type Server struct {
	cfg     Config
	st      store.Store
	fd      *awsproto.FrontDoor
	srv     *http.Server
	ln      net.Listener
	claim   *registry.OwnerClaim
	root    iam.Credentials
	created bool
	ecs     *ecs.Service
	// prom is Berth's own Prometheus metrics (GET /metrics).
	prom *telemetry.Metrics
	// msrv and mln serve Config.MetricsListen (nil when unset).
	msrv    *http.Server
	mln     net.Listener
	logs    *logs.Service
	logSt   *logstore.Store
	metrics *tsdb.DB
	cw      *cloudwatch.Service
	cm      *cloudmap.API
	dns     *cloudmap.DNSServer
	as      *autoscaling.Service
	elb     *elbv2.Service
	plane   *alb.Plane
	events  *events.Service
	// ca is Berth's own CA (DataDir/tls), which issues the serving
	// certificate agents pin.
	ca *tlsca.Authority

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start opens the store, builds everything and starts serving. On error
// nothing is left running.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	log := cfg.Log
	root, created, err := iam.LoadOrCreateRoot(cfg.DataDir, cfg.Credentials)
	if err != nil {
		return nil, err
	}
	ca, tlsCfg, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	// The key that seals secrets kept in the store (agent secrets, the
	// registry token key); it never enters the store.
	box, err := seal.LoadOrCreate(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	// Berth's own Prometheus metrics; etcd's join them when it runs here.
	prom := telemetry.New(telemetry.Options{EtcdMetrics: len(cfg.EtcdEndpoints) == 0})
	rawStore, err := store.Open(ctx, store.Config{
		DataDir:   cfg.DataDir + "/etcd",
		Endpoints: cfg.EtcdEndpoints,
		TLS:       cfg.EtcdTLS,
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	st := prom.Store(rawStore)
	defer func() {
		if err != nil {
			st.Close()
		}
	}()

	keys := iam.NewKeyring()
	keys.Add(root, iam.RootIdentity(cfg.Account))

	blobs, err := registry.NewFSBlobs(cfg.DataDir + "/registry")
	if err != nil {
		return nil, fmt.Errorf("open registry storage: %w", err)
	}
	// The registry's blobs are on this server's disk: one server per
	// store (registry/owner.go). A crashed owner's claim lapses within
	// registry.OwnerTTL, so wait that long before refusing.
	serverID, err := registry.ServerID(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("read server id: %w", err)
	}
	host, _ := os.Hostname()
	absDir, _ := filepath.Abs(cfg.DataDir)
	claim, err := registry.ClaimBlobStore(ctx, st, registry.Owner{ID: serverID, Address: cfg.Listen, Host: host, DataDir: absDir, PID: os.Getpid(), Since: time.Now().UTC()},
		registry.OwnerTTL+2*time.Second, log.With("component", "registry"))
	if err != nil {
		return nil, fmt.Errorf("start the registry: %w", err)
	}
	defer func() {
		if err != nil {
			claim.Release(context.Background())
		}
	}()

	lcfg := cfg.LogStore
	lcfg.Dir = cfg.DataDir + "/logs"
	lcfg.Log = log.With("component", "logstore")
	logSt, err := logstore.Open(lcfg)
	if err != nil {
		return nil, fmt.Errorf("open log store: %w", err)
	}
	defer func() {
		if err != nil {
			logSt.Close()
		}
	}()

	metrics, err := tsdb.Open(cfg.DataDir+"/metrics", tsdb.Options{Log: log.With("component", "tsdb")})
	if err != nil {
		return nil, fmt.Errorf("open metrics storage: %w", err)
	}
	defer func() {
		if err != nil {
			metrics.Close()
		}
	}()

	runCtx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, st: st, root: root, created: created, cancel: cancel, prom: prom, logSt: logSt, metrics: metrics, claim: claim, ca: ca}

	trail := audit.NewTrail(st, cfg.AuditRetention, cfg.AuditMaxBytes, log.With("component", "audit"))
	s.goRun(func() { trail.Run(runCtx) })

	ecsSvc := ecs.New(st, ecs.Config{Region: cfg.Region, Account: cfg.Account, Endpoint: func() string { return s.Endpoint() }}, log.With("component", "ecs"))
	ecsSvc.SetSecretSealer(box) // agent secrets sealed in the store
	s.ecs = ecsSvc
	gc := taskgc.New(st, taskgc.Config{Retention: cfg.TaskRetention, InstancePurged: ecsSvc.InstancePurged, Log: log.With("component", "ecs")})
	s.goRun(func() { gc.Run(runCtx) })
	s.goRun(func() {
		servicectl.Run(runCtx, servicectl.Config{Store: st, Tasks: ecsSvc.ServiceTasks(), Log: log.With("component", "ecs"),
			Observer: prom, DisconnectGrace: cfg.DisconnectGrace})
	})
	lostMon := instancemon.New(st, instancemon.Config{LostAfter: cfg.InstanceLostAfter, Log: log.With("component", "ecs")})
	s.goRun(func() { lostMon.Run(runCtx) })
	reg := registry.New(registry.Config{Store: st, Blobs: blobs, Account: cfg.Account, Log: log.With("component", "registry"), Owns: claim.Held})
	reg.SetSecretSealer(box) // its token key sealed in the store
	s.goRun(func() { reg.Run(runCtx) })
	// Agents pull images that live in Berth's registry with credentials
	// the assignment carries, issued for the account (as ECS hands its
	// agent the execution role's ECR credentials).
	// They are pull tokens (registry.IssuePullToken): an hour, pull only.
	ecsSvc.SetRegistryAuth(func(ctx context.Context, image, instance string) (agentapi.RegistryCredential, bool, error) {
		_, port, _ := net.SplitHostPort(s.Addr())
		pc, ok, err := reg.CredentialsFor(ctx, image, []string{s.Addr(), "localhost:" + port}, cmp.Or(instance, "ecs-agent"))
		return agentapi.RegistryCredential{ServerAddress: pc.ServerAddress, Username: pc.Username, Password: pc.Password}, ok, err
	})
	logsSvc := logs.New(logSt, logs.Config{Region: cfg.Region, Account: cfg.Account}, log.With("component", "logs"))
	s.logs = logsSvc
	s.goRun(func() { logsSvc.RunRetention(runCtx, time.Minute) })
	ecrSvc := ecr.New(reg, ecr.Config{Region: cfg.Region, Account: cfg.Account, RegistryHost: func() string { return s.Addr() }}, log.With("component", "ecr"))
	gw := agentgw.New(ecsSvc, keys, log.With("component", "agentgw"))
	gw.SetCAPin(tlsca.Pin(ca.Cert))
	gw.SetLogSink(logSink{logsSvc}) // the awslogs log driver (docs/awslogs.md)
	cwSvc := cloudwatch.New(metrics, st, cloudwatch.Config{Region: cfg.Region, Account: cfg.Account}, log.With("component", "cloudwatch"))
	s.cw = cwSvc
	s.goRun(func() { cwSvc.Run(runCtx) })
	evSvc := events.New(st, events.Config{Region: cfg.Region, Account: cfg.Account},
		events.Deps{Tasks: ecsSvc, Logs: eventLogs{logsSvc}, Metrics: eventMetrics{cwSvc}}, log.With("component", "events"))
	s.events = evSvc
	s.goRun(func() { evSvc.RunDelivery(runCtx) })
	s.goRun(func() { evSvc.RunScheduler(runCtx) })
	s.goRun(func() { evSvc.RunECSEvents(runCtx, ecsFeed{ecsSvc}) })
	cwSvc.SetStateChangeOps(func(c cloudwatch.AlarmStateChange) []store.Op { return evSvc.AlarmEventOps(alarmChange(c)) })
	ecsMetrics := ecsmetrics.New(ecsmetrics.Config{Period: cfg.MetricsPeriod, Log: log.With("component", "ecsmetrics"),
		Clusters: func(ctx context.Context) ([]ecsmetrics.Cluster, error) { return clusterCapacity(ctx, ecsSvc) },
		Sink:     ecsmetrics.SinkFunc(func(ctx context.Context, data []ecsmetrics.Datum) error { return cwSvc.Publish(ctx, points(data)) })})
	s.goRun(func() { ecsMetrics.Run(runCtx) })
	// Application Auto Scaling: its policies receive the alarm actions
	// naming them, and it scales services through ECS's UpdateService.
	asSvc := autoscaling.New(st, ecsScaler{ecsSvc}, cwSvc, autoscaling.Config{Region: cfg.Region, Account: cfg.Account,
		AlarmPeriod: alarmPeriod(cfg.MetricsPeriod)}, log.With("component", "autoscaling"))
	s.as = asSvc
	cwSvc.SetActionRunner(autoscaling.Runner{S: asSvc})
	s.goRun(func() { asSvc.Run(runCtx) })
	gw.SetStatsSink(func(_ context.Context, cred ecs.AgentCredential, rep agentapi.StatsReport) error {
		ecsMetrics.Record(cred.Cluster, rep)
		return nil
	})
	cmSvc := cloudmap.New(st, cloudmap.Config{Region: cfg.Region, Account: cfg.Account}, log.With("component", "cloudmap"))
	s.cm = cmSvc
	ecsSvc.SetServiceConnect(cmSvc.ServiceConnect()) // docs/service-connect.md
	scDir := scdirectory.New(ecsSvc, log.With("component", "scdirectory"))
	scDir.HealthChecked = ecsSvc.HealthChecked
	scDir.HostIP = func(string) string { return cloudmap.LocalIPv4() }
	gw.SetServiceConnect(scDir)
	s.goRun(func() { scDir.Run(runCtx) })
	catalog := cloudmap.NewCatalog(st, log.With("component", "cloudmap"))
	s.goRun(func() { catalog.Run(runCtx) })
	s.goRun(func() { cmSvc.RunOperationGC(runCtx, time.Hour) })
	s.goRun(func() {
		cloudmap.NewECSController(cmSvc.Registry(), ecsSvc, log.With("component", "cloudmap-ecs")).Run(runCtx)
	})
	if cfg.DNSListen != "" {
		dnsSrv, err := cloudmap.NewDNSServer(catalog, cloudmap.DNSConfig{Listen: cfg.DNSListen, Upstreams: cfg.DNSUpstreams, Log: log.With("component", "dns")})
		if err == nil {
			err = dnsSrv.Start(runCtx)
		}
		if err != nil {
			cancel()
			s.wg.Wait()
			return nil, fmt.Errorf("start the cloud map dns server: %w", err)
		}
		s.dns = dnsSrv
		s.goRun(dnsSrv.Wait)
	}
	// ELBv2: the API and its controller, which hands the load balancers
	// this server holds to its data plane (docs/load-balancing.md).
	elbRequests := elbv2.NewRequestMetrics() // AWS/ApplicationELB
	plane := alb.New(alb.Options{Log: log.With("component", "alb"), Observer: elbRequests})
	s.plane = plane
	localHost := host
	elbSvc := elbv2.New(st, plane, elbv2.Config{Region: cfg.Region, Account: cfg.Account, ListenHost: cfg.ELBListenHost,
		CertDir: filepath.Join(absDir, "certificates"), ServerID: serverID,
		Instances: func(ctx context.Context, id string) (string, error) {
			h, err := ecsSvc.InstanceHostname(ctx, id)
			if err == nil && (h == localHost || h == "") {
				h = "127.0.0.1" // an agent on this machine
			}
			return h, err
		}}, log.With("component", "elbv2"))
	s.elb = elbSvc
	s.goRun(func() { elbSvc.Run(runCtx) })
	// ECS services behind load balancers: validation, the drain gate and
	// target health for ECS; the ECS target controller registers tasks.
	ecsSvc.SetLoadBalancing(elbSvc.ForECS())
	s.goRun(func() { ecsSvc.RunDrainGate(runCtx, 0) })
	s.goRun(func() { elbSvc.NewECSTargets(ecsSvc).Run(runCtx) })
	s.goRun(func() { elbSvc.RunMetrics(runCtx, elbRequests, cfg.MetricsPeriod, cwSvc.Publish) })
	limiter := throttle.Disabled()
	if cfg.Throttle {
		limiter = throttle.New(cfg.ThrottleLimits)
	}
	gw.SetObserver(prom)
	s.fd = awsproto.New(awsproto.Config{
		Auth:     sigAuth{keys: keys, region: cfg.Region},
		Limiter:  limiter,
		Auditor:  trail,
		Log:      log.With("component", "api"),
		MaxBody:  cfg.MaxBody,
		Region:   cfg.Region,
		Agent:    gw,
		Registry: prom.RegistryHandler(registry.NewHandler(reg, registry.HandlerConfig{Identities: keys, Log: log.With("component", "registry")})),
		Observer: prom,
		Services: services(ecsSvc, trail, ecrSvc, logsSvc, cwSvc, elbSvc, evSvc, cmSvc, asSvc),
	})

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		cancel()
		s.wg.Wait()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	// One port, plain HTTP and HTTPS (docs/security.md).
	ln = tlsca.NewDualListener(ln, tlsCfg)
	s.ln = ln
	if err := claim.SetAddress(ctx, ln.Addr().String()); err != nil {
		log.Warn("registry store owner address not recorded", "err", err)
	}
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			cancel()
			s.wg.Wait()
			return nil, fmt.Errorf("listen for metrics on %s: %w", cfg.MetricsListen, err)
		}
		s.mln = mln
		s.msrv = &http.Server{
			Handler:           metricsOnly(prom.Handler()),
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		s.goRun(func() {
			if err := s.msrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics server stopped", "err", err)
			}
		})
		log.Info("prometheus metrics listening", "addr", mln.Addr().String(), "path", telemetry.Path)
	}
	con := console.New(console.Config{API: s.fd, Keys: keys, ECS: ecsSvc, Logs: logsSvc, Store: st, Log: log.With("component", "console"),
		Fargate: ecsSvc.FargateCapacity, Deliveries: evSvc.RuleDeliveries})
	s.srv = &http.Server{
		Handler:           withMetrics(prom.Handler(), withConsole(con, s.fd)),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Live Tail sessions are long requests: end them when shutting down.
	s.srv.RegisterOnShutdown(logsSvc.StopStreams)
	s.srv.RegisterOnShutdown(con.Stop)
	s.goRun(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	})
	log.Info("berth control plane listening", "addr", ln.Addr().String(), "region", cfg.Region, "account", cfg.Account)
	return s, nil
}

func (s *Server) goRun(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Endpoint is the URL clients use.
func (s *Server) Endpoint() string { return "http://" + s.ln.Addr().String() }

// HTTPSEndpoint is the URL of the same port over TLS.
func (s *Server) HTTPSEndpoint() string { return "https://" + s.ln.Addr().String() }

// AgentEndpoint is the HTTPS URL an agent on this host uses: the
// listener's address, with 127.0.0.1 for a wildcard one.
func (s *Server) AgentEndpoint() string {
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "https://" + net.JoinHostPort(host, port)
}

// CACertPEM is Berth's CA certificate (DataDir/tls/ca.crt): what agents
// pin and HTTPS clients pass as their CA bundle.
func (s *Server) CACertPEM() []byte { return s.ca.CertPEM }

// CAPin is the CA's pin that join tokens carry.
func (s *Server) CAPin() string { return tlsca.Pin(s.ca.Cert) }

// Addr is the listener's address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// RootCredentials returns the root key pair and whether it was made by
// this start (so the caller prints it once).
func (s *Server) RootCredentials() (iam.Credentials, bool) { return s.root, s.created }

// Config returns the effective configuration.
func (s *Server) Config() Config { return s.cfg }

// JoinToken makes a join token for agents (berth up's own agent).
func (s *Server) JoinToken(ctx context.Context, ttl time.Duration) (string, error) {
	tok, _, err := s.ecs.CreateJoinToken(ctx, ecs.JoinTokenOptions{TTL: ttl})
	return agentapi.FormatJoinToken(tok, s.CAPin()), err
}

// Logs returns the CloudWatch Logs service (its Ingest is the awslogs
// path's entry point).
func (s *Server) Logs() *logs.Service { return s.logs }

// Store returns the server's store (tests and benchmarks).
func (s *Server) Store() store.Store { return s.st }

// ELBv2 returns the ELBv2 service (tests).
func (s *Server) ELBv2() *elbv2.Service { return s.elb }

// CloudWatch returns the CloudWatch service: other producers publish
// metrics through its Publish.
func (s *Server) CloudWatch() *cloudwatch.Service { return s.cw }

// Events returns the EventBridge service.
func (s *Server) Events() *events.Service { return s.events }

// CloudMap returns the Cloud Map service.
func (s *Server) CloudMap() *cloudmap.API { return s.cm }

// DNSAddr is the Cloud Map DNS server's address, "" when it is off.
func (s *Server) DNSAddr() string {
	if s.dns == nil {
		return ""
	}
	return s.dns.Addr()
}

// TaskDNS is the DNS server for task containers on this machine (the agent
// of berth up makes it listen on their networks' gateways); nil when the
// DNS server is off.
func (s *Server) TaskDNS() taskrun.DNSListener {
	if s.dns == nil {
		return nil
	}
	return s.dns
}

// Autoscaling returns the Application Auto Scaling service (tests drive
// its clock).
func (s *Server) Autoscaling() *autoscaling.Service { return s.as }

// FrontDoor returns the API handler (tests, docs).
func (s *Server) FrontDoor() *awsproto.FrontDoor { return s.fd }

// Telemetry returns the server's own Prometheus metrics (tests).
func (s *Server) Telemetry() *telemetry.Metrics { return s.prom }

// MetricsAddr is the address of the separate metrics listener, "" when
// Config.MetricsListen is unset.
func (s *Server) MetricsAddr() string {
	if s.mln == nil {
		return ""
	}
	return s.mln.Addr().String()
}

// withMetrics serves GET /metrics (no authentication: Prometheus scrapers
// do not sign) and passes everything else to api.
func withMetrics(metrics, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == telemetry.Path && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			metrics.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// withConsole serves the web console (/console and everything under
// /console/, docs/console.md) and passes everything else to api. The
// console authenticates its own callers (session cookie and CSRF token)
// and runs their AWS calls through the front door's ServeAs; no path under
// /console/ reaches the front door's SigV4 path, and no API path reaches
// the console.
func withConsole(con, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, console.Prefix) {
			con.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// metricsOnly serves GET /metrics and answers 404 to anything else.
func metricsOnly(metrics http.Handler) http.Handler {
	return withMetrics(metrics, http.NotFoundHandler())
}

// Close stops serving (letting in-flight requests finish for up to 10 s),
// stops the background loops and closes the store. Idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
		}
		if s.msrv != nil {
			s.msrv.Close()
		}
		s.cancel()
		s.wg.Wait()
		s.plane.Close()
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.claim.Release(rctx)
		rcancel()
		logErr := s.logSt.Close()
		merr := s.metrics.Close()
		s.closeErr = errors.Join(s.st.Close(), logErr, merr)
	})
	return s.closeErr
}

// serverTLS loads or makes Berth's CA and the serving certificate it
// issues (DataDir/tls), and the TLS configuration of the API port: the
// operator's certificate for clients that do not ask for
// tlsca.AgentServerName, when one is given; Berth's otherwise.
func serverTLS(cfg Config) (*tlsca.Authority, *tls.Config, error) {
	now := time.Now()
	dir := filepath.Join(cfg.DataDir, "tls")
	ca, err := tlsca.LoadOrCreateCA(dir, "Berth CA", now)
	if err != nil {
		return nil, nil, fmt.Errorf("berth CA: %w", err)
	}
	spec := tlsca.LeafSpec{CommonName: tlsca.AgentServerName, Server: true,
		DNSNames: []string{tlsca.AgentServerName, "localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	if h, err := os.Hostname(); err == nil && h != "" {
		spec.DNSNames = append(spec.DNSNames, h)
	}
	names := slices.Clone(cfg.TLSNames)
	if host, _, err := net.SplitHostPort(cfg.Listen); err == nil && host != "" {
		names = append(names, host)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() {
				spec.IPs = append(spec.IPs, n.IP)
			}
		}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !ip.IsUnspecified() {
				spec.IPs = append(spec.IPs, ip)
			}
		} else {
			spec.DNSNames = append(spec.DNSNames, n)
		}
	}
	leaf, err := ca.Issue(dir, "server", spec, now)
	if err != nil {
		return nil, nil, fmt.Errorf("serving certificate: %w", err)
	}
	var user *tls.Certificate
	if cfg.TLSCertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		user = &c
	}
	own := leaf.TLS
	return ca, &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if user != nil && h.ServerName != tlsca.AgentServerName {
				return user, nil
			}
			return &own, nil
		},
	}, nil
}

// services lists every AWS service the front door serves.
func services(ecsSvc *ecs.Service, trail *audit.Trail, ecrSvc *ecr.Service, logsSvc *logs.Service, cwSvc *cloudwatch.Service, elbSvc *elbv2.Service, evSvc *events.Service, cmSvc *cloudmap.API, asSvc *autoscaling.Service) []*awsproto.Service {
	return []*awsproto.Service{
		elbSvc.API(),
		ecsSvc.API(),
		evSvc.API(),
		cmSvc.Service(),
		asSvc.API(),
		ecrSvc.API(),
		logsSvc.API(),
		cwSvc.API(),
		cloudtrail.New(trail).API(),
		sts.Service(),
	}
}

// SupportedOperations lists, per AWS service (by signing name), the
// operations Berth implements, sorted. The README's list is checked
// against it.
func SupportedOperations() map[string][]string {
	out := map[string][]string{}
	for _, svc := range services(ecs.New(nil, ecs.Config{Endpoint: func() string { return "" }}, nil), nil, ecr.New(nil, ecr.Config{}, nil),
		logs.New(nil, logs.Config{}, nil), cloudwatch.New(nil, nil, cloudwatch.Config{}, nil), elbv2.New(nil, nil, elbv2.Config{}, nil),
		events.New(nil, events.Config{}, events.Deps{}, nil), cloudmap.New(nil, cloudmap.Config{}, nil),
		autoscaling.New(nil, nil, nil, autoscaling.Config{}, nil)) {
		for name, op := range svc.Operations {
			if op.Implemented {
				out[svc.SigningName] = append(out[svc.SigningName], name)
			}
		}
		slices.Sort(out[svc.SigningName])
	}
	return out
}

// sigAuth authenticates with SigV4 against the keyring. A Berth serves
// one region: a request signed for another is refused as AWS refuses a
// credential scoped to the wrong region, rather than answered with ARNs of
// a region the client did not ask for (docs/decisions.md).
type sigAuth struct {
	keys   *iam.Keyring
	region string
}

func (a sigAuth) Scope(r *http.Request) (awsproto.Scope, bool) {
	sc, ok := sigv4.ParseScope(r)
	return awsproto.Scope{AccessKey: sc.AccessKey, Region: sc.Region, Service: sc.Service}, ok
}

// KnownKey implements awsproto.KeyChecker.
func (a sigAuth) KnownKey(accessKey string) bool {
	_, ok := a.keys.Secret(accessKey)
	return ok
}

func (a sigAuth) Authenticate(r *http.Request, body []byte, now time.Time) (iam.Identity, error) {
	sc, err := sigv4.Verify(r, body, now, a.keys.Secret)
	if err != nil {
		return iam.Identity{}, err
	}
	if sc.Region != a.region {
		return iam.Identity{}, errs.R(errs.Unauthenticated, sigv4.ReasonInvalidSignature,
			"Credential should be scoped to a valid region. This Berth serves %s, not '%s': configure the client for %s, or start Berth with --region %s.",
			a.region, sc.Region, a.region, sc.Region)
	}
	id, _ := a.keys.Identity(sc.AccessKey)
	return id, nil
}

// logSink hands the containers' output agents ship (the awslogs log
// driver) to CloudWatch Logs.
type logSink struct{ svc *logs.Service }

func (l logSink) Ingest(ctx context.Context, group, stream string, createGroup bool, events []agentapi.LogEvent) error {
	in := make([]logs.InputEvent, len(events))
	for i, e := range events {
		in[i] = logs.InputEvent{Timestamp: e.Timestamp, Message: e.Message}
	}
	return l.svc.Ingest(ctx, group, stream, createGroup, in)
}

// clusterCapacity reads the clusters' capacity for the ECS metrics.
func clusterCapacity(ctx context.Context, svc *ecs.Service) ([]ecsmetrics.Cluster, error) {
	cs, err := svc.Capacity(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ecsmetrics.Cluster, 0, len(cs))
	for _, c := range cs {
		mc := ecsmetrics.Cluster{Name: c.Name, ContainerInsights: c.ContainerInsights, Instances: c.Instances,
			RegisteredCPU: c.RegisteredCPU, RegisteredMemoryMiB: c.RegisteredMemoryMiB, ReservedCPU: c.ReservedCPU,
			ReservedMemoryMiB: c.ReservedMemoryMiB, RunningTasks: c.RunningTasks, PendingTasks: c.PendingTasks}
		for _, sv := range c.Services {
			mc.Services = append(mc.Services, ecsmetrics.Service{Name: sv.Name, Desired: sv.Desired, Running: sv.Running,
				Pending: sv.Pending, Deployments: sv.Deployments})
		}
		out = append(out, mc)
	}
	return out, nil
}

// points turns ECS metric datapoints into the metrics store's (statistic
// sets, standard resolution).
func points(data []ecsmetrics.Datum) []tsdb.Point {
	out := make([]tsdb.Point, 0, len(data))
	for _, d := range data {
		dims := make([]tsdb.Dim, len(d.Dimensions))
		for i, x := range d.Dimensions {
			dims[i] = tsdb.Dim{Name: x.Name, Value: x.Value}
		}
		out = append(out, tsdb.Point{Key: tsdb.NewKey(d.Namespace, d.MetricName, dims), T: d.Timestamp, Unit: d.Unit,
			Sample: tsdb.Sample{Min: d.Min, Max: d.Max, Sum: d.Sum, Count: d.SampleCount}})
	}
	return out
}

// eventLogs writes EventBridge log group targets' events to CloudWatch
// Logs: one stream per event, named by the event id, in a group that must
// exist (as on AWS).
type eventLogs struct{ svc *logs.Service }

func (l eventLogs) WriteLog(ctx context.Context, group, stream string, ts int64, message string) error {
	return l.svc.Ingest(ctx, group, stream, false, []logs.InputEvent{{Timestamp: ts, Message: message}})
}

// eventMetrics publishes EventBridge's AWS/Events metrics to CloudWatch.
type eventMetrics struct{ svc *cloudwatch.Service }

func (m eventMetrics) PublishEventMetrics(ctx context.Context, ms []events.Metric) error {
	pts := make([]tsdb.Point, 0, len(ms))
	for _, x := range ms {
		var dims []tsdb.Dim
		if x.RuleName != "" {
			dims = []tsdb.Dim{{Name: "RuleName", Value: x.RuleName}}
		}
		pts = append(pts, tsdb.Point{Key: tsdb.NewKey("AWS/Events", x.Name, dims), T: x.Time, Unit: "Count",
			Sample: tsdb.Sample{Min: 1, Max: 1, Sum: x.Count, Count: x.Count}})
	}
	return m.svc.Publish(ctx, pts)
}

// ecsFeed adapts ECS's committed-state feed to what the EventBridge ECS
// events controller reads.
type ecsFeed struct{ svc *ecs.Service }

func feedKind(k ecs.ChangeKind) events.FeedKind {
	switch k {
	case ecs.ChangeDelete:
		return events.FeedDelete
	case ecs.ChangeRelist:
		return events.FeedRelist
	case ecs.ChangeSynced:
		return events.FeedSynced
	}
	return events.FeedUpsert
}

// adapt forwards in to a new channel through f until in closes.
func adapt[A, B any](ctx context.Context, in <-chan A, f func(A) B) <-chan B {
	out := make(chan B, 64)
	go func() {
		defer close(out)
		for a := range in {
			select {
			case out <- f(a):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (f ecsFeed) Tasks(ctx context.Context) <-chan events.TaskItem {
	return adapt(ctx, f.svc.WatchTasks(ctx), func(c ecs.TaskChange) events.TaskItem {
		return events.TaskItem{Kind: feedKind(c.Kind), Revision: c.Revision, Task: c.Task}
	})
}

func (f ecsFeed) Services(ctx context.Context) <-chan events.ServiceItem {
	return adapt(ctx, f.svc.WatchServices(ctx), func(c ecs.ServiceChange) events.ServiceItem {
		return events.ServiceItem{Kind: feedKind(c.Kind), Revision: c.Revision, Service: c.Service}
	})
}

func (f ecsFeed) Instances(ctx context.Context) <-chan events.InstanceItem {
	return adapt(ctx, f.svc.WatchContainerInstances(ctx), func(c ecs.InstanceChange) events.InstanceItem {
		return events.InstanceItem{Kind: feedKind(c.Kind), Revision: c.Revision, Instance: c.Instance}
	})
}

// alarmChange turns CloudWatch's alarm state change into EventBridge's
// "CloudWatch Alarm State Change" input.
func alarmChange(c cloudwatch.AlarmStateChange) events.AlarmChange {
	d := c.Def
	out := events.AlarmChange{Name: val(d.AlarmName), ARN: c.ARN, Description: val(d.AlarmDescription),
		State: c.State, Reason: c.Reason, ReasonData: c.ReasonData, Time: c.Time,
		OldState: c.OldState, OldReason: c.OldReason, OldReasonData: c.OldReasonData, OldTime: c.OldTime}
	dims := func(ds []cloudwatchapi.Dimension) map[string]string {
		m := map[string]string{}
		for _, x := range ds {
			m[val(x.Name)] = val(x.Value)
		}
		return m
	}
	if d.MetricName != nil {
		stat := string(val(d.Statistic))
		if d.ExtendedStatistic != nil {
			stat = *d.ExtendedStatistic
		}
		out.Metrics = []events.AlarmMetric{{ID: "m1", Namespace: val(d.Namespace), Name: *d.MetricName, Stat: stat,
			Dimensions: dims(d.Dimensions), Period: val(d.Period), ReturnData: true}}
	}
	for _, q := range d.Metrics {
		m := events.AlarmMetric{ID: val(q.Id), Expression: val(q.Expression), Label: val(q.Label),
			ReturnData: q.ReturnData == nil || *q.ReturnData}
		if ms := q.MetricStat; ms != nil && ms.Metric != nil {
			m.Namespace, m.Name, m.Stat = val(ms.Metric.Namespace), val(ms.Metric.MetricName), val(ms.Stat)
			m.Dimensions, m.Period = dims(ms.Metric.Dimensions), val(ms.Period)
		}
		out.Metrics = append(out.Metrics, m)
	}
	return out
}

func val[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
