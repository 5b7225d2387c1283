package sigv4

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

// canonicalAlphabet reports whether s holds only unreserved characters,
// well-formed %XX escapes (upper-case hex) and the bytes in extra.
func canonicalAlphabet(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case unreserved(c) || strings.IndexByte(extra, c) >= 0:
		case c == '%' && i+2 < len(s) && isUpperHex(s[i+1]) && isUpperHex(s[i+2]):
			i += 2
		default:
			return false
		}
	}
	return true
}

func isUpperHex(c byte) bool { return '0' <= c && c <= '9' || 'A' <= c && c <= 'F' }

func tokenName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('a' <= s[i] && s[i] <= 'z' || 'A' <= s[i] && s[i] <= 'Z' || '0' <= s[i] && s[i] <= '9' || s[i] == '-') {
			return false
		}
	}
	return true
}

// FuzzCanonicalRequest feeds random methods, paths, queries and headers to
// the canonicaliser: it must not panic, must be deterministic, must only
// emit the canonical alphabet, must not depend on parameter order, and
// whatever Sign signs Verify must accept.
func FuzzCanonicalRequest(f *testing.F) {
	f.Add("GET", "/", "", "X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters", []byte("{}"))
	f.Add("POST", "/example space/ሴ", "Param-3=Value3&Param=Value2&%E1%88%B4=Value1", "My-Header1", "  a   b  ", []byte("Param1=value1"))
	f.Add("GET", "//a/./b/../c//", "a=b+c&a=%zz&&=x&y", "content-type", "application/x-amz-json-1.1", []byte(nil))
	f.Add("PUT", "/%2F%252F/..%2F", "X-Amz-Signature=1&X-Amz-Credential=a%2Fb", "Host", "evil", []byte("x"))
	f.Add("", "", "%", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, method, path, query, hname, hvalue string, body []byte) {
		build := func() string {
			r := &http.Request{Method: method, Host: "h.example", URL: &url.URL{Path: path, RawQuery: query}, Header: http.Header{}}
			if hname != "" {
				r.Header[hname] = []string{hvalue}
			}
			names := []string{"host", strings.ToLower(hname)}
			return canonicalRequest(r, canonicalURI(requestPath(r.URL), true), canonicalQuery(query, true, "X-Amz-Signature"),
				names, strings.Join(names, ";"), hashHex(body))
		}
		if a, b := build(), build(); a != b {
			t.Fatalf("not deterministic:\n%q\n%q", a, b)
		}

		for _, normalize := range []bool{true, false} {
			u := canonicalURI(path, normalize)
			if !strings.HasPrefix(u, "/") || !canonicalAlphabet(u, "/") {
				t.Fatalf("canonicalURI(%q, %v) = %q", path, normalize, u)
			}
		}
		if a, b := canonicalURI(normalizePath(path), true), canonicalURI(path, true); a != b {
			t.Fatalf("normalisation not idempotent for %q: %q vs %q", path, a, b)
		}
		for _, plus := range []bool{true, false} {
			q := canonicalQuery(query, plus, "")
			if !canonicalAlphabet(q, "=&") {
				t.Fatalf("canonicalQuery(%q) = %q", query, q)
			}
			parts := strings.Split(query, "&")
			slices.Reverse(parts)
			if r := canonicalQuery(strings.Join(parts, "&"), plus, ""); r != q {
				t.Fatalf("canonicalQuery depends on order: %q vs %q", q, r)
			}
		}

		// Round trip through Sign and Verify.
		r := &http.Request{Method: method, Host: "h.example", URL: &url.URL{Path: path, RawQuery: query}, Header: http.Header{}}
		if tokenName(hname) && !strings.EqualFold(hname, "Authorization") && !strings.EqualFold(hname, "X-Amz-Date") &&
			!strings.EqualFold(hname, "X-Amz-Content-Sha256") {
			r.Header.Set(hname, hvalue)
		}
		now := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
		Sign(r, body, testKey, testSecret, "us-east-1", "ecs", now)
		if _, err := Verify(r, body, now, testKeys); err != nil {
			t.Fatalf("Verify(Sign(%q %q ? %q, %q: %q)): %v", method, path, query, hname, hvalue, err)
		}
	})
}

// FuzzParseAuthorization feeds random Authorization headers to the parser,
// ParseScope and Verify: no panic, a stable parse, and only
// Unauthenticated errors.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	f.Add("AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request,SignedHeaders=host,Signature=00")
	f.Add("AWS4-HMAC-SHA256 Credential= A/20150830/r/s/aws4_request")
	f.Add("AWS4-HMAC-SHA256 Credential=A//r/s/aws4_request, SignedHeaders=;;, Signature=zz")
	f.Add("AWS4-ECDSA-P256-SHA256 Credential=A/20150830/s/aws4_request, SignedHeaders=host, Signature=00")
	f.Add("AWS AKID:c2lnbmF0dXJl")
	f.Add("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x")
	f.Add("AWS4-HMAC-SHA256")
	f.Add("   \t ")
	f.Add("AWS4-HMAC-SHA256 Credential=a=b/20150830/r/s/aws4_request, Signature==, Foo=bar")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil && errs.ReasonOf(err) != ReasonIncomplete {
			t.Fatalf("parse error %v", err)
		}
		if err == nil && a.Algorithm == algorithm {
			again, err := parseAuthorization(algorithm + " Credential=" + a.Credential + ", SignedHeaders=" + a.SignedHeaders + ", Signature=" + a.Signature)
			if err != nil || again != a {
				t.Fatalf("re-parse of %+v gave %+v, %v", a, again, err)
			}
		}

		r := &http.Request{Method: "POST", Host: "h.example", URL: &url.URL{Path: "/"}, Header: http.Header{}}
		r.Header.Set("Authorization", h)
		r.Header.Set("X-Amz-Date", "20150830T123600Z")
		if s, ok := ParseScope(r); ok {
			if s.AccessKey == "" || s.Region == "" || s.Service == "" || !validDate(s.Date) {
				t.Fatalf("ParseScope accepted %q as %+v", h, s)
			}
		}
		_, err = Verify(r, nil, suiteTime, staticKeys("AKIDEXAMPLE", suiteSecret, "A", "secret"))
		if err == nil {
			t.Fatalf("Verify accepted %q", h)
		}
		if errs.KindOf(err) != errs.Unauthenticated || errs.ReasonOf(err) == "" {
			t.Fatalf("Verify error %v has kind %v, reason %q", err, errs.KindOf(err), errs.ReasonOf(err))
		}
	})
}
