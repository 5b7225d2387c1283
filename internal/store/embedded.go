package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/tlsca"
)

// Defaults for EmbeddedConfig and Config.
const (
	DefaultCompactionRetention = time.Hour
	DefaultSnapshotCount       = 10000
	DefaultReadyTimeout        = 60 * time.Second
	DefaultDialTimeout         = 5 * time.Second
)

// EmbeddedConfig configures a single-node etcd running inside the Berth
// process.
type EmbeddedConfig struct {
	// Dir is etcd's data directory (required). It is created with mode
	// 0700 when missing.
	Dir string
	// CompactionRetention is how much history etcd keeps: every
	// retention period, revisions older than it are compacted. Optional;
	// default DefaultCompactionRetention.
	CompactionRetention time.Duration
	// SnapshotCount is the number of applied entries between two raft
	// snapshots (which bound the WAL replay at start). Optional; default
	// DefaultSnapshotCount.
	SnapshotCount uint64
	// MaxTxnOps is the embedded server's --max-txn-ops: the most
	// operations one transaction may hold. Optional; default
	// DefaultEmbeddedMaxTxnOps (larger batches mean fewer commits).
	MaxTxnOps int
	// QuotaBackendBytes caps the database size; past it etcd refuses
	// writes. Optional; 0 is etcd's default (2 GiB).
	QuotaBackendBytes int64
	// ReadyTimeout bounds the wait for the server to be ready (WAL replay,
	// self-election). Optional; default DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Logger receives etcd's error-level logs (lower levels are dropped:
	// etcd is chatty). Optional; default slog.Default().
	Logger *slog.Logger
	// PKIDir, when set, locks the server down: its client and peer
	// listeners speak TLS and accept only clients with a certificate
	// from a CA made for it and kept in PKIDir (created 0700, keys 0600),
	// so only this process (or whoever can read PKIDir) reaches it.
	// Empty: plain loopback listeners (tests). Open always sets it.
	PKIDir string
}

// TLSFiles are the PEM files of a TLS client of etcd, as etcdctl's
// --cacert, --cert and --key take them.
type TLSFiles struct {
	CACert, Cert, Key string
}

// ClientConfig builds the client's TLS configuration. CACert empty: the
// system's roots; Cert and Key empty: no client certificate.
func (f TLSFiles) ClientConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CACert != "" {
		b, err := os.ReadFile(f.CACert)
		if err != nil {
			return nil, errs.Wrap(errs.Invalid, err, "store: etcd CA certificate")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, errs.E(errs.Invalid, "store: no certificate in %s", f.CACert)
		}
		cfg.RootCAs = pool
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errs.E(errs.Invalid, "store: an etcd client certificate needs its key, and a key its certificate")
	}
	if f.Cert != "" {
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, errs.Wrap(errs.Invalid, err, "store: etcd client certificate")
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// embeddedPKI makes (or loads) the CA of a locked-down embedded etcd, its
// server certificate (also its peer certificate) and Berth's client
// certificate.
func embeddedPKI(dir string) (server tlsca.Leaf, client TLSFiles, err error) {
	now := time.Now()
	ca, err := tlsca.LoadOrCreateCA(dir, "Berth etcd CA", now)
	if err != nil {
		return tlsca.Leaf{}, TLSFiles{}, err
	}
	server, err = ca.Issue(dir, "server", tlsca.LeafSpec{CommonName: "etcd", Server: true, Client: true,
		DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}, now)
	if err != nil {
		return tlsca.Leaf{}, TLSFiles{}, err
	}
	cl, err := ca.Issue(dir, "client", tlsca.LeafSpec{CommonName: "berth", Client: true}, now)
	if err != nil {
		return tlsca.Leaf{}, TLSFiles{}, err
	}
	return server, TLSFiles{CACert: filepath.Join(dir, "ca.crt"), Cert: cl.CertFile, Key: cl.KeyFile}, nil
}

// DefaultEmbeddedMaxTxnOps is the embedded etcd's --max-txn-ops.
const DefaultEmbeddedMaxTxnOps = 1024

func (c EmbeddedConfig) withDefaults() EmbeddedConfig {
	if c.MaxTxnOps <= 0 {
		c.MaxTxnOps = DefaultEmbeddedMaxTxnOps
	}
	if c.CompactionRetention <= 0 {
		c.CompactionRetention = DefaultCompactionRetention
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = DefaultSnapshotCount
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Embedded is a running single-node etcd with a client connected to it.
type Embedded struct {
	etcd      *embed.Etcd
	store     *etcdStore
	endpoints []string
	clientTLS TLSFiles // zero without PKIDir
	stopOnce  sync.Once
	// stopping mutes etcd's logs while it shuts down: it reports each
	// listener it closes as an error.
	stopping *atomic.Bool
}

// StartEmbedded starts a single-node etcd on free loopback ports, waits for
// it to be ready and connects a client. ctx bounds the start only; the
// server runs until Close. On error nothing is left running.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		return nil, errs.E(errs.Invalid, "store: embedded etcd needs a data directory")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create etcd data directory: %w", err)
	}
	stopping := new(atomic.Bool)
	lg := zap.New(&slogCore{lg: cfg.Logger.With("component", "etcd"), min: zapcore.ErrorLevel, muted: stopping})
	var serverCert *tlsca.Leaf
	var clientTLS TLSFiles
	var clientCfg *tls.Config
	if cfg.PKIDir != "" {
		srv, cl, err := embeddedPKI(cfg.PKIDir)
		if err != nil {
			return nil, fmt.Errorf("store: etcd certificates in %s: %w", cfg.PKIDir, err)
		}
		serverCert, clientTLS = &srv, cl
		if clientCfg, err = cl.ClientConfig(); err != nil {
			return nil, err
		}
	}

	// Free ports are picked by binding port 0 and releasing it; another
	// process may take one in between, so retry a few times.
	var e *embed.Etcd
	for attempt := 1; ; attempt++ {
		ecfg, err := embedConfig(cfg, lg, serverCert, clientTLS.CACert)
		if err != nil {
			return nil, err
		}
		e, err = embed.StartEtcd(ecfg)
		if err == nil {
			break
		}
		if attempt < 4 && errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		return nil, fmt.Errorf("store: start embedded etcd in %s: %w", cfg.Dir, err)
	}

	timer := time.NewTimer(cfg.ReadyTimeout)
	defer timer.Stop()
	var failure error
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		failure = errs.Wrap(errs.Unavailable, err, "store: embedded etcd in %s failed while starting", cfg.Dir)
	case <-timer.C:
		failure = errs.E(errs.Unavailable, "store: embedded etcd in %s not ready after %v", cfg.Dir, cfg.ReadyTimeout)
	case <-ctx.Done():
		failure = fmt.Errorf("store: start embedded etcd in %s: %w", cfg.Dir, ctx.Err())
	}
	if failure != nil {
		stopping.Store(true)
		e.Close()
		return nil, failure
	}

	endpoints := urlStrings(e.Config().AdvertiseClientUrls)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: DefaultDialTimeout,
		Logger:      lg.Named("client"),
		TLS:         clientCfg,
	})
	if err != nil {
		stopping.Store(true)
		e.Close()
		return nil, errs.Wrap(errs.Unavailable, err, "store: connect to embedded etcd")
	}
	return &Embedded{etcd: e, store: &etcdStore{cli: cli, maxTxnOps: cfg.MaxTxnOps, serializable: true}, endpoints: endpoints, clientTLS: clientTLS, stopping: stopping}, nil
}

// embedConfig builds etcd's configuration for one start attempt.
func embedConfig(cfg EmbeddedConfig, lg *zap.Logger, serverCert *tlsca.Leaf, caFile string) (*embed.Config, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "store: find free loopback ports for etcd")
	}
	scheme := "http"
	if serverCert != nil {
		scheme = "https"
	}
	clientURL := url.URL{Scheme: scheme, Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
	peerURL := url.URL{Scheme: scheme, Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))}

	ec := embed.NewConfig()
	ec.Name = "berth"
	ec.Dir = cfg.Dir
	ec.ListenClientUrls = []url.URL{clientURL}
	ec.AdvertiseClientUrls = []url.URL{clientURL}
	ec.ListenPeerUrls = []url.URL{peerURL}
	ec.AdvertisePeerUrls = []url.URL{peerURL}
	ec.InitialCluster = ec.Name + "=" + peerURL.String()
	ec.InitialClusterToken = "berth"
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = cfg.CompactionRetention.String()
	ec.SnapshotCount = cfg.SnapshotCount
	ec.QuotaBackendBytes = cfg.QuotaBackendBytes
	ec.MaxTxnOps = uint(cfg.MaxTxnOps)
	ec.EnableGRPCGateway = false
	ec.Logger = "zap"
	ec.LogLevel = "error"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	if serverCert != nil {
		// Client and peer listeners: TLS, and a client certificate from
		// this etcd's own CA required.
		info := transport.TLSInfo{CertFile: serverCert.CertFile, KeyFile: serverCert.KeyFile, TrustedCAFile: caFile, ClientCertAuth: true}
		ec.ClientTLSInfo = info
		ec.PeerTLSInfo = info
	}
	// UnsafeNoFsync stays false: an acknowledged write is on disk.
	return ec, nil
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close() // held until all are picked, so they are distinct
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func urlStrings(us []url.URL) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	return out
}

// Store returns the store connected to the server. Closing it closes the
// client only; Close closes both.
func (e *Embedded) Store() Store { return e.store }

// Endpoints returns the client URLs the server listens on (for etcdctl).
func (e *Embedded) Endpoints() []string { return slices.Clone(e.endpoints) }

// ClientTLS returns the files a client needs to reach a locked-down server
// (PKIDir set): etcdctl --cacert, --cert, --key. Zero otherwise.
func (e *Embedded) ClientTLS() TLSFiles { return e.clientTLS }

// Err reports a failure of the running server (e.g. a listener that died).
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// Close closes the client, then stops the server. Idempotent.
func (e *Embedded) Close() error {
	err := e.store.Close()
	e.stopServer()
	return err
}

func (e *Embedded) stopServer() error {
	e.stopOnce.Do(func() {
		e.stopping.Store(true)
		e.etcd.Close()
	})
	return nil
}

// Config chooses and configures the store Berth runs on.
type Config struct {
	// DataDir is the embedded etcd's data directory; used when Endpoints
	// is empty.
	DataDir string
	// Endpoints are the client URLs of an external etcd cluster
	// ("http://10.0.0.1:2379"). Empty: run an embedded etcd.
	Endpoints []string
	// DialTimeout bounds connecting to an external etcd and the start-up
	// health check. Optional; default DefaultDialTimeout.
	DialTimeout time.Duration
	// TLS configures the client of an external etcd (https endpoints): CA
	// bundle, client certificate and key, as etcdctl's --cacert, --cert
	// and --key. Zero: plain connections (or the system's roots).
	TLS TLSFiles
	// PKIDir is where the embedded etcd's CA and certificates are kept;
	// default DataDir + "-pki".
	PKIDir string
	// CompactionRetention is the embedded etcd's history retention.
	// External clusters compact by their own settings. Optional; default
	// DefaultCompactionRetention.
	CompactionRetention time.Duration
	// Logger receives etcd's error logs. Optional; default slog.Default().
	Logger *slog.Logger
}

// Open returns the store cfg describes: a client of the external etcd at
// cfg.Endpoints, checked to answer, or an embedded etcd in cfg.DataDir. The
// store's Close releases everything, including the embedded server.
func Open(ctx context.Context, cfg Config) (Store, error) {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Endpoints) == 0 {
		pki := cfg.PKIDir
		if pki == "" {
			pki = filepath.Clean(cfg.DataDir) + "-pki"
		}
		e, err := StartEmbedded(ctx, EmbeddedConfig{
			Dir:                 cfg.DataDir,
			CompactionRetention: cfg.CompactionRetention,
			Logger:              cfg.Logger,
			PKIDir:              pki,
		})
		if err != nil {
			return nil, err
		}
		e.store.after = e.stopServer
		return e.store, nil
	}

	lg := zap.New(&slogCore{lg: cfg.Logger.With("component", "etcd-client"), min: zapcore.ErrorLevel})
	var tlsCfg *tls.Config
	if cfg.TLS != (TLSFiles{}) {
		var err error
		if tlsCfg, err = cfg.TLS.ClientConfig(); err != nil {
			return nil, err
		}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		Logger:      lg,
		TLS:         tlsCfg,
	})
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "store: connect to etcd at %s", strings.Join(cfg.Endpoints, ","))
	}
	if err := checkCluster(ctx, cli, cfg.DialTimeout); err != nil {
		cli.Close()
		return nil, err
	}
	return NewEtcd(cli), nil
}

// MinServerVersion is the oldest etcd server Berth accepts.
const MinServerVersion = "3.4"

// checkCluster proves an external cluster answers: one endpoint reports a
// supported version, and a linearizable read (which needs a leader and a
// quorum) succeeds.
func checkCluster(ctx context.Context, cli *clientv3.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	eps := strings.Join(cli.Endpoints(), ",")
	var version string
	var lastErr error
	for _, ep := range cli.Endpoints() {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			lastErr = err
			continue
		}
		version = st.Version
		break
	}
	if version == "" {
		return errs.Wrap(errs.Unavailable, lastErr, "store: no etcd endpoint answers (%s)", eps)
	}
	if !versionAtLeast(version, MinServerVersion) {
		return errs.E(errs.Unsupported, "store: etcd at %s is version %s; Berth needs %s or later", eps, version, MinServerVersion)
	}
	if _, err := cli.Get(ctx, "/berth/", clientv3.WithCountOnly()); err != nil {
		return errs.Wrap(errs.Unavailable, err, "store: etcd at %s does not serve reads (no leader or quorum?)", eps)
	}
	return nil
}

// versionAtLeast compares the major.minor of two "X.Y[.Z]" versions.
func versionAtLeast(have, want string) bool {
	parse := func(v string) (int, int) {
		parts := strings.SplitN(v, ".", 3)
		if len(parts) < 2 {
			return 0, 0
		}
		major, _ := strconv.Atoi(parts[0])
		minor, _ := strconv.Atoi(parts[1])
		return major, minor
	}
	hMaj, hMin := parse(have)
	wMaj, wMin := parse(want)
	return hMaj > wMaj || hMaj == wMaj && hMin >= wMin
}

// slogCore is a zapcore.Core that forwards etcd's zap logs to slog, so
// etcd's few important lines look like the rest of Berth's output.
type slogCore struct {
	lg    *slog.Logger
	min   zapcore.Level
	muted *atomic.Bool // optional; when true, only fatal logs pass
	attrs []slog.Attr
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	if c.muted != nil && c.muted.Load() {
		return l >= zapcore.DPanicLevel
	}
	return l >= c.min
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{lg: c.lg, min: c.min, muted: c.muted, attrs: append(slices.Clip(c.attrs), fieldAttrs(fields)...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	attrs := append(slices.Clip(c.attrs), fieldAttrs(fields)...)
	if e.LoggerName != "" {
		attrs = append(attrs, slog.String("logger", e.LoggerName))
	}
	level := slog.LevelError
	switch {
	case e.Level < zapcore.InfoLevel:
		level = slog.LevelDebug
	case e.Level < zapcore.WarnLevel:
		level = slog.LevelInfo
	case e.Level < zapcore.ErrorLevel:
		level = slog.LevelWarn
	}
	c.lg.LogAttrs(context.Background(), level, e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

func fieldAttrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	slices.SortFunc(attrs, func(a, b slog.Attr) int { return strings.Compare(a.Key, b.Key) })
	return attrs
}
