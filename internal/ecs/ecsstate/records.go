package ecsstate

import (
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/serviceconnect"
)

// Container instance statuses.
const (
	InstanceActive   = "ACTIVE"
	InstanceDraining = "DRAINING"
	InstanceInactive = "INACTIVE"
)

// InstanceRecord is a container instance as stored. Registration fields
// are written at join; Status and custom attributes by the API.
type InstanceRecord struct {
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
	// collector purges it (with its credential) retention later (internal/ecs/taskgc).
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

// TaskRecord is a task as stored. Desired fields are written by the API
// and the schedulers; observed fields only from agent reports, and then
// only forward (agentapi.StatusRank). One exception: when an instance is
// lost (its agent away for LostAfter, or deregistered), the lost-instance monitor writes its
// tasks observed STOPPED on the agent's behalf (internal/ecs/instancemon), under a
// compare on the presence key being absent; a returning agent's reports
// cannot move them back.
type TaskRecord struct {
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
	// until then (internal/ecs/loadbalancers.go). nil: no gate.
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

	// Fargate is set for a FARGATE task (internal/ecs/fargate.go).
	Fargate *FargateLaunch `json:"fargate,omitempty"`
	// CapacityProvider is the Auto Scaling group provider an EC2 task's
	// strategy chose (internal/ecs/asgplacement.go).
	CapacityProvider string `json:"capacityProvider,omitempty"`
	// EphemeralGiB is a Fargate task's ephemeral storage.
	EphemeralGiB int `json:"ephemeralStorageGiB,omitempty"`
	// StopGraceSeconds is a Spot interruption's warning (internal/ecs/spot.go).
	StopGraceSeconds int `json:"stopGraceSeconds,omitempty"`
	// ServiceConnect is the task's Service Connect configuration, fixed
	// when it was placed (internal/ecs/serviceconnect.go); its proxy container shows in
	// DescribeTasks.
	ServiceConnect *serviceconnect.TaskConfig `json:"serviceConnect,omitempty"`
}

// AssignmentRecord is the per-instance index entry of a task.
type AssignmentRecord struct {
	Cluster       string `json:"cluster"`
	TaskID        string `json:"taskId"`
	DesiredStatus string `json:"desiredStatus"`
	Version       int64  `json:"version"`
}

// ClusterRecord is a cluster as stored.
type ClusterRecord struct {
	Name                   string                                `json:"name"`
	ARN                    string                                `json:"arn"`
	Status                 string                                `json:"status"` // ACTIVE | INACTIVE
	CreatedAt              time.Time                             `json:"createdAt"`
	Settings               []ecsapi.ClusterSetting               `json:"settings,omitempty"`
	Configuration          *ecsapi.ClusterConfiguration          `json:"configuration,omitempty"`
	Tags                   []ecsapi.Tag                          `json:"tags,omitempty"`
	ServiceConnectDefaults *ecsapi.ClusterServiceConnectDefaults `json:"serviceConnectDefaults,omitempty"`
	// CapacityProviders and DefaultStrategy: capacityproviders.go.
	CapacityProviders []string                              `json:"capacityProviders,omitempty"`
	DefaultStrategy   []ecsapi.CapacityProviderStrategyItem `json:"defaultCapacityProviderStrategy,omitempty"`
	// InactiveAt is when DeleteCluster marked the cluster INACTIVE; the
	// garbage collector purges it retention later once nothing is left
	// under it (internal/ecs/taskgc).
	InactiveAt *time.Time `json:"inactiveAt,omitempty"`
}

// ServiceRecord is a service as stored. Desired fields are written by the
// API; Deployments' counts and states, Events, RunningCount, PendingCount,
// Steady and Status INACTIVE by the controller (the API adds deployments
// and sets DRAINING).
type ServiceRecord struct {
	Name                   string                           `json:"name"`
	ARN                    string                           `json:"arn"`
	Cluster                string                           `json:"cluster"`
	ClusterARN             string                           `json:"clusterArn"`
	Status                 string                           `json:"status"` // ACTIVE | DRAINING | INACTIVE
	TaskDefinition         string                           `json:"taskDefinition"`
	DesiredCount           int32                            `json:"desiredCount"`
	SchedulingStrategy     string                           `json:"schedulingStrategy"`
	MinHealthyPercent      int32                            `json:"minimumHealthyPercent"`
	MaxPercent             int32                            `json:"maximumPercent"`
	CircuitBreaker         *ecsapi.DeploymentCircuitBreaker `json:"circuitBreaker,omitempty"`
	PlacementConstraints   []ecsapi.PlacementConstraint     `json:"placementConstraints,omitempty"`
	PlacementStrategy      []ecsapi.PlacementStrategy       `json:"placementStrategy,omitempty"`
	NetworkConfiguration   *ecsapi.NetworkConfiguration     `json:"networkConfiguration,omitempty"`
	HealthCheckGracePeriod int32                            `json:"healthCheckGracePeriodSeconds,omitempty"`
	PropagateTags          string                           `json:"propagateTags,omitempty"`
	EnableECSManagedTags   bool                             `json:"enableECSManagedTags,omitempty"`
	RoleARN                string                           `json:"roleArn,omitempty"`
	// ServiceRegistries are the Cloud Map services the tasks register
	// with (internal/cloudmap's ECS controller does it).
	ServiceRegistries []ecsapi.ServiceRegistry `json:"serviceRegistries,omitempty"`
	// SCDeployments holds each deployment's Service Connect configuration
	// by deployment id (internal/ecs/serviceconnect.go); the primary's is the service's.
	SCDeployments           map[string]*SCDeployment `json:"serviceConnectDeployments,omitempty"`
	Tags                    []ecsapi.Tag             `json:"tags,omitempty"`
	ClientToken             string                   `json:"clientToken,omitempty"`
	RequestHash             string                   `json:"requestHash,omitempty"`
	CreatedAt               time.Time                `json:"createdAt"`
	CreatedBy               string                   `json:"createdBy,omitempty"`
	Deployments             []deploy.Deployment      `json:"deployments"`
	Events                  []deploy.Event           `json:"events,omitempty"`
	RunningCount            int32                    `json:"runningCount"`
	PendingCount            int32                    `json:"pendingCount"`
	Steady                  bool                     `json:"steady,omitempty"`
	LastCompletedDeployment string                   `json:"lastCompletedDeployment,omitempty"`
	LastCompletedTaskDef    string                   `json:"lastCompletedTaskDefinition,omitempty"`
	Version                 int64                    `json:"version"`
	// InactiveAt is when the controller marked the service INACTIVE; the
	// garbage collector purges the record retention later (internal/ecs/taskgc).
	InactiveAt *time.Time `json:"inactiveAt,omitempty"`

	// LoadBalancers are the target groups the tasks register with
	// (internal/elbv2's ECS target controller does it; loadbalancers.go).
	LoadBalancers []ecsapi.LoadBalancer `json:"loadBalancers,omitempty"`
	// Fargate is set for a service of launch type FARGATE (internal/ecs/fargate_service.go).
	Fargate *FargateLaunch `json:"fargate,omitempty"`
	// ASG is set for a service with an Auto Scaling group provider
	// strategy (internal/ecs/asgproviders.go).
	ASG *ASGLaunch `json:"asg,omitempty"`
}

// PrimarySC is the Service Connect configuration of the service's primary
// deployment (nil without).
func (r *ServiceRecord) PrimarySC() *SCDeployment {
	if len(r.Deployments) == 0 {
		return nil
	}
	return r.SCDeployments[r.Deployments[0].ID]
}

// SetDeploymentSC records a new deployment's configuration and forgets
// those of deployments that are gone.
func (r *ServiceRecord) SetDeploymentSC(id string, d *SCDeployment) {
	keep := map[string]*SCDeployment{}
	for _, dep := range r.Deployments {
		if v := r.SCDeployments[dep.ID]; v != nil {
			keep[dep.ID] = v
		}
	}
	if d != nil {
		keep[id] = d
	} else {
		delete(keep, id)
	}
	if len(keep) == 0 {
		keep = nil
	}
	r.SCDeployments = keep
}

// SCDeployment is a deployment's resolved Service Connect configuration.
type SCDeployment struct {
	// Config is the configuration as DescribeServices shows it: defaults
	// filled in, the namespace as its ARN.
	Config        ecsapi.ServiceConnectConfiguration     `json:"config"`
	NamespaceID   string                                 `json:"namespaceId"`
	NamespaceName string                                 `json:"namespaceName"`
	Resources     []ecsapi.ServiceConnectServiceResource `json:"resources,omitempty"`
}

// FargateLaunch is what a FARGATE task or service carries beyond an EC2
// one.
type FargateLaunch struct {
	PlatformVersion  string                       `json:"platformVersion"`
	PlatformFamily   string                       `json:"platformFamily"`
	Network          *ecsapi.NetworkConfiguration `json:"networkConfiguration,omitempty"`
	CapacityProvider string                       `json:"capacityProvider,omitempty"`
	// Strategy is a service's capacity provider strategy (not set on
	// tasks).
	Strategy []ecsapi.CapacityProviderStrategyItem `json:"strategy,omitempty"`
}

// TaskDefRecord is a task definition revision as stored.
type TaskDefRecord struct {
	TaskDefinition ecsapi.TaskDefinition `json:"taskDefinition"`
	Tags           []ecsapi.Tag          `json:"tags,omitempty"`
}

// ClientTokenRecord remembers what a RunTask with a client token made, at
// /berth/ecs/clienttokens/<cluster>/<token>.
type ClientTokenRecord struct {
	RequestHash string           `json:"requestHash"`
	TaskARNs    []string         `json:"taskArns"`
	Failures    []ecsapi.Failure `json:"failures,omitempty"`
	CreatedAt   time.Time        `json:"createdAt"`
}

// ASGLaunch is a service's Auto Scaling group capacity provider strategy
// (internal/ecs/asgproviders.go, docs/capacity-providers.md).
type ASGLaunch struct {
	Strategy []ecsapi.CapacityProviderStrategyItem `json:"strategy"`
}
