package placement

import "fmt"

// troubleshooting ends ECS's placement events.
const troubleshooting = " For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."

// UnableToPlaceMessage returns the service event ECS posts when the
// service scheduler cannot place one of a service's tasks, for the
// failure Place returned, e.g.
//
//	(service web) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance 1b2c...) has insufficient memory available. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.
func UnableToPlaceMessage(service string, f Failure) string {
	msg := fmt.Sprintf("(service %s) was unable to place a task because no container instance met all of its requirements.", service)
	if f.InstanceID == "" {
		return msg + " Reason: " + f.Reason + troubleshooting
	}
	var what string
	switch f.Reason {
	case ReasonCPU:
		what = "has insufficient CPU units available."
	case ReasonMemory:
		what = "has insufficient memory available."
	case ReasonPorts:
		what = "is already using a port required by your task."
	case ReasonAgent:
		what = "doesn't have the agent connected."
	case ReasonAttribute:
		what = "is missing an attribute required by your task."
	default:
		what = fmt.Sprintf("encountered error %q.", f.Reason)
	}
	return fmt.Sprintf("%s The closest matching (container-instance %s) %s%s", msg, f.InstanceID, what, troubleshooting)
}
