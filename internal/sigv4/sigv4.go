// Package sigv4 verifies and produces AWS Signature Version 4 (SigV4)
// signatures, the authentication every AWS SDK and CLI puts on its requests.
//
// The front door calls ParseScope to learn which AWS service a request is
// for (the credential scope names it), then Verify to authenticate it
// against the secret of the access key it names. Verify accepts both forms of
// SigV4: the Authorization header and presigned URLs (X-Amz-* query
// parameters). Failures are *errs.Error values of kind errs.Unauthenticated
// whose Reason is the AWS error code to send (MissingAuthenticationToken,
// IncompleteSignature, UnrecognizedClient or InvalidSignature, each with the
// "Exception" suffix) and whose Msg is AWS's message.
//
// Sign is the matching client side, for Berth's own clients and tests.
//
// Only the symmetric algorithm AWS4-HMAC-SHA256 is implemented, with the
// canonical URI rules of every service but S3 (normalised path, each segment
// encoded twice). SigV4a, S3's single-encoding rules and chunked (streaming)
// payload signing are not supported. docs/sigv4.md describes the behaviour
// in full.
package sigv4

import (
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

// Scope is the credential scope of a signed request: who signed it, for which
// day, region and service.
type Scope struct {
	AccessKey string // access key id, e.g. AKIDEXAMPLE
	Date      string // YYYYMMDD, UTC
	Region    string // e.g. us-east-1
	Service   string // signing name, e.g. ecs
}

// String returns the scope as it appears in the string to sign
// ("20150830/us-east-1/ecs/aws4_request"), without the access key.
func (s Scope) String() string {
	return s.Date + "/" + s.Region + "/" + s.Service + "/" + terminator
}

// AWS error codes Verify puts in errs.Error.Reason.
const (
	ReasonMissingToken       = "MissingAuthenticationTokenException"
	ReasonIncomplete         = "IncompleteSignatureException"
	ReasonUnrecognizedClient = "UnrecognizedClientException"
	ReasonInvalidSignature   = "InvalidSignatureException"
)

const (
	// MaxSkew is how far a request's signing time may be from the
	// server's clock, either way.
	MaxSkew = 15 * time.Minute
	// MaxPresignExpires is the longest X-Amz-Expires a presigned URL may carry.
	MaxPresignExpires = 7 * 24 * time.Hour
)

// Messages AWS sends with the errors above.
const (
	msgMissingToken   = "Missing Authentication Token"
	msgUnrecognized   = "The security token included in the request is invalid."
	msgMismatch       = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgPayloadHash    = "The provided 'x-amz-content-sha256' header does not match what was computed."
	msgHostNotSigned  = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
	msgPresignMissing = "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders'. Re-examine the query-string parameters."
)

func fail(reason, format string, args ...any) error {
	return errs.R(errs.Unauthenticated, reason, format, args...)
}

// ParseScope extracts the credential scope from the Authorization header, or
// from the X-Amz-Credential query parameter of a presigned URL, without
// verifying anything. ok is false when the request carries no well-formed
// SigV4 credential.
func ParseScope(r *http.Request) (s Scope, ok bool) {
	var cred string
	if h := r.Header.Get("Authorization"); h != "" {
		a, err := parseAuthorization(h)
		if err != nil || a.Algorithm != algorithm {
			return Scope{}, false
		}
		cred = a.Credential
	} else if r.URL != nil {
		cred = rawQueryParam(r.URL.RawQuery, "X-Amz-Credential")
	}
	s, err := parseCredential(cred)
	if err != nil || !validDate(s.Date) {
		return Scope{}, false
	}
	return s, true
}

// authorization is a parsed Authorization header.
type authorization struct {
	Algorithm     string
	Credential    string
	SignedHeaders string
	Signature     string
}

// parseAuthorization splits an Authorization header into its algorithm and
// the Credential, SignedHeaders and Signature parameters. It returns an
// error only for an AWS4-* header with a parameter that is not key=value or
// with an algorithm other than AWS4-HMAC-SHA256; a header of another scheme
// ("Bearer ...") comes back with only Algorithm set, and missing parameters
// come back empty: the caller reports those.
func parseAuthorization(h string) (authorization, error) {
	h = strings.Trim(h, " \t")
	alg, rest, _ := strings.Cut(h, " ")
	a := authorization{Algorithm: alg}
	if !strings.HasPrefix(alg, "AWS4-") {
		return a, nil
	}
	if alg != algorithm {
		return a, fail(ReasonIncomplete, "Unsupported AWS 'algorithm': '%s'. Only %s is supported.", alg, algorithm)
	}
	for _, tok := range strings.FieldsFunc(rest, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' }) {
		k, v, ok := strings.Cut(tok, "=")
		if !ok {
			return a, fail(ReasonIncomplete, "'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", tok, h)
		}
		var dst *string
		switch k {
		case "Credential":
			dst = &a.Credential
		case "SignedHeaders":
			dst = &a.SignedHeaders
		case "Signature":
			dst = &a.Signature
		default:
			continue // AWS ignores parameters it does not know
		}
		if *dst == "" {
			*dst = v
		}
	}
	return a, nil
}

// parseCredential splits "AKID/YYYYMMDD/region/service/aws4_request".
func parseCredential(c string) (Scope, error) {
	parts := strings.Split(c, "/")
	if len(parts) != 5 {
		return Scope{}, fail(ReasonIncomplete, "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", c)
	}
	s := Scope{AccessKey: parts[0], Date: parts[1], Region: parts[2], Service: parts[3]}
	switch {
	case parts[4] != terminator:
		return s, fail(ReasonIncomplete, "Credential should be scoped with a valid terminator: '%s', not '%s'.", terminator, parts[4])
	case s.AccessKey == "":
		return s, fail(ReasonIncomplete, "Credential must name an access key, got '%s'", c)
	case s.Region == "":
		return s, fail(ReasonIncomplete, "Credential should be scoped to a valid region, not ''.")
	case s.Service == "":
		return s, fail(ReasonIncomplete, "Credential should be scoped to correct service, not ''.")
	}
	return s, nil
}

func validDate(d string) bool {
	if len(d) != 8 {
		return false
	}
	_, err := time.Parse(scopeDateLayout, d)
	return err == nil
}

// rawQueryParam returns the first value of name in a raw query string.
func rawQueryParam(rawQuery, name string) string {
	for part := range strings.SplitSeq(rawQuery, "&") {
		k, v, _ := strings.Cut(part, "=")
		if queryDecode(k, true) == name {
			return queryDecode(v, true)
		}
	}
	return ""
}

// signed is what a request claims about its signature, from either form.
type signed struct {
	scope         Scope
	signedHeaders string
	signature     string
	amzDate       string    // signing time in ISO 8601 basic format
	when          time.Time // the same, parsed
	presigned     bool
	expires       time.Duration // presigned only; 0 when X-Amz-Expires is absent (then the skew window applies)
}

// Verify authenticates r, whose full body is body, at time now. secretFor
// returns the secret access key of an access key id, or false when the key
// is unknown. On success it returns the verified credential scope; checking
// that its region and service are the ones this server answers for is the
// caller's job. On failure the error is an *errs.Error of kind
// errs.Unauthenticated with the AWS error code as its Reason, and the scope
// is whatever could be parsed before the failure.
func Verify(r *http.Request, body []byte, now time.Time, secretFor func(accessKey string) (secret string, ok bool)) (Scope, error) {
	now = now.UTC()
	if r.URL == nil {
		r = r.Clone(r.Context())
		r.URL = &url.URL{Path: "/"}
	}
	var (
		s   signed
		err error
	)
	if h := r.Header.Get("Authorization"); h != "" {
		s, err = fromHeader(r, h)
	} else if isPresigned(r) {
		s, err = fromQuery(r)
	} else {
		return Scope{}, fail(ReasonMissingToken, msgMissingToken)
	}
	if err != nil {
		return s.scope, err
	}
	if err := checkTime(s, now); err != nil {
		return s.scope, err
	}

	secret, ok := secretFor(s.scope.AccessKey)
	if !ok {
		return s.scope, fail(ReasonUnrecognizedClient, msgUnrecognized)
	}
	want, err := hex.DecodeString(s.signature)
	if err != nil || len(want) != 32 {
		return s.scope, fail(ReasonInvalidSignature, msgMismatch)
	}

	computed := hashHex(body)
	var payloads []string
	switch hdr := r.Header.Get("X-Amz-Content-Sha256"); {
	case hdr == unsignedPayload:
		payloads = []string{unsignedPayload}
	case hdr != "":
		if !strings.EqualFold(hdr, computed) {
			return s.scope, fail(ReasonInvalidSignature, msgPayloadHash)
		}
		payloads = []string{hdr}
	case s.presigned:
		// A presigned URL is often made before the body is known.
		payloads = []string{computed, unsignedPayload}
	default:
		payloads = []string{computed}
	}

	// The specification leaves some room; real clients differ on it, and
	// each difference is tried: the path normalised (AWS, botocore) or as
	// sent (the AWS SDK for Go does not normalise), and '+' in the query as
	// a space (Go's net/url) or as a plus. The signature covers the exact
	// bytes either way, so leniency here cannot make a forgery pass.
	rawPath := requestPath(r.URL)
	uris := appendUnique(nil, canonicalURI(rawPath, true), canonicalURI(rawPath, false))
	skip := ""
	if s.presigned {
		skip = "X-Amz-Signature"
	}
	queries := []string{canonicalQuery(r.URL.RawQuery, true, skip)}
	if strings.Contains(r.URL.RawQuery, "+") {
		queries = appendUnique(queries, canonicalQuery(r.URL.RawQuery, false, skip))
	}
	names := strings.Split(s.signedHeaders, ";")
	key := signingKey(secret, s.scope.Date, s.scope.Region, s.scope.Service)
	scope := s.scope.String()

	var first string
	for _, uri := range uris {
		for _, q := range queries {
			for _, p := range payloads {
				creq := canonicalRequest(r, uri, q, names, s.signedHeaders, p)
				if hmac.Equal(hmacSHA256(key, stringToSign(s.amzDate, scope, creq)), want) {
					return s.scope, nil
				}
				if first == "" {
					first = creq
				}
			}
		}
	}
	return s.scope, &errs.Error{
		Kind:   errs.Unauthenticated,
		Reason: ReasonInvalidSignature,
		Msg:    msgMismatch,
		Err: fmt.Errorf("canonical request %q, string to sign %q",
			first, stringToSign(s.amzDate, scope, first)),
	}
}

func appendUnique(list []string, vals ...string) []string {
next:
	for _, v := range vals {
		for _, have := range list {
			if have == v {
				continue next
			}
		}
		list = append(list, v)
	}
	return list
}

// fromHeader reads the signature claims of an Authorization-header request.
func fromHeader(r *http.Request, h string) (signed, error) {
	var s signed
	a, err := parseAuthorization(h)
	if err != nil {
		return s, err
	}
	var missing []string
	if a.Credential == "" {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if a.Signature == "" {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if a.SignedHeaders == "" {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	httpDate := r.Header.Get("Date")
	if amzDate == "" && httpDate == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return s, fail(ReasonIncomplete, "%s Authorization=%s", strings.Join(missing, " "), h)
	}

	if s.scope, err = parseCredential(a.Credential); err != nil {
		return s, err
	}
	s.signedHeaders, s.signature = a.SignedHeaders, a.Signature
	if amzDate != "" {
		s.when, err = parseAmzDate(amzDate)
	} else {
		s.when, err = http.ParseTime(httpDate)
		if err != nil {
			err = badDate(httpDate)
		}
	}
	if err != nil {
		return s, err
	}
	s.amzDate = s.when.UTC().Format(isoBasic)
	return s, checkClaims(s)
}

func isPresigned(r *http.Request) bool {
	q := r.URL.RawQuery
	return strings.Contains(q, "X-Amz-") &&
		(rawQueryParam(q, "X-Amz-Algorithm") != "" || rawQueryParam(q, "X-Amz-Credential") != "" ||
			rawQueryParam(q, "X-Amz-Signature") != "")
}

// fromQuery reads the signature claims of a presigned URL.
func fromQuery(r *http.Request) (signed, error) {
	s := signed{presigned: true}
	q := r.URL.RawQuery
	alg := rawQueryParam(q, "X-Amz-Algorithm")
	cred := rawQueryParam(q, "X-Amz-Credential")
	amzDate := rawQueryParam(q, "X-Amz-Date")
	s.signedHeaders = rawQueryParam(q, "X-Amz-SignedHeaders")
	s.signature = rawQueryParam(q, "X-Amz-Signature")
	if alg == "" || cred == "" || amzDate == "" || s.signedHeaders == "" || s.signature == "" {
		s.scope, _ = parseCredential(cred)
		return s, fail(ReasonIncomplete, msgPresignMissing)
	}
	var err error
	if s.scope, err = parseCredential(cred); err != nil {
		return s, err
	}
	if alg != algorithm {
		return s, fail(ReasonIncomplete, "Unsupported AWS 'algorithm': '%s'. Only %s is supported.", alg, algorithm)
	}
	if exp := rawQueryParam(q, "X-Amz-Expires"); exp != "" {
		n, err := strconv.ParseInt(exp, 10, 64)
		switch {
		case err != nil || n < 1:
			return s, fail(ReasonIncomplete, "X-Amz-Expires should be a positive number of seconds, got '%s'.", exp)
		case n > int64(MaxPresignExpires/time.Second):
			return s, fail(ReasonIncomplete, "X-Amz-Expires must be less than a week (in seconds) that is; %d", int64(MaxPresignExpires/time.Second))
		}
		s.expires = time.Duration(n) * time.Second
	}
	if s.when, err = parseAmzDate(amzDate); err != nil {
		return s, err
	}
	s.amzDate = amzDate
	return s, checkClaims(s)
}

// checkClaims checks what can be checked without a clock or a secret.
func checkClaims(s signed) error {
	if d := s.amzDate[:8]; s.scope.Date != d {
		return fail(ReasonIncomplete, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", s.scope.Date, d, s.amzDate)
	}
	hostSigned := false
	for n := range strings.SplitSeq(s.signedHeaders, ";") {
		if n == "" {
			return fail(ReasonIncomplete, "SignedHeaders has an empty header name: '%s'.", s.signedHeaders)
		}
		if strings.EqualFold(n, "host") {
			hostSigned = true
		}
	}
	if !hostSigned {
		return fail(ReasonIncomplete, msgHostNotSigned)
	}
	return nil
}

func parseAmzDate(v string) (time.Time, error) {
	t, err := time.Parse(isoBasic, v)
	if err != nil || t.Format(isoBasic) != v {
		return time.Time{}, badDate(v)
	}
	return t, nil
}

func badDate(v string) error {
	return fail(ReasonIncomplete, "Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", v)
}

// checkTime enforces the skew window and, for presigned URLs, the expiry.
func checkTime(s signed, now time.Time) error {
	if late := now.Add(MaxSkew); s.when.After(late) {
		return fail(ReasonInvalidSignature, "Signature not yet current: %s is still later than %s (%s + 15 min.)",
			s.amzDate, late.Format(isoBasic), now.Format(isoBasic))
	}
	if s.presigned && s.expires > 0 {
		if early := now.Add(-s.expires); s.when.Before(early) {
			return fail(ReasonInvalidSignature, "Signature expired: %s is now earlier than %s (%s - %d sec.)",
				s.amzDate, early.Format(isoBasic), now.Format(isoBasic), int64(s.expires/time.Second))
		}
		return nil
	}
	if early := now.Add(-MaxSkew); s.when.Before(early) {
		return fail(ReasonInvalidSignature, "Signature expired: %s is now earlier than %s (%s - 15 min.)",
			s.amzDate, early.Format(isoBasic), now.Format(isoBasic))
	}
	return nil
}
