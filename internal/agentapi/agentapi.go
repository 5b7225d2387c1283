// Package agentapi is the protocol between `berth agent` and the control
// plane: the types both sides exchange, the paths, and a client the agent
// uses. It plays the part of ECS's ACS (assignments pushed to the agent)
// and of SubmitTaskStateChange (state reported back).
//
// Transport: HTTP on the control plane's listener, under PathPrefix.
//   - POST /join: an agent with a join token registers a container instance
//     and receives its own credential (the only unsigned call; the token
//     authenticates it).
//   - GET /assignments?since=REV: a long-lived NDJSON stream of the tasks
//     assigned to the agent's instance, resumable from a store revision.
//     While it is open, the instance's agentConnected is true.
//   - POST /report: observed task and container state.
//   - POST /logs: container output for CloudWatch Logs (the awslogs log
//     driver); with no events it prepares the log stream.
//   - POST /stats: the resource usage of the instance's running tasks,
//     sent every StatsInterval (the control plane turns it into ECS's
//     CloudWatch metrics).
//
// Every call but join is SigV4-signed (service SigningService) with the
// agent's own credential, which is good only for its own container
// instance and for nothing else (no ECS user API).
package agentapi

import (
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/serviceconnect"
)

// Paths and names of the protocol.
const (
	PathPrefix      = "/berth/agent/v1/"
	PathJoin        = PathPrefix + "join"
	PathAssignments = PathPrefix + "assignments"
	PathReport      = PathPrefix + "report"
	PathLogs        = PathPrefix + "logs"
	PathStats       = PathPrefix + "stats"
	// PathServiceConnect is GET ?namespace=ARN: a long-lived NDJSON stream
	// of serviceconnect.Directory lines for one namespace, the first at
	// once, then one on every change (and heartbeats as empty lines).
	// Allowed only for namespaces of tasks assigned to the caller.
	PathServiceConnect = PathPrefix + "serviceconnect"
	// SigningService is the SigV4 service name agents sign with.
	SigningService = "berth-agent"
	// HeartbeatInterval is how often the server writes a heartbeat event
	// on an idle assignment stream; an agent that sees nothing for three
	// intervals reconnects.
	HeartbeatInterval = 5 * time.Second
	// AgentHeartbeatInterval is how often an agent that has nothing to
	// report sends an empty report: proof of life the stream alone cannot
	// give (a vanished host leaves the server's side of it open).
	AgentHeartbeatInterval = 3 * time.Second
	// AgentSilenceLimit is how long the server keeps an instance
	// connected without hearing from its agent.
	AgentSilenceLimit = 7 * time.Second
	// StatsInterval is how often an agent sends its tasks' resource usage.
	StatsInterval = 10 * time.Second
)

// JoinRequest registers a container instance.
type JoinRequest struct {
	Token            string            `json:"token"`
	Cluster          string            `json:"cluster"` // empty: "default" (created if missing)
	Hostname         string            `json:"hostname"`
	AvailabilityZone string            `json:"availabilityZone,omitempty"`
	InstanceType     string            `json:"instanceType,omitempty"`
	Resources        Resources         `json:"resources"`
	Attributes       map[string]string `json:"attributes,omitempty"` // custom --attribute name=value
	VersionInfo      VersionInfo       `json:"versionInfo"`
}

// Resources are what an instance offers to tasks.
type Resources struct {
	CPU           int      `json:"cpu"`    // CPU units: 1024 per core
	MemoryMiB     int      `json:"memory"` // MiB available to tasks
	ReservedPorts []int    `json:"reservedPorts,omitempty"`
	ReservedUDP   []int    `json:"reservedUdpPorts,omitempty"`
	OSType        string   `json:"osType"`  // "linux"
	CPUArch       string   `json:"cpuArch"` // "x86_64", "arm64"
	Capabilities  []string `json:"capabilities,omitempty"`
}

// VersionInfo describes the agent and its Docker Engine.
type VersionInfo struct {
	AgentVersion  string `json:"agentVersion"`
	AgentHash     string `json:"agentHash,omitempty"`
	DockerVersion string `json:"dockerVersion"`
}

// JoinResponse carries the instance's identity and its credential.
type JoinResponse struct {
	ContainerInstanceArn string `json:"containerInstanceArn"`
	InstanceID           string `json:"instanceId"`
	Cluster              string `json:"cluster"`
	AccessKeyID          string `json:"accessKeyId"`
	SecretAccessKey      string `json:"secretAccessKey"`
	Region               string `json:"region"`
}

// EventType is the type of an assignment stream event.
type EventType string

const (
	// EventSync carries every task assigned to the instance at Revision;
	// tasks not in it are not assigned (the agent stops and forgets them
	// once stopped). Sent first on a stream that starts without a usable
	// since revision.
	EventSync EventType = "sync"
	// EventTask carries one task's new desired state.
	EventTask EventType = "task"
	// EventHeartbeat keeps an idle stream alive.
	EventHeartbeat EventType = "heartbeat"
)

// Event is one line of the assignment stream.
type Event struct {
	Type     EventType    `json:"type"`
	Revision int64        `json:"revision"` // store revision the event reflects
	Tasks    []Assignment `json:"tasks,omitempty"`
	Task     *Assignment  `json:"task,omitempty"`
}

// Assignment is a task the agent must run (or stop).
type Assignment struct {
	TaskArn       string `json:"taskArn"`
	TaskID        string `json:"taskId"`
	ClusterArn    string `json:"clusterArn"`
	DesiredStatus string `json:"desiredStatus"` // RUNNING or STOPPED; only moves forward
	// Version increases with every change of the task's desired state.
	Version        int64                  `json:"version"`
	TaskDefinition *ecsapi.TaskDefinition `json:"taskDefinition"`
	Overrides      *ecsapi.TaskOverride   `json:"overrides,omitempty"`
	Group          string                 `json:"group,omitempty"`
	StartedBy      string                 `json:"startedBy,omitempty"`
	Tags           []ecsapi.Tag           `json:"tags,omitempty"`
	// CPU and Memory are the task-level sizes (units, MiB) the task was
	// placed with.
	CPU       int       `json:"cpu,omitempty"`
	MemoryMiB int       `json:"memory,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// RegistryAuth holds pull credentials for the task's images that live
	// in Berth's own registry (as ECS gives the agent the task execution
	// role's ECR credentials). Images elsewhere use Docker's configuration.
	RegistryAuth []RegistryCredential `json:"registryAuth,omitempty"`
	// StopCode and StoppedReason are set when the control plane stopped
	// the task (StopTask, the service scheduler).
	StopCode      string `json:"stopCode,omitempty"`
	StoppedReason string `json:"stoppedReason,omitempty"`
	// ServiceConnect is set for a task of a service with Service Connect:
	// the agent runs the task's proxy from it (docs/service-connect.md).
	ServiceConnect *serviceconnect.TaskConfig `json:"serviceConnect,omitempty"`
	// LaunchType is FARGATE for a Fargate task (docs/fargate.md): the
	// agent isolates it (task-sized limits, Fargate's capabilities, the
	// sandboxed runtime when one works) and serves Fargate's metadata.
	// Empty: EC2.
	LaunchType string `json:"launchType,omitempty"`
	// EphemeralStorageGiB is a Fargate task's ephemeral storage (20 by
	// default), reported by the metadata endpoint.
	EphemeralStorageGiB int `json:"ephemeralStorageGiB,omitempty"`
	// StopGraceSeconds, when set, replaces the containers' stop timeouts:
	// the time between SIGTERM and SIGKILL of a Fargate Spot task that is
	// being interrupted (two minutes on AWS).
	StopGraceSeconds int `json:"stopGraceSeconds,omitempty"`
}

// LaunchTypeFargate is Assignment.LaunchType of a Fargate task.
const LaunchTypeFargate = "FARGATE"

// RegistryCredential authenticates image pulls from one registry host.
type RegistryCredential struct {
	ServerAddress string `json:"serverAddress"` // host[:port], as in image references
	Username      string `json:"username"`
	Password      string `json:"password"`
}

// CredentialFor returns the credential whose server is image's host.
func (a Assignment) CredentialFor(image string) (RegistryCredential, bool) {
	host, _, found := strings.Cut(image, "/")
	if !found {
		return RegistryCredential{}, false
	}
	for _, c := range a.RegistryAuth {
		if strings.EqualFold(c.ServerAddress, host) {
			return c, true
		}
	}
	return RegistryCredential{}, false
}

// Report is a batch of observed state.
type Report struct {
	Tasks []TaskReport `json:"tasks"`
}

// TaskReport is a task's observed state. Status only moves forward: the
// server ignores a report whose KnownStatus is behind what it has.
type TaskReport struct {
	TaskArn     string `json:"taskArn"`
	KnownStatus string `json:"knownStatus"` // PENDING ... STOPPED
	// Version is the assignment version the agent acted on.
	Version            int64             `json:"version"`
	PullStartedAt      *time.Time        `json:"pullStartedAt,omitempty"`
	PullStoppedAt      *time.Time        `json:"pullStoppedAt,omitempty"`
	StartedAt          *time.Time        `json:"startedAt,omitempty"`
	ExecutionStoppedAt *time.Time        `json:"executionStoppedAt,omitempty"`
	StoppedAt          *time.Time        `json:"stoppedAt,omitempty"`
	ConnectivityAt     *time.Time        `json:"connectivityAt,omitempty"`
	HealthStatus       string            `json:"healthStatus,omitempty"` // HEALTHY | UNHEALTHY | UNKNOWN
	StopCode           string            `json:"stopCode,omitempty"`     // EssentialContainerExited, TaskFailedToStart
	StoppedReason      string            `json:"stoppedReason,omitempty"`
	Containers         []ContainerReport `json:"containers"`
	// Attachments are the task's network attachments (awsvpc).
	Attachments []ecsapi.Attachment `json:"attachments,omitempty"`
}

// ContainerReport is a container's observed state.
type ContainerReport struct {
	Name              string                    `json:"name"`
	RuntimeID         string                    `json:"runtimeId,omitempty"`
	ImageDigest       string                    `json:"imageDigest,omitempty"`
	KnownStatus       string                    `json:"knownStatus"` // PENDING, RUNNING, STOPPED
	ExitCode          *int32                    `json:"exitCode,omitempty"`
	Reason            string                    `json:"reason,omitempty"`
	HealthStatus      string                    `json:"healthStatus,omitempty"`
	NetworkBindings   []ecsapi.NetworkBinding   `json:"networkBindings,omitempty"`
	NetworkInterfaces []ecsapi.NetworkInterface `json:"networkInterfaces,omitempty"`
}

// Task lifecycle statuses, in order. A task's status only moves forward.
var TaskStatuses = []string{"PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"}

// StatusRank returns the position of a task status in the lifecycle, or -1.
func StatusRank(s string) int {
	for i, v := range TaskStatuses {
		if v == s {
			return i
		}
	}
	return -1
}

// LogsRequest carries a batch of a container's output to its CloudWatch
// Logs stream (the awslogs log driver, docs/awslogs.md). The control plane
// accepts it only for a container of a task assigned to the caller's
// instance whose definition names Group, and takes awslogs-create-group
// from that definition. With no events it only prepares the stream (and
// the group, when the definition says to create it): the agent asks before
// the container starts.
type LogsRequest struct {
	TaskArn   string     `json:"taskArn"`
	Container string     `json:"container"`
	Group     string     `json:"group"`
	Stream    string     `json:"stream"`
	Events    []LogEvent `json:"events,omitempty"`
}

// LogEvent is one CloudWatch Logs event. The events of a request are in
// chronological order and within PutLogEvents' limits.
type LogEvent struct {
	Timestamp int64  `json:"timestamp"` // epoch milliseconds
	Message   string `json:"message"`
}

// StatsReport is the resource usage of an instance's running tasks.
type StatsReport struct {
	Tasks []TaskUsage `json:"tasks"`
}

// TaskUsage is a task's resource usage at one sample, with what the
// control plane needs to attribute it without a store read.
type TaskUsage struct {
	TaskArn    string `json:"taskArn"`
	ClusterArn string `json:"clusterArn,omitempty"`
	Family     string `json:"family,omitempty"`
	Group      string `json:"group,omitempty"` // "service:NAME" or "family:NAME"
	StartedBy  string `json:"startedBy,omitempty"`
	// CPUReserved and MemoryReservedMiB are what the task was placed with
	// (its task-level sizes, or the sum of its containers').
	CPUReserved       int `json:"cpuReserved"`
	MemoryReservedMiB int `json:"memoryReservedMiB"`
	// At is when the sample was taken.
	At time.Time `json:"at"`
	// CPUUsed is the CPU units (1024 per core) the task's containers used,
	// averaged between the last two samples; absent until there are two.
	CPUUsed *float64 `json:"cpuUsed,omitempty"`
	// MemoryUsedMiB is the containers' memory use without the page cache,
	// as `docker stats` shows it.
	MemoryUsedMiB float64 `json:"memoryUsedMiB"`
	// Network counters of the containers with a network namespace of their
	// own (bridge mode); zero in awsvpc and host modes.
	NetworkRxBytes uint64 `json:"networkRxBytes,omitempty"`
	NetworkTxBytes uint64 `json:"networkTxBytes,omitempty"`
	// Rates between the last two samples, bytes per second.
	NetworkRxBytesPerSec float64 `json:"networkRxBytesPerSec,omitempty"`
	NetworkTxBytesPerSec float64 `json:"networkTxBytesPerSec,omitempty"`
	// ServiceConnect is the task's proxy traffic since the last report.
	ServiceConnect *serviceconnect.Traffic `json:"serviceConnect,omitempty"`
}

// A join token as `berth join-token` prints it is the secret and the
// control plane CA's pin, joined by a dot:
//
//	bjt_<base64url secret>.sha256:<hex>
//
// Only the secret is sent to the server (and only its hash is stored
// there); the pin tells a new agent which CA to trust (docs/security.md).

// FormatJoinToken joins a token's secret and the CA pin.
func FormatJoinToken(secret, caPin string) string {
	if caPin == "" {
		return secret
	}
	return secret + "." + caPin
}

// ParseJoinToken splits a printed join token into its secret and CA pin
// (empty when the token carries none).
func ParseJoinToken(tok string) (secret, caPin string) {
	secret, caPin, _ = strings.Cut(strings.TrimSpace(tok), ".")
	return secret, caPin
}
