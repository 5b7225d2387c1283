package scenario

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/berthtest"
)

// realWorldTaskDefs are task definitions shaped like the ones users keep
// in their repositories (several containers, health checks, dependsOn,
// log configuration, port names, Fargate).
func realWorldTaskDefs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/taskdefs/*.json")
	if err != nil || len(files) < 3 {
		t.Fatalf("need real-world task definitions in testdata/taskdefs: %v %v", files, err)
	}
	return files
}

// TestCLIsAgainstBinary drives the built berth binary with both AWS CLIs.
func TestCLIsAgainstBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	t.Parallel()
	clis := berthtest.CLIs(t)
	p := berthtest.StartProcess(t, "up", t.TempDir(), nil)
	berthtest.EachCLI(t, clis, func(t *testing.T, _ int, cli berthtest.CLI) {
		// each CLI works on names of its own
		run := func(args ...string) map[string]any {
			t.Helper()
			return cli.RunJSON(t, p.Server, args...)
		}
		id := run("sts", "get-caller-identity")
		if id["Account"] != "000000000000" {
			t.Fatalf("caller identity: %v", id)
		}
		name := "cli-" + cli.Name
		cl := run("ecs", "create-cluster", "--cluster-name", name, "--tags", "key=team,value=core")
		if cl["cluster"].(map[string]any)["status"] != "ACTIVE" {
			t.Fatalf("create-cluster: %v", cl)
		}
		d := run("ecs", "describe-clusters", "--clusters", name, "missing-"+name, "--include", "TAGS")
		if len(d["clusters"].([]any)) != 1 || len(d["failures"].([]any)) != 1 {
			t.Fatalf("describe-clusters: %v", d)
		}
		for _, f := range realWorldTaskDefs(t) {
			abs, _ := filepath.Abs(f)
			r := run("ecs", "register-task-definition", "--cli-input-json", "file://"+abs)
			td := r["taskDefinition"].(map[string]any)
			if td["status"] != "ACTIVE" || td["revision"] == nil {
				t.Fatalf("%s: %v", f, r)
			}
			back := run("ecs", "describe-task-definition", "--task-definition", td["taskDefinitionArn"].(string))
			if fmt.Sprint(back["taskDefinition"]) != fmt.Sprint(td) {
				t.Fatalf("%s: describe differs from register:\n%v\n%v", f, back["taskDefinition"], td)
			}
		}
		// The CLI auto-paginates list calls until nextToken is absent
		// (the revisions are registered through the SDK: what is tested
		// here is the CLI's paging, and a CLI call costs a second of CPU).
		// Six revisions in pages of two: three pages, and with the other
		// CLI's the registrations stay within the default throttle's
		// burst (20, then 1/s); the SDK waits out a throttle beyond it.
		sdk := ecs.NewFromConfig(p.AWSConfig(), func(o *ecs.Options) { o.RetryMaxAttempts = 10 })
		for i := 0; i < 6; i++ {
			if _, err := sdk.RegisterTaskDefinition(ctx(t), &ecs.RegisterTaskDefinitionInput{Family: aws.String("pg-" + cli.Name),
				ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("a"), Image: aws.String("busybox"), Memory: aws.Int32(32)}}}); err != nil {
				t.Fatal(err)
			}
		}
		l := run("ecs", "list-task-definitions", "--family-prefix", "pg-"+cli.Name, "--page-size", "2")
		if n := len(l["taskDefinitionArns"].([]any)); n != 6 {
			t.Fatalf("auto-paginated list returned %d", n)
		}
		// Bad input: the CLI prints the AWS error code and exits non-zero.
		_, errOut, code := cli.Run(t, p.Server, "ecs", "register-task-definition", "--family", "bad",
			"--container-definitions", `[{"name":"a","image":"busybox"}]`)
		if code == 0 || !strings.Contains(errOut, "ClientException") {
			t.Fatalf("bad task definition: exit %d: %s", code, errOut)
		}
		_, errOut, code = cli.Run(t, p.Server, "ecs", "delete-cluster", "--cluster", "nope")
		if code == 0 || !strings.Contains(errOut, "ClusterNotFoundException") {
			t.Fatalf("delete missing cluster: exit %d: %s", code, errOut)
		}
		run("ecs", "delete-cluster", "--cluster", name)
		ev := run("cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=ResourceName,AttributeValue="+name, "--max-results", "5")
		if len(ev["Events"].([]any)) < 2 {
			t.Fatalf("lookup-events: %v", ev)
		}
	})
}

// TestBerthEnv checks `berth env` prints what the CLIs need.
func TestBerthEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	dir := t.TempDir()
	p := berthtest.StartProcess(t, "up", dir, nil)
	out, err := runBinary(t, "env", "--data-dir", dir, "--endpoint", p.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"AWS_ACCESS_KEY_ID=" + p.Creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + p.Creds.SecretAccessKey, "AWS_ENDPOINT_URL=" + p.Endpoint, "AWS_DEFAULT_REGION=us-east-1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("berth env lacks %s:\n%s", want, out)
		}
	}
	// The credentials file is private.
	fi, err := os.Stat(filepath.Join(dir, "root-credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode: %v %v", fi.Mode(), err)
	}
	// The key pair is printed once, on the first start only.
	if !strings.Contains(p.Output.String(), p.Creds.SecretAccessKey) {
		t.Fatal("first start did not print the new key pair")
	}
	p.Kill9()
	p2 := berthtest.StartProcess(t, "up", dir, nil)
	if strings.Contains(p2.Output.String(), p.Creds.SecretAccessKey) {
		t.Fatal("second start printed the secret again")
	}
	if _, err := ecs.NewFromConfig(p2.AWSConfig()).ListClusters(ctx(t), &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("same key after restart: %v", err)
	}
}
