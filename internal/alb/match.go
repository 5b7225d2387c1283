package alb

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"

	"github.com/berthdev/berth/internal/httpfwd"
)

// This file is the pure rule-matching core: ALB's wildcard semantics, one compiled condition per
// rule condition, and the choice of the first matching rule by priority.

// wildcardMatch reports whether s matches pattern, where '*' matches any run of characters
// (including none) and '?' exactly one. With fold, ASCII letters compare case-insensitively, as
// ALB compares host names, header values and query strings; path patterns and methods are
// case-sensitive. Matching is byte-wise, like ALB, which allows only ASCII in patterns.
func wildcardMatch(pattern, s string, fold bool) bool {
	// Greedy with one backtrack point: the classic linear-space algorithm, O(len(p)*len(s)) worst case.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		if p < len(pattern) && pattern[p] == '*' {
			star, mark = p, i
			p++
			continue
		}
		if p < len(pattern) && (pattern[p] == '?' || eqByte(pattern[p], s[i], fold)) {
			p++
			i++
			continue
		}
		if star >= 0 {
			p = star + 1
			mark++
			i = mark
			continue
		}
		return false
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func eqByte(a, b byte, fold bool) bool {
	if a == b {
		return true
	}
	if !fold {
		return false
	}
	return lower(a) == lower(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// request is what rule matching looks at; built once per request from the http.Request.
type request struct {
	Method   string
	Host     string // without port
	Path     string
	RawQuery string
	Header   http.Header
	raw      *httpfwd.Request // instead of Header, on httpfwd's raw path
	SourceIP netip.Addr
}

// headerValues returns the values of the (canonical) header field name.
func (r *request) headerValues(name string) []string {
	if r.raw == nil {
		return r.Header[name]
	}
	var vs []string
	r.raw.Values(name, func(v string) { vs = append(vs, v) })
	return vs
}

func requestOf(r *http.Request) request {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	var src netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		src = ap.Addr().Unmap()
	}
	return request{Method: r.Method, Host: host, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header, SourceIP: src}
}

// condition is a compiled Condition.
type condition struct {
	field    string
	values   []string
	header   string // canonical header name
	queries  []KeyValue
	prefixes []netip.Prefix
}

func compileCondition(c Condition) (condition, error) {
	out := condition{field: c.Field, values: c.Values}
	switch c.Field {
	case "path-pattern", "host-header", "http-request-method":
	case "http-header":
		if c.HeaderName == "" {
			return out, fmt.Errorf("http-header condition without a header name")
		}
		out.header = http.CanonicalHeaderKey(c.HeaderName)
	case "query-string":
		for _, kv := range c.QueryStrings {
			out.queries = append(out.queries, KeyValue{Key: unescapeQuery(kv.Key), Value: unescapeQuery(kv.Value)})
		}
	case "source-ip":
		for _, v := range c.Values {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				a, aerr := netip.ParseAddr(v)
				if aerr != nil {
					return out, fmt.Errorf("source-ip condition value %q is not a CIDR block", v)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			out.prefixes = append(out.prefixes, p.Masked())
		}
	default:
		return out, fmt.Errorf("unknown condition field %q", c.Field)
	}
	return out, nil
}

func unescapeQuery(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// match reports whether the request satisfies the condition (any of its values).
func (c *condition) match(r *request) bool {
	switch c.field {
	case "path-pattern":
		for _, v := range c.values {
			if wildcardMatch(v, r.Path, false) {
				return true
			}
		}
	case "host-header":
		for _, v := range c.values {
			if wildcardMatch(v, r.Host, true) {
				return true
			}
		}
	case "http-request-method":
		for _, v := range c.values {
			if v == r.Method {
				return true
			}
		}
	case "http-header":
		for _, hv := range r.headerValues(c.header) {
			for _, v := range c.values {
				if wildcardMatch(v, hv, true) {
					return true
				}
			}
		}
	case "query-string":
		if r.RawQuery == "" {
			return false
		}
		q, _ := url.ParseQuery(r.RawQuery)
		for _, kv := range c.queries {
			for k, vs := range q {
				if kv.Key != "" && !wildcardMatch(kv.Key, k, true) {
					continue
				}
				for _, v := range vs {
					if wildcardMatch(kv.Value, v, true) {
						return true
					}
				}
			}
		}
	case "source-ip":
		if !r.SourceIP.IsValid() {
			return false
		}
		for _, p := range c.prefixes {
			if p.Contains(r.SourceIP) {
				return true
			}
		}
	}
	return false
}

// route is a compiled rule: conditions and the actions to run.
type route struct {
	arn        string
	priority   int
	conditions []condition
	actions    []Action
}

// compileRules orders rules by priority (lowest first) and compiles their conditions.
func compileRules(rules []Rule) ([]route, error) {
	out := make([]route, 0, len(rules))
	for _, r := range rules {
		rt := route{arn: r.ARN, priority: r.Priority, actions: sortActions(r.Actions)}
		for _, c := range r.Conditions {
			cc, err := compileCondition(c)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", r.ARN, err)
			}
			rt.conditions = append(rt.conditions, cc)
		}
		out = append(out, rt)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].priority < out[j].priority })
	return out, nil
}

func sortActions(a []Action) []Action {
	out := append([]Action(nil), a...)
	for i := range out { // the routing snapshot owns its copy: the caller may change its config
		out[i].Forward = append([]WeightedTargetGroup(nil), out[i].Forward...)
		if f := out[i].FixedResponse; f != nil {
			c := *f
			out[i].FixedResponse = &c
		}
		if r := out[i].Redirect; r != nil {
			c := *r
			out[i].Redirect = &c
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Order < out[j].Order })
	return out
}

// selectRoute returns the index of the first route (by priority) whose conditions all match, or
// -1 when the listener's default actions apply.
func selectRoute(routes []route, r *request) int {
next:
	for i := range routes {
		for j := range routes[i].conditions {
			if !routes[i].conditions[j].match(r) {
				continue next
			}
		}
		return i
	}
	return -1
}

// hostOnly strips a port from a Host header value.
func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		return h[:i]
	}
	return h
}
