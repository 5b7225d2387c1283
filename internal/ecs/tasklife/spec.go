package tasklife

import (
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/capacityprovider"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/serviceconnect"
)

// ReasonNoPoolInstances is ECS's reason when a provider's group has no
// container instance (and managed scaling cannot add one).
const ReasonNoPoolInstances = "No Container Instances were found in your capacity provider."

// TaskInput is what RunTask, StartTask and a service's tasks have in common.
type TaskInput struct {
	TaskDefinition string
	Overrides      *ecsapi.TaskOverride
	Group          string
	StartedBy      string
	Tags           []ecsapi.Tag
	PropagateTags  *ecsapi.PropagateTags
	ManagedTags    bool
	LaunchType     *ecsapi.LaunchType
	// PlatformVersion and Network: RunTask's and the service's
	// platformVersion and networkConfiguration.
	PlatformVersion *string
	Network         *ecsapi.NetworkConfiguration
	// CapacityProvider names the capacity provider a strategy chose.
	CapacityProvider string
}

// Spec is a validated request for tasks of one task definition.
type Spec struct {
	TD        ecsapi.TaskDefinition
	Overrides *ecsapi.TaskOverride
	Group     string
	StartedBy string
	Tags      []ecsapi.Tag
	Req       placement.Request
	TCP, UDP  []int
	Dynamic   int
	// Fargate is set for a FARGATE task.
	Fargate *ecsstate.FargateLaunch
	// Providers are the capacity providers of the tasks to place, in
	// order, when a strategy chose them.
	Providers []string
	// Pins: a RunTask's tasks' Auto Scaling group providers and pools, in
	// order; ASG: the one every task of this spec goes to
	// (ecs/asgplacement.go).
	Pins []ASGPin
	ASG  *ASGPin
	// SC is the Service Connect configuration of a service's tasks
	// (ecs/serviceconnect.go); each task gets its own proxy container name.
	SC *serviceconnect.TaskConfig
}

// ASGPin is the provider a task of an ASG strategy goes to, and its pool.
type ASGPin struct{ Provider, Pool string }

// InPool reports whether an instance belongs to a task's pool (every
// instance does when the task has none).
func (spec *Spec) InPool(v *InstanceView) bool {
	return spec.ASG == nil || v.Rec.Attributes[capacityprovider.PoolAttribute] == spec.ASG.Pool
}

// ASGProvider is the provider a task of spec goes to ("" without one).
func (spec *Spec) ASGProvider() string {
	if spec.ASG == nil {
		return ""
	}
	return spec.ASG.Provider
}

// PoolFailure rewrites the no-instance failure of a pinned placement to
// ECS's capacity provider reason.
func (spec *Spec) PoolFailure(f placement.Failure) placement.Failure {
	if spec.ASG != nil && f.Reason == placement.ReasonNoInstances {
		f.Reason = ReasonNoPoolInstances
	}
	return f
}
