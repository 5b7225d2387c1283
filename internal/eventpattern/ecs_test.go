package eventpattern

import (
	"encoding/json"
	"fmt"
	"math/rand"
)

// ECS task state change events and rules on them, shared by the Set
// property test and BenchmarkSetMatch.

var (
	ecsStatuses  = []string{"PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"}
	ecsLaunch    = []string{"EC2", "FARGATE", "EXTERNAL"}
	ecsStopCodes = []string{"EssentialContainerExited", "TaskFailedToStart", "UserInitiated", "ServiceSchedulerInitiated", "SpotInterruption"}
)

func ecsCluster(i int) string {
	return fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:cluster/cluster-%d", i)
}

// ecsTaskEvent builds an "ECS Task State Change" event shaped like AWS's
// (about 2 KB with its containers, attachments and overrides).
func ecsTaskEvent(r *rand.Rand) []byte {
	cluster := r.Intn(50)
	svc := r.Intn(100)
	last := ecsStatuses[r.Intn(len(ecsStatuses))]
	task := fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/cluster-%d/%032x", cluster, r.Uint64())
	containers := []map[string]any{}
	for i := 0; i < 1+r.Intn(3); i++ {
		c := map[string]any{
			"containerArn": fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:container/cluster-%d/%032x", cluster, r.Uint64()),
			"lastStatus":   last,
			"name":         fmt.Sprintf("app-%d", i),
			"image":        fmt.Sprintf("123456789012.dkr.ecr.us-east-1.amazonaws.com/svc-%d:v%d", svc, r.Intn(20)),
			"taskArn":      task,
			"networkInterfaces": []map[string]any{{
				"attachmentId":       fmt.Sprintf("%08x", r.Uint32()),
				"privateIpv4Address": fmt.Sprintf("10.%d.%d.%d", r.Intn(256), r.Intn(256), r.Intn(256)),
			}},
			"cpu":    "256",
			"memory": "512",
		}
		if last == "STOPPED" {
			c["exitCode"] = r.Intn(3) * 137 / 2
		}
		containers = append(containers, c)
	}
	detail := map[string]any{
		"attachments":       []map[string]any{{"id": fmt.Sprintf("%016x", r.Uint64()), "type": "eni", "status": "ATTACHED", "details": []map[string]string{{"name": "subnetId", "value": "subnet-0123456789"}, {"name": "networkInterfaceId", "value": "eni-0123456789"}}}},
		"availabilityZone":  "us-east-1" + string(rune('a'+r.Intn(3))),
		"clusterArn":        ecsCluster(cluster),
		"containers":        containers,
		"cpu":               "256",
		"createdAt":         "2026-12-02T05:00:00.123Z",
		"desiredStatus":     []string{"RUNNING", "STOPPED"}[r.Intn(2)],
		"group":             fmt.Sprintf("service:svc-%d", svc),
		"launchType":        ecsLaunch[r.Intn(len(ecsLaunch))],
		"lastStatus":        last,
		"memory":            "512",
		"overrides":         map[string]any{"containerOverrides": []map[string]any{{"name": "app-0"}}},
		"platformVersion":   "1.4.0",
		"startedBy":         fmt.Sprintf("ecs-svc/%d", r.Int63()),
		"taskArn":           task,
		"taskDefinitionArn": fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task-definition/svc-%d:%d", svc, 1+r.Intn(9)),
		"updatedAt":         "2026-12-02T05:00:01.456Z",
		"version":           1 + r.Intn(9),
	}
	if last == "STOPPED" {
		detail["stopCode"] = ecsStopCodes[r.Intn(len(ecsStopCodes))]
		detail["stoppedReason"] = "Essential container in task exited"
	}
	ev := map[string]any{
		"version":     "0",
		"id":          fmt.Sprintf("%08x-aaaa-bbbb-cccc-%012x", r.Uint32(), r.Int63()),
		"detail-type": "ECS Task State Change",
		"source":      "aws.ecs",
		"account":     "123456789012",
		"time":        "2026-12-02T05:00:01Z",
		"region":      "us-east-1",
		"resources":   []string{task},
		"detail":      detail,
	}
	if r.Intn(10) == 0 { // now and then another ECS event type
		ev["detail-type"] = "ECS Service Action"
		ev["detail"] = map[string]any{"eventType": "INFO", "eventName": "SERVICE_STEADY_STATE", "clusterArn": ecsCluster(cluster), "createdAt": "2026-12-02T05:00:01Z"}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// ecsRule builds a rule of the kinds users write for ECS: most name
// source and detail-type and then filter on detail fields.
func ecsRule(r *rand.Rand) string {
	cl := fmt.Sprintf("%q", ecsCluster(r.Intn(50)))
	svc := r.Intn(100)
	st := fmt.Sprintf("%q", ecsStatuses[r.Intn(len(ecsStatuses))])
	head := `"source":["aws.ecs"],"detail-type":["ECS Task State Change"]`
	switch r.Intn(10) {
	case 0, 1, 2: // stopped tasks of a cluster
		return fmt.Sprintf(`{%s,"detail":{"clusterArn":[%s],"lastStatus":["STOPPED"]}}`, head, cl)
	case 3: // a service's tasks, by group prefix
		return fmt.Sprintf(`{%s,"detail":{"group":[{"prefix":"service:svc-%d"}],"lastStatus":[%s]}}`, head, svc, st)
	case 4: // failed containers in a cluster
		return fmt.Sprintf(`{%s,"detail":{"clusterArn":[%s],"containers":{"exitCode":[{"numeric":[">",0]}]}}}`, head, cl)
	case 5: // anything but routine stops, per launch type
		return fmt.Sprintf(`{%s,"detail":{"launchType":[%q],"stopCode":[{"anything-but":["UserInitiated","ServiceSchedulerInitiated"]}]}}`, head, ecsLaunch[r.Intn(3)])
	case 6: // $or on statuses within a cluster
		return fmt.Sprintf(`{%s,"detail":{"clusterArn":[%s],"$or":[{"lastStatus":[%s]},{"desiredStatus":["STOPPED"]}]}}`, head, cl, st)
	case 7: // task definition family by wildcard: only source to index by
		return fmt.Sprintf(`{"source":["aws.ecs"],"detail":{"taskDefinitionArn":[{"wildcard":"*:task-definition/svc-%d:*"}]}}`, svc)
	case 8: // service actions
		return fmt.Sprintf(`{"source":["aws.ecs"],"detail-type":["ECS Service Action"],"detail":{"clusterArn":[%s],"eventName":["SERVICE_STEADY_STATE","SERVICE_TASK_PLACEMENT_FAILURE"]}}`, cl)
	default: // a task by its resource ARN prefix and an IP range
		return fmt.Sprintf(`{%s,"resources":[{"prefix":"arn:aws:ecs:us-east-1:123456789012:task/cluster-%d/"}],"detail":{"containers":{"networkInterfaces":{"privateIpv4Address":[{"cidr":"10.%d.0.0/16"}]}}}}`, head, r.Intn(50), r.Intn(256))
	}
}
