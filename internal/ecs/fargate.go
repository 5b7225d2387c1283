package ecs

import (
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/taskdef"
)

// Fargate (docs/fargate.md, decision 20). A FARGATE task of any cluster
// runs on a host that offers Fargate capacity: a container instance whose
// agent registered the capability attribute FargateCapability. Such an
// instance lives either in a user's cluster (the agent of `berth up`,
// which is that cluster's EC2 capacity as well) or in the hidden pool
// FargatePool (`berth agent --fargate`), which has no cluster record and
// so appears in no ListClusters or ListContainerInstances. The task
// record stays in the user's cluster; it names the instance (for the
// agent's assignment and for accounting) but DescribeTasks shows no
// containerInstanceArn.
//
// Accounting: placement on Fargate hosts reads every Fargate-capable
// instance and every live task placed on one, whatever its cluster
// (fargateSnapshot), and commits through the same applier (commitPlan),
// whose compare on each chosen instance's record keeps concurrent
// placements from overcommitting it. A cluster's own snapshot adds the
// other clusters' tasks placed on its Fargate-capable instances, so EC2
// placement there sees the host's whole load too.

const (
	// FargatePool is the hidden cluster of Fargate-only hosts.
	FargatePool = "berth.fargate"

	fargatePlatformVersion = "1.4.0"
	fargatePlatformFamily  = "Linux"
	// defaultEphemeralGiB is a Fargate task's ephemeral storage when the
	// task definition names none (platform version 1.4.0).
	defaultEphemeralGiB = 20
)

// isFargateLaunch reports whether a request's launch type is FARGATE.
func isFargateLaunch(lt *ecsapi.LaunchType) bool { return deref(lt) == ecsapi.LaunchTypeFargate }

// checkLaunchType refuses the launch types Berth does not run.
func checkLaunchType(lt *ecsapi.LaunchType) error {
	switch v := deref(lt); v {
	case "", ecsapi.LaunchTypeEc2, ecsapi.LaunchTypeFargate:
		return nil
	default:
		return errs.R(errs.Invalid, reasonInvalidParameter,
			"Berth runs tasks with launch types EC2 and FARGATE; launch type %s is not supported.", v)
	}
}

// checkNetworkConfiguration applies ECS's rules on a request's
// networkConfiguration for a task definition in network mode mode.
func checkNetworkConfiguration(nc *ecsapi.NetworkConfiguration, mode ecsapi.NetworkMode, fargate bool) error {
	if mode != ecsapi.NetworkModeAwsvpc {
		if nc != nil && nc.AwsvpcConfiguration != nil {
			return errs.R(errs.Invalid, reasonInvalidParameter, "Network Configuration is not valid for the given networkMode of this task definition.")
		}
		return nil
	}
	if nc == nil || nc.AwsvpcConfiguration == nil {
		if fargate {
			return errs.R(errs.Invalid, reasonInvalidParameter, "Network Configuration must be provided when networkMode 'awsvpc' is specified.")
		}
		return nil // Berth's EC2 awsvpc tasks need no subnet
	}
	vc := nc.AwsvpcConfiguration
	if len(vc.Subnets) == 0 {
		return errs.R(errs.Invalid, reasonInvalidParameter, "subnets can not be empty.")
	}
	if len(vc.Subnets) > 16 {
		return errs.R(errs.Invalid, reasonInvalidParameter, "subnets can have at most 16 items.")
	}
	if len(vc.SecurityGroups) > 5 {
		return errs.R(errs.Invalid, reasonInvalidParameter, "securityGroups can have at most 5 items.")
	}
	if !fargate && deref(vc.AssignPublicIp) == ecsapi.AssignPublicIpEnabled {
		return errs.R(errs.Invalid, reasonInvalidParameter, "Assign public IP is not supported for this launch type.")
	}
	return nil
}

// resolveFargate checks a FARGATE request against its task definition and
// returns the task's platform. td is the task definition with overrides
// not yet applied.
func resolveFargate(td *ecsapi.TaskDefinition, pv *string, nc *ecsapi.NetworkConfiguration) (*fargateLaunch, error) {
	if !slices.Contains(td.Compatibilities, ecsapi.CompatibilityFargate) {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Task definition does not support launch_type FARGATE.")
	}
	if rp := td.RuntimePlatform; rp != nil && strings.HasPrefix(string(deref(rp.OperatingSystemFamily)), "WINDOWS") {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter,
			"Berth's Fargate hosts run Linux: a task definition with runtimePlatform operatingSystemFamily %s cannot run on them.", deref(rp.OperatingSystemFamily))
	}
	fl := &fargateLaunch{PlatformVersion: fargatePlatformVersion, PlatformFamily: fargatePlatformFamily, Network: nc}
	switch v := deref(pv); v {
	case "", "LATEST", "1.4.0":
	case "1.3.0":
		fl.PlatformVersion = v
	default:
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "The specified platform version %s does not exist. Valid Linux platform versions are LATEST, 1.4.0 and 1.3.0.", v)
	}
	if err := checkNetworkConfiguration(nc, deref(td.NetworkMode), true); err != nil {
		return nil, err
	}
	return fl, nil
}

// fargateArch is the ecs.cpu-architecture a task definition needs.
func fargateArch(td *ecsapi.TaskDefinition) string {
	if rp := td.RuntimePlatform; rp != nil && deref(rp.CpuArchitecture) == ecsapi.CPUArchitectureArm64 {
		return "arm64"
	}
	return "x86_64"
}

// fargateRequest shapes the placement request of a Fargate task: the
// task's size, the Fargate attribute and architecture, and spread across
// availability zones and then hosts, as Fargate spreads across the
// subnets' zones. Fargate takes no placement constraints or strategies.
func fargateRequest(spec *taskSpec, taskCPU, taskMem int) error {
	if !taskdef.FargateSizeOK(taskCPU, taskMem) {
		return errs.R(errs.Invalid, reasonClient,
			"No Fargate configuration exists for given values: %d CPU, %d memory. See the Amazon ECS documentation for the valid values.", taskCPU, taskMem)
	}
	spec.Req.CPU, spec.Req.Memory = taskCPU, taskMem
	spec.Req.HostPorts, spec.Req.DynamicPorts = nil, 0
	spec.TCP, spec.UDP, spec.Dynamic = nil, nil, 0
	spec.Req.RequiredAttributes = append(spec.Req.RequiredAttributes,
		placement.Attribute{Name: FargateCapability},
		placement.Attribute{Name: "ecs.cpu-architecture", Value: fargateArch(&spec.TD)})
	spec.Req.Strategies = fargateStrategies
	return nil
}

// fargateStrategies spread a group's Fargate tasks over zones, then hosts.
var fargateStrategies = []placement.Strategy{
	{Type: placement.Spread, Field: "attribute:ecs.availability-zone"},
	{Type: placement.Spread, Field: "instanceId"},
}

// errFargateRules refuses placement rules on a FARGATE request.
func errFargateRules() error {
	return errs.R(errs.Invalid, reasonInvalidParameter, "Task placement constraints and strategies are not supported with the FARGATE launch type.")
}

// planFargate places count tasks of a Fargate spec on a snapshot of the
// Fargate hosts. A task that cannot be placed is a failure with ECS's
// Fargate reason.
func (s *Service) planFargate(snap *clusterSnapshot, cluster string, spec *taskSpec, count int, plc func(insts []placement.Instance, n int) ([]placement.Placement, []placement.Failure)) (*plan, error) {
	arch := fargateArch(&spec.TD)
	archOK := false
	insts := make([]placement.Instance, 0, len(snap.Instances))
	for _, v := range snap.Instances {
		pi := v.PlacementInstance()
		if pi.Attributes["ecs.cpu-architecture"] == arch {
			archOK = true
		}
		insts = append(insts, pi)
	}
	if len(snap.Instances) > 0 && !archOK {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter,
			"Berth has no Fargate host with the %s CPU architecture this task definition's runtimePlatform asks for: its Fargate hosts are %s. Register the task definition with cpuArchitecture %s, or join a host of that architecture with `berth agent --fargate`.",
			strings.ToUpper(arch), hostArchs(snap), archName(snap))
	}
	placements, failures := plc(insts, count)
	p := &plan{Failures: []ecsapi.Failure{}}
	now := s.now().UTC()
	for i, pl := range placements {
		rec := s.newTask(cluster, spec, snap.ByID[pl.InstanceID], now)
		if i < len(spec.Providers) {
			fl := *rec.Fargate
			fl.CapacityProvider = spec.Providers[i]
			rec.Fargate = &fl
		}
		p.Tasks = append(p.Tasks, placedTask{Rec: rec, Req: &spec.Req})
	}
	for range failures { // Fargate names no instance
		p.Failures = append(p.Failures, ecsapi.Failure{Reason: ptr(reasonFargateCapacity)})
	}
	return p, nil
}

func hostArchs(snap *clusterSnapshot) string {
	var out []string
	for _, v := range snap.Instances {
		a := v.Rec.Attributes["ecs.cpu-architecture"]
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

func archName(snap *clusterSnapshot) string {
	if strings.Contains(hostArchs(snap), "arm64") {
		return "ARM64"
	}
	return "X86_64"
}

// launchTypeOf is the launch type of a task of spec.
func launchTypeOf(spec *taskSpec) string {
	if spec.Fargate != nil {
		return string(ecsapi.LaunchTypeFargate)
	}
	return string(ecsapi.LaunchTypeEc2)
}

// launchTypeFargateOrEmpty is an assignment's LaunchType.
func launchTypeFargateOrEmpty(t *taskRecord) string {
	if t.Fargate != nil {
		return agentapi.LaunchTypeFargate
	}
	return ""
}

// taskFargate is a task's copy of its spec's platform (a service's
// strategy stays with the service).
func taskFargate(fl *fargateLaunch) *fargateLaunch {
	if fl == nil {
		return nil
	}
	c := *fl
	c.Strategy = nil
	return &c
}
