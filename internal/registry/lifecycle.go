package registry

import (
	"context"
	"encoding/json"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

// LifecyclePolicy is an ECR lifecycle policy document.
type LifecyclePolicy struct {
	Rules []LifecycleRule `json:"rules"`
}

// LifecycleRule is one rule of a policy.
type LifecycleRule struct {
	RulePriority int    `json:"rulePriority"`
	Description  string `json:"description,omitempty"`
	Selection    struct {
		TagStatus      string   `json:"tagStatus"` // tagged, untagged, any
		TagPrefixList  []string `json:"tagPrefixList,omitempty"`
		TagPatternList []string `json:"tagPatternList,omitempty"`
		CountType      string   `json:"countType"` // imageCountMoreThan, sinceImagePushed
		CountUnit      string   `json:"countUnit,omitempty"`
		CountNumber    int      `json:"countNumber"`
	} `json:"selection"`
	Action struct {
		Type string `json:"type"` // expire
	} `json:"action"`
}

func lifecycleInvalid(format string, args ...any) error {
	return errs.R(errs.Invalid, ReasonLifecycleInvalid, "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: '"+format+"'", args...)
}

// ParseLifecyclePolicy parses and validates a policy, sorting its rules by
// priority.
func ParseLifecyclePolicy(text string) (LifecyclePolicy, error) {
	var p LifecyclePolicy
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, lifecycleInvalid("Lifecycle policy validation failure: %v", err)
	}
	if len(p.Rules) == 0 {
		return p, lifecycleInvalid("Lifecycle policy validation failure: at least one rule is required")
	}
	seen := map[int]bool{}
	sort.SliceStable(p.Rules, func(i, j int) bool { return p.Rules[i].RulePriority < p.Rules[j].RulePriority })
	for i, r := range p.Rules {
		s := r.Selection
		switch {
		case r.RulePriority < 1 || seen[r.RulePriority]:
			return p, lifecycleInvalid("rulePriority must be a unique positive integer, got %d", r.RulePriority)
		case r.Action.Type != "expire":
			return p, lifecycleInvalid("action.type must be expire")
		case s.TagStatus != "tagged" && s.TagStatus != "untagged" && s.TagStatus != "any":
			return p, lifecycleInvalid("selection.tagStatus must be tagged, untagged or any")
		case s.TagStatus == "tagged" && len(s.TagPrefixList) == 0 && len(s.TagPatternList) == 0:
			return p, lifecycleInvalid("a tagged selection needs tagPrefixList or tagPatternList")
		case s.TagStatus == "any" && i != len(p.Rules)-1:
			return p, lifecycleInvalid("a rule with tagStatus any must have the highest rulePriority")
		case s.CountNumber < 1:
			return p, lifecycleInvalid("selection.countNumber must be at least 1")
		case s.CountType == "sinceImagePushed" && s.CountUnit != "days":
			return p, lifecycleInvalid("selection.countUnit must be days for sinceImagePushed")
		case s.CountType == "imageCountMoreThan" && s.CountUnit != "":
			return p, lifecycleInvalid("selection.countUnit is not allowed for imageCountMoreThan")
		case s.CountType != "sinceImagePushed" && s.CountType != "imageCountMoreThan":
			return p, lifecycleInvalid("selection.countType must be imageCountMoreThan or sinceImagePushed")
		}
		seen[r.RulePriority] = true
	}
	return p, nil
}

// LifecycleImage is what policy evaluation sees of an image.
type LifecycleImage struct {
	Digest   Digest
	Tags     []string
	PushedAt time.Time
}

// LifecycleResult is one image a policy expires.
type LifecycleResult struct {
	LifecycleImage
	RulePriority int
}

// selects reports whether a rule's tag requirements match an image.
func (r LifecycleRule) selects(img LifecycleImage) bool {
	s := r.Selection
	switch s.TagStatus {
	case "any":
		return true
	case "untagged":
		return len(img.Tags) == 0
	}
	if len(img.Tags) == 0 {
		return false
	}
	// Every listed prefix (pattern) must match one of the image's tags.
	for _, p := range s.TagPrefixList {
		if !slices.ContainsFunc(img.Tags, func(t string) bool { return strings.HasPrefix(t, p) }) {
			return false
		}
	}
	for _, p := range s.TagPatternList {
		if !slices.ContainsFunc(img.Tags, func(t string) bool { ok, _ := path.Match(p, t); return ok }) {
			return false
		}
	}
	return true
}

// EvaluateLifecycle returns the images p expires at now. Rules apply in
// priority order; an image whose tags match a rule belongs to that rule
// and no later rule may expire it. imageCountMoreThan N keeps the N most
// recently pushed images the rule selects; sinceImagePushed N expires
// those pushed more than N days ago. It does no I/O.
func EvaluateLifecycle(p LifecyclePolicy, images []LifecycleImage, now time.Time) []LifecycleResult {
	claimed := map[Digest]bool{}
	var out []LifecycleResult
	for _, r := range p.Rules {
		var sel []LifecycleImage
		for _, img := range images {
			if !claimed[img.Digest] && r.selects(img) {
				sel = append(sel, img)
			}
		}
		for _, img := range sel {
			claimed[img.Digest] = true
		}
		sort.SliceStable(sel, func(i, j int) bool { return sel[i].PushedAt.After(sel[j].PushedAt) })
		n := r.Selection.CountNumber
		for i, img := range sel {
			expire := false
			switch r.Selection.CountType {
			case "imageCountMoreThan":
				expire = i >= n
			case "sinceImagePushed":
				expire = now.Sub(img.PushedAt) > time.Duration(n)*24*time.Hour
			}
			if expire {
				out = append(out, LifecycleResult{LifecycleImage: img, RulePriority: r.RulePriority})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PushedAt.Before(out[j].PushedAt) })
	return out
}

// LifecycleImages returns a repository's images as lifecycle evaluation
// sees them: manifests that are not children of an index in the repository.
func (r *Registry) LifecycleImages(ctx context.Context, repo string) ([]LifecycleImage, error) {
	ms, err := r.Manifests(ctx, repo)
	if err != nil {
		return nil, err
	}
	tags, err := r.TagMap(ctx, repo)
	if err != nil {
		return nil, err
	}
	child := map[Digest]bool{}
	for _, m := range ms {
		for _, c := range m.Children {
			child[c] = true
		}
	}
	var out []LifecycleImage
	for _, m := range ms {
		if child[m.Digest] {
			continue
		}
		out = append(out, LifecycleImage{Digest: m.Digest, Tags: tags[m.Digest], PushedAt: m.PushedAt})
	}
	return out, nil
}

// PreviewLifecycle evaluates a policy text against a repository now.
func (r *Registry) PreviewLifecycle(ctx context.Context, repo, text string) ([]LifecycleResult, error) {
	p, err := ParseLifecyclePolicy(text)
	if err != nil {
		return nil, err
	}
	imgs, err := r.LifecycleImages(ctx, repo)
	if err != nil {
		return nil, err
	}
	return EvaluateLifecycle(p, imgs, r.now()), nil
}

// ApplyLifecyclePolicy expires what a repository's policy selects.
func (r *Registry) ApplyLifecyclePolicy(ctx context.Context, repo string) ([]LifecycleResult, error) {
	rp, err := r.Repository(ctx, repo)
	if err != nil {
		return nil, err
	}
	if rp.LifecyclePolicy == "" {
		return nil, nil
	}
	res, err := r.PreviewLifecycle(ctx, repo, rp.LifecyclePolicy)
	if err != nil {
		return nil, err
	}
	for _, x := range res {
		if err := r.DeleteManifest(ctx, repo, x.Digest); errs.ReasonOf(err) == ReasonReferencedByIndex {
			continue // an index still lists it: expired with the index
		} else if err != nil && !errs.Is(err, errs.NotFound) {
			return nil, err
		}
		r.log.Info("lifecycle policy expired an image", "repository", repo, "digest", x.Digest, "rule", x.RulePriority)
	}
	now := r.now().UTC()
	_, err = r.UpdateRepository(ctx, repo, func(rp *Repository) error { rp.LifecycleEvaluatedAt = now; return nil })
	return res, err
}

// ApplyLifecyclePolicies applies every repository's policy.
func (r *Registry) ApplyLifecyclePolicies(ctx context.Context) error {
	after := ""
	for {
		repos, more, err := r.Repositories(ctx, after, 500)
		if err != nil {
			return err
		}
		for _, rp := range repos {
			if rp.LifecyclePolicy != "" {
				if _, err := r.ApplyLifecyclePolicy(ctx, rp.Name); err != nil {
					r.log.Warn("lifecycle policy not applied", "repository", rp.Name, "err", err)
				}
			}
			after = rp.Name
		}
		if !more || len(repos) == 0 {
			return nil
		}
	}
}
