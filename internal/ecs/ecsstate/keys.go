package ecsstate

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Store layout of container instances, tasks and assignments:
//
//	/berth/ecs/instances/<cluster>/<instance id>  InstanceRecord
//	/berth/ecs/agents/<instance id>                presence, under a lease kept alive by
//	                                               the open assignment stream (agentConnected);
//	                                               absent for the disconnect grace: its service
//	                                               tasks are replaced; for LostAfter (or
//	                                               deregistered): the instance is lost
//	                                               (internal/ecs/instancemon)
//	/berth/ecs/tasks/<cluster>/<task id>           TaskRecord
//	/berth/ecs/assign/<instance id>/<task id>      AssignmentRecord: the index the agent's
//	                                               stream watches; written in the same
//	                                               transaction as every desired change
//	/berth/ecs/taskgroups/<cluster>/<group>/<id>   index of tasks by group (escaped), written
//	                                               with the task and deleted with it, so
//	                                               ListTasks by service reads only its tasks
//	/berth/ecs/clienttokens/<cluster>/<token>      RunTask idempotency: the task ARNs made
//	/berth/iam/agents/<access key id>              agent credential (see internal/ecs/agentcreds.go);
//	                                               deleted with its instance record when
//	                                               the INACTIVE instance is purged (internal/ecs/taskgc/purge.go)
//	/berth/iam/jointokens/<sha256 of token>        join token, under a lease (expiry)
const (
	KeyAgents = "/berth/ecs/agents/"
	KeyAssign = "/berth/ecs/assign/"
	// KeyDrain indexes the tasks held in DEACTIVATING while their load
	// balancer targets drain: /berth/ecs/drain/<cluster>/<task id>.
	KeyDrain        = "/berth/ecs/drain/"
	KeyClientTokens = "/berth/ecs/clienttokens/"
	KeyTaskGroups   = "/berth/ecs/taskgroups/"
	KeyAgentCreds   = "/berth/iam/agents/"
	KeyJoinTokens   = "/berth/iam/jointokens/"
)

// Store layout of ECS resources. Later issues write the services,
// container instances and tasks under these prefixes; the cluster counters
// and DeleteCluster's checks read them.
const (
	KeyClusters  = "/berth/ecs/clusters/"  // + name
	KeyServices  = "/berth/ecs/services/"  // + cluster + "/" + name
	KeyInstances = "/berth/ecs/instances/" // + cluster + "/" + id
	KeyTasks     = "/berth/ecs/tasks/"     // + cluster + "/" + id
)

// Task definitions: /berth/ecs/taskdefs/<family>#<10-digit revision>
// (TaskDefRecord). '#' sorts below every character a family may hold, so
// revisions of one family are contiguous and families list in name order.
const (
	KeyTaskDefs = "/berth/ecs/taskdefs/"
	RevSep      = "#"
)

func InstanceKey(cluster, id string) string { return KeyInstances + cluster + "/" + id }

func TaskKey(cluster, id string) string { return KeyTasks + cluster + "/" + id }

// TaskGroupPrefix is where the index entries of a group's tasks live.
func TaskGroupPrefix(cluster, group string) string {
	return KeyTaskGroups + cluster + "/" + url.PathEscape(group) + "/"
}

func TaskGroupKey(cluster, group, taskID string) string {
	return TaskGroupPrefix(cluster, group) + taskID
}

func AssignKey(instanceID, taskID string) string {
	return KeyAssign + instanceID + "/" + taskID
}

func ServiceKey(cluster, name string) string { return KeyServices + cluster + "/" + name }

func TaskDefKey(family string, rev int32) string {
	return fmt.Sprintf("%s%s%s%010d", KeyTaskDefs, family, RevSep, rev)
}

func ClientTokenKey(cluster, token string) string { return KeyClientTokens + cluster + "/" + token }

// TaskDefKeyOfARN is the key of the task definition revision an ARN
// (arn:…:task-definition/<family>:<revision>) names; false when it names
// no revision.
func TaskDefKeyOfARN(arn string) (string, bool) {
	_, ref, ok := strings.Cut(arn, ":task-definition/")
	if !ok {
		return "", false
	}
	family, revS, ok := strings.Cut(ref, ":")
	if !ok || family == "" {
		return "", false
	}
	rev, err := strconv.ParseInt(revS, 10, 32)
	if err != nil || rev <= 0 {
		return "", false
	}
	return TaskDefKey(family, int32(rev)), true
}
