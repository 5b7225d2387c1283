package scenario

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/berthtest"
)

// TestRegisterContainerInstanceAPI: ECS's agent-side registration call
// through the public API registers an instance that has no agent behind
// it: it is described with its resources and attributes, stays
// disconnected, gets no tasks, can be re-registered, tagged and
// deregistered.
func TestRegisterContainerInstanceAPI(t *testing.T) {
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := ctx(t)
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("reg")}); err != nil {
		t.Fatal(err)
	}
	res := []types.Resource{
		{Name: aws.String("CPU"), Type: aws.String("INTEGER"), IntegerValue: 2048},
		{Name: aws.String("MEMORY"), Type: aws.String("INTEGER"), IntegerValue: 3000},
		{Name: aws.String("PORTS"), Type: aws.String("STRINGSET"), StringSetValue: []string{"22"}},
	}
	out, err := c.RegisterContainerInstance(cx, &ecs.RegisterContainerInstanceInput{
		Cluster: aws.String("reg"), TotalResources: res,
		Attributes:  []types.Attribute{{Name: aws.String("ecs.availability-zone"), Value: aws.String("us-east-1c")}, {Name: aws.String("rack"), Value: aws.String("r1")}},
		VersionInfo: &types.VersionInfo{AgentVersion: aws.String("1.80.0"), DockerVersion: aws.String("DockerVersion: 20.10.24")},
		Tags:        []types.Tag{{Key: aws.String("owner"), Value: aws.String("ops")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ci := out.ContainerInstance
	if ci.AgentConnected || aws.ToString(ci.Status) != "ACTIVE" || len(ci.Tags) != 1 {
		t.Fatalf("registered instance: %+v", ci)
	}
	attrs := map[string]string{}
	for _, a := range ci.Attributes {
		attrs[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	if attrs["ecs.availability-zone"] != "us-east-1c" || attrs["rack"] != "r1" {
		t.Fatalf("attributes: %v", attrs)
	}
	// No agent: RunTask cannot place on it.
	if _, err := c.RegisterTaskDefinition(cx, webTaskDef("noagent")); err != nil {
		t.Fatal(err)
	}
	rt, err := c.RunTask(cx, &ecs.RunTaskInput{Cluster: aws.String("reg"), TaskDefinition: aws.String("noagent")})
	if err != nil || len(rt.Tasks) != 0 || len(rt.Failures) == 0 {
		t.Fatalf("RunTask on an agentless instance: %v %+v", err, rt)
	}
	// Re-register with more memory.
	res[1].IntegerValue = 4000
	re, err := c.RegisterContainerInstance(cx, &ecs.RegisterContainerInstanceInput{Cluster: aws.String("reg"), TotalResources: res, ContainerInstanceArn: ci.ContainerInstanceArn})
	if err != nil || aws.ToString(re.ContainerInstance.ContainerInstanceArn) != aws.ToString(ci.ContainerInstanceArn) {
		t.Fatalf("re-register: %v", err)
	}
	for _, r := range re.ContainerInstance.RegisteredResources {
		if aws.ToString(r.Name) == "MEMORY" && r.IntegerValue != 4000 {
			t.Fatalf("memory not updated: %d", r.IntegerValue)
		}
	}
	// Tags on container instances through the tagging API.
	if _, err := c.TagResource(cx, &ecs.TagResourceInput{ResourceArn: ci.ContainerInstanceArn, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("lab")}}}); err != nil {
		t.Fatal(err)
	}
	tg, err := c.ListTagsForResource(cx, &ecs.ListTagsForResourceInput{ResourceArn: ci.ContainerInstanceArn})
	if err != nil || len(tg.Tags) != 2 {
		t.Fatalf("instance tags: %v %+v", err, tg)
	}
	if _, err := c.DeregisterContainerInstance(cx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("reg"), ContainerInstance: ci.ContainerInstanceArn}); err != nil {
		t.Fatal(err)
	}
}
