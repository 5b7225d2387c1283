package scenario

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/berthtest"
)

func webTaskDef(family string) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:         aws.String("web"),
			Image:        aws.String("nginx:1.27"),
			Memory:       aws.Int32(256),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80), Name: aws.String("http")}},
			Environment:  []types.KeyValuePair{{Name: aws.String("MODE"), Value: aws.String("prod")}},
		}},
	}
}

func TestTaskDefinitionLifecycle(t *testing.T) {
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := ctx(t)

	in := webTaskDef("web")
	in.Tags = []types.Tag{{Key: aws.String("app"), Value: aws.String("web")}}
	r1, err := c.RegisterTaskDefinition(cx, in)
	if err != nil {
		t.Fatal(err)
	}
	td := r1.TaskDefinition
	if td.Revision != 1 || aws.ToString(td.TaskDefinitionArn) != "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1" {
		t.Fatalf("first revision: %d %s", td.Revision, aws.ToString(td.TaskDefinitionArn))
	}
	if td.Status != types.TaskDefinitionStatusActive || td.RegisteredAt == nil || aws.ToString(td.RegisteredBy) != "arn:aws:iam::000000000000:root" {
		t.Fatalf("status/registered: %+v", td)
	}
	cd := td.ContainerDefinitions[0]
	if !aws.ToBool(cd.Essential) || cd.PortMappings[0].Protocol != types.TransportProtocolTcp {
		t.Fatalf("defaults not filled: essential=%v protocol=%v", cd.Essential, cd.PortMappings[0].Protocol)
	}
	if len(td.Compatibilities) == 0 {
		t.Fatal("compatibilities not computed")
	}
	if len(r1.Tags) != 1 {
		t.Fatalf("tags not echoed: %+v", r1.Tags)
	}

	for i := 2; i <= 3; i++ {
		r, err := c.RegisterTaskDefinition(cx, webTaskDef("web"))
		if err != nil || r.TaskDefinition.Revision != int32(i) {
			t.Fatalf("revision %d: %v", i, err)
		}
	}
	if _, err := c.RegisterTaskDefinition(cx, webTaskDef("web-api")); err != nil {
		t.Fatal(err)
	}

	// Describe by family (latest ACTIVE), family:revision and ARN.
	for ref, rev := range map[string]int32{"web": 3, "web:2": 2, "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1": 1} {
		d, err := c.DescribeTaskDefinition(cx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref)})
		if err != nil || d.TaskDefinition.Revision != rev {
			t.Fatalf("describe %s: %v", ref, err)
		}
	}
	d, err := c.DescribeTaskDefinition(cx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:1"), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil || len(d.Tags) != 1 {
		t.Fatalf("describe with tags: %v %+v", err, d)
	}
	_, err = c.DescribeTaskDefinition(cx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("nope")})
	wantCode(t, err, "ClientException")
	_, err = c.DescribeTaskDefinition(cx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:99")})
	wantCode(t, err, "ClientException")

	// Deregister revision 3: the family now resolves to 2.
	dr, err := c.DeregisterTaskDefinition(cx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web:3")})
	if err != nil || dr.TaskDefinition.Status != types.TaskDefinitionStatusInactive || dr.TaskDefinition.DeregisteredAt == nil {
		t.Fatalf("deregister: %v", err)
	}
	d, _ = c.DescribeTaskDefinition(cx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web")})
	if d.TaskDefinition.Revision != 2 {
		t.Fatalf("family resolves to %d after deregistering 3", d.TaskDefinition.Revision)
	}
	// INACTIVE revisions stay describable.
	d, err = c.DescribeTaskDefinition(cx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web:3")})
	if err != nil || d.TaskDefinition.Status != types.TaskDefinitionStatusInactive {
		t.Fatalf("inactive describe: %v", err)
	}

	// Lists.
	l, err := c.ListTaskDefinitions(cx, &ecs.ListTaskDefinitionsInput{})
	if err != nil || fmt.Sprint(l.TaskDefinitionArns) != "[arn:aws:ecs:us-east-1:000000000000:task-definition/web:1 arn:aws:ecs:us-east-1:000000000000:task-definition/web:2 arn:aws:ecs:us-east-1:000000000000:task-definition/web-api:1]" {
		t.Fatalf("list: %v %v", err, l.TaskDefinitionArns)
	}
	l, _ = c.ListTaskDefinitions(cx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web"), Sort: types.SortOrderDesc})
	if len(l.TaskDefinitionArns) != 2 || l.TaskDefinitionArns[0] != "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2" {
		t.Fatalf("list family desc: %v", l.TaskDefinitionArns)
	}
	l, _ = c.ListTaskDefinitions(cx, &ecs.ListTaskDefinitionsInput{Status: types.TaskDefinitionStatusInactive})
	if len(l.TaskDefinitionArns) != 1 {
		t.Fatalf("list inactive: %v", l.TaskDefinitionArns)
	}
	var pages, n int
	p := ecs.NewListTaskDefinitionsPaginator(c, &ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(1)})
	for p.HasMorePages() {
		pg, err := p.NextPage(cx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		n += len(pg.TaskDefinitionArns)
	}
	if n != 3 || pages != 3 {
		t.Fatalf("paginated %d in %d pages", n, pages)
	}
	f, err := c.ListTaskDefinitionFamilies(cx, &ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("web")})
	if err != nil || fmt.Sprint(f.Families) != "[web web-api]" {
		t.Fatalf("families: %v %v", err, f.Families)
	}

	// Delete requires INACTIVE; failures come back per revision.
	del, err := c.DeleteTaskDefinitions(cx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"web:3", "web:2", "web:42"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.TaskDefinitions) != 1 || del.TaskDefinitions[0].Status != types.TaskDefinitionStatusDeleteInProgress || len(del.Failures) != 2 {
		t.Fatalf("delete: %+v", del)
	}
	// Revisions are never reused.
	r4, err := c.RegisterTaskDefinition(cx, webTaskDef("web"))
	if err != nil || r4.TaskDefinition.Revision != 4 {
		t.Fatalf("revision after delete: %v", err)
	}
	// Tags on a task definition.
	tdArn := aws.ToString(r4.TaskDefinition.TaskDefinitionArn)
	if _, err := c.TagResource(cx, &ecs.TagResourceInput{ResourceArn: &tdArn, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
		t.Fatal(err)
	}
	tg, err := c.ListTagsForResource(cx, &ecs.ListTagsForResourceInput{ResourceArn: &tdArn})
	if err != nil || len(tg.Tags) != 1 {
		t.Fatalf("task definition tags: %v %+v", err, tg)
	}
}

func TestTaskDefinitionValidation(t *testing.T) {
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := ctx(t)

	noEssential := webTaskDef("bad")
	noEssential.ContainerDefinitions[0].Essential = aws.Bool(false)
	noMemory := webTaskDef("bad")
	noMemory.ContainerDefinitions[0].Memory = nil
	dup := webTaskDef("bad")
	dup.ContainerDefinitions = append(dup.ContainerDefinitions, dup.ContainerDefinitions[0])
	badDep := webTaskDef("bad")
	badDep.ContainerDefinitions[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("ghost"), Condition: types.ContainerConditionStart}}
	tooMany := webTaskDef("bad")
	for i := 0; i < 10; i++ {
		cd := tooMany.ContainerDefinitions[0]
		cd.Name = aws.String(fmt.Sprintf("c%d", i))
		cd.PortMappings = nil
		tooMany.ContainerDefinitions = append(tooMany.ContainerDefinitions, cd)
	}
	for name, in := range map[string]*ecs.RegisterTaskDefinitionInput{
		"no essential container": noEssential,
		"no memory":              noMemory,
		"duplicate names":        dup,
		"unknown dependency":     badDep,
		"11 containers":          tooMany,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.RegisterTaskDefinition(cx, in)
			if code := apiCode(err); code != "ClientException" && code != "InvalidParameterException" {
				t.Fatalf("got %v", err)
			}
		})
	}
	// Nothing was registered by the refused requests.
	f, err := c.ListTaskDefinitionFamilies(cx, &ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusAll})
	if err != nil || len(f.Families) != 0 {
		t.Fatalf("refused registrations left state: %v %v", err, f.Families)
	}
}
