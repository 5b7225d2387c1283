package sigv4

import (
	"net/http"
	"sort"
	"strings"
	"time"
)

// unsignedHeaders are never signed by Sign: they are set or changed by
// proxies and HTTP stacks after signing. The AWS SDKs leave out the same.
var unsignedHeaders = map[string]bool{
	"authorization":     true,
	"user-agent":        true,
	"x-amzn-trace-id":   true,
	"expect":            true,
	"transfer-encoding": true,
}

// Sign signs r in place for service in region with the given credentials at
// time now: it sets X-Amz-Date and Authorization. It signs the host, the
// content length when r.ContentLength > 0, and every header already on r
// except Authorization, User-Agent, X-Amzn-Trace-Id, Expect and
// Transfer-Encoding, so set the headers first. body must be the exact body
// that will be sent; if r carries X-Amz-Content-Sha256: UNSIGNED-PAYLOAD the
// body is not signed. The result matches the AWS SDK for Go v2 signer for
// the same request and time.
func Sign(r *http.Request, body []byte, accessKey, secret, region, service string, now time.Time) {
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	amzDate := now.UTC().Format(isoBasic)
	r.Header.Del("Authorization")
	r.Header.Set("X-Amz-Date", amzDate)

	names := []string{"host"}
	if r.ContentLength > 0 {
		names = append(names, "content-length")
	}
	for k := range r.Header {
		lk := strings.ToLower(k)
		if unsignedHeaders[lk] || lk == "host" || lk == "content-length" {
			continue
		}
		names = append(names, lk)
	}
	sort.Strings(names)
	names = compactSorted(names)
	signedHeaders := strings.Join(names, ";")

	payload := hashHex(body)
	if r.Header.Get("X-Amz-Content-Sha256") == unsignedPayload {
		payload = unsignedPayload
	}
	scope := Scope{AccessKey: accessKey, Date: amzDate[:8], Region: region, Service: service}
	creq := canonicalRequest(r, canonicalURI(requestPath(r.URL), true), canonicalQuery(r.URL.RawQuery, true, ""), names, signedHeaders, payload)
	sig := hmacSHA256(signingKey(secret, scope.Date, region, service), stringToSign(amzDate, scope.String(), creq))
	r.Header.Set("Authorization", algorithm+" Credential="+accessKey+"/"+scope.String()+
		", SignedHeaders="+signedHeaders+", Signature="+hexString(sig))
}

func compactSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
