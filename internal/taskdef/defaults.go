package taskdef

import "github.com/berthdev/berth/internal/api/ecsapi"

// Health check defaults ECS fills in and Docker applies.
const (
	defaultHealthInterval = 30
	defaultHealthTimeout  = 5
	defaultHealthRetries  = 3
)

// fillDefaults sets the members ECS fills in when it stores a task
// definition, as DescribeTaskDefinition shows them. networkMode,
// requiresCompatibilities, cpu and memory stay absent when not given.
func fillDefaults(td *ecsapi.TaskDefinition, mode ecsapi.NetworkMode) {
	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		if c.Cpu == nil {
			c.Cpu = ptr(int32(0))
		}
		if c.Essential == nil {
			c.Essential = ptr(true)
		}
		c.PortMappings = orEmpty(c.PortMappings)
		for j := range c.PortMappings {
			fillPortMapping(&c.PortMappings[j], mode)
		}
		c.Environment = orEmpty(c.Environment)
		c.MountPoints = orEmpty(c.MountPoints)
		c.VolumesFrom = orEmpty(c.VolumesFrom)
		c.SystemControls = orEmpty(c.SystemControls)
		if hc := c.HealthCheck; hc != nil {
			if hc.Interval == nil {
				hc.Interval = ptr(int32(defaultHealthInterval))
			}
			if hc.Timeout == nil {
				hc.Timeout = ptr(int32(defaultHealthTimeout))
			}
			if hc.Retries == nil {
				hc.Retries = ptr(int32(defaultHealthRetries))
			}
		}
	}
	td.Volumes = orEmpty(td.Volumes)
	for i := range td.Volumes {
		if efs := td.Volumes[i].EfsVolumeConfiguration; efs != nil && efs.RootDirectory == nil {
			efs.RootDirectory = ptr("/")
		}
	}
	td.PlacementConstraints = orEmpty(td.PlacementConstraints)
}

// fillPortMapping sets the protocol (tcp) and the host port: the container
// port in awsvpc and host mode, 0 (an ephemeral port) in bridge mode.
// Mappings of a containerPortRange get no host port.
func fillPortMapping(pm *ecsapi.PortMapping, mode ecsapi.NetworkMode) {
	if pm.Protocol == nil {
		pm.Protocol = ptr(ecsapi.TransportProtocolTcp)
	}
	if pm.ContainerPortRange != nil {
		return
	}
	switch mode {
	case ecsapi.NetworkModeAwsvpc, ecsapi.NetworkModeHost:
		pm.HostPort = ptr(deref(pm.ContainerPort))
	default:
		if pm.HostPort == nil {
			pm.HostPort = ptr(int32(0))
		}
	}
}

// orEmpty returns s, or an empty non-nil slice, which is written as [].
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// compatibilities returns the launch types td validated against: EC2
// always, FARGATE when td meets Fargate's rules (required or not), and
// EXTERNAL and MANAGED_INSTANCES when required.
func compatibilities(td *ecsapi.TaskDefinition, res *result) []ecsapi.Compatibility {
	out := []ecsapi.Compatibility{ecsapi.CompatibilityEc2}
	if fargateProblem(td, res) == nil {
		out = append(out, ecsapi.CompatibilityFargate)
	}
	for _, c := range []ecsapi.Compatibility{ecsapi.CompatibilityExternal, ecsapi.CompatibilityManagedInstances} {
		if res.requires[c] {
			out = append(out, c)
		}
	}
	return out
}
