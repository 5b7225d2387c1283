package ecs

import (
	"net/url"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/serviceconnect"
)

// Store layout of container instances, tasks and assignments:
//
//	/berth/ecs/instances/<cluster>/<instance id>  instanceRecord
//	/berth/ecs/agents/<instance id>                presence, under a lease kept alive by
//	                                               the open assignment stream (agentConnected);
//	                                               absent for the disconnect grace: its service
//	                                               tasks are replaced; for LostAfter (or
//	                                               deregistered): the instance is lost
//	                                               (lostinstances.go)
//	/berth/ecs/tasks/<cluster>/<task id>           taskRecord
//	/berth/ecs/assign/<instance id>/<task id>      assignmentRecord: the index the agent's
//	                                               stream watches; written in the same
//	                                               transaction as every desired change
//	/berth/ecs/taskgroups/<cluster>/<group>/<id>   index of tasks by group (escaped), written
//	                                               with the task and deleted with it, so
//	                                               ListTasks by service reads only its tasks
//	/berth/ecs/clienttokens/<cluster>/<token>      RunTask idempotency: the task ARNs made
//	/berth/iam/agents/<access key id>              agent credential (see agentcreds.go);
//	                                               deleted with its instance record when
//	                                               the INACTIVE instance is purged (purge.go)
//	/berth/iam/jointokens/<sha256 of token>        join token, under a lease (expiry)
const (
	keyAgents = "/berth/ecs/agents/"
	keyAssign = "/berth/ecs/assign/"
	// keyDrain indexes the tasks held in DEACTIVATING while their load
	// balancer targets drain: /berth/ecs/drain/<cluster>/<task id>.
	keyDrain        = "/berth/ecs/drain/"
	keyClientTokens = "/berth/ecs/clienttokens/"
	keyTaskGroups   = "/berth/ecs/taskgroups/"
	keyAgentCreds   = "/berth/iam/agents/"
	keyJoinTokens   = "/berth/iam/jointokens/"
)

// Container instance statuses.
const (
	InstanceActive   = "ACTIVE"
	InstanceDraining = "DRAINING"
	InstanceInactive = "INACTIVE"
)

// instanceRecord is a container instance as stored. Registration fields
// are written at join; Status and custom attributes by the API.
type instanceRecord struct {
	ID            string               `json:"id"` // 32 hex digits, as ECS
	ARN           string               `json:"arn"`
	Cluster       string               `json:"cluster"`
	Ec2InstanceID string               `json:"ec2InstanceId"`
	Hostname      string               `json:"hostname"`
	Status        string               `json:"status"`
	StatusReason  string               `json:"statusReason,omitempty"`
	Registered    agentapi.Resources   `json:"registered"`
	Attributes    map[string]string    `json:"attributes"` // built-in and custom
	VersionInfo   agentapi.VersionInfo `json:"versionInfo"`
	RegisteredAt  time.Time            `json:"registeredAt"`
	Tags          []ecsapi.Tag         `json:"tags,omitempty"`
	AccessKeyID   string               `json:"accessKeyId"` // the agent's credential
	// DeregisteredAt is when the instance became INACTIVE; the garbage
	// collector purges it (with its credential) retention later (taskgc.go).
	DeregisteredAt *time.Time `json:"deregisteredAt,omitempty"`
	// Version increases with every change, as ECS's container instance
	// "version" does.
	Version int64 `json:"version"`
}

// Task desired statuses.
const (
	DesiredRunning = "RUNNING"
	DesiredStopped = "STOPPED"
)

// taskRecord is a task as stored. Desired fields are written by the API
// and the schedulers; observed fields only from agent reports, and then
// only forward (agentapi.StatusRank). One exception: when an instance is
// lost (its agent away for LostAfter, or deregistered), the lost-instance monitor writes its
// tasks observed STOPPED on the agent's behalf (lostinstances.go), under a
// compare on the presence key being absent; a returning agent's reports
// cannot move them back.
type taskRecord struct {
	ID                string               `json:"id"` // 32 hex digits
	ARN               string               `json:"arn"`
	Cluster           string               `json:"cluster"`
	ClusterARN        string               `json:"clusterArn"`
	TaskDefinitionARN string               `json:"taskDefinitionArn"`
	InstanceID        string               `json:"instanceId"`
	InstanceARN       string               `json:"instanceArn"`
	Overrides         *ecsapi.TaskOverride `json:"overrides,omitempty"`
	Group             string               `json:"group,omitempty"`
	StartedBy         string               `json:"startedBy,omitempty"`
	LaunchType        string               `json:"launchType"`
	Tags              []ecsapi.Tag         `json:"tags,omitempty"`
	// Reservations the placement accounted for.
	CPU       int       `json:"cpu"`    // units
	MemoryMiB int       `json:"memory"` // MiB
	HostPorts []int     `json:"hostPorts,omitempty"`
	HostUDP   []int     `json:"hostUdpPorts,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	AZ        string    `json:"availabilityZone,omitempty"`

	// DynamicPorts counts the dynamic host ports (bridge mappings with
	// hostPort 0) the task takes from the instance's ephemeral range.
	DynamicPorts int `json:"dynamicPorts,omitempty"`

	// Desired state.
	DesiredStatus string     `json:"desiredStatus"`
	StoppingAt    *time.Time `json:"stoppingAt,omitempty"`
	StopCode      string     `json:"stopCode,omitempty"`
	StoppedReason string     `json:"stoppedReason,omitempty"`
	// DrainUntil holds a task of a load-balanced service between
	// "desired STOPPED" and its agent being told so: its targets drain
	// until then (loadbalancers.go). nil: no gate.
	DrainUntil *time.Time `json:"drainUntil,omitempty"`
	// Version increases with every change of the task (ECS's task
	// "version").
	Version int64 `json:"version"`

	// Observed state.
	LastStatus         string                     `json:"lastStatus"`
	PullStartedAt      *time.Time                 `json:"pullStartedAt,omitempty"`
	PullStoppedAt      *time.Time                 `json:"pullStoppedAt,omitempty"`
	StartedAt          *time.Time                 `json:"startedAt,omitempty"`
	ExecutionStoppedAt *time.Time                 `json:"executionStoppedAt,omitempty"`
	StoppedAt          *time.Time                 `json:"stoppedAt,omitempty"`
	ConnectivityAt     *time.Time                 `json:"connectivityAt,omitempty"`
	HealthStatus       string                     `json:"healthStatus,omitempty"`
	Containers         []agentapi.ContainerReport `json:"containers,omitempty"`
	Attachments        []ecsapi.Attachment        `json:"attachments,omitempty"`

	// Fargate is set for a FARGATE task (fargate.go).
	Fargate *fargateLaunch `json:"fargate,omitempty"`
	// CapacityProvider is the Auto Scaling group provider an EC2 task's
	// strategy chose (asgproviders.go).
	CapacityProvider string `json:"capacityProvider,omitempty"`
	// EphemeralGiB is a Fargate task's ephemeral storage.
	EphemeralGiB int `json:"ephemeralStorageGiB,omitempty"`
	// StopGraceSeconds is a Spot interruption's warning (spot.go).
	StopGraceSeconds int `json:"stopGraceSeconds,omitempty"`
	// ServiceConnect is the task's Service Connect configuration, fixed
	// when it was placed (serviceconnect.go); its proxy container shows in
	// DescribeTasks.
	ServiceConnect *serviceconnect.TaskConfig `json:"serviceConnect,omitempty"`
}

// assignmentRecord is the per-instance index entry of a task.
type assignmentRecord struct {
	Cluster       string `json:"cluster"`
	TaskID        string `json:"taskId"`
	DesiredStatus string `json:"desiredStatus"`
	Version       int64  `json:"version"`
}

func instanceKey(cluster, id string) string { return keyInstances + cluster + "/" + id }
func taskKey(cluster, id string) string     { return keyTasks + cluster + "/" + id }

// taskGroupPrefix is where the index entries of a group's tasks live.
func taskGroupPrefix(cluster, group string) string {
	return keyTaskGroups + cluster + "/" + url.PathEscape(group) + "/"
}

func taskGroupKey(cluster, group, taskID string) string {
	return taskGroupPrefix(cluster, group) + taskID
}

func assignKey(instanceID, taskID string) string {
	return keyAssign + instanceID + "/" + taskID
}
