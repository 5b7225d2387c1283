package taskrun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/scproxy"
	"github.com/berthdev/berth/internal/serviceconnect"
)

// Service Connect on the agent (docs/service-connect.md, "Data plane"): a
// task whose assignment carries a serviceconnect.TaskConfig gets a proxy
// container (`berth scproxy`, from an image the agent builds out of its own
// executable) that shares the task's network namespace; the application
// containers depend on it being HEALTHY (its configuration applied), and
// their /etc/hosts map every client alias to its VIP. The agent relays the
// configuration and the namespace's directory to the proxy over a unix
// socket, asks it for its counters at each stats report, and drains it
// before stopping the application containers.

// ServiceConnectConfig lets a Runtime run Service Connect proxies.
type ServiceConnectConfig struct {
	// Executable is the berth binary the proxy image is built from
	// (default: this process's executable).
	Executable string
	// Version names the image (with the executable's hash).
	Version string
	// RelayDir holds the relay sockets, one directory per task (default
	// $TMPDIR/berth-scproxy). Unix socket paths are limited to ~100 bytes.
	RelayDir string
	// Directory delivers the namespaces' endpoints.
	Directory DirectorySource
	// NoRedirect serves each client alias on its own port in the task's
	// namespace instead of redirecting it (scredirect.go).
	NoRedirect bool
}

// DirectorySource follows Service Connect namespaces' directories.
type DirectorySource interface {
	// Follow calls fn with the namespace's newest directory (at once when
	// it has one) and with every later one, until stop is called.
	Follow(namespaceArn string, fn func(serviceconnect.Directory)) (stop func())
}

// ProxyImageRepo is the repository of the proxy images the agent builds.
const ProxyImageRepo = "berth.local/scproxy"

const (
	scRelayVolume = "berth-sc-relay"
	scRelayMount  = "/berth-relay"
)

// scRuntime is the Runtime's Service Connect state.
type scRuntime struct {
	mu    sync.Mutex
	image string // the proxy image, once loaded
	tasks map[string]*scTask
	// redirectWarn logs once that aliases cannot be redirected here.
	redirectWarn sync.Once
}

// scTask is one task's proxy: its relay and directory subscription.
type scTask struct {
	cfg        serviceconnect.TaskConfig
	relay      *scproxy.Relay
	stopFollow func()
	proxy      *ctr
	drain      chan error // non-nil once the drain started; receives its end
	drained    bool
}

func (rt *Runtime) scTask(arn string) *scTask {
	rt.sc.mu.Lock()
	defer rt.sc.mu.Unlock()
	return rt.sc.tasks[arn]
}

// scBuild adds the proxy container of a Service Connect task (called by
// build once the containers are known).
func (r *runner) scBuild() {
	tc := r.a.ServiceConnect
	if tc == nil || len(r.a.TaskDefinition.ContainerDefinitions) == 0 {
		return
	}
	cfg := r.rt.cfg.ServiceConnect
	switch {
	case cfg == nil:
		r.failure = "ServiceConnectError: this container instance cannot run Service Connect proxies"
		return
	case r.mode != "awsvpc" && r.mode != "bridge":
		r.failure = "ServiceConnectError: Service Connect needs the awsvpc or bridge network mode, not " + r.mode
		return
	case tc.ProxyContainerName == "":
		r.failure = "ServiceConnectError: no proxy container name"
		return
	}
	sum := sha256.Sum256([]byte(r.arn))
	dir := filepath.Join(cmpStr(cfg.RelayDir, filepath.Join(os.TempDir(), "berth-scproxy")), hex.EncodeToString(sum[:8]))
	st := &scTask{cfg: *tc}
	st.cfg.Outbound = slices.Clone(tc.Outbound)
	r.scAssignRedirects(&st.cfg)
	relay, err := scproxy.NewRelay(dir, st.cfg, r.poke, r.log)
	if err != nil {
		r.failure = "ServiceConnectError: relay: " + err.Error()
		return
	}
	st.relay = relay
	if cfg.Directory != nil && tc.NamespaceArn != "" {
		st.stopFollow = cfg.Directory.Follow(tc.NamespaceArn, relay.SetDirectory)
	}

	name := tc.ProxyContainerName
	cd := ecsapi.ContainerDefinition{Name: &name, Image: ptr(ProxyImageRepo), Essential: ptr(true),
		EntryPoint: []string{"/berth", "scproxy"},
		Environment: []ecsapi.KeyValuePair{{Name: ptr("BERTH_SCPROXY_RELAY"), Value: ptr(scRelayMount + "/" + scproxy.RelaySocket)},
			{Name: ptr("GOMAXPROCS"), Value: ptr("2")}},
		MountPoints: []ecsapi.MountPoint{{SourceVolume: ptr(scRelayVolume), ContainerPath: ptr(scRelayMount)}}}
	for _, in := range tc.Inbound {
		tcp := ecsapi.TransportProtocolTcp
		cd.PortMappings = append(cd.PortMappings, ecsapi.PortMapping{ContainerPort: ptr(int32(in.ListenPort)), Protocol: &tcp})
	}
	if tc.LogDriver != "" {
		ld := ecsapi.LogDriver(tc.LogDriver)
		cd.LogConfiguration = &ecsapi.LogConfiguration{LogDriver: &ld, Options: tc.LogOptions}
	}
	r.task.Volumes = append(slices.Clone(r.task.Volumes), ecsapi.Volume{Name: ptr(scRelayVolume), Host: &ecsapi.HostVolumeProperties{SourcePath: ptr(dir)}})
	p := &ctr{def: cd, name: name, essential: true, hasHealth: true, health: HealthUnknown}
	p.dockerName = dockerdriver.DockerName(r.task, name)
	healthy := ecsapi.ContainerCondition("HEALTHY")
	for _, c := range r.cs {
		c.def.DependsOn = append(slices.Clone(c.def.DependsOn), ecsapi.ContainerDependency{ContainerName: ptr(name), Condition: &healthy})
	}
	r.cs = append([]*ctr{p}, r.cs...)
	st.proxy = p
	r.rt.sc.mu.Lock()
	if r.rt.sc.tasks == nil {
		r.rt.sc.tasks = map[string]*scTask{}
	}
	r.rt.sc.tasks[r.arn] = st
	r.rt.sc.mu.Unlock()
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// needsPause: awsvpc tasks, and bridge tasks with Service Connect (their
// containers share one namespace, as on ECS).
func (r *runner) needsPause() bool {
	return r.mode == "awsvpc" || (r.mode == "bridge" && r.rt.scTask(r.arn) != nil)
}

// scPauseDef adds the client aliases to the network namespace container's
// /etc/hosts (the task's containers share it).
func (r *runner) scPauseDef(cd *ecsapi.ContainerDefinition) {
	st := r.rt.scTask(r.arn)
	if st == nil {
		return
	}
	seen := map[string]bool{}
	for _, o := range st.cfg.Outbound {
		if o.DNSName == "" || seen[o.DNSName] {
			continue
		}
		seen[o.DNSName] = true
		cd.ExtraHosts = append(cd.ExtraHosts, ecsapi.HostEntry{Hostname: ptr(o.DNSName), IpAddress: ptr(o.VIP)})
	}
}

// scPull makes sure the proxy image exists (building it if needed); false
// when c is not a proxy container.
func (r *runner) scPull(ctx context.Context, c *ctr) (bool, error) {
	st := r.rt.scTask(r.arn)
	if st == nil || st.proxy != c {
		return false, nil
	}
	img, err := r.rt.ensureProxyImage(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return true, err
		}
		r.abandon(c, "CannotPullContainerError: service connect proxy image: "+errs.MessageOf(err))
		return true, nil
	}
	c.def.Image = ptr(img)
	c.imageID, c.digest = img, img
	if info, err := r.rt.d.InspectImage(ctx, img); err == nil {
		c.imageID, c.digest = info.ID, info.ID
	}
	c.known = CPulled
	return true, nil
}

// scInspected completes a container's state after inspect: the proxy's
// health is its relay's (configuration applied); in bridge mode the
// containers' bindings are the shared namespace container's.
func (r *runner) scInspected(ctx context.Context, c *ctr) {
	st := r.rt.scTask(r.arn)
	if st == nil {
		return
	}
	if c == st.proxy && c.known == CRunning {
		ok, msg := st.relay.Ready()
		switch {
		case ok:
			c.health = HealthHealthy
		case msg != "":
			c.health = HealthUnhealthy
			if r.failure == "" && !r.stopping {
				r.failure = "ServiceConnectError: " + msg
			}
		default:
			c.health = HealthUnknown
		}
	}
	if r.mode != "bridge" || r.pause == nil {
		return
	}
	if r.pause.info.ID == "" {
		info, err := r.rt.d.InspectContainer(ctx, r.pause.id)
		if err != nil {
			return
		}
		r.pause.info = info
	}
	c.bindings = nil
	for _, pm := range c.def.PortMappings {
		for _, b := range r.pause.info.Ports {
			if pm.ContainerPort == nil || int(*pm.ContainerPort) != int(b.ContainerPort) {
				continue
			}
			proto := ecsapi.TransportProtocol(b.Protocol)
			c.bindings = append(c.bindings, ecsapi.NetworkBinding{BindIP: ptr(b.HostIP), ContainerPort: ptr(int32(b.ContainerPort)),
				HostPort: ptr(int32(b.HostPort)), Protocol: &proto})
		}
	}
	if ep, ok := r.pause.info.Networks["bridge"]; ok {
		c.ip = ep.IPAddress
	}
}

// scHoldStop drains the proxy's inbound listeners before the task's
// containers are stopped: true while the drain is under way (the runner
// is poked when it ends). The drain takes at most the proxy's stop
// timeout.
func (r *runner) scHoldStop(ctx context.Context) bool {
	st := r.rt.scTask(r.arn)
	if st == nil || st.drained {
		return false
	}
	if st.drain == nil {
		if st.proxy.known != CRunning || !st.relay.Connected() {
			st.drained = true
			return false
		}
		timeout := dockerdriver.StopTimeout(st.proxy.def, r.rt.cfg.DefaultStopTimeout)
		st.drain = make(chan error, 1)
		r.log.Info("draining the service connect proxy", "timeout", timeout)
		go func() {
			dctx, cancel := context.WithTimeout(ctx, timeout+2*time.Second)
			defer cancel()
			st.drain <- st.relay.Drain(dctx, timeout)
			r.poke()
		}()
		return true
	}
	select {
	case err := <-st.drain:
		st.drained = true
		if err != nil {
			r.log.Info("service connect proxy drain ended", "err", err)
		}
		return false
	default:
		return true
	}
}

// scRelease ends the task's relay and directory subscription (the task is
// STOPPED).
func (r *runner) scRelease() {
	r.rt.sc.mu.Lock()
	st := r.rt.sc.tasks[r.arn]
	delete(r.rt.sc.tasks, r.arn)
	r.rt.sc.mu.Unlock()
	if st == nil {
		return
	}
	if st.stopFollow != nil {
		st.stopFollow()
	}
	st.relay.Close()
}

// ServiceConnectTraffic asks the proxy of each running Service Connect
// task for its traffic since the previous ask (for TaskUsage).
func (rt *Runtime) ServiceConnectTraffic(ctx context.Context) map[string]serviceconnect.Traffic {
	rt.sc.mu.Lock()
	tasks := make(map[string]*scTask, len(rt.sc.tasks))
	for arn, st := range rt.sc.tasks {
		tasks[arn] = st
	}
	rt.sc.mu.Unlock()
	out := map[string]serviceconnect.Traffic{}
	for arn, st := range tasks {
		if !st.relay.Connected() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		t, err := st.relay.Counters(cctx)
		cancel()
		if err == nil {
			out[arn] = t
		}
	}
	return out
}

// ensureProxyImage builds and loads the proxy image from the executable,
// once per Runtime: berth.local/scproxy:<version>-<executable's hash>.
func (rt *Runtime) ensureProxyImage(ctx context.Context) (string, error) {
	rt.sc.mu.Lock()
	img := rt.sc.image
	rt.sc.mu.Unlock()
	if img != "" {
		return img, nil
	}
	rt.scImageMu.Lock()
	defer rt.scImageMu.Unlock()
	cfg := rt.cfg.ServiceConnect
	exe := cfg.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", err
		}
	}
	sum, err := fileSHA256(exe)
	if err != nil {
		return "", err
	}
	tag := ProxyImageRepo + ":" + imageTagPart(cmpStr(cfg.Version, "dev")) + "-" + sum[:12]
	ok, err := rt.d.ImageExists(ctx, tag)
	if err != nil {
		return "", err
	}
	if !ok {
		rt.log.Info("building the service connect proxy image", "image", tag, "from", exe)
		if err := buildProxyImage(ctx, rt.d, tag, exe); err != nil {
			return "", err
		}
	}
	rt.sc.mu.Lock()
	rt.sc.image = tag
	rt.sc.mu.Unlock()
	return tag, nil
}

// imageTagPart keeps the characters a Docker tag allows.
func imageTagPart(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	out := strings.TrimLeft(string(b), ".-")
	if len(out) > 100 {
		out = out[:100]
	}
	if out == "" {
		out = "dev"
	}
	return out
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := copyAll(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
