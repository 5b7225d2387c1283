package taskrun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/metadata"
)

// Task statuses the runner reports.
const (
	tProvisioning   = "PROVISIONING"
	tPending        = "PENDING"
	tActivating     = "ACTIVATING"
	tRunning        = "RUNNING"
	tDeactivating   = "DEACTIVATING"
	tStopping       = "STOPPING"
	tDeprovisioning = "DEPROVISIONING"
	tStopped        = "STOPPED"
)

type adoptedContainer struct{ name, id, token string }

// ctr is the runner's view of one container.
type ctr struct {
	def        ecsapi.ContainerDefinition // overrides applied
	name       string
	essential  bool
	dockerName string
	id         string
	token      string
	known      CStatus
	exitCode   *int
	reason     string
	hasHealth  bool
	health     string
	startedAt  time.Time
	createdAt  time.Time
	finishedAt time.Time
	digest     string
	imageID    string
	bindings   []ecsapi.NetworkBinding
	ip         string
	stopping   bool      // a stop call is under way
	stopRetry  time.Time // when to retry a stop that has not worked
	logsReady  bool      // awslogs: the log stream is prepared
	info       dockerdriver.ContainerInfo
}

// runner runs one task. Update and Done are its only methods others call;
// everything else runs on its goroutine.
type runner struct {
	rt     *Runtime
	arn    string
	report func(agentapi.TaskReport)
	log    *slog.Logger

	mu      sync.Mutex
	pending *agentapi.Assignment
	wake    chan struct{}
	done    chan struct{}
	exited  chan struct{}

	// Owned by the goroutine.
	adopted      []adoptedContainer
	a            agentapi.Assignment
	haveDef      bool
	task         dockerdriver.TaskInfo
	mode         string
	known        string
	stopping     bool
	stopCode     string
	stopReason   string
	failure      string
	cs           []*ctr
	pause        *ctr
	attachment   *ecsapi.Attachment
	pullStart    *time.Time
	pullStop     *time.Time
	startedAt    *time.Time
	execStop     *time.Time
	stoppedAt    *time.Time
	last         *agentapi.TaskReport
	logsDrained  bool
	doneOnce     sync.Once
	pauseUp      chan pauseResult // the pause container's start under way (startpath.go)
	clock        stepClock        // the start's step timings
	pauseChecked bool             // a re-attached pause container's state was looked at
}

func newRunner(rt *Runtime, arn string, report func(agentapi.TaskReport)) *runner {
	return &runner{rt: rt, arn: arn, report: report, log: rt.log.With("task", arn), wake: make(chan struct{}, 1),
		done: make(chan struct{}), exited: make(chan struct{}), known: tProvisioning, clock: stepClock{last: time.Now()}}
}

// Update hands the runner a new assignment of its task; it never blocks.
func (r *runner) Update(a agentapi.Assignment) {
	r.mu.Lock()
	if r.pending == nil || a.Version >= r.pending.Version || a.DesiredStatus == "STOPPED" {
		r.pending = &a
	}
	r.mu.Unlock()
	r.poke()
}

// Done is closed once the task is STOPPED and that was reported.
func (r *runner) Done() <-chan struct{} { return r.done }

func (r *runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *runner) run(ctx context.Context) {
	defer close(r.exited)
	for {
		r.absorb(ctx)
		if err := r.step(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("task runner step failed; retrying", "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		wait := r.rt.cfg.PollInterval
		if r.known == tRunning && !r.stopping {
			wait *= 10
		}
		if r.known == tStopped {
			r.doneOnce.Do(func() { close(r.done) })
			r.scRelease()
			r.cleanup(ctx)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-time.After(wait):
		}
	}
}

// absorb takes the newest assignment.
func (r *runner) absorb(ctx context.Context) {
	r.mu.Lock()
	p := r.pending
	r.pending = nil
	r.mu.Unlock()
	if p == nil {
		return
	}
	if p.TaskDefinition != nil && !r.haveDef {
		r.a = *p
		r.haveDef = true
		if len(r.adopted) > 0 || p.CreatedAt.IsZero() {
			r.clock.done = true // not a start to time
		} else {
			r.clock.add("assignment", r.clock.last.Sub(p.CreatedAt))
			r.clock.mark("runner-queue")
		}
		r.build(ctx)
	} else {
		def := r.a.TaskDefinition
		if p.Version >= r.a.Version || p.DesiredStatus == "STOPPED" {
			v := r.a.Version
			r.a = *p
			if p.Version < v {
				r.a.Version = v
			}
		}
		if r.a.TaskDefinition == nil {
			r.a.TaskDefinition = def
		}
	}
	if p.DesiredStatus == "STOPPED" && !r.haveDef {
		// Stopped before its definition was ever known (an adopted task
		// no longer assigned): stop what was found.
		r.a.TaskDefinition = &ecsapi.TaskDefinition{}
		r.haveDef = true
		r.build(ctx)
	}
}

// build makes the container list from the definition (and from adopted
// containers).
func (r *runner) build(ctx context.Context) {
	td := *r.a.TaskDefinition
	r.task = dockerdriver.TaskInfoFromDefinition(r.rt.cfg.ClusterARN, r.arn, r.rt.cfg.InstanceARN, td)
	if r.task.Cluster == "" {
		r.task.Cluster = r.a.ClusterArn
	}
	r.mode = string(r.task.NetworkMode)
	if r.mode == "" {
		r.mode = "bridge"
	}
	defs := td.ContainerDefinitions
	if len(defs) == 0 {
		for _, ad := range r.adopted {
			if ad.name != PauseContainerName {
				defs = append(defs, ecsapi.ContainerDefinition{Name: &ad.name})
			}
		}
	}
	for _, cd := range defs {
		cd = applyOverrides(cd, r.a.Overrides)
		c := &ctr{def: cd, name: deref(cd.Name), essential: cd.Essential == nil || *cd.Essential,
			hasHealth: cd.HealthCheck != nil && len(cd.HealthCheck.Command) > 0 && cd.HealthCheck.Command[0] != "NONE"}
		c.dockerName = dockerdriver.DockerName(r.task, c.name)
		if c.hasHealth {
			c.health = HealthUnknown
		}
		r.cs = append(r.cs, c)
	}
	r.scBuild() // Service Connect: the proxy container
	if len(r.adopted) == 0 {
		return
	}
	// Re-attached: take the containers found, and their state.
	for _, ad := range r.adopted {
		if ad.name == PauseContainerName {
			r.pause = &ctr{name: ad.name, id: ad.id, known: CCreated}
			continue
		}
		for _, c := range r.cs {
			if c.name == ad.name {
				c.id, c.token, c.known = ad.id, ad.token, CCreated
				if c.token != "" && r.rt.cfg.Metadata != nil {
					r.rt.cfg.Metadata.Register(c.token, r.arn, c.name)
				}
				r.shipLogs(c) // resume from its checkpoint
			}
		}
	}
	r.known = tActivating
	if r.mode == "awsvpc" {
		_ = r.rt.ensureAwsvpc(ctx) // for the gateway; a failure shows later
	}
	if r.pause != nil && r.rt.scTask(r.arn) != nil {
		// The agent may have stopped between the namespace's start and its
		// redirects: write them again (the same rules).
		if info, err := r.rt.d.InspectContainer(ctx, r.pause.id); err == nil && info.Running {
			r.pause.info = info
			if err := r.scRedirect(ctx); err != nil {
				r.log.Warn("client alias redirects of a re-attached task", "err", err)
			}
		}
	}
	r.rt.metadataBase(ctx, r.mode) // listen where these containers look
}

// step refreshes what Docker says, decides and acts, and reports.
func (r *runner) step(ctx context.Context) error {
	if !r.haveDef {
		return nil
	}
	if err := r.refresh(ctx); err != nil {
		return err
	}
	now := time.Now().UTC()
	if !r.stopping {
		switch {
		case r.a.DesiredStatus == "STOPPED":
			r.beginStop(r.a.StopCode, r.a.StoppedReason)
		default:
			if code, reason, stop := stopCause(r.views(), r.failure); stop {
				r.beginStop(code, reason)
			}
		}
	}
	var err error
	if !r.stopping {
		err = r.advance(ctx, now)
		if !r.stopping {
			if code, reason, stop := stopCause(r.views(), r.failure); stop {
				r.beginStop(code, reason)
			}
		}
	}
	if r.stopping {
		err = r.wind(ctx)
	}
	r.publish()
	return err
}

func (r *runner) beginStop(code, reason string) {
	r.stopping = true
	if r.stopCode == "" && r.stopReason == "" {
		r.stopCode, r.stopReason = code, reason
	}
	if agentapi.StatusRank(r.known) < agentapi.StatusRank(tDeactivating) {
		r.setKnown(tDeactivating)
		r.publish()
	}
	r.setKnown(tStopping)
	r.log.Info("stopping task", "stopCode", r.stopCode, "reason", r.stopReason)
}

func (r *runner) setKnown(s string) {
	if agentapi.StatusRank(s) > agentapi.StatusRank(r.known) {
		r.known = s
	}
}

// advance moves the task toward RUNNING. A pause container's start begun
// by provision is joined before any container starts and before advance
// returns.
func (r *runner) advance(ctx context.Context, now time.Time) (err error) {
	defer func() {
		if jerr := r.joinPause(ctx); err == nil {
			err = jerr
		}
	}()
	if r.known == tProvisioning {
		r.setKnown(tPending)
		t := now
		r.pullStart = &t
		r.publish()
		for _, c := range r.cs {
			if c.known == CNone {
				if err := r.pull(ctx, c); err != nil {
					return err
				}
			}
		}
		t2 := time.Now().UTC()
		r.pullStop = &t2
		r.clock.mark("image")
		if r.failure != "" {
			return nil
		}
		r.setKnown(tActivating)
		r.publish()
		if err := r.provision(ctx); err != nil {
			if ctx.Err() != nil {
				return err
			}
			r.failure = errs.MessageOf(err)
			return nil
		}
		r.clock.mark("provision")
	} else {
		r.startAdoptedPause(ctx)
	}
	views := r.viewMap()
	for _, c := range r.cs {
		d := next(r.view(c), false, views, time.Now())
		switch d.Action {
		case Pull:
			if err := r.pull(ctx, c); err != nil {
				return err
			}
		case Create:
			if err := r.create(ctx, c); err != nil {
				return err
			}
			r.clock.mark("create:" + c.name)
			if c.known == CCreated {
				if err := r.joinPause(ctx); err != nil || r.failure != "" {
					return err
				}
				if err := r.start(ctx, c); err != nil {
					return err
				}
				r.clock.mark("start:" + c.name)
			}
		case Start:
			if err := r.joinPause(ctx); err != nil || r.failure != "" {
				return err
			}
			if err := r.start(ctx, c); err != nil {
				return err
			}
		case Abandon:
			r.abandon(c, d.Reason)
		}
		views[c.name] = r.view(c)
	}
	if agentapi.StatusRank(r.known) < agentapi.StatusRank(tRunning) && allEssentialStarted(r.views()) {
		var latest time.Time
		for _, c := range r.cs {
			if c.essential && c.startedAt.After(latest) {
				latest = c.startedAt
			}
		}
		if latest.IsZero() {
			latest = time.Now()
		}
		latest = latest.UTC()
		r.startedAt = &latest
		r.setKnown(tRunning)
		r.log.Info("task running")
		r.logStartSteps(ctx)
	}
	return nil
}

func (r *runner) abandon(c *ctr, reason string) {
	c.known = CStopped
	if c.reason == "" {
		c.reason = reason
	}
	if c.essential && r.failure == "" && reason != "" && !r.stopping {
		r.failure = reason
	}
}

func (r *runner) pull(ctx context.Context, c *ctr) error {
	if ok, err := r.scPull(ctx, c); ok {
		return err
	}
	image := deref(c.def.Image)
	if image == "" {
		r.abandon(c, "CannotPullContainerError: container "+c.name+" has no image")
		return nil
	}
	var auth *dockerdriver.RegistryAuth
	if cred, ok := r.a.CredentialFor(image); ok {
		auth = &dockerdriver.RegistryAuth{Username: cred.Username, Password: cred.Password, ServerAddress: cred.ServerAddress}
	}
	_, err := r.rt.d.EnsureImage(ctx, image, r.rt.cfg.PullBehavior, auth)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		msg := errs.MessageOf(err)
		if !strings.HasPrefix(msg, "CannotPullContainerError") {
			msg = "CannotPullContainerError: " + msg
		}
		r.log.Warn("image pull failed", "container", c.name, "image", image, "err", err)
		c.known = CStopped
		c.reason = msg
		if r.failure == "" {
			r.failure = msg
		}
		return nil
	}
	if info, err := r.rt.d.InspectImage(ctx, image); err == nil {
		c.imageID = info.ID
		c.digest = info.ID
		for _, rd := range info.RepoDigests {
			if _, dg, ok := strings.Cut(rd, "@"); ok {
				c.digest = dg
				break
			}
		}
	}
	c.known = CPulled
	return nil
}

// provision makes what the task's containers need before they are
// created: the awsvpc network namespace (pause container) and volumes.
func (r *runner) provision(ctx context.Context) error {
	specs, err := dockerdriver.TaskVolumes(r.task, dockerdriver.Options{})
	if err != nil {
		return fmt.Errorf("CannotCreateContainerError: %s", errs.MessageOf(err))
	}
	for _, v := range specs {
		if v.Scope == ecsapi.ScopeShared && !v.Autoprovision {
			if _, err := r.rt.d.InspectVolume(ctx, v.Name); err != nil {
				return fmt.Errorf("CannotCreateContainerError: shared volume %s: %s", v.Name, errs.MessageOf(err))
			}
			continue
		}
		if _, err := r.rt.d.CreateVolume(ctx, v); err != nil {
			return fmt.Errorf("CannotCreateContainerError: volume %s: %s", v.Name, errs.MessageOf(err))
		}
	}
	if !r.needsPause() || r.pause != nil {
		return nil
	}
	if err := r.rt.ensureAwsvpc(ctx); err != nil {
		return err
	}
	cd := ecsapi.ContainerDefinition{Name: ptr(PauseContainerName), Image: ptr(PauseImage)}
	for _, c := range r.cs {
		// The task's ports are the network namespace's.
		cd.PortMappings = append(cd.PortMappings, c.def.PortMappings...)
	}
	if r.pausePoolFits() {
		for {
			p, ok := r.rt.takePause()
			if !ok {
				break
			}
			// The pool learns of a dead container from Docker's events; a
			// dropped event stream must not hand one out (a few ms).
			if info, err := r.rt.d.InspectContainer(ctx, p.id); err != nil || !info.Running {
				r.log.Warn("a pool network namespace container is not running; removing it", "id", p.id, "err", err)
				_ = r.rt.d.RemoveContainer(ctx, p.id, dockerdriver.RemoveOptions{Force: true})
				continue
			}
			r.pause = &ctr{name: PauseContainerName, id: p.id, known: CRunning}
			r.applyPauseInfo(p.info)
			r.log.Debug("took a pool network namespace container", "id", p.id)
			return nil
		}
	}
	r.scPauseDef(&cd)
	bridgeTask := r.task
	bridgeTask.NetworkMode = ecsapi.NetworkModeBridge
	bridgeTask.Volumes = nil
	bridgeTask.PidMode, bridgeTask.IpcMode = "", ""
	network := r.rt.cfg.AwsvpcNetwork
	if r.mode != "awsvpc" {
		network = "" // bridge with Service Connect: Docker's bridge
	}
	cfg, host, netCfg, err := dockerdriver.ContainerConfig(bridgeTask, cd, dockerdriver.Options{Network: network,
		Labels: r.rt.cfg.Labels, DNS: r.rt.taskDNS(ctx, r.mode)})
	if err != nil {
		return err
	}
	if r.mode == "awsvpc" {
		host.PortBindings = nil // awsvpc ports are reached at the task's own address
	}
	r.confineFargate(host, true)
	name := dockerdriver.DockerName(r.task, "internal-pause")
	release, err := r.rt.startSlot(ctx)
	if err != nil {
		return err
	}
	id, err := r.rt.d.CreateContainer(ctx, name, cfg, host, netCfg)
	release()
	if errs.Is(err, errs.AlreadyExists) {
		var info dockerdriver.ContainerInfo
		info, err = r.rt.d.InspectContainer(ctx, name)
		id = info.ID
	}
	if err != nil {
		return err
	}
	r.pause = &ctr{name: PauseContainerName, id: id, known: CCreated}
	r.startPauseAsync(ctx) // joined before a container starts (joinPause)
	return nil
}

func (r *runner) inspectPause(ctx context.Context) error {
	info, err := r.rt.d.InspectContainer(ctx, r.pause.id)
	if err != nil {
		return err
	}
	r.applyPauseInfo(info)
	return nil
}

// applyPauseInfo takes the pause container's inspection: the task's
// address and its ENI attachment.
func (r *runner) applyPauseInfo(info dockerdriver.ContainerInfo) {
	r.pause.info = info
	if r.mode != "awsvpc" { // bridge with Service Connect
		r.pause.ip = info.Networks["bridge"].IPAddress
		return
	}
	ep := info.Networks[r.rt.cfg.AwsvpcNetwork]
	r.pause.ip = ep.IPAddress
	sum := sha256.Sum256([]byte(r.arn))
	h := hex.EncodeToString(sum[:16])
	id := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	kv := func(k, v string) ecsapi.KeyValuePair { return ecsapi.KeyValuePair{Name: ptr(k), Value: ptr(v)} }
	r.attachment = &ecsapi.Attachment{Id: ptr(id), Type: ptr("ElasticNetworkInterface"), Status: ptr("ATTACHED"),
		Details: []ecsapi.KeyValuePair{kv("subnetId", "berth-local"), kv("networkInterfaceId", "eni-"+h[:17]),
			kv("macAddress", ep.MacAddress), kv("privateDnsName", "ip-"+strings.ReplaceAll(ep.IPAddress, ".", "-")),
			kv("privateIPv4Address", ep.IPAddress)}}
}

func (r *runner) create(ctx context.Context, c *ctr) error {
	if c.token == "" {
		c.token = metadata.NewToken()
	}
	opts := dockerdriver.Options{Image: deref(c.def.Image), Containers: map[string]string{},
		DefaultStopTimeout: r.rt.cfg.DefaultStopTimeout, Env: map[string]string{}, Labels: map[string]string{},
		LogDriver: r.dockerLogConfig}
	maps.Copy(opts.Labels, r.rt.cfg.Labels)
	opts.Labels[LabelMetadataToken] = c.token
	for _, o := range r.cs {
		if o.id != "" {
			opts.Containers[o.name] = o.id
		}
	}
	if r.pause != nil {
		opts.NetworkContainer = r.pause.id
		opts.Labels[LabelNetworkContainer] = r.pause.id // Adopt finds the namespace by it
	} else {
		opts.DNS = r.rt.taskDNS(ctx, r.mode)
	}
	if base := r.rt.metadataBase(ctx, r.mode); base != "" {
		opts.Env["ECS_CONTAINER_METADATA_URI_V4"] = base + "/v4/" + c.token
		opts.Env["ECS_CONTAINER_METADATA_URI"] = base + "/v3/" + c.token
		if r.rt.cfg.Metadata != nil {
			r.rt.cfg.Metadata.Register(c.token, r.arn, c.name)
		}
	}
	cfg, host, netCfg, err := dockerdriver.ContainerConfig(r.task, c.def, opts)
	if err != nil {
		r.abandon(c, "CannotCreateContainerError: "+errs.MessageOf(err))
		return nil
	}
	r.confineFargate(host, false)
	release, err := r.rt.startSlot(ctx)
	if err != nil {
		return err
	}
	id, err := r.rt.d.CreateContainer(ctx, c.dockerName, cfg, host, netCfg)
	release()
	if errs.Is(err, errs.AlreadyExists) {
		// A create whose answer was lost: take the container it made.
		var info dockerdriver.ContainerInfo
		info, err = r.rt.d.InspectContainer(ctx, c.dockerName)
		id = info.ID
	}
	if err != nil {
		if ctx.Err() != nil || errs.Is(err, errs.Unavailable) {
			return err
		}
		r.abandon(c, "CannotCreateContainerError: "+errs.MessageOf(err))
		return nil
	}
	c.id, c.known, c.createdAt = id, CCreated, time.Now().UTC()
	r.publishMetadata() // before it starts and asks
	return nil
}

func (r *runner) start(ctx context.Context, c *ctr) error {
	if ok, err := r.prepareLogs(ctx, c); !ok {
		return err
	}
	release, err := r.rt.startSlot(ctx)
	if err != nil {
		return err
	}
	err = r.rt.d.StartContainer(ctx, c.id)
	release()
	if err != nil {
		if ctx.Err() != nil || (errs.Is(err, errs.Unavailable) && errs.ReasonOf(err) == dockerdriver.ReasonDaemonDown) {
			return err
		}
		r.abandon(c, "CannotStartContainerError: "+errs.MessageOf(err))
		return nil
	}
	c.known = CRunning
	if c.startedAt.IsZero() {
		c.startedAt = time.Now().UTC()
	}
	r.shipLogs(c)
	return r.inspect(ctx, c)
}

// refresh re-inspects every container the task has in Docker.
func (r *runner) refresh(ctx context.Context) error {
	for _, c := range r.cs {
		if c.id == "" || (c.known == CStopped && !c.finishedAt.IsZero()) {
			continue
		}
		if err := r.inspect(ctx, c); err != nil {
			return err
		}
	}
	if r.pause != nil && r.pause.known != CStopped && r.attachment == nil && r.mode == "awsvpc" {
		if err := r.inspectPause(ctx); err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
	}
	return nil
}

func (r *runner) inspect(ctx context.Context, c *ctr) error {
	info, err := r.rt.d.InspectContainer(ctx, c.id)
	if errs.Is(err, errs.NotFound) {
		if c.known < CStopped {
			c.known = CStopped
			if c.reason == "" {
				c.reason = "container was removed"
			}
		}
		c.finishedAt = time.Now().UTC()
		return nil
	}
	if err != nil {
		return err
	}
	c.info = info
	if c.imageID == "" {
		c.imageID, c.digest = info.ImageID, info.ImageID
	}
	if !info.StartedAt.IsZero() {
		c.startedAt = info.StartedAt.UTC()
	}
	c.createdAt = info.Created.UTC()
	switch {
	case info.Running || info.Status == "restarting" || info.Status == "paused":
		if c.known < CRunning {
			c.known = CRunning
		}
	case info.Status == "exited" || info.Status == "dead":
		if c.known < CStopped {
			c.known = CStopped
		}
		code := info.ExitCode
		c.exitCode = &code
		c.finishedAt = info.FinishedAt.UTC()
		if c.finishedAt.IsZero() {
			c.finishedAt = time.Now().UTC()
		}
		if info.OOMKilled && c.reason == "" {
			c.reason = ReasonOOM
		}
	}
	if c.hasHealth && c.known == CRunning {
		switch info.Health {
		case dockerdriver.HealthHealthy:
			c.health = HealthHealthy
		case dockerdriver.HealthUnhealthy:
			c.health = HealthUnhealthy
		default:
			c.health = HealthUnknown
		}
	}
	c.bindings = nil
	switch r.mode {
	case "bridge":
		for _, p := range info.Ports {
			proto := ecsapi.TransportProtocol(p.Protocol)
			c.bindings = append(c.bindings, ecsapi.NetworkBinding{BindIP: ptr(p.HostIP), ContainerPort: ptr(int32(p.ContainerPort)),
				HostPort: ptr(int32(p.HostPort)), Protocol: &proto})
		}
		slices.SortFunc(c.bindings, func(a, b ecsapi.NetworkBinding) int {
			if d := int(*a.ContainerPort) - int(*b.ContainerPort); d != 0 {
				return d
			}
			return strings.Compare(*a.BindIP, *b.BindIP)
		})
		if ep, ok := info.Networks["bridge"]; ok {
			c.ip = ep.IPAddress
		}
	case "host":
		for _, pm := range c.def.PortMappings {
			if pm.ContainerPort == nil {
				continue
			}
			proto := ecsapi.TransportProtocolTcp
			if pm.Protocol != nil && *pm.Protocol != "" {
				proto = *pm.Protocol
			}
			c.bindings = append(c.bindings, ecsapi.NetworkBinding{BindIP: ptr("0.0.0.0"), ContainerPort: pm.ContainerPort,
				HostPort: pm.ContainerPort, Protocol: &proto})
		}
	case "awsvpc":
		if r.pause != nil {
			c.ip = r.pause.ip
		}
	}
	r.scInspected(ctx, c)
	return nil
}

// wind moves the task toward STOPPED.
func (r *runner) wind(ctx context.Context) error {
	if r.scHoldStop(ctx) { // Service Connect: the proxy drains first
		return nil
	}
	views := r.viewMap()
	pendingStops := false
	for _, c := range r.cs {
		d := next(r.view(c), true, views, time.Now())
		switch d.Action {
		case Stop:
			pendingStops = true
			if c.stopping && time.Now().After(c.stopRetry) {
				c.stopping = false // the stop failed (Docker away?): again
			}
			if !c.stopping {
				c.stopping = true
				timeout := dockerdriver.StopTimeout(c.def, r.rt.cfg.DefaultStopTimeout)
				if g := r.a.StopGraceSeconds; g > 0 {
					timeout = time.Duration(g) * time.Second // a Spot interruption's warning
				}
				c.stopRetry = time.Now().Add(timeout + r.rt.d.Timeouts().StopGrace + 5*time.Second)
				id, name := c.id, c.name
				go func() {
					if err := r.rt.d.StopContainer(ctx, id, timeout); err != nil && !errs.Is(err, errs.NotFound) && ctx.Err() == nil {
						r.log.Warn("stop container failed", "container", name, "err", err)
					}
					r.poke()
				}()
			}
		case Abandon:
			c.known = CStopped
		case Wait:
			if c.known != CStopped {
				pendingStops = true
			}
		}
	}
	if pendingStops {
		return nil
	}
	if r.execStop == nil {
		t := time.Now().UTC()
		r.execStop = &t
	}
	r.drainLogs()
	r.setKnown(tDeprovisioning)
	if r.pause != nil && r.pause.known != CStopped {
		r.publish()
		if err := r.rt.d.RemoveContainer(ctx, r.pause.id, dockerdriver.RemoveOptions{Force: true}); err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
		r.pause.known = CStopped
	}
	t := time.Now().UTC()
	r.stoppedAt = &t
	r.setKnown(tStopped)
	r.log.Info("task stopped", "stopCode", r.stopCode, "reason", r.stopReason)
	return nil
}

// cleanup removes the task's containers and task volumes CleanupWait after
// it stopped, unless the agent stops first.
func (r *runner) cleanup(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(r.rt.cfg.CleanupWait):
	}
	if r.rt.cfg.Metadata != nil {
		r.rt.cfg.Metadata.Forget(r.arn)
	}
	for _, c := range r.cs {
		if c.id != "" {
			_ = r.rt.d.RemoveContainer(ctx, c.id, dockerdriver.RemoveOptions{Force: true})
			r.forgetLogs(c)
		}
	}
	if specs, err := dockerdriver.TaskVolumes(r.task, dockerdriver.Options{}); err == nil {
		for _, v := range specs {
			if v.Scope == ecsapi.ScopeTask {
				_ = r.rt.d.RemoveVolume(ctx, v.Name, false)
			}
		}
	}
}

func (r *runner) view(c *ctr) CView {
	v := CView{Name: c.name, Essential: c.essential, Known: c.known, ExitCode: c.exitCode, Health: c.health,
		StartedAt: c.startedAt, StartTimeout: r.rt.cfg.ContainerStartTimeout}
	if c.def.StartTimeout != nil && *c.def.StartTimeout > 0 {
		v.StartTimeout = time.Duration(*c.def.StartTimeout) * time.Second
	}
	for _, d := range c.def.DependsOn {
		v.DependsOn = append(v.DependsOn, Dep{Container: deref(d.ContainerName), Condition: string(deref(d.Condition))})
	}
	for _, l := range c.def.Links {
		n, _, _ := strings.Cut(l, ":")
		v.Needs = append(v.Needs, n)
	}
	for _, vf := range c.def.VolumesFrom {
		v.Needs = append(v.Needs, deref(vf.SourceContainer))
	}
	return v
}

func (r *runner) views() []CView {
	out := make([]CView, 0, len(r.cs))
	for _, c := range r.cs {
		out = append(out, r.view(c))
	}
	return out
}

func (r *runner) viewMap() map[string]CView {
	m := make(map[string]CView, len(r.cs))
	for _, c := range r.cs {
		m[c.name] = r.view(c)
	}
	return m
}

// publish reports the task if anything changed, and refreshes the
// metadata endpoint's snapshot.
func (r *runner) publish() {
	tr := agentapi.TaskReport{TaskArn: r.arn, KnownStatus: r.known, Version: r.a.Version,
		PullStartedAt: r.pullStart, PullStoppedAt: r.pullStop, StartedAt: r.startedAt,
		ExecutionStoppedAt: r.execStop, StoppedAt: r.stoppedAt, StopCode: r.stopCode, StoppedReason: r.stopReason}
	if agentapi.StatusRank(r.known) >= agentapi.StatusRank(tRunning) {
		tr.ConnectivityAt = r.startedAt
	}
	tr.HealthStatus = TaskHealth(r.views())
	if r.attachment != nil {
		att := *r.attachment
		if r.known == tStopped {
			att.Status = ptr("DELETED")
		}
		tr.Attachments = []ecsapi.Attachment{att}
	}
	for _, c := range r.cs {
		cr := agentapi.ContainerReport{Name: c.name, RuntimeID: c.id, ImageDigest: c.digest, KnownStatus: c.known.Wire(),
			Reason: c.reason, HealthStatus: c.health, NetworkBindings: c.bindings}
		if c.exitCode != nil {
			e := int32(*c.exitCode)
			cr.ExitCode = &e
		}
		if c.ip != "" && r.mode == "awsvpc" {
			cr.NetworkInterfaces = []ecsapi.NetworkInterface{{AttachmentId: r.attachment.Id, PrivateIpv4Address: ptr(c.ip)}}
		}
		tr.Containers = append(tr.Containers, cr)
	}
	if r.last == nil || !reflect.DeepEqual(*r.last, tr) {
		r.last = &tr
		r.report(tr)
	}
	if r.known == tStopped {
		r.doneOnce.Do(func() { close(r.done) })
	}
	r.publishMetadata()
}

func (r *runner) publishMetadata() {
	if md := r.rt.cfg.Metadata; md != nil {
		md.SetTask(r.metadataTask())
	}
}

func (r *runner) metadataTask() metadata.Task {
	t := metadata.Task{Cluster: r.task.Cluster, TaskARN: r.arn, Family: r.task.Family, Revision: strconv.Itoa(int(r.task.Revision)),
		DesiredStatus: r.a.DesiredStatus, KnownStatus: r.known, PullStartedAt: r.pullStart, PullStoppedAt: r.pullStop,
		ExecutionStoppedAt: r.execStop, AvailabilityZone: r.rt.cfg.AvailabilityZone, LaunchType: "EC2", Containers: []metadata.Container{},
		Group: r.a.Group, StartedBy: r.a.StartedBy, ReservedCPU: r.a.CPU, ReservedMemoryMiB: r.a.MemoryMiB}
	if r.a.CPU > 0 || r.a.MemoryMiB > 0 {
		t.Limits = &metadata.Limits{CPU: float64(r.a.CPU) / 1024, Memory: int64(r.a.MemoryMiB)}
	}
	if r.fargate() {
		t.LaunchType = agentapi.LaunchTypeFargate
		if r.a.EphemeralStorageGiB > 0 {
			t.EphemeralStorageMetrics = &metadata.EphemeralStorageMetrics{Reserved: int64(r.a.EphemeralStorageGiB) * 1024}
		}
	}
	if g, ok := strings.CutPrefix(r.a.Group, "service:"); ok {
		t.ServiceName = g
	}
	for _, tag := range r.a.Tags {
		if t.TaskTags == nil {
			t.TaskTags = map[string]string{}
		}
		t.TaskTags[deref(tag.Key)] = deref(tag.Value)
	}
	for _, c := range r.cs {
		desired := "RUNNING"
		if r.stopping {
			desired = "STOPPED"
		}
		mc := metadata.Container{DockerID: c.id, Name: c.name, DockerName: c.dockerName, Image: deref(c.def.Image), ImageID: c.imageID,
			Labels: c.info.Labels, DesiredStatus: desired, KnownStatus: c.known.Wire(), ExitCode: c.exitCode, Type: "NORMAL",
			Limits: metadata.Limits{CPU: float64(deref(c.def.Cpu)), Memory: int64(deref(c.def.Memory))}}
		if !c.createdAt.IsZero() {
			mc.CreatedAt = ptr(c.createdAt)
		}
		if !c.startedAt.IsZero() {
			mc.StartedAt = ptr(c.startedAt)
		}
		if !c.finishedAt.IsZero() {
			mc.FinishedAt = ptr(c.finishedAt)
		}
		if lc := c.def.LogConfiguration; lc != nil {
			mc.LogDriver, mc.LogOptions = string(deref(lc.LogDriver)), lc.Options
		}
		if c.hasHealth {
			mc.Health = &metadata.Health{Status: c.health, Output: c.info.HealthOutput}
		}
		for _, b := range c.bindings {
			mc.Ports = append(mc.Ports, metadata.Port{ContainerPort: int(*b.ContainerPort), Protocol: string(*b.Protocol),
				HostPort: int(*b.HostPort), HostIP: *b.BindIP})
		}
		nw := metadata.Network{NetworkMode: r.mode}
		if c.ip != "" {
			nw.IPv4Addresses = []string{c.ip}
		}
		if r.mode == "awsvpc" && r.pause != nil {
			zero := 0
			nw.AttachmentIndex = &zero
			nw.MACAddress = r.pause.info.Networks[r.rt.cfg.AwsvpcNetwork].MacAddress
			nw.IPv4SubnetCIDRBlock = r.rt.awsvpcNet
			nw.SubnetGatewayIpv4Address = r.rt.awsvpcGateway()
			if r.rt.awsvpcNet != "" {
				nw.SubnetGatewayIpv4Address += "/" + strings.SplitN(r.rt.awsvpcNet, "/", 2)[1]
			}
		}
		mc.Networks = []metadata.Network{nw}
		t.Containers = append(t.Containers, mc)
	}
	return t
}

// applyOverrides applies a task's container overrides to a definition.
func applyOverrides(cd ecsapi.ContainerDefinition, o *ecsapi.TaskOverride) ecsapi.ContainerDefinition {
	if o == nil {
		return cd
	}
	for _, co := range o.ContainerOverrides {
		if deref(co.Name) != deref(cd.Name) {
			continue
		}
		if co.Command != nil {
			cd.Command = co.Command
		}
		if len(co.Environment) > 0 {
			cd.Environment = append(slices.Clone(cd.Environment), co.Environment...)
		}
		if co.Cpu != nil {
			cd.Cpu = co.Cpu
		}
		if co.Memory != nil {
			cd.Memory = co.Memory
		}
		if co.MemoryReservation != nil {
			cd.MemoryReservation = co.MemoryReservation
		}
	}
	return cd
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
