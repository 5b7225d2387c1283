package taskdef

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/lazyre"
)

// result is what validation learned that later steps need.
type result struct {
	mode     ecsapi.NetworkMode // the network mode in effect: bridge when none is given
	modeSet  bool               // networkMode was given
	cpu      int                // task cpu units; 0: not given
	memory   int                // task memory MiB; 0: not given
	requires map[ecsapi.Compatibility]bool
	windows  bool // runtimePlatform names a Windows family
}

var (
	// nameRE is the charset of families, container names and volume names.
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// portNameRE is the charset of port mapping names (Service Connect).
	portNameRE = lazyre.New(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	// portRangeRE is a containerPortRange: "start-end".
	portRangeRE = regexp.MustCompile(`^([0-9]{1,5})-([0-9]{1,5})$`)
)

const maxNameLen = 255

// Messages ECS uses for task cpu and memory out of range.
const (
	taskCPUMsg    = "Invalid 'cpu' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
	taskMemoryMsg = "Invalid 'memory' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
)

// minContainerMemory is the least memory (and memoryReservation) in MiB a
// container may have: Docker 20.10 and later refuse less.
const minContainerMemory = 6

// Health check bounds, seconds or counts.
var healthBounds = []struct {
	name     string
	get      func(*ecsapi.HealthCheck) *int32
	min, max int32
}{
	{"interval", func(h *ecsapi.HealthCheck) *int32 { return h.Interval }, 5, 300},
	{"timeout", func(h *ecsapi.HealthCheck) *int32 { return h.Timeout }, 2, 120},
	{"retries", func(h *ecsapi.HealthCheck) *int32 { return h.Retries }, 1, 10},
	{"startPeriod", func(h *ecsapi.HealthCheck) *int32 { return h.StartPeriod }, 0, 300},
}

// validate applies ECS's rules to td (a copy of the request) and returns
// the first violation in ECS's wording.
func validate(td *ecsapi.TaskDefinition) (*result, error) {
	family := deref(td.Family)
	switch {
	case strings.TrimSpace(family) == "":
		return nil, clientErr("Family can not be blank.")
	case len(family) > maxNameLen || !nameRE.MatchString(family):
		return nil, clientErr("Family contains invalid characters.")
	}
	switch n := len(td.ContainerDefinitions); {
	case n == 0:
		return nil, clientErr("Container list cannot be empty.")
	case n > MaxContainers:
		return nil, clientErr("Too many containers.")
	}

	res := &result{mode: ecsapi.NetworkModeBridge, requires: map[ecsapi.Compatibility]bool{}}
	if td.NetworkMode != nil {
		res.mode, res.modeSet = *td.NetworkMode, true
	}
	for _, c := range td.RequiresCompatibilities {
		res.requires[c] = true
	}
	if rp := td.RuntimePlatform; rp != nil && strings.HasPrefix(string(deref(rp.OperatingSystemFamily)), "WINDOWS") {
		res.windows = true
	}
	fargate := res.requires[ecsapi.CompatibilityFargate]

	if td.Cpu != nil {
		n, err := ParseCPU(*td.Cpu)
		if err != nil {
			return nil, paramErr("Invalid 'cpu' setting for task.")
		}
		if !fargate && (n < minEC2TaskCPU || n > maxEC2TaskCPU) {
			return nil, clientErr(taskCPUMsg)
		}
		res.cpu = n
	}
	if td.Memory != nil {
		n, err := ParseMemory(*td.Memory)
		if err != nil {
			return nil, paramErr("Invalid 'memory' setting for task.")
		}
		if n == 0 {
			return nil, clientErr(taskMemoryMsg)
		}
		res.memory = n
	}

	byName := make(map[string]*ecsapi.ContainerDefinition, len(td.ContainerDefinitions))
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		if err := checkContainer(td, c, res); err != nil {
			return nil, err
		}
		name := deref(c.Name)
		if byName[name] != nil {
			return nil, clientErr("Container names must be unique within a Task Definition.")
		}
		byName[name] = c
	}
	if err := checkTotals(td, res); err != nil {
		return nil, err
	}
	volumes, err := checkVolumes(td)
	if err != nil {
		return nil, err
	}
	ports := &portTable{names: map[string]bool{}}
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		if err := checkRelations(c, byName, volumes, res); err != nil {
			return nil, err
		}
		if err := ports.check(c, res); err != nil {
			return nil, err
		}
	}
	if err := checkCycles(td, byName); err != nil {
		return nil, err
	}
	if pc := td.ProxyConfiguration; pc != nil && byName[deref(pc.ContainerName)] == nil {
		return nil, clientErr("The proxy configuration container '%s' is not defined in the task definition.", deref(pc.ContainerName))
	}
	if es := td.EphemeralStorage; es != nil && es.SizeInGiB != nil && (*es.SizeInGiB < 21 || *es.SizeInGiB > 200) {
		return nil, clientErr("The ephemeral storage size must be between 21 GiB and 200 GiB.")
	}
	if fargate {
		if err := fargateProblem(td, res); err != nil {
			return nil, err
		}
	}
	if res.requires[ecsapi.CompatibilityExternal] && res.mode == ecsapi.NetworkModeAwsvpc {
		return nil, clientErr("Task definitions that require EXTERNAL compatibility do not support networkMode 'awsvpc'.")
	}
	return res, nil
}

// checkContainer applies the rules that concern one container alone.
func checkContainer(td *ecsapi.TaskDefinition, c *ecsapi.ContainerDefinition, res *result) error {
	name := deref(c.Name)
	switch {
	case name == "":
		return clientErr("Container.name should not be null or empty.")
	case len(name) > maxNameLen || !nameRE.MatchString(name):
		return clientErr("Container.name contains invalid characters.")
	}
	image := deref(c.Image)
	switch {
	case strings.TrimSpace(image) == "":
		return clientErr("Container.image should not be null or empty.")
	case strings.ContainsFunc(image, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return clientErr("Container.image contains invalid characters.")
	}
	if deref(c.Cpu) < 0 {
		return clientErr("Invalid 'cpu' setting for container '%s'.", name)
	}
	mem, res0 := c.Memory, c.MemoryReservation
	if mem != nil && *mem < minContainerMemory {
		return clientErr("Invalid 'memory' setting for container '%s'. The minimum is %d MiB.", name, minContainerMemory)
	}
	if res0 != nil && *res0 < minContainerMemory {
		return clientErr("Invalid 'memoryReservation' setting for container '%s'. The minimum is %d MiB.", name, minContainerMemory)
	}
	if mem != nil && res0 != nil && *res0 > *mem {
		return clientErr("Invalid 'memoryReservation' setting for container '%s'. 'memoryReservation' must be less than or equal to 'memory'.", name)
	}
	if mem == nil && res0 == nil && res.memory == 0 {
		return clientErr("Invalid setting for container '%s'. At least one of 'memory' or 'memoryReservation' must be specified.", name)
	}
	if mem != nil && res.memory > 0 && int(*mem) > res.memory {
		return clientErr("The 'memory' setting for container '%s' is greater than for the task.", name)
	}
	if c.Hostname != nil && (res.mode == ecsapi.NetworkModeAwsvpc || res.mode == ecsapi.NetworkModeHost) {
		return clientErr("hostname is not supported on container when networkMode=%s.", res.mode)
	}
	if hc := c.HealthCheck; hc != nil {
		if len(hc.Command) == 0 {
			return clientErr("Invalid 'healthCheck' setting for container '%s'. 'command' should not be null or empty.", name)
		}
		for _, b := range healthBounds {
			v := b.get(hc)
			switch {
			case v == nil:
			case *v < b.min:
				return clientErr("Health check %s must be greater than or equal to the minimum allowed value %d for container '%s'", b.name, b.min, name)
			case *v > b.max:
				return clientErr("Health check %s must be less than or equal to the maximum allowed value %d for container '%s'", b.name, b.max, name)
			}
		}
	}
	usesSecrets := len(c.Secrets) > 0 || (c.LogConfiguration != nil && len(c.LogConfiguration.SecretOptions) > 0)
	if usesSecrets && deref(td.ExecutionRoleArn) == "" {
		return clientErr("When you are specifying container secrets, you must also specify a value for 'executionRoleArn'.")
	}
	if err := checkAwslogs(c, res.requires[ecsapi.CompatibilityFargate]); err != nil {
		return err
	}
	return nil
}

// checkAwslogs requires the awslogs options the driver cannot do without:
// the log group always, the region too on Fargate (an EC2 host's driver
// can learn it from instance metadata).
func checkAwslogs(c *ecsapi.ContainerDefinition, fargate bool) error {
	lc := c.LogConfiguration
	if lc == nil || deref(lc.LogDriver) != ecsapi.LogDriverAwslogs {
		return nil
	}
	var missing []string
	if fargate && lc.Options["awslogs-region"] == "" {
		missing = append(missing, "awslogs-region")
	}
	if lc.Options["awslogs-group"] == "" {
		missing = append(missing, "awslogs-group")
	}
	if len(missing) > 0 {
		return clientErr("Log driver awslogs requires options: %s", strings.Join(missing, ", "))
	}
	return nil
}

// essential reports whether a container is essential (the default).
func essential(c *ecsapi.ContainerDefinition) bool { return c.Essential == nil || *c.Essential }

// checkTotals applies the rules over all containers together.
func checkTotals(td *ecsapi.TaskDefinition, res *result) error {
	anyEssential := false
	cpuSum, memSum, anyReservation := 0, 0, false
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		if essential(c) {
			anyEssential = true
		}
		cpuSum += int(deref(c.Cpu))
		switch {
		case c.MemoryReservation != nil:
			memSum += int(*c.MemoryReservation)
			anyReservation = true
		case c.Memory != nil:
			memSum += int(*c.Memory)
		}
	}
	if !anyEssential {
		return clientErr("Task definition doesn't have any essential container.")
	}
	if res.cpu > 0 && cpuSum > res.cpu {
		return clientErr("The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.")
	}
	if res.memory > 0 && memSum > res.memory {
		if anyReservation {
			return clientErr("The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'.")
		}
		return clientErr("The sum of all container 'memory' values cannot be greater than the value of the task 'memory'.")
	}
	return nil
}

// checkVolumes applies the volume rules and returns the volume names.
func checkVolumes(td *ecsapi.TaskDefinition) (map[string]bool, error) {
	names := make(map[string]bool, len(td.Volumes))
	for _, v := range td.Volumes {
		name := deref(v.Name)
		switch {
		case name == "":
			return nil, clientErr("Volume.name should not be null or empty.")
		case len(name) > maxNameLen || !nameRE.MatchString(name):
			return nil, clientErr("Volume.name contains invalid characters.")
		case names[name]:
			return nil, clientErr("Volume names must be unique within a Task Definition.")
		}
		names[name] = true
		kinds := 0
		for _, set := range []bool{v.Host != nil, v.DockerVolumeConfiguration != nil, v.EfsVolumeConfiguration != nil,
			v.FsxWindowsFileServerVolumeConfiguration != nil, v.S3filesVolumeConfiguration != nil} {
			if set {
				kinds++
			}
		}
		if kinds > 1 {
			return nil, clientErr("Volume '%s' can only specify one volume type.", name)
		}
	}
	return names, nil
}

// checkRelations applies the rules that tie a container to the others and
// to the task's volumes: links, volumesFrom, mountPoints, dependsOn.
func checkRelations(c *ecsapi.ContainerDefinition, byName map[string]*ecsapi.ContainerDefinition, volumes map[string]bool, res *result) error {
	name := deref(c.Name)
	if len(c.Links) > 0 && res.mode != ecsapi.NetworkModeBridge {
		return clientErr("Links are not supported when networkMode=%s.", res.mode)
	}
	for _, l := range c.Links {
		target, _, _ := strings.Cut(l, ":")
		if target == name || byName[target] == nil {
			return clientErr("Invalid 'links' setting for container '%s'. Unknown container '%s'.", name, target)
		}
	}
	for _, vf := range c.VolumesFrom {
		src := deref(vf.SourceContainer)
		if src == name || byName[src] == nil {
			return clientErr("Invalid 'volumesFrom' setting for container '%s'. Unknown container '%s'.", name, src)
		}
	}
	for _, mp := range c.MountPoints {
		if mp.SourceVolume == nil {
			return clientErr("Unknown volume 'null'.")
		}
		if !volumes[*mp.SourceVolume] {
			return clientErr("Unknown volume '%s'.", *mp.SourceVolume)
		}
		if deref(mp.ContainerPath) == "" {
			return clientErr("Invalid 'mountPoints' setting for container '%s'. 'containerPath' should not be null or empty.", name)
		}
	}
	for _, d := range c.DependsOn {
		target := deref(d.ContainerName)
		tc := byName[target]
		if tc == nil {
			// ECS's message, stray '+' included.
			return clientErr("Cannot depend on container + '%s' because it does not exist", target)
		}
		switch cond := deref(d.Condition); cond {
		case ecsapi.ContainerConditionStart:
		case ecsapi.ContainerConditionComplete, ecsapi.ContainerConditionSuccess:
			if essential(tc) {
				return clientErr("A dependency container with SUCCESS or COMPLETE condition cannot be an essential container")
			}
		case ecsapi.ContainerConditionHealthy:
			if tc.HealthCheck == nil {
				return clientErr("Container '%s' depends on container '%s' with condition HEALTHY, but '%s' has no health check.", name, target, target)
			}
		default:
			return clientErr("Invalid 'dependsOn' setting for container '%s'. Unknown condition '%s'.", name, cond)
		}
	}
	return nil
}

// checkCycles rejects dependsOn graphs with a cycle, a container depending
// on itself included.
func checkCycles(td *ecsapi.TaskDefinition, byName map[string]*ecsapi.ContainerDefinition) error {
	const (
		unseen = iota
		onPath
		done
	)
	state := make(map[string]int, len(byName))
	var path []string
	var visit func(name string) []string
	visit = func(name string) []string {
		state[name] = onPath
		path = append(path, name)
		for _, d := range byName[name].DependsOn {
			next := deref(d.ContainerName)
			if byName[next] == nil {
				continue
			}
			switch state[next] {
			case onPath:
				for i, p := range path {
					if p == next {
						return append(append([]string(nil), path[i:]...), next)
					}
				}
			case unseen:
				if cyc := visit(next); cyc != nil {
					return cyc
				}
			}
		}
		path = path[:len(path)-1]
		state[name] = done
		return nil
	}
	for i := range td.ContainerDefinitions {
		name := deref(td.ContainerDefinitions[i].Name)
		if state[name] == unseen {
			if cyc := visit(name); cyc != nil {
				return clientErr("Container dependencies contain a cycle: %s.", strings.Join(cyc, " -> "))
			}
		}
	}
	return nil
}

// portTable collects the task's port mapping names and static host ports.
type portTable struct {
	names map[string]bool
	host  []portSpan
}

// portSpan is a claimed range of static host ports.
type portSpan struct {
	proto  string
	lo, hi int
}

func (t *portTable) check(c *ecsapi.ContainerDefinition, res *result) error {
	name := deref(c.Name)
	if len(c.PortMappings) > 0 && res.mode == ecsapi.NetworkModeNone {
		return clientErr("Port mappings are not supported when networkMode=none.")
	}
	for _, pm := range c.PortMappings {
		proto := string(ecsapi.TransportProtocolTcp)
		if pm.Protocol != nil {
			proto = string(*pm.Protocol)
		}
		hostPort := -1 // no static host port
		if pm.ContainerPortRange != nil {
			lo, hi, ok := parsePortRange(*pm.ContainerPortRange)
			if !ok || pm.ContainerPort != nil || pm.HostPort != nil ||
				(res.mode != ecsapi.NetworkModeBridge && res.mode != ecsapi.NetworkModeAwsvpc) {
				return clientErr("Invalid 'containerPortRange' setting for container '%s'.", name)
			}
			if res.mode == ecsapi.NetworkModeAwsvpc {
				if err := t.claim(proto, lo, hi); err != nil {
					return err
				}
			}
		} else {
			cp := deref(pm.ContainerPort)
			if pm.ContainerPort == nil || cp < 1 || cp > 65535 {
				return clientErr("Invalid 'containerPort' setting for container '%s'.", name)
			}
			hp := deref(pm.HostPort)
			if hp < 0 || hp > 65535 {
				return clientErr("Invalid 'hostPort' setting for container '%s'.", name)
			}
			switch res.mode {
			case ecsapi.NetworkModeAwsvpc, ecsapi.NetworkModeHost:
				if hp != 0 && hp != cp {
					return clientErr("When networkMode=%s, the host ports and container ports in port mappings must match.", res.mode)
				}
				hostPort = int(cp)
			default:
				if hp != 0 {
					hostPort = int(hp)
				}
			}
		}
		if hostPort >= 0 {
			if err := t.claim(proto, hostPort, hostPort); err != nil {
				return err
			}
		}
		if pm.Name != nil {
			pn := *pm.Name
			if !portNameRE.MatchString(pn) {
				return clientErr("Invalid 'name' setting for a port mapping of container '%s'.", name)
			}
			if t.names[pn] {
				return clientErr("Port mapping names must be unique within a task definition: '%s' is used more than once.", pn)
			}
			t.names[pn] = true
		} else if pm.AppProtocol != nil {
			return clientErr("Invalid port mapping for container '%s'. 'appProtocol' can only be set together with 'name'.", name)
		}
	}
	return nil
}

// claim records static host ports lo..hi and rejects a second use of any.
func (t *portTable) claim(proto string, lo, hi int) error {
	for _, s := range t.host {
		if s.proto == proto && lo <= s.hi && s.lo <= hi {
			return clientErr("%s host port '%d' is mapped multiple times in task.", strings.ToUpper(proto), max(lo, s.lo))
		}
	}
	t.host = append(t.host, portSpan{proto, lo, hi})
	return nil
}

func parsePortRange(s string) (lo, hi int, ok bool) {
	m := portRangeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, false
	}
	lo, _ = strconv.Atoi(m[1])
	hi, _ = strconv.Atoi(m[2])
	return lo, hi, lo >= 1 && hi <= 65535 && lo < hi
}

// fargateProblem returns the first reason td cannot run on Fargate, or
// nil. It is a validation error when FARGATE is required, and decides
// whether FARGATE is among the computed compatibilities otherwise.
func fargateProblem(td *ecsapi.TaskDefinition, res *result) error {
	if !res.modeSet || res.mode != ecsapi.NetworkModeAwsvpc {
		return clientErr("Fargate only supports network mode ‘awsvpc’.")
	}
	if res.cpu == 0 {
		return clientErr("Fargate requires that 'cpu' be defined at the task level.")
	}
	if res.memory == 0 {
		return clientErr("Fargate requires that 'memory' be defined at the task level.")
	}
	if !fargateSizeOK(res.cpu, res.memory, res.windows) {
		return clientErr("No Fargate configuration exists for given values: %d CPU, %d memory. See the Amazon ECS documentation for the valid values.", res.cpu, res.memory)
	}
	if pm := deref(td.PidMode); td.PidMode != nil && pm != ecsapi.PidModeTask {
		return clientErr("Tasks using the Fargate launch type do not support pidMode '%s'. The supported value for pidMode is 'task'.", pm)
	}
	if td.IpcMode != nil {
		return clientErr("Tasks using the Fargate launch type do not support ipcMode.")
	}
	for _, v := range td.Volumes {
		if v.Host != nil && deref(v.Host.SourcePath) != "" {
			return clientErr("Fargate compatible task definitions do not support sourcePath")
		}
		if v.DockerVolumeConfiguration != nil {
			return clientErr("Fargate compatible task definitions do not support dockerVolumeConfiguration")
		}
	}
	if rp := td.RuntimePlatform; rp != nil && rp.CpuArchitecture != nil && res.windows && *rp.CpuArchitecture == ecsapi.CPUArchitectureArm64 {
		return clientErr("Fargate does not support the ARM64 CPU architecture for Windows containers.")
	}
	hasRole := deref(td.ExecutionRoleArn) != ""
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		if deref(c.Privileged) {
			return clientErr("Fargate compatible task definitions do not support privileged")
		}
		if err := fargateLinuxParameters(c); err != nil {
			return err
		}
		if len(c.DockerSecurityOptions) > 0 {
			return clientErr("Fargate compatible task definitions do not support dockerSecurityOptions")
		}
		if len(c.SystemControls) > 0 {
			for _, sc := range c.SystemControls {
				if ns := deref(sc.Namespace); !fargateSysctl(ns) {
					return clientErr("Fargate compatible task definitions do not support the systemControls namespace '%s'. Fargate supports namespaced kernel parameters (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) only.", ns)
				}
			}
		}
		if err := checkAwslogs(c, true); err != nil {
			return err
		}
		if !hasRole && c.LogConfiguration != nil && deref(c.LogConfiguration.LogDriver) == ecsapi.LogDriverAwslogs {
			return clientErr("Fargate requires task definition to have execution role ARN to support log driver awslogs.")
		}
		if !hasRole && isECRImage(deref(c.Image)) {
			return clientErr("Fargate requires task definition to have execution role ARN to support ECR images.")
		}
	}
	return nil
}

// FargateAddableCapabilities are the kernel capabilities a Fargate
// container may add: only SYS_PTRACE (ECS's KernelCapabilities reference).
var FargateAddableCapabilities = []string{"SYS_PTRACE"}

// fargateLinuxParameters applies Fargate's limits on linuxParameters:
// capabilities may be dropped but only SYS_PTRACE added; no devices, no
// tmpfs, no swap settings (Fargate offers neither host devices nor swap).
func fargateLinuxParameters(c *ecsapi.ContainerDefinition) error {
	lp := c.LinuxParameters
	if lp == nil {
		return nil
	}
	if lp.Capabilities != nil {
		for _, a := range lp.Capabilities.Add {
			if !slices.Contains(FargateAddableCapabilities, strings.TrimPrefix(strings.ToUpper(a), "CAP_")) {
				return clientErr("Fargate compatible task definitions only support adding the SYS_PTRACE kernel capability: container '%s' adds %s.", deref(c.Name), a)
			}
		}
	}
	switch {
	case len(lp.Devices) > 0:
		return clientErr("Fargate compatible task definitions do not support devices")
	case len(lp.Tmpfs) > 0:
		return clientErr("Fargate compatible task definitions do not support tmpfs")
	case lp.MaxSwap != nil:
		return clientErr("Fargate compatible task definitions do not support maxSwap")
	case lp.Swappiness != nil:
		return clientErr("Fargate compatible task definitions do not support swappiness")
	case lp.SharedMemorySize != nil:
		return clientErr("Fargate compatible task definitions do not support sharedMemorySize")
	}
	return nil
}

// fargateSysctl reports whether Fargate lets a task set the kernel
// parameter ns: the namespaced ones (ECS's "systemControls" reference).
func fargateSysctl(ns string) bool {
	if strings.HasPrefix(ns, "net.") || strings.HasPrefix(ns, "fs.mqueue.") {
		return true
	}
	switch ns {
	case "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced":
		return true
	}
	return false
}

// ecrImageRE matches an image in a private ECR registry:
// <account>.dkr.ecr[-fips].<region>.<domain>/<repository>.
var ecrImageRE = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.[^/]+/`)

func isECRImage(image string) bool { return ecrImageRE.MatchString(image) }

// validateTags applies ECS's tag rules beyond the model's lengths.
func validateTags(tags []ecsapi.Tag) error {
	if len(tags) > 50 {
		return paramErr("The number of tags exceeds the limit of 50.")
	}
	for _, t := range tags {
		k := deref(t.Key)
		if k == "" {
			return paramErr("Tag keys must not be empty.")
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return paramErr("Tag keys with the prefix 'aws:' are reserved for AWS use.")
		}
	}
	return nil
}
