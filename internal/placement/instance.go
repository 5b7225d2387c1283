package placement

import (
	"fmt"
	"slices"
	"time"
)

// Status is a container instance's status, as ECS names it.
type Status string

// Container instance statuses. Only ACTIVE instances take new tasks.
const (
	StatusActive             Status = "ACTIVE"
	StatusDraining           Status = "DRAINING"
	StatusInactive           Status = "INACTIVE"
	StatusRegistering        Status = "REGISTERING"
	StatusDeregistering      Status = "DEREGISTERING"
	StatusRegistrationFailed Status = "REGISTRATION_FAILED"
)

// Protocol is a host port's transport protocol.
type Protocol string

// Protocols. An empty Protocol means TCP, as in ECS's port mappings.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Port is a host port.
type Port struct {
	Number   int
	Protocol Protocol
}

func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Number, p.proto()) }

func (p Port) proto() Protocol {
	if p.Protocol == "" {
		return TCP
	}
	return p.Protocol
}

// Resources is an amount of CPU, memory and host ports, as ECS's
// registeredResources and remainingResources report them.
type Resources struct {
	CPU    int // CPU units, 1024 to a core
	Memory int // MiB
	// Ports are host ports taken, not free ones, in both of an instance's
	// Resources: in Registered, the ports the instance reserved when it
	// registered (ECS_RESERVED_PORTS, by default 22, 2375, 2376, 51678
	// and 51679); in Remaining, those plus the static host ports of the
	// tasks on the instance. That is how ECS reports PORTS and PORTS_UDP.
	Ports []Port
}

// PortRange is an inclusive range of port numbers.
type PortRange struct{ First, Last int }

// DefaultDynamicPortRange is the range Docker and the ECS agent assign
// dynamic host ports (hostPort 0 in bridge mode) from on Linux when the
// kernel's ip_local_port_range cannot be read.
var DefaultDynamicPortRange = PortRange{First: 49153, Last: 65535}

// MaxReservedPorts is the most host ports of one protocol ECS lets a
// container instance have reserved. Dynamic host ports do not count.
const MaxReservedPorts = 100

// Instance is a container instance as placement sees it. Every field is
// read-only to this package; Place works on copies.
type Instance struct {
	ID             string // container instance ID, the last part of ARN; shown in event messages
	ARN            string // container instance ARN; reported in RunTask failures
	EC2InstanceID  string // the ec2InstanceId subject; empty if the instance has none
	Status         Status
	AgentConnected bool
	AgentVersion   string    // as the agent reports it, e.g. 1.68.2; the agentVersion subject
	RegisteredAt   time.Time // the registeredAt subject
	// Attributes maps attribute names to values; an attribute without a
	// value maps to "". The built-in ecs.* attributes are here too.
	Attributes map[string]string
	Registered Resources // capacity at registration
	Remaining  Resources // what is left: CPU and memory free, ports taken
	// DynamicPortRange is the range dynamic host ports come from; the
	// zero value means DefaultDynamicPortRange.
	DynamicPortRange  PortRange
	DynamicPortsInUse int // dynamic host ports held by tasks on the instance
	// RunningTasksCount is ECS's runningTasksCount, the subject of the
	// same name. Place adds the tasks it places on the instance.
	RunningTasksCount int
	// Tasks are the tasks on the instance that have not stopped (pending
	// and running ones). Their groups are the task:group subject and what
	// distinctInstance and spread count.
	Tasks []TaskInfo
}

// TaskInfo is what placement needs to know about a task on an instance.
type TaskInfo struct {
	ARN   string
	Group string // e.g. service:web or family:batch
	// Stopping is true when the task's desired status is STOPPED. Its
	// resources stay in use until it stops (Remaining keeps them), but
	// like ECS, placement no longer counts it for distinctInstance,
	// task:group or spread.
	Stopping bool
}

// dynamicRange returns the instance's dynamic port range.
func (i *Instance) dynamicRange() PortRange {
	if i.DynamicPortRange == (PortRange{}) {
		return DefaultDynamicPortRange
	}
	return i.DynamicPortRange
}

// groupCount counts the instance's active tasks in group.
func (i *Instance) groupCount(group string) int {
	n := 0
	for _, t := range i.Tasks {
		if !t.Stopping && t.Group == group {
			n++
		}
	}
	return n
}

// portTaken reports whether p is taken on the instance.
func (i *Instance) portTaken(p Port) bool {
	for _, q := range i.Remaining.Ports {
		if q.Number == p.Number && q.proto() == p.proto() {
			return true
		}
	}
	return false
}

// freeDynamicPorts counts the ports of the dynamic range neither held by
// a task's dynamic port nor taken as a static port.
func (i *Instance) freeDynamicPorts() int {
	r := i.dynamicRange()
	if r.Last < r.First {
		return 0
	}
	taken := 0
	for k, p := range i.Remaining.Ports {
		if r.First <= p.Number && p.Number <= r.Last && !slices.ContainsFunc(i.Remaining.Ports[:k],
			func(q Port) bool { return q.Number == p.Number }) {
			taken++
		}
	}
	return max(0, r.Last-r.First+1-taken-i.DynamicPortsInUse)
}
