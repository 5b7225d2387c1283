package dockerdriver

import (
	"context"
	"log/slog"

	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errs"
)

// MinAPIVersion is the oldest Docker Engine API the driver works with
// (Docker Engine 20.10).
const MinAPIVersion = "1.41"

// Config configures a Driver. The zero value talks to the local daemon
// named by DOCKER_HOST, or /var/run/docker.sock, with default timeouts.
type Config struct {
	// Host is the daemon's address ("unix:///var/run/docker.sock",
	// "tcp://127.0.0.1:2375"). Empty: DOCKER_HOST, else the default socket.
	Host string
	// APIVersion pins the Engine API version ("1.41"). Empty: negotiate
	// with the daemon on first contact (the client speaks 1.40 and newer).
	APIVersion string
	// Timeouts bounds every call; zero fields take their defaults.
	Timeouts Timeouts
	// PullRecord remembers which images this agent pulled, for
	// PullOnce. Nil: an in-memory record that lasts as long as the Driver.
	PullRecord PullRecord
	// Logger receives the driver's few log lines (fallbacks to cached
	// images). Nil: slog.Default().
	Logger *slog.Logger
}

// Driver runs Docker operations, each bounded by a named timeout. It is safe
// for concurrent use. Close releases its connections.
type Driver struct {
	cli     *client.Client
	t       Timeouts
	pulled  PullRecord
	log     *slog.Logger
	pinned  bool
	address string
}

// New returns a Driver for cfg. It does not contact the daemon; Ping does.
func New(cfg Config) (*Driver, error) {
	opts := []client.Opt{client.WithUserAgent("berth-agent")}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	} else {
		opts = append(opts, client.WithHostFromEnv())
	}
	if cfg.APIVersion != "" {
		opts = append(opts, client.WithAPIVersion(cfg.APIVersion))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "docker client for %q", cfg.Host)
	}
	d := &Driver{cli: cli, t: cfg.Timeouts.withDefaults(), pulled: cfg.PullRecord, log: cfg.Logger,
		pinned: cfg.APIVersion != "", address: cli.DaemonHost()}
	if d.pulled == nil {
		d.pulled = NewPullRecord()
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	return d, nil
}

// Close releases the driver's idle connections.
func (d *Driver) Close() error { return d.cli.Close() }

// Timeouts returns the timeouts in force.
func (d *Driver) Timeouts() Timeouts { return d.t }

// Ping checks that the daemon answers and negotiates the API version. It
// returns an Unavailable error when the daemon cannot be reached and an
// Unsupported one when its API is older than the client accepts.
func (d *Driver) Ping(ctx context.Context) error {
	_, err := call(ctx, "ping", d.t.Ping, func(ctx context.Context) (client.PingResult, error) {
		return d.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: !d.pinned})
	})
	if errs.Is(err, errs.Invalid) {
		// The client refuses to negotiate below its minimum API version.
		return errs.Wrap(errs.Unsupported, err, "docker daemon at %s is too old (Berth needs API %s or newer)",
			d.address, MinAPIVersion)
	}
	return err
}

// VersionInfo describes the daemon.
type VersionInfo struct {
	Version       string // "20.10.24+dfsg1"
	APIVersion    string // the daemon's newest API version
	MinAPIVersion string // the daemon's oldest API version
	ClientAPI     string // the API version this driver speaks to it
	OS            string
	Arch          string
	KernelVersion string
}

// Version returns the daemon's version.
func (d *Driver) Version(ctx context.Context) (VersionInfo, error) {
	v, err := call(ctx, "version", d.t.Version, func(ctx context.Context) (client.ServerVersionResult, error) {
		return d.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	})
	if err != nil {
		return VersionInfo{}, err
	}
	out := VersionInfo{Version: v.Version, APIVersion: v.APIVersion, MinAPIVersion: v.MinAPIVersion,
		ClientAPI: d.cli.ClientVersion(), OS: v.Os, Arch: v.Arch}
	for _, c := range v.Components {
		if c.Name == "Engine" && c.Details != nil {
			out.KernelVersion = c.Details["KernelVersion"]
		}
	}
	return out, nil
}

// HostInfo is what the agent reports about its host when it registers.
type HostInfo struct {
	Name          string
	CPUs          int   // logical CPUs
	MemoryBytes   int64 // total memory
	ServerVersion string
	OS            string
	OSType        string
	Architecture  string
	KernelVersion string
	CgroupDriver  string
	CgroupVersion string
	DockerRootDir string
	Runtimes      []string
}

// Info returns the host's resources as Docker sees them.
func (d *Driver) Info(ctx context.Context) (HostInfo, error) {
	r, err := call(ctx, "info", d.t.Info, func(ctx context.Context) (client.SystemInfoResult, error) {
		return d.cli.Info(ctx, client.InfoOptions{})
	})
	if err != nil {
		return HostInfo{}, err
	}
	i := r.Info
	h := HostInfo{Name: i.Name, CPUs: i.NCPU, MemoryBytes: i.MemTotal, ServerVersion: i.ServerVersion,
		OS: i.OperatingSystem, OSType: i.OSType, Architecture: i.Architecture, KernelVersion: i.KernelVersion,
		CgroupDriver: i.CgroupDriver, CgroupVersion: i.CgroupVersion, DockerRootDir: i.DockerRootDir}
	for name := range i.Runtimes {
		h.Runtimes = append(h.Runtimes, name)
	}
	return h, nil
}
