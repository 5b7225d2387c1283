package dockerdriver

// Labels ECS's agent puts on every task container; tools that know ECS
// (and the task metadata endpoint) read them.
const (
	LabelECSCluster        = "com.amazonaws.ecs.cluster"
	LabelECSTaskARN        = "com.amazonaws.ecs.task-arn"
	LabelECSContainerName  = "com.amazonaws.ecs.container-name"
	LabelECSTaskFamily     = "com.amazonaws.ecs.task-definition-family"
	LabelECSTaskDefVersion = "com.amazonaws.ecs.task-definition-version"
)

// Berth's own labels, on every container, volume and network it creates;
// the agent finds its containers again after a restart by them.
const (
	LabelManaged       = "berth.managed"        // "true"
	LabelCluster       = "berth.cluster"        // cluster name or ARN
	LabelTaskARN       = "berth.task-arn"       // the task's ARN
	LabelContainerName = "berth.container-name" // name in the task definition
	LabelInstance      = "berth.instance"       // container instance ARN of the agent that made it
	LabelVolume        = "berth.volume"         // task volume name (on Docker volumes)
)
