package dockerdriver

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
)

// TaskInfo is the task-level input of the translation.
type TaskInfo struct {
	Cluster  string // cluster name or ARN, as the agent knows it
	TaskARN  string
	Instance string // the agent's container instance ARN
	Family   string
	Revision int32

	NetworkMode ecsapi.NetworkMode // "" is bridge
	PidMode     ecsapi.PidMode
	IpcMode     ecsapi.IpcMode
	Volumes     []ecsapi.Volume
}

// TaskInfoFromDefinition fills the task-definition fields of a TaskInfo.
func TaskInfoFromDefinition(cluster, taskARN, instance string, td ecsapi.TaskDefinition) TaskInfo {
	t := TaskInfo{Cluster: cluster, TaskARN: taskARN, Instance: instance, Volumes: td.Volumes}
	if td.Family != nil {
		t.Family = *td.Family
	}
	if td.Revision != nil {
		t.Revision = *td.Revision
	}
	if td.NetworkMode != nil {
		t.NetworkMode = *td.NetworkMode
	}
	if td.PidMode != nil {
		t.PidMode = *td.PidMode
	}
	if td.IpcMode != nil {
		t.IpcMode = *td.IpcMode
	}
	return t
}

// TaskID is the last part of the task ARN.
func (t TaskInfo) TaskID() string {
	return t.TaskARN[strings.LastIndex(t.TaskARN, "/")+1:]
}

func (t TaskInfo) networkMode() ecsapi.NetworkMode {
	if t.NetworkMode == "" {
		return ecsapi.NetworkModeBridge
	}
	return t.NetworkMode
}

// Options are the agent's runtime inputs to the translation.
type Options struct {
	// Image replaces the definition's image (e.g. the resolved digest).
	Image string
	// Containers maps the names of the task's other containers to their
	// Docker ids or names, for links and volumesFrom.
	Containers map[string]string
	// NetworkContainer, when set, makes the container join that
	// container's network namespace (NetworkMode "container:<id>"): how an
	// awsvpc task (required) or a task with a proxy shares one network
	// stack. Port mappings then belong on the network container (see
	// PortConfig).
	NetworkContainer string
	// Network attaches a bridge-mode container to this user-defined
	// network instead of Docker's default bridge, reachable under
	// NetworkAliases.
	Network        string
	NetworkAliases []string
	// NamespaceContainer is the container whose PID and IPC namespaces the
	// task's containers share when pidMode or ipcMode is "task".
	NamespaceContainer string
	// VolumeNames overrides the Docker volume names VolumeName picks.
	VolumeNames map[string]string
	// DNS are the resolvers the container gets when its definition names
	// none (dnsServers): the agent's task DNS (docs/cloud-map.md). Not
	// applied to containers that join another's network or use the host's.
	DNS []netip.Addr
	// Env is set by the agent (ECS_CONTAINER_METADATA_URI_V4, ...) and
	// overrides the definition's variables of the same name.
	Env map[string]string
	// Labels are extra labels; they do not override ECS's or Berth's.
	Labels map[string]string
	// LogDriver maps the log configurations the translation does not map
	// itself (awslogs, awsfirelens, secret options). Nil: those are
	// Invalid.
	LogDriver func(ecsapi.LogConfiguration) (container.LogConfig, error)
	// DefaultStopTimeout applies when the definition has no stopTimeout;
	// zero is 30s (ECS_CONTAINER_STOP_TIMEOUT's default).
	DefaultStopTimeout time.Duration
}

// DefaultStopTimeout is ECS's time between SIGTERM and SIGKILL.
const DefaultStopTimeout = 30 * time.Second

// MinMemoryBytes is the smallest memory limit Docker accepts (6 MiB); a
// smaller hard limit is raised to it, as ECS's agent does.
const MinMemoryBytes = 6 << 20

const mib = 1 << 20

// ECS's health check defaults (seconds).
const (
	defaultHealthInterval = 30
	defaultHealthTimeout  = 5
	defaultHealthRetries  = 3
)

// StopTimeout is the container's time between SIGTERM and SIGKILL: its
// stopTimeout, else def, else DefaultStopTimeout.
func StopTimeout(cd ecsapi.ContainerDefinition, def time.Duration) time.Duration {
	switch {
	case cd.StopTimeout != nil:
		return time.Duration(*cd.StopTimeout) * time.Second
	case def > 0:
		return def
	}
	return DefaultStopTimeout
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// DockerName is the Docker container name of a task's container:
// "berth-<family>-<revision>-<container>-<task id>", like ECS's
// "ecs-<family>-<revision>-<container>-<random>" but stable, so that a
// retried create after a lost answer finds the container it made.
func DockerName(task TaskInfo, containerName string) string {
	n := fmt.Sprintf("berth-%s-%d-%s-%s", task.Family, task.Revision, containerName, task.TaskID())
	return unsafeName.ReplaceAllString(n, "_")
}

// VolumeSpec is a Docker volume a task needs before its containers start.
type VolumeSpec struct {
	Name       string // Docker volume name
	TaskVolume string // the volume's name in the task definition
	Driver     string // "" is local
	DriverOpts map[string]string
	Labels     map[string]string
	// Scope "task" volumes go with the task; "shared" ones outlive it.
	Scope ecsapi.Scope
	// Autoprovision: create a missing shared volume (else it must exist).
	Autoprovision bool
}

// VolumeName is the Docker volume name of a task volume that is a Docker
// volume: its own name for a shared volume, else
// "berth-<task id>-<volume>".
func VolumeName(task TaskInfo, v ecsapi.Volume) string {
	name := deref(v.Name)
	if c := v.DockerVolumeConfiguration; c != nil && c.Scope != nil && *c.Scope == ecsapi.ScopeShared {
		return name
	}
	return unsafeName.ReplaceAllString("berth-"+task.TaskID()+"-"+name, "_")
}

// TaskVolumes lists the Docker volumes the task needs: one for each
// dockerVolumeConfiguration volume and one for each volume with neither a
// host path nor another configuration (ECS's "empty" volume, scoped to the
// task). Host bind mounts need none. EFS, FSx and S3 Files volumes are
// Invalid.
func TaskVolumes(task TaskInfo, opts Options) ([]VolumeSpec, error) {
	var out []VolumeSpec
	for _, v := range task.Volumes {
		name := deref(v.Name)
		if name == "" {
			return nil, invalidOption("volumes", "a volume has no name")
		}
		switch {
		case v.EfsVolumeConfiguration != nil:
			return nil, unsupported("volumes["+name+"].efsVolumeConfiguration", "EFS volumes are not supported yet")
		case v.FsxWindowsFileServerVolumeConfiguration != nil:
			return nil, unsupported("volumes["+name+"].fsxWindowsFileServerVolumeConfiguration", "FSx volumes are not supported")
		case v.S3filesVolumeConfiguration != nil:
			return nil, unsupported("volumes["+name+"].s3filesVolumeConfiguration", "S3 Files volumes are not supported")
		case v.Host != nil && deref(v.Host.SourcePath) != "":
			continue
		}
		spec := VolumeSpec{Name: dockerVolumeName(task, opts, v), TaskVolume: name, Scope: ecsapi.ScopeTask,
			Labels: map[string]string{LabelManaged: "true", LabelVolume: name}}
		if c := v.DockerVolumeConfiguration; c != nil {
			spec.Driver = deref(c.Driver)
			spec.DriverOpts = c.DriverOpts
			maps.Copy(spec.Labels, c.Labels)
			if c.Scope != nil && *c.Scope != "" {
				spec.Scope = *c.Scope
			}
			spec.Autoprovision = c.Autoprovision != nil && *c.Autoprovision
		}
		if spec.Scope == ecsapi.ScopeTask {
			spec.Labels[LabelTaskARN] = task.TaskARN
			if task.Instance != "" {
				spec.Labels[LabelInstance] = task.Instance
			}
		}
		out = append(out, spec)
	}
	return out, nil
}

func dockerVolumeName(task TaskInfo, opts Options, v ecsapi.Volume) string {
	if n, ok := opts.VolumeNames[deref(v.Name)]; ok && n != "" {
		return n
	}
	return VolumeName(task, v)
}

// ContainerConfig translates a container definition of a task into
// Docker's configuration; docs/docker-driver.md has the table. It does no
// I/O. Options it cannot honour yield an Invalid error with reason
// ReasonUnsupportedOption naming the option. dependsOn, essential,
// startTimeout, restartPolicy, versionConsistency and repositoryCredentials
// are the task runner's business and are ignored here; environmentFiles are
// ignored (Berth does not read S3 objects).
func ContainerConfig(task TaskInfo, cd ecsapi.ContainerDefinition, opts Options) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	name := deref(cd.Name)
	if name == "" {
		return nil, nil, nil, invalidOption("name", "the container has no name")
	}
	fail := func(err error) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
		return nil, nil, nil, &errs.Error{Kind: errs.KindOf(err), Reason: errs.ReasonOf(err),
			Msg: "container " + name + ": " + errs.MessageOf(err)}
	}
	if err := rejectUnsupported(cd); err != nil {
		return fail(err)
	}

	cfg := &container.Config{
		Image:      opts.Image,
		Cmd:        cd.Command,
		Entrypoint: cd.EntryPoint,
		WorkingDir: deref(cd.WorkingDirectory),
		User:       deref(cd.User),
		Tty:        derefBool(cd.PseudoTerminal),
		OpenStdin:  derefBool(cd.Interactive),
		Env:        environment(cd.Environment, opts.Env),
		Labels:     labels(task, name, cd.DockerLabels, opts.Labels),
	}
	if cfg.Image == "" {
		cfg.Image = deref(cd.Image)
	}
	if cfg.Image == "" {
		return fail(invalidOption("image", "the container has no image"))
	}
	if derefBool(cd.DisableNetworking) {
		cfg.NetworkDisabled = true
	}
	stop := int(StopTimeout(cd, opts.DefaultStopTimeout) / time.Second)
	cfg.StopTimeout = &stop

	host := &container.HostConfig{
		Privileged:     derefBool(cd.Privileged),
		ReadonlyRootfs: derefBool(cd.ReadonlyRootFilesystem),
		SecurityOpt:    cd.DockerSecurityOptions,
		DNSSearch:      cd.DnsSearchDomains,
	}
	if len(cd.DnsServers) > 0 {
		for _, s := range cd.DnsServers {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return fail(invalidOption("dnsServers", fmt.Sprintf("%q is not an IP address", s)))
			}
			host.DNS = append(host.DNS, a)
		}
	}
	if len(cd.DnsServers) == 0 && len(opts.DNS) > 0 && opts.NetworkContainer == "" && task.networkMode() != ecsapi.NetworkModeHost {
		host.DNS = append(host.DNS, opts.DNS...)
	}
	for _, h := range cd.ExtraHosts {
		hn, ip := deref(h.Hostname), deref(h.IpAddress)
		if hn == "" || ip == "" {
			return fail(invalidOption("extraHosts", "an entry needs hostname and ipAddress"))
		}
		host.ExtraHosts = append(host.ExtraHosts, hn+":"+ip)
	}
	if len(cd.SystemControls) > 0 {
		host.Sysctls = make(map[string]string, len(cd.SystemControls))
		for _, s := range cd.SystemControls {
			if deref(s.Namespace) == "" {
				return fail(invalidOption("systemControls", "an entry has no namespace"))
			}
			host.Sysctls[deref(s.Namespace)] = deref(s.Value)
		}
	}
	if err := resources(cd, &host.Resources); err != nil {
		return fail(err)
	}
	if err := linuxParameters(cd, host); err != nil {
		return fail(err)
	}
	hc, err := healthcheck(cd.HealthCheck)
	if err != nil {
		return fail(err)
	}
	cfg.Healthcheck = hc
	if host.LogConfig, err = logConfig(cd.LogConfiguration, opts.LogDriver); err != nil {
		return fail(err)
	}
	if host.Binds, err = binds(task, opts, cd.MountPoints); err != nil {
		return fail(err)
	}
	for _, vf := range cd.VolumesFrom {
		src := deref(vf.SourceContainer)
		id, ok := opts.Containers[src]
		if !ok || id == "" {
			return fail(invalidOption("volumesFrom", fmt.Sprintf("source container %q is not in the task (or not created yet)", src)))
		}
		if derefBool(vf.ReadOnly) {
			id += ":ro"
		}
		host.VolumesFrom = append(host.VolumesFrom, id)
	}
	if err := namespaces(task, opts, host); err != nil {
		return fail(err)
	}
	netCfg, err := networking(task, cd, opts, cfg, host)
	if err != nil {
		return fail(err)
	}
	return cfg, host, netCfg, nil
}

// rejectUnsupported fails on options Berth cannot honour yet.
func rejectUnsupported(cd ecsapi.ContainerDefinition) error {
	switch {
	case len(cd.Secrets) > 0:
		return unsupported("secrets", "secrets from Secrets Manager or SSM are not supported yet")
	case cd.FirelensConfiguration != nil:
		return unsupported("firelensConfiguration", "FireLens is not supported yet")
	case len(cd.ResourceRequirements) > 0:
		return unsupported("resourceRequirements", "GPU and inference accelerator requirements are not supported yet")
	case len(cd.CredentialSpecs) > 0:
		return unsupported("credentialSpecs", "gMSA credential specs are not supported")
	}
	return nil
}

// environment renders the variables in definition order, the last of
// duplicates winning, then the agent's own in name order.
func environment(kvs []ecsapi.KeyValuePair, agent map[string]string) []string {
	var order []string
	vals := map[string]string{}
	for _, kv := range kvs {
		n := deref(kv.Name)
		if n == "" {
			continue
		}
		if _, seen := vals[n]; !seen {
			order = append(order, n)
		}
		vals[n] = deref(kv.Value)
	}
	for _, n := range slices.Sorted(maps.Keys(agent)) {
		if _, seen := vals[n]; !seen {
			order = append(order, n)
		}
		vals[n] = agent[n]
	}
	if len(order) == 0 {
		return nil
	}
	env := make([]string, 0, len(order))
	for _, n := range order {
		env = append(env, n+"="+vals[n])
	}
	return env
}

// labels merges, lowest priority first: the definition's dockerLabels, the
// agent's extra labels, ECS's labels, Berth's labels.
func labels(task TaskInfo, name string, docker, extra map[string]string) map[string]string {
	l := make(map[string]string, len(docker)+len(extra)+10)
	maps.Copy(l, docker)
	maps.Copy(l, extra)
	if task.Cluster != "" {
		l[LabelECSCluster] = task.Cluster
		l[LabelCluster] = task.Cluster
	}
	l[LabelECSTaskARN] = task.TaskARN
	l[LabelECSContainerName] = name
	l[LabelECSTaskFamily] = task.Family
	l[LabelECSTaskDefVersion] = strconv.Itoa(int(task.Revision))
	l[LabelManaged] = "true"
	l[LabelTaskARN] = task.TaskARN
	l[LabelContainerName] = name
	if task.Instance != "" {
		l[LabelInstance] = task.Instance
	}
	return l
}

// resources maps cpu, memory and memoryReservation.
func resources(cd ecsapi.ContainerDefinition, r *container.Resources) error {
	// Docker treats 0 shares as 1024, and the kernel rejects 1: ECS's agent
	// raises anything below 2 to 2.
	r.CPUShares = 2
	if cd.Cpu != nil && *cd.Cpu > 2 {
		r.CPUShares = int64(*cd.Cpu)
	}
	if cd.Memory != nil {
		if *cd.Memory <= 0 {
			return invalidOption("memory", "must be positive")
		}
		r.Memory = max(int64(*cd.Memory)*mib, MinMemoryBytes)
	}
	if cd.MemoryReservation != nil {
		if *cd.MemoryReservation <= 0 {
			return invalidOption("memoryReservation", "must be positive")
		}
		r.MemoryReservation = int64(*cd.MemoryReservation) * mib
		if cd.Memory != nil && *cd.MemoryReservation > *cd.Memory {
			return invalidOption("memoryReservation", "must not exceed memory")
		}
	}
	for _, u := range cd.Ulimits {
		if u.Name == nil || u.SoftLimit == nil || u.HardLimit == nil {
			return invalidOption("ulimits", "an entry needs name, softLimit and hardLimit")
		}
		if *u.SoftLimit > *u.HardLimit {
			return invalidOption("ulimits", fmt.Sprintf("%s: softLimit exceeds hardLimit", *u.Name))
		}
		r.Ulimits = append(r.Ulimits, &container.Ulimit{Name: string(*u.Name), Soft: int64(*u.SoftLimit), Hard: int64(*u.HardLimit)})
	}
	return nil
}

// linuxParameters maps capabilities, devices, init, shared memory, tmpfs
// and swap.
func linuxParameters(cd ecsapi.ContainerDefinition, host *container.HostConfig) error {
	lp := cd.LinuxParameters
	if lp == nil {
		return nil
	}
	if c := lp.Capabilities; c != nil {
		host.CapAdd = c.Add
		host.CapDrop = c.Drop
	}
	if lp.InitProcessEnabled != nil && *lp.InitProcessEnabled {
		t := true
		host.Init = &t
	}
	if lp.SharedMemorySize != nil {
		if *lp.SharedMemorySize <= 0 {
			return invalidOption("linuxParameters.sharedMemorySize", "must be positive")
		}
		host.ShmSize = int64(*lp.SharedMemorySize) * mib
	}
	for _, dev := range lp.Devices {
		hp := deref(dev.HostPath)
		if hp == "" {
			return invalidOption("linuxParameters.devices", "a device has no hostPath")
		}
		cp := deref(dev.ContainerPath)
		if cp == "" {
			cp = hp
		}
		perms := "rwm"
		if len(dev.Permissions) > 0 {
			perms = ""
			for _, p := range []ecsapi.DeviceCgroupPermission{ecsapi.DeviceCgroupPermissionRead,
				ecsapi.DeviceCgroupPermissionWrite, ecsapi.DeviceCgroupPermissionMknod} {
				if slices.Contains(dev.Permissions, p) {
					perms += string(p[0])
				}
			}
		}
		host.Devices = append(host.Devices, container.DeviceMapping{PathOnHost: hp, PathInContainer: cp, CgroupPermissions: perms})
	}
	if len(lp.Tmpfs) > 0 {
		host.Tmpfs = make(map[string]string, len(lp.Tmpfs))
		for _, t := range lp.Tmpfs {
			p := deref(t.ContainerPath)
			if p == "" || t.Size == nil || *t.Size <= 0 {
				return invalidOption("linuxParameters.tmpfs", "an entry needs containerPath and a positive size")
			}
			o := append([]string{fmt.Sprintf("size=%dm", *t.Size)}, t.MountOptions...)
			host.Tmpfs[p] = strings.Join(o, ",")
		}
	}
	if lp.MaxSwap != nil {
		if cd.Memory == nil {
			return invalidOption("linuxParameters.maxSwap", "requires the container's memory limit")
		}
		if *lp.MaxSwap < 0 {
			return invalidOption("linuxParameters.maxSwap", "must not be negative")
		}
		host.MemorySwap = host.Memory + int64(*lp.MaxSwap)*mib
	}
	if lp.Swappiness != nil {
		if *lp.Swappiness < 0 || *lp.Swappiness > 100 {
			return invalidOption("linuxParameters.swappiness", "must be within 0..100")
		}
		s := int64(*lp.Swappiness)
		host.MemorySwappiness = &s
	}
	return nil
}

// healthcheck maps an ECS health check with ECS's defaults.
func healthcheck(h *ecsapi.HealthCheck) (*container.HealthConfig, error) {
	if h == nil {
		return nil, nil
	}
	if len(h.Command) == 0 {
		return nil, invalidOption("healthCheck.command", "is empty")
	}
	switch h.Command[0] {
	case "CMD", "CMD-SHELL":
		if len(h.Command) < 2 {
			return nil, invalidOption("healthCheck.command", h.Command[0]+" needs a command")
		}
	case "NONE":
	default:
		return nil, invalidOption("healthCheck.command", `must start with "CMD" or "CMD-SHELL"`)
	}
	secs := func(p *int32, def int32) time.Duration {
		if p == nil {
			return time.Duration(def) * time.Second
		}
		return time.Duration(*p) * time.Second
	}
	retries := int32(defaultHealthRetries)
	if h.Retries != nil {
		retries = *h.Retries
	}
	return &container.HealthConfig{
		Test:        h.Command,
		Interval:    secs(h.Interval, defaultHealthInterval),
		Timeout:     secs(h.Timeout, defaultHealthTimeout),
		StartPeriod: secs(h.StartPeriod, 0),
		Retries:     int(retries),
	}, nil
}

// Log drivers that exist in every Docker Engine and need nothing of Berth.
var dockerLogDrivers = []ecsapi.LogDriver{ecsapi.LogDriverJsonFile, ecsapi.LogDriverSyslog,
	ecsapi.LogDriverJournald, ecsapi.LogDriverGelf, ecsapi.LogDriverFluentd, ecsapi.LogDriverSplunk}

func logConfig(lc *ecsapi.LogConfiguration, hook func(ecsapi.LogConfiguration) (container.LogConfig, error)) (container.LogConfig, error) {
	if lc == nil {
		return container.LogConfig{}, nil
	}
	driver := deref(lc.LogDriver)
	if slices.Contains(dockerLogDrivers, driver) && len(lc.SecretOptions) == 0 {
		return container.LogConfig{Type: string(driver), Config: maps.Clone(lc.Options)}, nil
	}
	if hook != nil {
		return hook(*lc)
	}
	if len(lc.SecretOptions) > 0 {
		return container.LogConfig{}, unsupported("logConfiguration.secretOptions", "log secret options are not supported yet")
	}
	return container.LogConfig{}, unsupported("logConfiguration.logDriver",
		fmt.Sprintf("log driver %q is not supported yet", driver))
}

// binds maps mountPoints to Docker binds: a host path for host volumes,
// the Docker volume otherwise.
func binds(task TaskInfo, opts Options, mps []ecsapi.MountPoint) ([]string, error) {
	var out []string
	for _, mp := range mps {
		src, dst := deref(mp.SourceVolume), deref(mp.ContainerPath)
		if src == "" || dst == "" {
			return nil, invalidOption("mountPoints", "an entry needs sourceVolume and containerPath")
		}
		i := slices.IndexFunc(task.Volumes, func(v ecsapi.Volume) bool { return deref(v.Name) == src })
		if i < 0 {
			return nil, invalidOption("mountPoints", fmt.Sprintf("sourceVolume %q is not a volume of the task", src))
		}
		v := task.Volumes[i]
		var from string
		switch {
		case v.EfsVolumeConfiguration != nil || v.FsxWindowsFileServerVolumeConfiguration != nil || v.S3filesVolumeConfiguration != nil:
			return nil, unsupported("mountPoints", fmt.Sprintf("volume %q is of a kind Berth does not support", src))
		case v.Host != nil && deref(v.Host.SourcePath) != "":
			from = deref(v.Host.SourcePath)
		default:
			from = dockerVolumeName(task, opts, v)
		}
		b := from + ":" + dst
		if derefBool(mp.ReadOnly) {
			b += ":ro"
		}
		out = append(out, b)
	}
	return out, nil
}

// namespaces maps the task's pidMode and ipcMode.
func namespaces(task TaskInfo, opts Options, host *container.HostConfig) error {
	shared := func(option string) (string, error) {
		if opts.NamespaceContainer == "" {
			return "", invalidOption(option, `"task" needs a namespace container (Options.NamespaceContainer)`)
		}
		return "container:" + opts.NamespaceContainer, nil
	}
	switch task.PidMode {
	case "":
	case ecsapi.PidModeHost:
		host.PidMode = "host"
	case ecsapi.PidModeTask:
		m, err := shared("pidMode")
		if err != nil {
			return err
		}
		host.PidMode = container.PidMode(m)
	default:
		return invalidOption("pidMode", fmt.Sprintf("unknown mode %q", task.PidMode))
	}
	switch task.IpcMode {
	case "":
	case ecsapi.IpcModeHost:
		host.IpcMode = container.IPCModeHost
	case ecsapi.IpcModeNone:
		host.IpcMode = container.IPCModeNone
	case ecsapi.IpcModeTask:
		m, err := shared("ipcMode")
		if err != nil {
			return err
		}
		host.IpcMode = container.IpcMode(m)
	default:
		return invalidOption("ipcMode", fmt.Sprintf("unknown mode %q", task.IpcMode))
	}
	return nil
}

// networking sets the network mode, hostname, links and ports.
func networking(task TaskInfo, cd ecsapi.ContainerDefinition, opts Options, cfg *container.Config, host *container.HostConfig) (*network.NetworkingConfig, error) {
	mode := task.networkMode()
	hostname := deref(cd.Hostname)
	if opts.NetworkContainer != "" {
		// The network stack is another container's: Docker refuses
		// hostname, DNS, extra hosts, links and ports here.
		for _, o := range []struct {
			option string
			set    bool
		}{{"hostname", hostname != ""}, {"dnsServers", len(cd.DnsServers) > 0}, {"dnsSearchDomains", len(cd.DnsSearchDomains) > 0},
			{"extraHosts", len(cd.ExtraHosts) > 0}, {"links", len(cd.Links) > 0}} {
			if o.set {
				return nil, invalidOption(o.option, fmt.Sprintf("not supported in %s network mode (the task shares one network namespace)", mode))
			}
		}
		if mode == ecsapi.NetworkModeHost {
			return nil, invalidOption("networkMode", "host mode cannot join a network container")
		}
		host.NetworkMode = container.NetworkMode("container:" + opts.NetworkContainer)
		return nil, nil
	}
	switch mode {
	case ecsapi.NetworkModeBridge:
		cfg.Hostname = hostname
		links, err := dockerLinks(cd.Links, opts.Containers)
		if err != nil {
			return nil, err
		}
		host.Links = links
		exposed, bindings, err := PortConfig(mode, cd.PortMappings)
		if err != nil {
			return nil, err
		}
		cfg.ExposedPorts, host.PortBindings = exposed, bindings
		host.NetworkMode = "bridge"
		if opts.Network != "" {
			host.NetworkMode = container.NetworkMode(opts.Network)
			return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
				opts.Network: {Aliases: opts.NetworkAliases},
			}}, nil
		}
		return nil, nil
	case ecsapi.NetworkModeHost:
		if hostname != "" {
			return nil, invalidOption("hostname", "not supported in host network mode")
		}
		if len(cd.Links) > 0 {
			return nil, invalidOption("links", "only supported in bridge network mode")
		}
		exposed, _, err := PortConfig(mode, cd.PortMappings)
		if err != nil {
			return nil, err
		}
		cfg.ExposedPorts = exposed
		host.NetworkMode = "host"
		return nil, nil
	case ecsapi.NetworkModeNone:
		if len(cd.Links) > 0 {
			return nil, invalidOption("links", "only supported in bridge network mode")
		}
		if len(cd.PortMappings) > 0 {
			return nil, invalidOption("portMappings", "not supported in none network mode")
		}
		cfg.Hostname = hostname
		host.NetworkMode = "none"
		return nil, nil
	case ecsapi.NetworkModeAwsvpc:
		return nil, invalidOption("networkMode", "awsvpc needs the task's network namespace container (Options.NetworkContainer)")
	}
	return nil, invalidOption("networkMode", fmt.Sprintf("unknown mode %q", mode))
}

// dockerLinks maps "name[:alias]" links to Docker's "container:alias".
func dockerLinks(links []string, containers map[string]string) ([]string, error) {
	var out []string
	for _, l := range links {
		name, alias, _ := strings.Cut(l, ":")
		if alias == "" {
			alias = name
		}
		target, ok := containers[name]
		if !ok || target == "" {
			return nil, invalidOption("links", fmt.Sprintf("container %q is not in the task (or not created yet)", name))
		}
		out = append(out, target+":"+alias)
	}
	return out, nil
}

// maxPortRange bounds containerPortRange expansion.
const maxPortRange = 10000

// PortConfig maps port mappings to Docker's exposed ports and host
// bindings for a network mode. Bridge mode binds each port on the host
// (hostPort 0 or absent: an ephemeral port Docker picks); host mode
// exposes the ports without bindings (hostPort, if set, must equal
// containerPort); awsvpc behaves like bridge for the network container
// that carries the task's ports.
func PortConfig(mode ecsapi.NetworkMode, mappings []ecsapi.PortMapping) (network.PortSet, network.PortMap, error) {
	if len(mappings) == 0 {
		return nil, nil, nil
	}
	exposed := network.PortSet{}
	var bindings network.PortMap
	if mode != ecsapi.NetworkModeHost {
		bindings = network.PortMap{}
	}
	for _, pm := range mappings {
		proto := network.TCP
		if pm.Protocol != nil && *pm.Protocol != "" {
			switch *pm.Protocol {
			case ecsapi.TransportProtocolTcp:
			case ecsapi.TransportProtocolUdp:
				proto = network.UDP
			default:
				return nil, nil, invalidOption("portMappings.protocol", fmt.Sprintf("%q: want tcp or udp", *pm.Protocol))
			}
		}
		var lo, hi int32
		switch {
		case pm.ContainerPort != nil && pm.ContainerPortRange != nil:
			return nil, nil, invalidOption("portMappings", "containerPort and containerPortRange are exclusive")
		case pm.ContainerPort != nil:
			lo, hi = *pm.ContainerPort, *pm.ContainerPort
		case pm.ContainerPortRange != nil:
			a, b, ok := strings.Cut(*pm.ContainerPortRange, "-")
			l, err1 := strconv.Atoi(strings.TrimSpace(a))
			h, err2 := strconv.Atoi(strings.TrimSpace(b))
			if !ok || err1 != nil || err2 != nil || l > h || h-l >= maxPortRange {
				return nil, nil, invalidOption("portMappings.containerPortRange", fmt.Sprintf("%q: want \"low-high\"", *pm.ContainerPortRange))
			}
			if pm.HostPort != nil && *pm.HostPort != 0 {
				return nil, nil, invalidOption("portMappings.hostPort", "not allowed with containerPortRange")
			}
			lo, hi = int32(l), int32(h)
		default:
			return nil, nil, invalidOption("portMappings", "an entry needs containerPort or containerPortRange")
		}
		if lo < 1 || hi > 65535 {
			return nil, nil, invalidOption("portMappings.containerPort", "must be within 1..65535")
		}
		hostPort := int32(0)
		if pm.HostPort != nil {
			hostPort = *pm.HostPort
		}
		if hostPort < 0 || hostPort > 65535 {
			return nil, nil, invalidOption("portMappings.hostPort", "must be within 0..65535")
		}
		if mode == ecsapi.NetworkModeHost && hostPort != 0 && hostPort != lo {
			return nil, nil, invalidOption("portMappings.hostPort", "must equal containerPort in host network mode")
		}
		for p := lo; p <= hi; p++ {
			port, _ := network.PortFrom(uint16(p), proto)
			exposed[port] = struct{}{}
			if bindings != nil {
				hp := ""
				if hostPort != 0 {
					hp = strconv.Itoa(int(hostPort))
				}
				bindings[port] = append(bindings[port], network.PortBinding{HostPort: hp})
			}
		}
	}
	return exposed, bindings, nil
}

func invalidOption(option, why string) error {
	return errs.R(errs.Invalid, "", "%s: %s", option, why)
}

func unsupported(option, why string) error {
	return errs.R(errs.Invalid, ReasonUnsupportedOption, "%s: %s", option, why)
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func derefBool(p *bool) bool { return p != nil && *p }
