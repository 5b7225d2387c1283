package registry

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/berthtest"
)

// TestAWSCLIsECR drives the ECR API with both AWS CLIs: create and
// describe a repository, get-login-password (the password opens /v2/),
// the not-found error, and delete.
func TestAWSCLIsECR(t *testing.T) {
	t.Parallel() // its own server; CLI calls are mostly process start-up
	s := berthtest.Start(t, nil)
	for _, cli := range berthtest.CLIs(t) {
		t.Run(cli.Name, func(t *testing.T) {
			name := "cli/" + strings.ReplaceAll(cli.Name, "-", "")
			out, errOut, code := cli.Run(t, s, "ecr", "create-repository", "--repository-name", name, "--image-tag-mutability", "IMMUTABLE")
			if code != 0 {
				t.Fatalf("create-repository: %s", errOut)
			}
			var cr struct {
				Repository struct{ RepositoryUri, ImageTagMutability string }
			}
			json.Unmarshal([]byte(out), &cr)
			if cr.Repository.RepositoryUri != host(s)+"/"+name || cr.Repository.ImageTagMutability != "IMMUTABLE" {
				t.Fatalf("create-repository output: %s", out)
			}
			out, errOut, code = cli.Run(t, s, "ecr", "describe-repositories")
			if code != 0 || !strings.Contains(out, name) {
				t.Fatalf("describe-repositories: %s %s", out, errOut)
			}
			out, errOut, code = cli.Run(t, s, "ecr", "get-login-password")
			if code != 0 {
				t.Fatalf("get-login-password: %s", errOut)
			}
			c := &client{t: t, base: s.Endpoint, pass: strings.TrimSpace(out)}
			if r := c.do("GET", "/v2/"+name+"/tags/list", nil, nil); r.status != 200 {
				t.Fatalf("the CLI's password does not open /v2/: %d %s", r.status, r.body)
			}
			_, errOut, code = cli.Run(t, s, "ecr", "describe-images", "--repository-name", "cli/none")
			if code == 0 || !strings.Contains(errOut, "RepositoryNotFoundException") {
				t.Fatalf("unknown repository: %d %s", code, errOut)
			}
			if _, errOut, code = cli.Run(t, s, "ecr", "delete-repository", "--repository-name", name); code != 0 {
				t.Fatalf("delete-repository: %s", errOut)
			}
		})
	}
}
