package elbv2

// Pure checks of ELBv2 input: names, attributes, actions, conditions and
// rule priorities. No store, no clock.

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/api/elbv2api"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/lazyre"
)

var nameChars = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

// checkLBName applies ELBv2's load balancer naming rules.
func checkLBName(name string) error {
	switch {
	case len(name) > 32:
		return invalid("LoadBalancer name cannot be longer than 32 characters")
	case !nameChars.MatchString(name):
		return invalid("LoadBalancer name '%s' can only contain characters that are alphanumeric characters and hyphens(-)", name)
	case strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-"):
		return invalid("LoadBalancer name '%s' cannot begin or end with hyphen(-)", name)
	case strings.HasPrefix(name, "internal-"):
		return invalid("LoadBalancer name '%s' cannot begin with 'internal-'", name)
	}
	return nil
}

// checkTGName applies ELBv2's target group naming rules.
func checkTGName(name string) error {
	switch {
	case len(name) > 32:
		return invalid("Target group name '%s' cannot be longer than '32' characters", name)
	case !nameChars.MatchString(name):
		return invalid("Target group name '%s' can only contain characters that are alphanumeric characters or hyphens(-)", name)
	case strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-"):
		return invalid("Target group name '%s' cannot begin or end with '-'", name)
	}
	return nil
}

// attrRule checks one attribute value.
type attrRule struct {
	def   string
	check func(v string) error
}

func boolAttr(def string) attrRule {
	return attrRule{def, func(v string) error {
		if v != "true" && v != "false" {
			return fmt.Errorf("must be true or false")
		}
		return nil
	}}
}

func intAttr(def string, lo, hi int) attrRule {
	return attrRule{def, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be an integer between %d and %d", lo, hi)
		}
		return nil
	}}
}

func oneOf(def string, vals ...string) attrRule {
	return attrRule{def, func(v string) error {
		if !slices.Contains(vals, v) {
			return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
		}
		return nil
	}}
}

func anyAttr(def string) attrRule { return attrRule{def, func(string) error { return nil }} }

// The attributes Berth honours. Every one of them does what AWS documents;
// keys AWS knows but Berth does not honour are refused by name rather than
// stored and ignored.
var lbAttrRules = map[string]attrRule{
	"idle_timeout.timeout_seconds": intAttr("60", 1, 4000),
	"deletion_protection.enabled":  boolAttr("false"),
	// Access logs: only "off" is honoured (Berth writes none).
	"access_logs.s3.enabled": oneOf("false", "false"),
	"access_logs.s3.bucket":  anyAttr(""),
	"access_logs.s3.prefix":  anyAttr(""),
}

var tgAttrRules = map[string]attrRule{
	"deregistration_delay.timeout_seconds": intAttr("300", 0, 3600),
	"slow_start.duration_seconds": {"0", func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n != 0 && (n < 30 || n > 900) {
			return fmt.Errorf("must be 0 or an integer between 30 and 900")
		}
		return nil
	}},
	"stickiness.enabled":                    boolAttr("false"),
	"stickiness.type":                       oneOf("lb_cookie", "lb_cookie"),
	"stickiness.lb_cookie.duration_seconds": intAttr("86400", 1, 604800),
	"load_balancing.algorithm.type":         oneOf("round_robin", "round_robin", "least_outstanding_requests"),
}

func defaultAttrs(rules map[string]attrRule) map[string]string {
	m := map[string]string{}
	for k, r := range rules {
		m[k] = r.def
	}
	return m
}

// applyAttrs checks key/value pairs against rules and returns attrs with
// them applied (attrs itself unchanged). what is "Load balancer" or
// "Target group".
func applyAttrs(what string, rules map[string]attrRule, attrs map[string]string, kvs [][2]string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range attrs {
		out[k] = v
	}
	for _, kv := range kvs {
		r, ok := rules[kv[0]]
		if !ok {
			return nil, invalid("%s attribute key '%s' is not recognized or not supported by Berth", what, kv[0])
		}
		if err := r.check(kv[1]); err != nil {
			return nil, invalid("%s attribute '%s' value '%s' is invalid: %v", what, kv[0], kv[1], err)
		}
		out[kv[0]] = kv[1]
	}
	return out, nil
}

func sortedAttrs(attrs map[string]string) [][2]string {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, len(keys))
	for i, k := range keys {
		out[i] = [2]string{k, attrs[k]}
	}
	return out
}

var fixedContentTypes = []string{"text/plain", "text/css", "text/html", "application/javascript", "application/json"}

// checkActions applies ELBv2's rules on a listener's or rule's actions
// (target groups are looked up by the caller): one terminal action (forward,
// fixed-response or redirect), Order unique within 1..50000, well-formed
// configurations. It fills Order when absent and returns the actions
// ordered.
func checkActions(actions []elbv2api.Action) ([]elbv2api.Action, error) {
	if len(actions) == 0 {
		return nil, invalid("At least one action must be specified")
	}
	out := slices.Clone(actions)
	terminal := 0
	seen := map[int32]bool{}
	for i := range out {
		a := &out[i]
		if a.Order == nil {
			a.Order = ptr(int32(i + 1))
		}
		if seen[*a.Order] {
			return nil, invalid("Action order '%d' is used more than once", *a.Order)
		}
		seen[*a.Order] = true
		switch t := deref(a.Type); t {
		case elbv2api.ActionTypeEnumForward:
			terminal++
			if a.TargetGroupArn == nil && (a.ForwardConfig == nil || len(a.ForwardConfig.TargetGroups) == 0) {
				return nil, invalid("A target group ARN must be specified for a forward action")
			}
			if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
				fc := a.ForwardConfig
				if len(fc.TargetGroups) > 5 {
					return nil, fail(errs.LimitExceeded, elbv2api.ErrTooManyUniqueTargetGroupsPerLoadBalancerException, "A forward action can have at most 5 target groups")
				}
				if a.TargetGroupArn != nil && (len(fc.TargetGroups) != 1 || deref(fc.TargetGroups[0].TargetGroupArn) != *a.TargetGroupArn) {
					return nil, invalid("You cannot specify a target group in both TargetGroupArn and ForwardConfig unless they are the same and ForwardConfig has one target group")
				}
				names := map[string]bool{}
				for _, g := range fc.TargetGroups {
					if g.TargetGroupArn == nil {
						return nil, invalid("A target group ARN must be specified for each target group of a forward action")
					}
					if names[*g.TargetGroupArn] {
						return nil, invalid("Target group '%s' is used more than once in a forward action", *g.TargetGroupArn)
					}
					names[*g.TargetGroupArn] = true
					if w := deref(g.Weight); w < 0 || w > 999 {
						return nil, invalid("Target group weight '%d' must be between 0 and 999", w)
					}
				}
				if sc := fc.TargetGroupStickinessConfig; sc != nil && deref(sc.Enabled) {
					if d := deref(sc.DurationSeconds); d < 1 || d > 604800 {
						return nil, invalid("Target group stickiness duration must be between 1 and 604800 seconds")
					}
				}
			}
		case elbv2api.ActionTypeEnumFixedResponse:
			terminal++
			fr := a.FixedResponseConfig
			if fr == nil {
				return nil, invalid("A fixed-response configuration must be specified for a fixed-response action")
			}
			if code, err := strconv.Atoi(deref(fr.StatusCode)); err != nil || code < 200 || code > 599 {
				return nil, invalid("Fixed-response status code '%s' must be a 2XX, 4XX or 5XX code", deref(fr.StatusCode))
			}
			if ct := deref(fr.ContentType); ct != "" && !slices.Contains(fixedContentTypes, ct) {
				return nil, invalid("Fixed-response content type '%s' must be one of %s", ct, strings.Join(fixedContentTypes, ", "))
			}
			if len(deref(fr.MessageBody)) > 1024 {
				return nil, invalid("Fixed-response message body cannot be longer than 1024 characters")
			}
		case elbv2api.ActionTypeEnumRedirect:
			terminal++
			rc := a.RedirectConfig
			if rc == nil {
				return nil, invalid("A redirect configuration must be specified for a redirect action")
			}
			if p := deref(rc.Protocol); p != "" && p != "HTTP" && p != "HTTPS" && p != "#{protocol}" {
				return nil, invalid("Redirect protocol '%s' must be HTTP, HTTPS or #{protocol}", p)
			}
			if p := deref(rc.Port); p != "" && p != "#{port}" {
				if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
					return nil, invalid("Redirect port '%s' must be between 1 and 65535 or #{port}", p)
				}
			}
			if p := deref(rc.Path); p != "" && !strings.HasPrefix(p, "/") {
				return nil, invalid("Redirect path '%s' must start with '/'", p)
			}
			if rc.Host == nil && rc.Path == nil && rc.Port == nil && rc.Protocol == nil && rc.Query == nil {
				return nil, invalid("A redirect must change at least one of host, path, port, protocol or query")
			}
			// AWS's defaults keep what the request had.
			c := *rc
			for _, f := range []struct {
				p   **string
				def string
			}{{&c.Protocol, "#{protocol}"}, {&c.Host, "#{host}"}, {&c.Port, "#{port}"}, {&c.Path, "/#{path}"}, {&c.Query, "#{query}"}} {
				if *f.p == nil {
					*f.p = ptr(f.def)
				}
			}
			a.RedirectConfig = &c
		default:
			return nil, fail(errs.Unsupported, elbv2api.ErrInvalidLoadBalancerActionException, "Berth does not support '%s' actions", t)
		}
	}
	if terminal != 1 {
		return nil, fail(errs.Invalid, elbv2api.ErrInvalidLoadBalancerActionException, "Exactly one forward, fixed-response or redirect action must be specified")
	}
	slices.SortFunc(out, func(a, b elbv2api.Action) int { return int(*a.Order - *b.Order) })
	return out, nil
}

// actionTargetGroups lists the target group ARNs an action set forwards to.
func actionTargetGroups(actions []elbv2api.Action) []string {
	var out []string
	for _, a := range actions {
		if a.TargetGroupArn != nil && !slices.Contains(out, *a.TargetGroupArn) {
			out = append(out, *a.TargetGroupArn)
		}
		if a.ForwardConfig != nil {
			for _, g := range a.ForwardConfig.TargetGroups {
				if g.TargetGroupArn != nil && !slices.Contains(out, *g.TargetGroupArn) {
					out = append(out, *g.TargetGroupArn)
				}
			}
		}
	}
	return out
}

var conditionFields = []string{"path-pattern", "host-header", "http-header", "http-request-method", "query-string", "source-ip"}

var methodChars = lazyre.New(`^[A-Z_-]{1,40}$`)

// checkConditions applies ELBv2's rules on rule conditions: known fields,
// values given once (Values or the field's Config), well-formed methods and
// CIDRs, at most 5 values in all. It returns the conditions normalised:
// each with its field's Config filled (Values copied into it) and Values
// kept as given.
func checkConditions(conds []elbv2api.RuleCondition) ([]elbv2api.RuleCondition, error) {
	if len(conds) == 0 {
		return nil, invalid("At least one condition must be specified")
	}
	out := slices.Clone(conds)
	total := 0
	seen := map[string]bool{}
	for i := range out {
		c := &out[i]
		f := deref(c.Field)
		if !slices.Contains(conditionFields, f) {
			return nil, invalid("Condition field '%s' must be one of [%s]", f, strings.Join(conditionFields, ", "))
		}
		if len(c.RegexValues) > 0 {
			return nil, fail(errs.Unsupported, CodeValidationError, "Berth does not support regex condition values")
		}
		if f != "http-header" && seen[f] {
			return nil, invalid("A rule can have only one '%s' condition", f)
		}
		seen[f] = true
		var vals []string
		switch f {
		case "path-pattern":
			if c.PathPatternConfig == nil {
				c.PathPatternConfig = &elbv2api.PathPatternConditionConfig{}
			}
			vals = pick(&c.PathPatternConfig.Values, c.Values)
		case "host-header":
			if c.HostHeaderConfig == nil {
				c.HostHeaderConfig = &elbv2api.HostHeaderConditionConfig{}
			}
			vals = pick(&c.HostHeaderConfig.Values, c.Values)
		case "http-header":
			h := c.HttpHeaderConfig
			if h == nil || deref(h.HttpHeaderName) == "" {
				return nil, invalid("An HTTP header name must be specified for an 'http-header' condition")
			}
			vals = h.Values
		case "http-request-method":
			if c.HttpRequestMethodConfig == nil {
				c.HttpRequestMethodConfig = &elbv2api.HttpRequestMethodConditionConfig{}
			}
			vals = pick(&c.HttpRequestMethodConfig.Values, c.Values)
			for _, m := range vals {
				if !methodChars.MatchString(m) {
					return nil, invalid("HTTP request method '%s' can only contain uppercase letters, hyphens and underscores", m)
				}
			}
		case "query-string":
			q := c.QueryStringConfig
			if q == nil || len(q.Values) == 0 {
				return nil, invalid("Query string key/value pairs must be specified for a 'query-string' condition")
			}
			for _, kv := range q.Values {
				if deref(kv.Value) == "" {
					return nil, invalid("A query string condition value must be specified")
				}
				vals = append(vals, deref(kv.Key)+"="+deref(kv.Value))
			}
		case "source-ip":
			if c.SourceIpConfig == nil {
				c.SourceIpConfig = &elbv2api.SourceIpConditionConfig{}
			}
			vals = pick(&c.SourceIpConfig.Values, c.Values)
			for _, v := range vals {
				if _, err := netip.ParsePrefix(v); err != nil {
					return nil, invalid("The source IP '%s' must be in CIDR notation", v)
				}
			}
		}
		if len(vals) == 0 {
			return nil, invalid("A condition value must be specified for the '%s' condition", f)
		}
		for _, v := range vals {
			if len(v) > 128 {
				return nil, invalid("Condition value '%s' cannot be longer than 128 characters", v)
			}
		}
		total += len(vals)
	}
	if total > 5 {
		return nil, invalid("A rule can only have '5' condition values")
	}
	return out, nil
}

// pick returns the condition's values from Values or its Config (which
// is set to them), refusing both at once.
func pick(cfg *[]string, values []string) []string {
	if len(*cfg) == 0 {
		*cfg = slices.Clone(values)
	}
	return *cfg
}

// checkPriorities checks SetRulePriorities: the new priorities must be
// unique within the request and must not clash with the listener's other
// rules (current maps every non-default rule of the listener to its
// priority).
func checkPriorities(current map[string]int, changes map[string]int) error {
	final := map[string]int{}
	for arn, p := range current {
		final[arn] = p
	}
	for arn, p := range changes {
		if p < 1 || p > 50000 {
			return invalid("Priority '%d' must be between 1 and 50000", p)
		}
		final[arn] = p
	}
	byPrio := map[int]string{}
	for _, arn := range sortedKeys(final) {
		p := final[arn]
		if _, ok := byPrio[p]; ok {
			return fail(errs.Conflict, elbv2api.ErrPriorityInUseException, "Priority '%d' is currently in use", p)
		}
		byPrio[p] = arn
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkMatcher checks an HTTP matcher: codes 200-499, as "200", "200,202"
// or "200-299".
func checkMatcher(m string) error {
	bad := invalid("Health check matcher HTTP code '%s' must be a code, a list of codes or a range of codes between 200 and 499", m)
	for _, part := range strings.Split(m, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 200 || b > 499 || a > b {
			return bad
		}
	}
	return nil
}

// checkHealthCheckPort accepts "traffic-port" or a port number.
func checkHealthCheckPort(p string) error {
	if p == "traffic-port" {
		return nil
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return invalid("Health check port '%s' must be 'traffic-port' or a port between 1 and 65535", p)
	}
	return nil
}

// checkIPTarget accepts an IPv4 or IPv6 address, as ip target groups do.
func checkIPTarget(id string, ipv6 bool) error {
	ip := net.ParseIP(id)
	if ip == nil || (ip.To4() == nil) != ipv6 {
		v := "IPv4"
		if ipv6 {
			v = "IPv6"
		}
		return fail(errs.Invalid, elbv2api.ErrInvalidTargetException, "The IP address '%s' is not a valid %s address", id, v)
	}
	return nil
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
