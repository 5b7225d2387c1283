package ecs

import "github.com/berthdev/berth/internal/ecs/ecsstate"

// The records, keys and statuses this package shares with ECS's
// controllers live in package ecsstate (docs/ecs.md, "Package layout").
// These aliases keep the handlers' code as it was written; new code may
// name ecsstate's identifiers directly.
type (
	instanceRecord    = ecsstate.InstanceRecord
	taskRecord        = ecsstate.TaskRecord
	assignmentRecord  = ecsstate.AssignmentRecord
	clusterRecord     = ecsstate.ClusterRecord
	serviceRecord     = ecsstate.ServiceRecord
	taskDefRecord     = ecsstate.TaskDefRecord
	clientTokenRecord = ecsstate.ClientTokenRecord
	fargateLaunch     = ecsstate.FargateLaunch
	scDeployment      = ecsstate.SCDeployment
)

// Container instance statuses.
const (
	InstanceActive   = ecsstate.InstanceActive
	InstanceDraining = ecsstate.InstanceDraining
	InstanceInactive = ecsstate.InstanceInactive
)

// DefaultDisconnectGrace is how long an agent may stay disconnected before
// the service controller starts the service tasks on its instance
// elsewhere (ecsstate.DecideReachable).
const DefaultDisconnectGrace = ecsstate.DefaultDisconnectGrace

// Task desired statuses.
const (
	DesiredRunning = ecsstate.DesiredRunning
	DesiredStopped = ecsstate.DesiredStopped
)

const (
	keyClusters     = ecsstate.KeyClusters
	keyServices     = ecsstate.KeyServices
	keyInstances    = ecsstate.KeyInstances
	keyTasks        = ecsstate.KeyTasks
	keyAgents       = ecsstate.KeyAgents
	keyAssign       = ecsstate.KeyAssign
	keyDrain        = ecsstate.KeyDrain
	keyClientTokens = ecsstate.KeyClientTokens
	keyTaskGroups   = ecsstate.KeyTaskGroups
	keyAgentCreds   = ecsstate.KeyAgentCreds
	keyJoinTokens   = ecsstate.KeyJoinTokens
)

func instanceKey(cluster, id string) string { return ecsstate.InstanceKey(cluster, id) }
func taskKey(cluster, id string) string     { return ecsstate.TaskKey(cluster, id) }
func serviceKey(cluster, name string) string {
	return ecsstate.ServiceKey(cluster, name)
}
func taskGroupPrefix(cluster, group string) string { return ecsstate.TaskGroupPrefix(cluster, group) }
func taskGroupKey(cluster, group, taskID string) string {
	return ecsstate.TaskGroupKey(cluster, group, taskID)
}
func assignKey(instanceID, taskID string) string { return ecsstate.AssignKey(instanceID, taskID) }
func taskDefKey(family string, rev int32) string { return ecsstate.TaskDefKey(family, rev) }
func clientTokenKey(cluster, token string) string {
	return ecsstate.ClientTokenKey(cluster, token)
}
