package alb

import (
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

func TestWildcardMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		fold, want bool
	}{
		{"/api/*", "/api/users", false, true},
		{"/api/*", "/api/", false, true},
		{"/api/*", "/api", false, false},
		{"/api/*", "/API/users", false, false},           // paths are case-sensitive
		{"*.example.com", "WWW.Example.COM", true, true}, // hosts are not
		{"*.example.com", "example.com", true, false},
		{"/img/*.png", "/img/a/b/c.png", false, true},
		{"/img/?.png", "/img/ab.png", false, false},
		{"/img/?.png", "/img/a.png", false, true},
		{"*", "", false, true},
		{"", "", false, true},
		{"", "x", false, false},
		{"a*b*c", "aXXbYYc", false, true},
		{"a*b*c", "aXXbYY", false, false},
		{"**", "anything", false, true},
		{"*a", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbba", false, true},
	}
	for _, c := range cases {
		if got := wildcardMatch(c.pattern, c.s, c.fold); got != c.want {
			t.Errorf("wildcardMatch(%q, %q, fold=%v) = %v, want %v", c.pattern, c.s, c.fold, got, c.want)
		}
	}
}

// reference is the wildcard semantics written as a regular expression.
func reference(pattern, s string, fold bool) bool {
	var b strings.Builder
	b.WriteString(`^`)
	if fold {
		b.WriteString(`(?i)`)
	}
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(`(?s:.*)`)
		case '?':
			b.WriteString(`(?s:.)`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String()).MatchString(s)
}

func FuzzWildcardMatch(f *testing.F) {
	for _, s := range [][2]string{{"/api/*", "/api/x"}, {"*.example.com", "a.EXAMPLE.com"}, {"a?c*", "abcdef"}, {"**?", ""}, {"*x*y", "xxyxy"}} {
		f.Add(s[0], s[1], true)
		f.Add(s[0], s[1], false)
	}
	f.Fuzz(func(t *testing.T, pattern, s string, fold bool) {
		if len(pattern) > 64 || len(s) > 256 {
			return
		}
		// The reference works on runes; ALB patterns and the matcher are ASCII.
		for _, x := range pattern + s {
			if x >= 0x80 {
				return
			}
		}
		if got, want := wildcardMatch(pattern, s, fold), reference(pattern, s, fold); got != want {
			t.Fatalf("wildcardMatch(%q, %q, %v) = %v, reference %v", pattern, s, fold, got, want)
		}
	})
}

func mustRoutes(t *testing.T, rules ...Rule) []route {
	t.Helper()
	rs, err := compileRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestSelectRouteByPriorityAndConditions(t *testing.T) {
	routes := mustRoutes(t,
		Rule{ARN: "low", Priority: 50, Conditions: []Condition{{Field: "path-pattern", Values: []string{"/*"}}}},
		Rule{ARN: "api", Priority: 10, Conditions: []Condition{{Field: "path-pattern", Values: []string{"/api/*"}}, {Field: "http-request-method", Values: []string{"GET", "HEAD"}}}},
		Rule{ARN: "host", Priority: 5, Conditions: []Condition{{Field: "host-header", Values: []string{"admin.*"}}}},
		Rule{ARN: "hdr", Priority: 7, Conditions: []Condition{{Field: "http-header", HeaderName: "x-canary", Values: []string{"TRUE"}}}},
		Rule{ARN: "query", Priority: 8, Conditions: []Condition{{Field: "query-string", QueryStrings: []KeyValue{{Key: "version", Value: "v2*"}, {Key: "", Value: "beta"}}}}},
		Rule{ARN: "src", Priority: 9, Conditions: []Condition{{Field: "source-ip", Values: []string{"10.1.0.0/16", "2001:db8::/32"}}}},
	)
	if routes[0].arn != "host" || routes[len(routes)-1].arn != "low" {
		t.Fatalf("routes not ordered by priority: %v, %v", routes[0].arn, routes[len(routes)-1].arn)
	}
	mk := func(method, host, path, query, src string, hdr http.Header) request {
		return request{Method: method, Host: host, Path: path, RawQuery: query, Header: hdr, SourceIP: netip.MustParseAddr(src)}
	}
	cases := []struct {
		name string
		r    request
		want string
	}{
		{"host wildcard, case-insensitive", mk("GET", "ADMIN.example.com", "/api/x", "", "192.0.2.1", nil), "host"},
		{"header value case-insensitive", mk("POST", "a.com", "/x", "", "192.0.2.1", http.Header{"X-Canary": {"true"}}), "hdr"},
		{"query value wildcard", mk("POST", "a.com", "/x", "version=V2.1", "192.0.2.1", nil), "query"},
		{"query any key", mk("POST", "a.com", "/x", "channel=beta", "192.0.2.1", nil), "query"},
		{"source ip v4", mk("POST", "a.com", "/x", "", "10.1.200.3", nil), "src"},
		{"source ip v6", mk("POST", "a.com", "/x", "", "2001:db8::7", nil), "src"},
		{"path and method", mk("GET", "a.com", "/api/users", "", "192.0.2.1", nil), "api"},
		{"method is case-sensitive", mk("get", "a.com", "/api/users", "", "192.0.2.1", nil), "low"},
		{"path is case-sensitive", mk("GET", "a.com", "/API/users", "", "192.0.2.1", nil), "low"},
		{"catch-all", mk("DELETE", "a.com", "/other", "", "192.0.2.1", nil), "low"},
	}
	for _, c := range cases {
		i := selectRoute(routes, &c.r)
		if i < 0 || routes[i].arn != c.want {
			got := "default"
			if i >= 0 {
				got = routes[i].arn
			}
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
	none := mustRoutes(t, Rule{ARN: "x", Priority: 1, Conditions: []Condition{{Field: "path-pattern", Values: []string{"/x"}}}})
	r := mk("GET", "a", "/y", "", "192.0.2.1", nil)
	if selectRoute(none, &r) != -1 {
		t.Error("no matching rule should give the default actions")
	}
}

func TestCompileConditionRejectsBadInput(t *testing.T) {
	for _, c := range []Condition{
		{Field: "source-ip", Values: []string{"not-a-cidr"}},
		{Field: "http-header"},
		{Field: "nonsense"},
	} {
		if _, err := compileCondition(c); err == nil {
			t.Errorf("%+v compiled", c)
		}
	}
}

func TestRequestOfStripsPortAndReadsSource(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://Example.com:8080/p?q=1", nil)
	r.RemoteAddr = "[::ffff:10.0.0.9]:5555"
	req := requestOf(r)
	if req.Host != "Example.com" || req.Path != "/p" || req.RawQuery != "q=1" || req.SourceIP != netip.MustParseAddr("10.0.0.9") {
		t.Fatalf("%+v", req)
	}
}
