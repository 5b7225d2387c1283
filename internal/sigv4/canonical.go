package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// This file holds the pure pieces of the SigV4 algorithm: encoding,
// normalisation, the canonical request, the string to sign and the signing
// key. Verify and Sign share them, so a request Sign produces is one Verify
// accepts by construction.

const (
	algorithm       = "AWS4-HMAC-SHA256"
	terminator      = "aws4_request"
	isoBasic        = "20060102T150405Z" // X-Amz-Date layout
	scopeDateLayout = "20060102"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	emptySHA256     = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// uriEncode percent-encodes every byte of s except the RFC 3986 unreserved
// characters (A-Z a-z 0-9 - _ . ~), with upper-case hex digits. With
// keepSlash, '/' is left as is (for paths).
func uriEncode(s string, keepSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && !(keepSlash && s[i] == '/') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (keepSlash && c == '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// normalizePath removes empty and "." segments and resolves ".." segments,
// keeping a trailing slash only when p has one. An empty result is "/".
func normalizePath(p string) string {
	segs := strings.Split(p, "/")
	out := segs[:0:0]
	for _, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return "/"
	}
	res := "/" + strings.Join(out, "/")
	if strings.HasSuffix(p, "/") {
		res += "/"
	}
	return res
}

// canonicalURI turns the path as it travelled on the wire (still
// percent-encoded) into the canonical URI of a non-S3 service: optionally
// normalised, then URI-encoded once more. That second encoding is the
// specification's "encode twice" rule: a space sent as %20 is signed as %2520.
func canonicalURI(escapedPath string, normalize bool) string {
	if !strings.HasPrefix(escapedPath, "/") {
		escapedPath = "/" + escapedPath // "*" (OPTIONS *) or a relative client URL
	}
	if normalize {
		escapedPath = normalizePath(escapedPath)
	}
	return uriEncode(escapedPath, true)
}

// requestPath returns the path of u as it is (or will be) sent on the wire.
func requestPath(u *url.URL) string {
	if u.Opaque != "" {
		// "//host/path" or "scheme://host/path" forms used to force an
		// exact wire path; the path starts at the first slash after the host.
		o := u.Opaque
		if i := strings.IndexByte(o, '?'); i >= 0 {
			o = o[:i]
		}
		o = strings.TrimPrefix(o, "//")
		if i := strings.IndexByte(o, '/'); i >= 0 {
			return o[i:]
		}
		return "/"
	}
	if p := u.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// canonicalQuery builds the canonical query string from a raw query: each
// name and value decoded, then URI-encoded, the pairs sorted by name and then
// by value. plusIsSpace decodes '+' as a space (form encoding, as Go's
// net/url and the AWS SDK for Go do); otherwise '+' is a literal plus.
// Parameters named skip (after decoding) are left out. A component with a
// malformed escape is taken literally.
func canonicalQuery(rawQuery string, plusIsSpace bool, skip string) string {
	if rawQuery == "" {
		return ""
	}
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k = queryDecode(k, plusIsSpace)
		if skip != "" && k == skip {
			continue
		}
		pairs = append(pairs, pair{uriEncode(k, false), uriEncode(queryDecode(v, plusIsSpace), false)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

func queryDecode(s string, plusIsSpace bool) string {
	in := s
	if !plusIsSpace {
		in = strings.ReplaceAll(s, "+", "%2B")
	}
	d, err := url.QueryUnescape(in)
	if err != nil {
		return s
	}
	return d
}

// canonicalValue trims a header value and collapses runs of spaces into one.
func canonicalValue(v string) string {
	v = strings.Trim(v, " \t")
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// requestHost is the value of the host header as sent: r.Host on a server,
// r.URL.Host on a client request that does not override it.
func requestHost(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	if r.URL != nil {
		return r.URL.Host
	}
	return ""
}

// canonicalHeaders writes one "name:value\n" line for each name in names, in
// the given order: host from r.Host, every other from r.Header (several
// values joined by commas), content-length from r.ContentLength when the
// header map lacks it (a client-side request keeps it there).
func canonicalHeaders(b *strings.Builder, r *http.Request, names []string) {
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(':')
		switch {
		case strings.EqualFold(name, "host"):
			b.WriteString(canonicalValue(requestHost(r)))
		default:
			vals := r.Header.Values(name)
			if len(vals) == 0 && strings.EqualFold(name, "content-length") && r.ContentLength > 0 {
				vals = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
			for i, v := range vals {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(canonicalValue(v))
			}
		}
		b.WriteByte('\n')
	}
}

// canonicalRequest joins the six parts of the canonical request.
func canonicalRequest(r *http.Request, uri, query string, names []string, signedHeaders, payloadHash string) string {
	var b strings.Builder
	b.Grow(256)
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(uri)
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	canonicalHeaders(&b, r, names)
	b.WriteByte('\n')
	b.WriteString(signedHeaders)
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// stringToSign builds the string the signature is computed over.
func stringToSign(amzDate, scope, canonical string) string {
	h := sha256.Sum256([]byte(canonical))
	return algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(h[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signingKey derives the key for one day, region and service.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, terminator)
}

func hexString(b []byte) string { return hex.EncodeToString(b) }

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
