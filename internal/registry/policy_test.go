package registry

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/iam"
)

func TestParseRepositoryPolicyValidation(t *testing.T) {
	stmt := func(s string) string { return `{"Version":"2012-10-17","Statement":[` + s + `]}` }
	ok := []string{
		stmt(`{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}`),
		`{"Version":"2008-10-17","Statement":{"Sid":"one","Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}}`,
		`{"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*"}}`, // Version optional
		`{"Version":"2012-10-17","Id":"p1","Statement":[{"Effect":"Allow","Principal":"*","Action":"*"}]}`,
		stmt(`{"Effect":"Deny","Principal":{"AWS":["arn:aws:iam::123456789012:root","arn:aws:iam::123456789012:user/bob","arn:aws:sts::123456789012:assumed-role/r/s"]},"NotAction":"ecr:Batch*"}`),
		stmt(`{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"ecr:BatchGetImage","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}`),
		stmt(`{"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"Action":"ecr:Put?mage"}`),
		stmt(`{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"ECR:putimage"}`), // case-insensitive actions
	}
	for _, p := range ok {
		if _, err := ParseRepositoryPolicy(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	bad := map[string]string{
		"not json":           `{`,
		"array":              `[]`,
		"trailing":           `{"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*"}} {}`,
		"version":            `{"Version":"2020-01-01","Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*"}}`,
		"no statement":       `{"Version":"2012-10-17"}`,
		"empty statements":   `{"Version":"2012-10-17","Statement":[]}`,
		"statement string":   `{"Version":"2012-10-17","Statement":"x"}`,
		"unknown top":        `{"Version":"2012-10-17","Foo":1,"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*"}}`,
		"effect":             stmt(`{"Effect":"allow","Principal":"*","Action":"ecr:*"}`),
		"no effect":          stmt(`{"Principal":"*","Action":"ecr:*"}`),
		"no principal":       stmt(`{"Effect":"Deny","Action":"ecr:*"}`),
		"no action":          stmt(`{"Effect":"Deny","Principal":"*"}`),
		"both actions":       stmt(`{"Effect":"Deny","Principal":"*","Action":"ecr:*","NotAction":"ecr:PutImage"}`),
		"both principals":    stmt(`{"Effect":"Deny","Principal":"*","NotPrincipal":"*","Action":"ecr:*"}`),
		"principal string":   stmt(`{"Effect":"Deny","Principal":"123456789012","Action":"ecr:*"}`),
		"bad account":        stmt(`{"Effect":"Deny","Principal":{"AWS":"12345"},"Action":"ecr:*"}`),
		"wildcard arn":       stmt(`{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:user/*"},"Action":"ecr:*"}`),
		"not iam arn":        stmt(`{"Effect":"Deny","Principal":{"AWS":"arn:aws:s3:::bucket"},"Action":"ecr:*"}`),
		"federated":          stmt(`{"Effect":"Deny","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"ecr:*"}`),
		"empty principal":    stmt(`{"Effect":"Deny","Principal":{},"Action":"ecr:*"}`),
		"empty action list":  stmt(`{"Effect":"Deny","Principal":"*","Action":[]}`),
		"other service":      stmt(`{"Effect":"Deny","Principal":"*","Action":"s3:GetObject"}`),
		"registry action":    stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:GetAuthorizationToken"}`),
		"unknown action":     stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:PushImage"}`),
		"bare prefix":        stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:"}`),
		"resource":           stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}`),
		"deny with cond":     stmt(`{"Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}`),
		"bad condition":      stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":"x"}`),
		"sid not string":     stmt(`{"Sid":1,"Effect":"Allow","Principal":"*","Action":"ecr:*"}`),
		"unknown stmt field": stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:*","Foo":"x"}`),
	}
	for name, p := range bad {
		_, err := ParseRepositoryPolicy(p)
		if err == nil {
			t.Errorf("%s: accepted %s", name, p)
			continue
		}
		if errs.ReasonOf(err) != ReasonPolicyInvalid || errs.KindOf(err) != errs.Invalid || errs.MessageOf(err) != InvalidPolicyMessage && name != "deny with cond" {
			t.Errorf("%s: %v (message %q)", name, err, errs.MessageOf(err))
		}
	}
	// ECR's message, word for word; what is wrong is in the error's text.
	if _, err := ParseRepositoryPolicy(stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:PushImage"}`)); !strings.Contains(err.Error(), `"ecr:PushImage"`) {
		t.Errorf("no detail in %v", err)
	}
	// ECR does not require unique Sids in a repository policy.
	if _, err := ParseRepositoryPolicy(stmt(`{"Sid":"a","Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Sid":"a","Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}`)); err != nil {
		t.Errorf("duplicate Sids: %v", err)
	}
	_, err := ParseRepositoryPolicy(stmt(`{"Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}`))
	if err == nil || !strings.Contains(errs.MessageOf(err), "does not evaluate policy conditions") {
		t.Errorf("condition on deny: %v", err)
	}
}

func TestRepositoryPolicyEvaluate(t *testing.T) {
	root := iam.RootIdentity("123456789012")
	other := iam.RootIdentity("210987654321")
	anon := iam.Identity{}
	cases := []struct {
		name, stmts string
		id          iam.Identity
		action      string
		denied      bool
		allowed     bool
	}{
		{"deny star", `{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}`, root, "ecr:PutImage", true, false},
		{"deny star other action", `{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}`, root, "ecr:BatchGetImage", false, false},
		{"deny AWS star", `{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"ecr:PutImage"}`, root, "ecr:PutImage", true, false},
		{"deny account id", `{"Effect":"Deny","Principal":{"AWS":"123456789012"},"Action":"ecr:PutImage"}`, root, "ecr:PutImage", true, false},
		{"deny root arn", `{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"ecr:PutImage"}`, root, "ecr:PutImage", true, false},
		{"deny other account", `{"Effect":"Deny","Principal":{"AWS":["210987654321","arn:aws:iam::210987654321:root"]},"Action":"ecr:PutImage"}`, root, "ecr:PutImage", false, false},
		{"deny other account matches it", `{"Effect":"Deny","Principal":{"AWS":"210987654321"},"Action":"ecr:PutImage"}`, other, "ecr:PutImage", true, false},
		{"deny user arn is not root", `{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"ecr:*"}`, root, "ecr:PutImage", false, false},
		{"deny role arn is not root", `{"Effect":"Deny","Principal":{"AWS":"arn:aws:sts::123456789012:assumed-role/r/s"},"Action":"ecr:*"}`, root, "ecr:PutImage", false, false},
		{"deny user arn matches user", `{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"ecr:*"}`,
			iam.Identity{Account: "123456789012", ARN: "arn:aws:iam::123456789012:user/bob"}, "ecr:PutImage", true, false},
		{"service principal", `{"Effect":"Deny","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"ecr:*"}`, root, "ecr:PutImage", false, false},
		{"ecr star", `{"Effect":"Deny","Principal":"*","Action":"ecr:*"}`, root, "ecr:DeleteRepository", true, false},
		{"star", `{"Effect":"Deny","Principal":"*","Action":"*"}`, root, "ecr:ListImages", true, false},
		{"batch star", `{"Effect":"Deny","Principal":"*","Action":"ecr:Batch*"}`, root, "ecr:BatchGetImage", true, false},
		{"batch star miss", `{"Effect":"Deny","Principal":"*","Action":"ecr:Batch*"}`, root, "ecr:PutImage", false, false},
		{"question mark", `{"Effect":"Deny","Principal":"*","Action":"ecr:Put?mage"}`, root, "ecr:PutImage", true, false},
		{"question mark one char", `{"Effect":"Deny","Principal":"*","Action":"ecr:Put?mage"}`, root, "ecr:PutImageTagMutability", false, false},
		{"inner star", `{"Effect":"Deny","Principal":"*","Action":"ecr:*Layer*"}`, root, "ecr:InitiateLayerUpload", true, false},
		{"case insensitive", `{"Effect":"Deny","Principal":"*","Action":"ECR:putimage"}`, root, "ecr:PutImage", true, false},
		{"not action", `{"Effect":"Deny","Principal":"*","NotAction":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}`, root, "ecr:PutImage", true, false},
		{"not action excluded", `{"Effect":"Deny","Principal":"*","NotAction":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}`, root, "ecr:BatchGetImage", false, false},
		{"not action wildcard", `{"Effect":"Deny","Principal":"*","NotAction":"ecr:Get*"}`, root, "ecr:GetDownloadUrlForLayer", false, false},
		{"not principal other", `{"Effect":"Deny","NotPrincipal":{"AWS":"210987654321"},"Action":"ecr:*"}`, root, "ecr:PutImage", true, false},
		{"not principal self", `{"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"Action":"ecr:*"}`, root, "ecr:PutImage", false, false},
		{"allow only", `{"Effect":"Allow","Principal":"*","Action":"ecr:*"}`, root, "ecr:PutImage", false, true},
		{"deny wins over allow", `{"Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Sid":"NoPush","Effect":"Deny","Principal":{"AWS":"123456789012"},"Action":"ecr:PutImage"}`, root, "ecr:PutImage", true, true},
		{"anonymous star", `{"Effect":"Deny","Principal":"*","Action":"ecr:BatchGetImage"}`, anon, "ecr:BatchGetImage", true, false},
		{"anonymous account", `{"Effect":"Deny","Principal":{"AWS":"123456789012"},"Action":"ecr:BatchGetImage"}`, anon, "ecr:BatchGetImage", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseRepositoryPolicy(`{"Version":"2012-10-17","Statement":[` + c.stmts + `]}`)
			if err != nil {
				t.Fatal(err)
			}
			d := p.Evaluate(c.id, c.action)
			if d.Denied != c.denied || d.Allowed != c.allowed {
				t.Fatalf("got %+v, want denied=%v allowed=%v", d, c.denied, c.allowed)
			}
		})
	}
}

func TestMatchPattern(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		ok     bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"a*c", "abc", true}, {"a*c", "abd", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"**", "x", true}, {"a*b*c", "aXbYc", true}, {"a*b*c", "aXcYb", false},
		{"abc", "abc", true}, {"abc", "abcd", false},
	} {
		if got := matchPattern(c.pat, c.s); got != c.ok {
			t.Errorf("matchPattern(%q, %q) = %v", c.pat, c.s, got)
		}
	}
}

func TestAuthorizeRepository(t *testing.T) {
	r := New(Config{Account: "123456789012"})
	r.SetRepositoryARN(func(n string) string { return "arn:aws:ecr:us-east-1:123456789012:repository/" + n })
	root := iam.RootIdentity("123456789012")
	repo := Repository{Name: "web", Policy: `{"Version":"2012-10-17","Statement":[{"Sid":"NoPush","Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}]}`}
	if err := r.AuthorizeRepository(repo, root, "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"); err != nil {
		t.Fatal(err)
	}
	err := r.AuthorizeRepository(repo, root, "ecr:InitiateLayerUpload", "ecr:PutImage")
	want := "User: arn:aws:iam::123456789012:root is not authorized to perform: ecr:PutImage on resource: arn:aws:ecr:us-east-1:123456789012:repository/web with an explicit deny in a resource-based policy"
	if errs.KindOf(err) != errs.Forbidden || errs.ReasonOf(err) != ReasonDenied || errs.MessageOf(err) != want {
		t.Fatalf("%v", err)
	}
	if code, status := ociCode(err); code != "DENIED" || status != 403 {
		t.Fatalf("%s %d", code, status)
	}
	if err := r.AuthorizeRepository(Repository{Name: "web"}, root, "ecr:PutImage"); err != nil {
		t.Fatal(err)
	}
	// A policy stored before validation fails closed, except for
	// replacing or deleting it.
	legacy := Repository{Name: "web", Policy: `{"Statement":"nonsense"}`}
	if err := r.AuthorizeRepository(legacy, root, "ecr:BatchGetImage"); errs.ReasonOf(err) != ReasonDenied {
		t.Fatalf("legacy policy: %v", err)
	}
	if err := r.AuthorizeRepository(legacy, root, "ecr:SetRepositoryPolicy"); err != nil {
		t.Fatal(err)
	}
}

func TestV2Actions(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         []string
	}{
		{"GET", "/v2/web/tags/list", []string{"ecr:ListImages"}},
		{"GET", "/v2/web/manifests/1", []string{"ecr:BatchGetImage"}},
		{"HEAD", "/v2/web/manifests/1", []string{"ecr:BatchGetImage"}},
		{"PUT", "/v2/web/manifests/1", []string{"ecr:PutImage"}},
		{"DELETE", "/v2/web/manifests/1", []string{"ecr:BatchDeleteImage"}},
		{"GET", "/v2/web/blobs/sha256:aa", []string{"ecr:GetDownloadUrlForLayer"}},
		{"HEAD", "/v2/web/blobs/sha256:aa", []string{"ecr:BatchCheckLayerAvailability"}},
		{"DELETE", "/v2/web/blobs/sha256:aa", []string{"ecr:BatchDeleteImage"}},
		{"POST", "/v2/web/blobs/uploads/", []string{"ecr:InitiateLayerUpload"}},
		{"POST", "/v2/web/blobs/uploads/?digest=sha256:aa", []string{"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"}},
		{"POST", "/v2/web/blobs/uploads/?mount=sha256:aa&from=x", []string{"ecr:InitiateLayerUpload", "ecr:CompleteLayerUpload"}},
		{"PATCH", "/v2/web/blobs/uploads/u1", []string{"ecr:UploadLayerPart"}},
		{"GET", "/v2/web/blobs/uploads/u1", []string{"ecr:UploadLayerPart"}},
		{"PUT", "/v2/web/blobs/uploads/u1?digest=sha256:aa", []string{"ecr:CompleteLayerUpload"}},
		{"GET", "/v2/web/referrers/sha256:aa", []string{"ecr:BatchGetImage"}},
		{"GET", "/v2/_catalog", nil},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		rt, ok := parseRoute(r.URL.Path)
		if !ok {
			t.Fatalf("route %s", c.path)
		}
		if got := v2Actions(rt, r); !slices.Equal(got, c.want) {
			t.Errorf("%s %s: %v, want %v", c.method, c.path, got, c.want)
		}
	}
}
