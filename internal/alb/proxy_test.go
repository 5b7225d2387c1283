package alb

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRedirectLocation(t *testing.T) {
	cases := []struct {
		name string
		rd   Redirect
		want string
	}{
		{"http to https keeps the rest", Redirect{Protocol: "HTTPS", Port: "443"}, "https://shop.example.com:443/a/b?x=1"},
		{"nothing changed but the host", Redirect{Host: "www.#{host}"}, "http://www.shop.example.com:80/a/b?x=1"},
		{"path placeholder drops the leading slash", Redirect{Path: "/new/#{path}"}, "http://shop.example.com:80/new/a/b?x=1"},
		{"query rewritten", Redirect{Query: "#{query}&y=2"}, "http://shop.example.com:80/a/b?x=1&y=2"},
		{"query dropped", Redirect{Query: "", Path: "/x", Protocol: "#{protocol}"}, "http://shop.example.com:80/x?x=1"},
		{"fixed target", Redirect{Protocol: "https", Host: "example.org", Port: "8443", Path: "/landing", Query: "from=#{host}"}, "https://example.org:8443/landing?from=shop.example.com"},
	}
	for _, c := range cases {
		rd := c.rd
		if got := redirectLocation(&rd, "http", "shop.example.com", "80", "/a/b", "x=1"); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestTraceHeader(t *testing.T) {
	now := time.Unix(0x5759e988, 0)
	id := `1-5759e988-[0-9a-f]{24}`
	for in, want := range map[string]string{
		"": `^Root=` + id + `$`,
		"Root=1-00000001-000000000000000000000001":                           `^Self=` + id + `;Root=1-00000001-000000000000000000000001$`,
		"Self=1-1-1;Root=1-00000001-000000000000000000000001;CalledFrom=app": `^Self=` + id + `;Root=1-00000001-000000000000000000000001;CalledFrom=app$`,
		"garbage": `^Root=` + id + `$`,
	} {
		got := traceHeader(in, now)
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("traceHeader(%q) = %q", in, got)
		}
	}
	if a, b := newTraceID(now), newTraceID(now); a == b || strings.Count(a, "-") != 2 {
		t.Errorf("trace ids %q %q", a, b)
	}
}
