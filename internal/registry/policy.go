package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/iam"
)

// Repository policies (ECR's resource-based policies) are parsed by
// ParseRepositoryPolicy and evaluated by (*RepositoryPolicy).Evaluate with
// IAM's logic for a principal of the repository's own account:
//
//   - an explicit Deny whose principal and action match the request wins;
//   - otherwise the principal's identity-based permissions decide. Berth's
//     principals today are the account's root user (and registry tokens of
//     its access keys), which may do everything, so no Allow is needed.
//
// Allow statements are parsed and validated (Evaluate reports whether one
// matches) but never change a decision for Berth's principals.

// ReasonPolicyInvalid is the reason of a refused repository policy.
const ReasonPolicyInvalid = "registry.repository_policy_invalid"

// InvalidPolicyMessage is ECR's message for a policy it refuses.
const InvalidPolicyMessage = "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'"

// RepositoryActions are the ECR actions a repository policy may name (the
// IAM actions whose resource is a repository). Action names are
// case-insensitive, as in IAM.
var RepositoryActions = []string{
	"BatchCheckLayerAvailability", "BatchDeleteImage", "BatchGetImage", "BatchGetRepositoryScanningConfiguration",
	"BatchImportUpstreamImage", "CompleteLayerUpload", "CreateRepository", "DeleteLifecyclePolicy", "DeleteRepository",
	"DeleteRepositoryPolicy", "DescribeImageReplicationStatus", "DescribeImageScanFindings", "DescribeImages",
	"DescribeRepositories", "GetDownloadUrlForLayer", "GetLifecyclePolicy", "GetLifecyclePolicyPreview",
	"GetRepositoryPolicy", "InitiateLayerUpload", "ListImages", "ListTagsForResource", "PutImage",
	"PutImageScanningConfiguration", "PutImageTagMutability", "PutLifecyclePolicy", "ReplicateImage",
	"SetRepositoryPolicy", "StartImageScan", "StartLifecyclePolicyPreview", "TagResource", "UntagResource",
	"UploadLayerPart",
}

var knownActions = func() map[string]bool {
	m := map[string]bool{}
	for _, a := range RepositoryActions {
		m["ecr:"+strings.ToLower(a)] = true
	}
	return m
}()

// RepositoryPolicy is a parsed, validated repository policy.
type RepositoryPolicy struct {
	Statements []PolicyStatement
}

// PolicyStatement is one statement of a repository policy.
type PolicyStatement struct {
	Sid  string
	Deny bool // Effect Deny (else Allow)
	// Principals (or NotPrincipals when NotPrincipal is set).
	Principals   Principals
	NotPrincipal bool
	// Actions (or NotActions when NotAction is set): lower-cased patterns
	// with * and ?.
	Actions   []string
	NotAction bool
	// HasCondition: the statement has a Condition block (Allow only; see
	// ParseRepositoryPolicy).
	HasCondition bool
	// Resources are a registry policy statement's Resource patterns
	// (repository policies name none: the resource is the repository).
	Resources []string
}

// Principals is a statement's Principal element.
type Principals struct {
	Everyone bool     // "*" or {"AWS": "*"}
	AWS      []string // account ids (12 digits) and principal ARNs
	Service  []string // service principals (never a Berth caller today)
}

// Decision is the result of evaluating a policy for one request.
type Decision struct {
	// Denied is true when an explicit Deny matched; DenySid names it.
	Denied  bool
	DenySid string
	// Allowed is true when an Allow statement matched (informational:
	// same-account principals do not need one).
	Allowed bool
}

// InvalidRegistryPolicyMessage is ECR's message for a registry policy it
// refuses.
const InvalidRegistryPolicyMessage = "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'"

// policyKind is what one kind of ECR resource policy allows.
type policyKind struct {
	invalid  string          // ECR's message for a refused policy
	actions  map[string]bool // lower-cased ecr: actions it may name
	resource bool            // statements name a Resource (registry policies)
}

var (
	repositoryPolicyKind = policyKind{invalid: InvalidPolicyMessage, actions: knownActions}
	// ECR's registry policy grants replication and pull-through-cache
	// repository creation (the only actions it accepts).
	registryPolicyKind = policyKind{invalid: InvalidRegistryPolicyMessage, resource: true, actions: map[string]bool{
		"ecr:createrepository": true, "ecr:replicateimage": true, "ecr:batchimportupstreamimage": true}}
)

// errBerthLimit marks a refusal for a limit of Berth's (not an invalid
// document): its explanation is part of the message callers see.
// It prints nothing, so that "%w" of it adds no text.
var errBerthLimit error = berthLimitError{}

type berthLimitError struct{}

func (berthLimitError) Error() string { return "" }

// fail refuses a policy. The message callers see is ECR's, word for word;
// what is wrong is the wrapped cause (in the error's text, logs and audit
// records), except for Berth's own limits, which callers must see.
func (k policyKind) fail(format string, args ...any) error {
	detail := fmt.Errorf(format, args...)
	if errors.Is(detail, errBerthLimit) {
		return errs.R(errs.Invalid, ReasonPolicyInvalid, "%s: %s", k.invalid, detail)
	}
	return &errs.Error{Kind: errs.Invalid, Reason: ReasonPolicyInvalid, Msg: k.invalid, Err: detail}
}

func policyInvalid(format string, args ...any) error {
	return repositoryPolicyKind.fail(format, args...)
}

// ParseRegistryPolicy parses and validates a registry policy as ECR does:
// a repository policy's grammar where every statement also names its
// Resource ("*" or ECR repository ARNs) and the only actions are
// ecr:CreateRepository, ecr:ReplicateImage and ecr:BatchImportUpstreamImage.
func ParseRegistryPolicy(text string) (*RepositoryPolicy, error) {
	return parsePolicy(text, registryPolicyKind)
}

var (
	accountRE     = regexp.MustCompile(`^[0-9]{12}$`)
	serviceRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*\.amazonaws\.com(\.cn)?$`)
	principalARNs = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc):(iam|sts)::([0-9]{12}):(.+)$`)
)

// ParseRepositoryPolicy parses and validates a repository policy as ECR
// does: a JSON object with an optional Version ("2012-10-17" or
// "2008-10-17") and Id, and Statement (one object or a list) whose
// statements have Effect Allow|Deny, Principal or NotPrincipal ("*",
// {"AWS": ...}, {"Service": ...}), Action or NotAction (ecr: actions on
// repositories, * and ? wildcards, or "*"), an optional Sid, and no
// Resource (ECR refuses it: the resource is the repository). A Condition
// is accepted on Allow statements (it cannot change a decision for
// Berth's principals) and refused on Deny statements, because Berth does
// not evaluate conditions yet.
func ParseRepositoryPolicy(text string) (*RepositoryPolicy, error) {
	return parsePolicy(text, repositoryPolicyKind)
}

func parsePolicy(text string, kind policyKind) (*RepositoryPolicy, error) {
	policyInvalid := kind.fail
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, policyInvalid("the policy is not a JSON object")
	}
	if dec.More() {
		return nil, policyInvalid("trailing data after the policy document")
	}
	var stmts []any
	for k, v := range doc {
		switch k {
		case "Version":
			if v != "2012-10-17" && v != "2008-10-17" {
				return nil, policyInvalid("Version must be 2012-10-17 or 2008-10-17")
			}
		case "Id":
			if _, ok := v.(string); !ok {
				return nil, policyInvalid("Id must be a string")
			}
		case "Statement":
			switch s := v.(type) {
			case []any:
				stmts = s
			case map[string]any:
				stmts = []any{s}
			default:
				return nil, policyInvalid("Statement must be an object or a list of objects")
			}
		default:
			return nil, policyInvalid("unknown policy element %q", k)
		}
	}
	if len(stmts) == 0 {
		return nil, policyInvalid("the policy has no statements")
	}
	p := &RepositoryPolicy{}
	sids := map[string]bool{}
	for i, raw := range stmts {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, policyInvalid("Statement[%d] is not an object", i)
		}
		st, err := parseStatement(m, kind)
		if err != nil {
			return nil, policyInvalid("Statement[%d]: %w", i, err)
		}
		// ECR does not require a repository policy's Sids to be unique;
		// IAM's grammar, which registry policies follow, does.
		if st.Sid != "" && kind.resource {
			if sids[st.Sid] {
				return nil, policyInvalid("Statement[%d]: duplicate Sid %q", i, st.Sid)
			}
			sids[st.Sid] = true
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

func parseStatement(m map[string]any, kind policyKind) (PolicyStatement, error) {
	var st PolicyStatement
	var havePrincipal, haveAction, haveEffect, haveResource bool
	for k, v := range m {
		switch k {
		case "Sid":
			s, ok := v.(string)
			if !ok {
				return st, fmt.Errorf("Sid must be a string")
			}
			st.Sid = s
		case "Effect":
			switch v {
			case "Allow":
			case "Deny":
				st.Deny = true
			default:
				return st, fmt.Errorf("Effect must be Allow or Deny")
			}
			haveEffect = true
		case "Principal", "NotPrincipal":
			if havePrincipal {
				return st, fmt.Errorf("only one of Principal and NotPrincipal may be given")
			}
			pr, err := parsePrincipal(v)
			if err != nil {
				return st, fmt.Errorf("%s: %s", k, err)
			}
			st.Principals, st.NotPrincipal, havePrincipal = pr, k == "NotPrincipal", true
		case "Action", "NotAction":
			if haveAction {
				return st, fmt.Errorf("only one of Action and NotAction may be given")
			}
			acts, err := parseActions(v, kind.actions)
			if err != nil {
				return st, fmt.Errorf("%s: %s", k, err)
			}
			st.Actions, st.NotAction, haveAction = acts, k == "NotAction", true
		case "Condition":
			if err := checkCondition(v); err != nil {
				return st, fmt.Errorf("Condition: %s", err)
			}
			st.HasCondition = true
		case "Resource":
			if !kind.resource {
				return st, fmt.Errorf("%s is not allowed in a repository policy (the resource is the repository)", k)
			}
			list, err := stringList(v)
			if err != nil {
				return st, fmt.Errorf("Resource: %s", err)
			}
			for _, r := range list {
				if r != "*" && !ecrResourceRE.MatchString(r) {
					return st, fmt.Errorf("Resource: %q is not an ECR repository ARN", r)
				}
			}
			st.Resources, haveResource = list, true
		case "NotResource":
			return st, fmt.Errorf("%s is not allowed in a repository policy (the resource is the repository)", k)
		default:
			return st, fmt.Errorf("unknown statement element %q", k)
		}
	}
	switch {
	case !haveEffect:
		return st, fmt.Errorf("Effect is required")
	case !havePrincipal:
		return st, fmt.Errorf("Principal is required")
	case !haveAction:
		return st, fmt.Errorf("Action is required")
	case kind.resource && !haveResource:
		return st, fmt.Errorf("Resource is required")
	case st.HasCondition && st.Deny:
		return st, fmt.Errorf("Berth does not evaluate policy conditions yet, so it refuses a Condition on a Deny statement%w", errBerthLimit)
	}
	return st, nil
}

// stringList reads a string or a non-empty list of strings.
func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		if len(x) == 0 {
			return nil, fmt.Errorf("the list is empty")
		}
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("expected strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("expected a string or a list of strings")
}

func parsePrincipal(v any) (Principals, error) {
	var p Principals
	if s, ok := v.(string); ok {
		if s != "*" {
			return p, fmt.Errorf(`a string principal must be "*"`)
		}
		p.Everyone = true
		return p, nil
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return p, fmt.Errorf(`expected "*" or an object such as {"AWS": "<account id or ARN>"}`)
	}
	for k, raw := range m {
		list, err := stringList(raw)
		if err != nil {
			return p, fmt.Errorf("%s: %s", k, err)
		}
		switch k {
		case "AWS":
			for _, s := range list {
				switch {
				case s == "*":
					p.Everyone = true
				case accountRE.MatchString(s):
					p.AWS = append(p.AWS, s)
				case principalARNs.MatchString(s):
					if strings.ContainsAny(s, "*?") {
						return p, fmt.Errorf("wildcards are not allowed in principal ARN %q", s)
					}
					p.AWS = append(p.AWS, s)
				default:
					return p, fmt.Errorf("invalid AWS principal %q", s)
				}
			}
		case "Service":
			for _, s := range list {
				if !serviceRE.MatchString(s) {
					return p, fmt.Errorf("invalid service principal %q", s)
				}
				p.Service = append(p.Service, s)
			}
		default:
			return p, fmt.Errorf("principal type %q is not supported (AWS or Service)", k)
		}
	}
	return p, nil
}

var ecrResourceRE = regexp.MustCompile(`^arn:[a-z-]+:ecr:[a-z0-9-]*:([0-9]{12}|\*):repository/\S+$`)

func parseActions(v any, known map[string]bool) ([]string, error) {
	list, err := stringList(v)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		la := strings.ToLower(a)
		switch {
		case la == "*":
		case !strings.HasPrefix(la, "ecr:") || len(la) == len("ecr:"):
			return nil, fmt.Errorf("%q is not an ecr: action", a)
		case strings.ContainsAny(la, "*?"):
			// A pattern may match nothing, as in IAM.
		case !known[la]:
			return nil, fmt.Errorf("%q is not an action this policy may grant", a)
		}
		out = append(out, la)
	}
	return out, nil
}

// checkCondition checks a Condition block's shape:
// {"<operator>": {"<key>": "<value>" | ["<value>", ...]}}.
func checkCondition(v any) error {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return fmt.Errorf("expected an object of operators")
	}
	for op, raw := range m {
		keys, ok := raw.(map[string]any)
		if !ok || len(keys) == 0 {
			return fmt.Errorf("operator %s: expected an object of keys", op)
		}
		for k, val := range keys {
			switch x := val.(type) {
			case string, bool, json.Number:
			case []any:
				for _, e := range x {
					switch e.(type) {
					case string, bool, json.Number:
					default:
						return fmt.Errorf("key %s: values must be strings, numbers or booleans", k)
					}
				}
			default:
				return fmt.Errorf("key %s: values must be strings, numbers or booleans", k)
			}
		}
	}
	return nil
}

// matchPattern matches IAM-style patterns: * any run, ? one character.
// Both are lower-cased by the caller.
func matchPattern(pat, s string) bool {
	for len(pat) > 0 {
		switch pat[0] {
		case '*':
			for len(pat) > 0 && pat[0] == '*' {
				pat = pat[1:]
			}
			if pat == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if matchPattern(pat, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pat, s = pat[1:], s[1:]
		default:
			if s == "" || pat[0] != s[0] {
				return false
			}
			pat, s = pat[1:], s[1:]
		}
	}
	return s == ""
}

// MatchesPrincipal says whether the principal element names id. An empty
// identity (anonymous) matches only "*".
func (p Principals) MatchesPrincipal(id iam.Identity) bool {
	if p.Everyone {
		return true
	}
	if id.ARN == "" && id.Account == "" {
		return false
	}
	for _, a := range p.AWS {
		if accountRE.MatchString(a) {
			// An account principal covers the account (its root user
			// and, in AWS, every principal of the account).
			if a == id.Account {
				return true
			}
			continue
		}
		if m := principalARNs.FindStringSubmatch(a); m != nil && m[2] == "iam" && m[4] == "root" {
			if m[3] == id.Account {
				return true
			}
			continue
		}
		if a == id.ARN {
			return true
		}
	}
	return false
}

func (st PolicyStatement) matchesAction(action string) bool {
	action = strings.ToLower(action)
	hit := false
	for _, pat := range st.Actions {
		if matchPattern(pat, action) {
			hit = true
			break
		}
	}
	return hit != st.NotAction
}

func (st PolicyStatement) matches(id iam.Identity, action string) bool {
	return st.Principals.MatchesPrincipal(id) != st.NotPrincipal && st.matchesAction(action)
}

// Evaluate evaluates the policy for a principal and one action (such as
// "ecr:PutImage").
func (p *RepositoryPolicy) Evaluate(id iam.Identity, action string) Decision {
	var d Decision
	if p == nil {
		return d
	}
	for _, st := range p.Statements {
		if !st.matches(id, action) {
			continue
		}
		if st.Deny {
			if !d.Denied {
				d.Denied, d.DenySid = true, st.Sid
			}
		} else {
			d.Allowed = true
		}
	}
	return d
}

// EvaluateOn is Evaluate for a registry policy: a statement applies only
// when one of its Resource patterns matches resource (an ARN).
func (p *RepositoryPolicy) EvaluateOn(id iam.Identity, action, resource string) Decision {
	var d Decision
	if p == nil {
		return d
	}
	for _, st := range p.Statements {
		if !st.matches(id, action) || !slices.ContainsFunc(st.Resources, func(r string) bool { return matchPattern(r, resource) }) {
			continue
		}
		if st.Deny {
			if !d.Denied {
				d.Denied, d.DenySid = true, st.Sid
			}
		} else {
			d.Allowed = true
		}
	}
	return d
}

// policyCache keeps parsed policies by text (bounded): every
// repository-scoped request evaluates its repository's policy.
var policyCache struct {
	sync.Mutex
	m map[string]*RepositoryPolicy
}

func cachedPolicy(text string) (*RepositoryPolicy, error) {
	policyCache.Lock()
	p, ok := policyCache.m[text]
	policyCache.Unlock()
	if ok {
		return p, nil
	}
	p, err := ParseRepositoryPolicy(text)
	if err != nil {
		return nil, err
	}
	policyCache.Lock()
	if policyCache.m == nil || len(policyCache.m) >= 1024 {
		policyCache.m = map[string]*RepositoryPolicy{}
	}
	policyCache.m[text] = p
	policyCache.Unlock()
	return p, nil
}

// SetRepositoryARN sets how access-denied messages write a repository's
// ARN. Call it before serving requests.
func (r *Registry) SetRepositoryARN(f func(name string) string) { r.repoARN = f }

func (r *Registry) repositoryARN(name string) string {
	if r.repoARN != nil {
		return r.repoARN(name)
	}
	return "arn:aws:ecr::" + r.account + ":repository/" + name
}

// Authorize checks that id may perform every one of actions (such as
// "ecr:PutImage") on repository name under the repository's policy. An
// unknown repository is allowed here: the operation itself then answers
// that the repository does not exist. The error is Forbidden with
// ReasonDenied.
func (r *Registry) Authorize(ctx context.Context, id iam.Identity, name string, actions ...string) error {
	repo, err := r.Repository(ctx, name)
	if errs.ReasonOf(err) == ReasonNameUnknown {
		return nil
	}
	if err != nil {
		return err
	}
	return r.AuthorizeRepository(repo, id, actions...)
}

// AuthorizeRepository is Authorize for a repository already read.
func (r *Registry) AuthorizeRepository(repo Repository, id iam.Identity, actions ...string) error {
	if repo.Policy == "" {
		return nil
	}
	who := id.ARN
	if who == "" {
		who = "anonymous"
	}
	p, err := cachedPolicy(repo.Policy)
	if err != nil {
		// A policy stored before policies were validated. Fail closed,
		// except for replacing, reading or deleting it.
		for _, a := range actions {
			switch strings.ToLower(a) {
			case "ecr:setrepositorypolicy", "ecr:deleterepositorypolicy", "ecr:getrepositorypolicy":
			default:
				return errs.R(errs.Forbidden, ReasonDenied, "User: %s is not authorized to perform: %s on resource: %s because its repository policy is not valid; set a valid policy or delete it",
					who, a, r.repositoryARN(repo.Name))
			}
		}
		return nil
	}
	for _, a := range actions {
		if d := p.Evaluate(id, a); d.Denied {
			return errs.R(errs.Forbidden, ReasonDenied, "User: %s is not authorized to perform: %s on resource: %s with an explicit deny in a resource-based policy",
				who, a, r.repositoryARN(repo.Name))
		}
	}
	return nil
}
