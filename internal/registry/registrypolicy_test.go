package registry

import (
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/iam"
)

func TestWildcardMatch(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"latest", "latest", true}, {"latest", "latest2", false}, {"lat*", "latest", true}, {"*", "", true},
		{"*-dev", "x-dev", true}, {"*-dev", "x-dev-1", false}, {"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false},
		{"**", "x", true}, {"v1.*", "v1.2.3", true}, {"v1.*", "v10", false}, {"", "", true}, {"", "a", false},
	} {
		if got := WildcardMatch(c.pat, c.s); got != c.want {
			t.Errorf("WildcardMatch(%q, %q) = %v", c.pat, c.s, got)
		}
	}
}

func FuzzWildcardMatch(f *testing.F) {
	f.Add("a*b", "axxb")
	f.Add("*", "")
	f.Fuzz(func(t *testing.T, pat, s string) {
		if len(pat) > 64 || len(s) > 64 {
			return
		}
		// A star-free pattern matches exactly itself; a trailing star any
		// extension of the prefix.
		if !strings.Contains(pat, "*") && WildcardMatch(pat, s) != (pat == s) {
			t.Fatalf("%q %q", pat, s)
		}
		if !WildcardMatch(strings.ReplaceAll(pat, "*", "")+"*", strings.ReplaceAll(pat, "*", "")+s) {
			t.Fatalf("prefix %q %q", pat, s)
		}
	})
}

func TestTagImmutable(t *testing.T) {
	for _, c := range []struct {
		mut  string
		excl []string
		tag  string
		want bool
	}{
		{Mutable, nil, "v1", false}, {Immutable, nil, "v1", true},
		{ImmutableWithExclusion, []string{"latest", "dev-*"}, "v1", true},
		{ImmutableWithExclusion, []string{"latest", "dev-*"}, "dev-3", false},
		{MutableWithExclusion, []string{"release-*"}, "release-1", true},
		{MutableWithExclusion, []string{"release-*"}, "latest", false},
	} {
		if got := (Repository{TagMutability: c.mut, TagMutabilityExclusions: c.excl}).TagImmutable(c.tag); got != c.want {
			t.Errorf("%s %v %s: %v", c.mut, c.excl, c.tag, got)
		}
	}
}

func TestParseRegistryPolicy(t *testing.T) {
	good := `{"Version":"2012-10-17","Statement":[{"Sid":"D","Effect":"Deny","Principal":"*","Action":"ecr:CreateRepository","Resource":"arn:aws:ecr:us-east-1:000000000000:repository/b/*"},
	{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["ecr:ReplicateImage","ecr:BatchImportUpstreamImage"],"Resource":["*"]}]}`
	p, err := ParseRegistryPolicy(good)
	if err != nil {
		t.Fatal(err)
	}
	root := iam.Identity{Account: "000000000000", ARN: "arn:aws:iam::000000000000:root"}
	if !p.EvaluateOn(root, "ecr:CreateRepository", "arn:aws:ecr:us-east-1:000000000000:repository/b/x").Denied {
		t.Fatal("deny not applied")
	}
	if p.EvaluateOn(root, "ecr:CreateRepository", "arn:aws:ecr:us-east-1:000000000000:repository/c/x").Denied {
		t.Fatal("deny applied outside its Resource")
	}
	for _, bad := range []string{
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:PutImage","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:ReplicateImage"}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:ReplicateImage","Resource":"arn:aws:s3:::bucket"}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:ReplicateImage","NotResource":"*"}]}`,
		`[]`,
		`{"Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"ecr:ReplicateImage","Resource":"*"},{"Sid":"a","Effect":"Allow","Principal":"*","Action":"ecr:CreateRepository","Resource":"*"}]}`,
	} {
		_, err := ParseRegistryPolicy(bad)
		if errs.ReasonOf(err) != ReasonPolicyInvalid || !strings.HasPrefix(errs.MessageOf(err), InvalidRegistryPolicyMessage) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	// A repository policy still refuses Resource.
	if _, err := ParseRepositoryPolicy(`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:PutImage","Resource":"*"}]}`); err == nil {
		t.Fatal("a repository policy with Resource was accepted")
	}
}
