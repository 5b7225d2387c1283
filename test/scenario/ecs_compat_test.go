package scenario

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/daemon"
)

// TestECSCompatibilityThroughCLIs checks ECS behaviours an outside ECS test
// suite found missing (issue 9, item 8), through both AWS CLIs (botocore
// and the Debian CLI v2): DeleteTaskDefinitions failure reasons in ECS's
// words, roleArn on services, TagResource overwriting a key in place, and
// DiscoverPollEndpoint answering Berth's endpoint.
func TestECSCompatibilityThroughCLIs(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, nil)
	for _, cli := range berthtest.CLIs(t) {
		t.Run(cli.Name, func(t *testing.T) {
			run := func(args ...string) map[string]any {
				t.Helper()
				return cli.RunJSON(t, s, args...)
			}
			fam := "compat-" + cli.Name
			for i := 0; i < 2; i++ {
				run("ecs", "register-task-definition", "--family", fam,
					"--container-definitions", `[{"name":"a","image":"busybox","memory":32}]`)
			}
			run("ecs", "deregister-task-definition", "--task-definition", fam+":1")

			// One deleted, then ACTIVE, invalid (no revision) and missing.
			// Debian's CLI 2.9 predates DeleteTaskDefinitions.
			if _, errOut, code := cli.Run(t, s, "ecs", "delete-task-definitions", "help"); code != 0 && strings.Contains(errOut, "Invalid choice") {
				t.Logf("%s has no delete-task-definitions", cli.Name)
			} else {
				del := run("ecs", "delete-task-definitions", "--task-definitions", fam+":1", fam+":2", fam, fam+":9")
				if tds := del["taskDefinitions"].([]any); len(tds) != 1 || tds[0].(map[string]any)["status"] != "DELETE_IN_PROGRESS" {
					t.Fatalf("deleted: %v", del)
				}
				want := map[string]string{
					fam + ":2": "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
					fam:        "The specified task definition identifier is invalid. Specify a valid name or ARN and try again.",
					fam + ":9": "The specified task definition does not exist. Specify a valid account, family, revision and try again.",
				}
				got := map[string]string{}
				for _, f := range del["failures"].([]any) {
					m := f.(map[string]any)
					got[fmt.Sprint(m["arn"])] = fmt.Sprint(m["reason"])
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("failures:\n got %v\nwant %v", got, want)
				}
			}

			// roleArn: a role name is shown as its ARN, in the answer and after.
			cl := "compat-" + cli.Name
			run("ecs", "create-cluster", "--cluster-name", cl)
			svc := run("ecs", "create-service", "--cluster", cl, "--service-name", "web", "--task-definition", fam+":2",
				"--desired-count", "0", "--role", "ecsServiceRole")
			wantRole := "arn:aws:iam::000000000000:role/ecsServiceRole"
			if r := svc["service"].(map[string]any)["roleArn"]; r != wantRole {
				t.Fatalf("create-service roleArn = %v", r)
			}
			d := run("ecs", "describe-services", "--cluster", cl, "--services", "web")
			if r := d["services"].([]any)[0].(map[string]any)["roleArn"]; r != wantRole {
				t.Fatalf("describe-services roleArn = %v", r)
			}

			// Tags: overwriting a key keeps its position.
			arn := svc["service"].(map[string]any)["serviceArn"].(string)
			run2 := func(args ...string) {
				t.Helper()
				if _, errOut, code := cli.Run(t, s, args...); code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, errOut)
				}
			}
			run2("ecs", "tag-resource", "--resource-arn", arn, "--tags", "key=a,value=1", "key=b,value=2", "key=c,value=3")
			run2("ecs", "tag-resource", "--resource-arn", arn, "--tags", "key=a,value=9")
			var keys []string
			for _, tg := range run("ecs", "list-tags-for-resource", "--resource-arn", arn)["tags"].([]any) {
				m := tg.(map[string]any)
				keys = append(keys, fmt.Sprintf("%v=%v", m["key"], m["value"]))
			}
			if strings.Join(keys, ",") != "a=9,b=2,c=3" {
				t.Fatalf("tags after overwrite: %v", keys)
			}

			// RegisterContainerInstance with only an instance identity
			// document: CPU and MEMORY come from its instance type.
			doc := `{"instanceId":"i-0abc","instanceType":"t3.medium","availabilityZone":"us-east-1b","region":"us-east-1"}`
			ci := run("ecs", "register-container-instance", "--cluster", cl, "--instance-identity-document", doc)["containerInstance"].(map[string]any)
			res := map[string]any{}
			for _, r := range ci["registeredResources"].([]any) {
				m := r.(map[string]any)
				res[m["name"].(string)] = m["integerValue"]
			}
			if res["CPU"] != 2048.0 || res["MEMORY"] != 3892.0 {
				t.Fatalf("resources from the identity document: %v", res)
			}
			attrs := map[string]any{}
			for _, a := range ci["attributes"].([]any) {
				m := a.(map[string]any)
				attrs[m["name"].(string)] = m["value"]
			}
			if attrs["ecs.availability-zone"] != "us-east-1b" || attrs["ecs.instance-type"] != "t3.medium" {
				t.Fatalf("attributes from the identity document: %v", attrs)
			}
			// Neither resources nor a document: refused, saying what to give.
			if _, errOut, code := cli.Run(t, s, "ecs", "register-container-instance", "--cluster", cl); code == 0 ||
				!strings.Contains(errOut, "InvalidParameterException") || !strings.Contains(errOut, "totalResources") {
				t.Fatalf("register without resources: exit %d: %s", code, errOut)
			}

			// DiscoverPollEndpoint answers Berth's own endpoint.
			ep := run("ecs", "discover-poll-endpoint", "--cluster", cl)
			if ep["endpoint"] != s.Endpoint || ep["telemetryEndpoint"] != s.Endpoint {
				t.Fatalf("discover-poll-endpoint: %v (want %s)", ep, s.Endpoint)
			}
		})
	}
}

// TestOtherRegionIsRefused: a Berth serves one region (--region). A client
// configured for another gets AWS's wrong-region signature error naming
// both regions, through the Go SDK and both CLIs, and nothing is created;
// a Berth started for that region serves it with its ARNs.
func TestOtherRegionIsRefused(t *testing.T) {
	s := berthtest.Start(t, nil)
	other := *s
	other.Region = "us-east-2"
	c := ecs.NewFromConfig(other.AWSConfig())
	_, err := c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("elsewhere")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSignatureException" ||
		!strings.Contains(ae.ErrorMessage(), "serves us-east-1, not 'us-east-2'") {
		t.Fatalf("CreateCluster signed for us-east-2: %v", err)
	}
	for _, cli := range berthtest.CLIs(t) {
		_, errOut, code := cli.Run(t, &other, "ecs", "list-clusters")
		if code == 0 || !strings.Contains(errOut, "InvalidSignatureException") || !strings.Contains(errOut, "--region us-east-2") {
			t.Fatalf("%s signed for us-east-2: exit %d: %s", cli.Name, code, errOut)
		}
	}
	l, err := ecs.NewFromConfig(s.AWSConfig()).ListClusters(ctx(t), &ecs.ListClustersInput{})
	if err != nil || len(l.ClusterArns) != 0 {
		t.Fatalf("clusters after refused calls: %v %v", err, l)
	}

	west := berthtest.Start(t, func(cfg *daemon.Config) { cfg.Region = "eu-west-1" })
	cl, err := ecs.NewFromConfig(west.AWSConfig()).CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("w")})
	if err != nil || aws.ToString(cl.Cluster.ClusterArn) != "arn:aws:ecs:eu-west-1:000000000000:cluster/w" {
		t.Fatalf("eu-west-1 Berth: %v %v", err, cl)
	}
}
