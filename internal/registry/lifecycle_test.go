package registry

import (
	"fmt"
	"testing"
	"time"
)

func TestEvaluateLifecycle(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	img := func(name string, age time.Duration, tags ...string) LifecycleImage {
		return LifecycleImage{Digest: Digest(name), Tags: tags, PushedAt: now.Add(-age)}
	}
	images := []LifecycleImage{
		img("u-old", 10*day), img("u-new", 1*day),
		img("p1", 5*day, "prod-1"), img("p2", 4*day, "prod-2"), img("p3", 3*day, "prod-3", "latest"),
		img("d1", 20*day, "dev-1"),
	}
	for _, tc := range []struct {
		name, policy string
		want         string
	}{
		{"untagged older than 7 days", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}`, "[u-old]"},
		{"keep last 1 by prefix", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`, "[p1 p2]"},
		{"pattern", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["dev-*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}`, "[d1]"},
		{"a claimed image is not expired by a later rule", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`, "[d1 u-old]"},
		{"all prefixes must match", `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod","latest"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseLifecyclePolicy(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range EvaluateLifecycle(p, images, now) {
				got = append(got, string(r.Digest))
			}
			if fmt.Sprint(got) != tc.want && !(len(got) == 0 && tc.want == "[]") {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
		})
	}
}

func TestParseLifecyclePolicyRejects(t *testing.T) {
	for name, p := range map[string]string{
		"no rules":          `{"rules":[]}`,
		"tagged no prefix":  `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
		"any not last":      `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
		"days missing unit": `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":1},"action":{"type":"expire"}}]}`,
		"duplicate prio":    `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`,
		"unknown field":     `{"rules":[{"rulePriority":1,"bogus":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
		"not json":          `rules`,
	} {
		if _, err := ParseLifecyclePolicy(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestApplyLifecyclePolicy runs a policy against a real repository.
func TestApplyLifecyclePolicy(t *testing.T) {
	r, clk := testRegistry(t)
	mustRepo(t, r, "unit/lc")
	cfg := put(t, r, "unit/lc", []byte("{}"))
	var digests []Digest
	for i := 0; i < 3; i++ {
		l := put(t, r, "unit/lc", []byte(fmt.Sprint("layer", i)))
		m, err := r.PutManifest(bg(), "unit/lc", fmt.Sprint("rel-", i), "", manifestFor(cfg, l), PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, m.Digest)
		clk.Advance(time.Minute)
	}
	r.UpdateRepository(bg(), "unit/lc", func(rp *Repository) error {
		rp.LifecyclePolicy = `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["rel-"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`
		return nil
	})
	if err := r.ApplyLifecyclePolicies(bg()); err != nil {
		t.Fatal(err)
	}
	ms, _ := r.Manifests(bg(), "unit/lc")
	if len(ms) != 2 {
		t.Fatalf("%d manifests left", len(ms))
	}
	for _, m := range ms {
		if m.Digest == digests[0] {
			t.Fatal("the oldest image survived")
		}
	}
	rp, _ := r.Repository(bg(), "unit/lc")
	if rp.LifecycleEvaluatedAt.IsZero() {
		t.Fatal("lastEvaluatedAt not set")
	}
}
