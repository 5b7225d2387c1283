package sigv4

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/errs"
)

const (
	testKey    = "AKIDBERTHTEST"
	testSecret = "berth/secret+key/0123456789abcdefEXAMPLE"
)

// captured is one request as the server read it.
type captured struct {
	r    *http.Request
	body []byte
	at   time.Time
}

// recorder is an HTTP server that keeps every request it receives and
// answers like an AWS endpoint would: XML for query-protocol (form) bodies,
// {} in JSON 1.1 otherwise.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []captured
}

func newRecorder(t testing.TB) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, captured{r: r.Clone(context.Background()), body: body, at: time.Now()})
		rec.mu.Unlock()
		w.Header().Set("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			w.Header().Set("Content-Type", "text/xml")
			io.WriteString(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">`+
				`<GetCallerIdentityResult><Arn>arn:aws:iam::000000000000:user/berth</Arn><UserId>AIDABERTH</UserId>`+
				`<Account>000000000000</Account></GetCallerIdentityResult>`+
				`<ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>`+
				`</GetCallerIdentityResponse>`)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, "{}")
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

// next returns the oldest request not yet taken.
func (rec *recorder) next(t testing.TB) captured {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("the server received no request")
	}
	c := rec.reqs[0]
	rec.reqs = rec.reqs[1:]
	return c
}

func (rec *recorder) all() []captured {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]captured(nil), rec.reqs...)
}

// send sends req through a real HTTP client and returns what the server saw.
func (rec *recorder) send(t testing.TB, req *http.Request) captured {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return rec.next(t)
}

func staticKeys(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { s, ok := m[k]; return s, ok }
}

var testKeys = staticKeys(testKey, testSecret)

func wantErr(t testing.TB, err error, reason, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", reason)
	}
	if errs.KindOf(err) != errs.Unauthenticated || errs.ReasonOf(err) != reason {
		t.Fatalf("error %v (kind %v, reason %q), want kind unauthenticated, reason %q", err, errs.KindOf(err), errs.ReasonOf(err), reason)
	}
	if msg != "" && errs.MessageOf(err) != msg {
		t.Fatalf("message\n%q\nwant\n%q", errs.MessageOf(err), msg)
	}
}

// sdkSign signs req with the AWS SDK for Go v2 signer.
func sdkSign(t testing.TB, req *http.Request, body []byte, secret, service string, at time.Time) {
	t.Helper()
	creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hashHex(body), service, "us-east-1", at); err != nil {
		t.Fatal(err)
	}
}

func newRequest(t testing.TB, method, rawURL string, body []byte) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func ecsRequest(t testing.TB, base string, body []byte) *http.Request {
	req := newRequest(t, "POST", base+"/", body)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters")
	return req
}

// TestVerifySDKSigned sends requests signed by the AWS SDK for Go v2 over a
// real socket and verifies them as the server read them.
func TestVerifySDKSigned(t *testing.T) {
	rec := newRecorder(t)
	base := rec.srv.URL
	for _, tc := range []struct {
		name    string
		service string
		build   func() (*http.Request, []byte)
	}{
		{"post json with target", "ecs", func() (*http.Request, []byte) {
			body := []byte(`{"cluster":"default","maxResults":10}`)
			return ecsRequest(t, base, body), body
		}},
		{"empty json body", "ecs", func() (*http.Request, []byte) {
			return ecsRequest(t, base, []byte("{}")), []byte("{}")
		}},
		{"get with form-encoded query", "monitoring", func() (*http.Request, []byte) {
			q := url.Values{"Action": {"ListMetrics"}, "Namespace": {"AWS/ECS two  spaces"}, "Name": {"ünïcödé ሴ €"},
				"Reserved": {"!*'();:@&=+$,/?#[]%"}, "Multi": {"b", "a", "c"}, "Empty": {""}}
			return newRequest(t, "GET", base+"/?"+q.Encode(), nil), nil
		}},
		{"get with percent-encoded query", "monitoring", func() (*http.Request, []byte) {
			return newRequest(t, "GET", base+"/?b=hello%20world&a=%E2%82%AC&c=x:y@z/w&d=%7Etilde&e", nil), nil
		}},
		{"path with special characters", "execute-api", func() (*http.Request, []byte) {
			return newRequest(t, "GET", base+"/v1/a%20b/c%2Fd/e+f/!$&'()*,;=:@/%E2%82%AC/~x.y_z-", nil), nil
		}},
		{"path with unicode sent raw", "execute-api", func() (*http.Request, []byte) {
			return newRequest(t, "GET", base+"/clusters/ünï cödé", nil), nil
		}},
		{"path not normalised by the sdk", "execute-api", func() (*http.Request, []byte) {
			return newRequest(t, "GET", base+"/a//b/./c/../d/", nil), nil
		}},
		{"headers with extra spaces", "ecs", func() (*http.Request, []byte) {
			body := []byte(`{}`)
			req := ecsRequest(t, base, body)
			req.Header.Set("X-Berth-Padded", "   a   b    c   ")
			req.Header.Add("X-Berth-Multi", "one")
			req.Header.Add("X-Berth-Multi", "  two  three ")
			return req, body
		}},
		{"content sha256 header", "ecs", func() (*http.Request, []byte) {
			body := []byte(`{"services":["web"]}`)
			req := ecsRequest(t, base, body)
			req.Header.Set("X-Amz-Content-Sha256", hashHex(body))
			return req, body
		}},
		{"session token", "ecs", func() (*http.Request, []byte) {
			body := []byte(`{}`)
			req := ecsRequest(t, base, body)
			req.Header.Set("X-Amz-Security-Token", "FwoGZXIvYXdzEJr//////////wEaDJ+token/with+odd=chars")
			return req, body
		}},
		{"form body", "sts", func() (*http.Request, []byte) {
			body := []byte("Action=GetCallerIdentity&Version=2011-06-15")
			req := newRequest(t, "POST", base+"/", body)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
			return req, body
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, body := tc.build()
			now := time.Now().UTC()
			sdkSign(t, req, body, testSecret, tc.service, now)
			got := rec.send(t, req)
			scope, err := Verify(got.r, got.body, now, testKeys)
			if err != nil {
				t.Fatalf("Verify: %v\nAuthorization: %s\nwire target: %s", err, got.r.Header.Get("Authorization"), got.r.RequestURI)
			}
			want := Scope{AccessKey: testKey, Date: now.Format("20060102"), Region: "us-east-1", Service: tc.service}
			if scope != want {
				t.Fatalf("scope %+v, want %+v", scope, want)
			}
			if ps, ok := ParseScope(got.r); !ok || ps != want {
				t.Fatalf("ParseScope = %+v, %v; want %+v", ps, ok, want)
			}
		})
	}
}

// TestVerifyRejects starts from a good SDK-signed request and breaks one
// thing at a time.
func TestVerifyRejects(t *testing.T) {
	rec := newRecorder(t)
	signedAt := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	body := []byte(`{"cluster":"default"}`)

	type mutation struct {
		name   string
		secret string                       // signing secret; testSecret if empty
		edit   func(r *http.Request) []byte // changes the received request; returns the body
		now    time.Time                    // verification time; signedAt if zero
		keys   func(string) (string, bool)  // testKeys if nil
		reason string                       // "" means it must verify
		msg    string
	}
	keep := func(r *http.Request) []byte { return body }
	setHeader := func(k, v string) func(r *http.Request) []byte {
		return func(r *http.Request) []byte { r.Header.Set(k, v); return body }
	}
	setAuth := func(f func(string) string) func(r *http.Request) []byte {
		return func(r *http.Request) []byte {
			r.Header.Set("Authorization", f(r.Header.Get("Authorization")))
			return body
		}
	}
	for _, m := range []mutation{
		{name: "untouched", edit: keep},
		{name: "unsigned header changed", edit: func(r *http.Request) []byte {
			r.Header.Set("User-Agent", "something else")
			r.Header.Set("Accept-Encoding", "identity")
			r.Header.Set("X-Not-Signed", "added after signing")
			return body
		}},
		{name: "just inside the skew window (past)", edit: keep, now: signedAt.Add(15 * time.Minute)},
		{name: "just inside the skew window (future)", edit: keep, now: signedAt.Add(-15 * time.Minute)},
		{name: "wrong secret", secret: "not-the-secret", edit: keep,
			reason: ReasonInvalidSignature, msg: msgMismatch},
		{name: "unknown key", edit: keep, keys: staticKeys("AKIDOTHER", testSecret),
			reason: ReasonUnrecognizedClient, msg: "The security token included in the request is invalid."},
		{name: "tampered body", edit: func(r *http.Request) []byte { return []byte(`{"cluster":"evil"}`) },
			reason: ReasonInvalidSignature, msg: msgMismatch},
		{name: "tampered signed header", edit: setHeader("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DeleteCluster"),
			reason: ReasonInvalidSignature, msg: msgMismatch},
		{name: "tampered host", edit: func(r *http.Request) []byte { r.Host = "evil.example:80"; return body },
			reason: ReasonInvalidSignature},
		{name: "tampered method", edit: func(r *http.Request) []byte { r.Method = "PUT"; return body },
			reason: ReasonInvalidSignature},
		{name: "tampered path", edit: func(r *http.Request) []byte { r.URL.Path = "/other"; return body },
			reason: ReasonInvalidSignature},
		{name: "query added", edit: func(r *http.Request) []byte { r.URL.RawQuery = "x=1"; return body },
			reason: ReasonInvalidSignature},
		{name: "signed header removed", edit: func(r *http.Request) []byte { r.Header.Del("Content-Type"); return body },
			reason: ReasonInvalidSignature},
		{name: "signature altered", edit: setAuth(func(a string) string { return a[:len(a)-4] + "0000" }),
			reason: ReasonInvalidSignature, msg: msgMismatch},
		{name: "signature not hex", edit: setAuth(func(a string) string { return a[:len(a)-4] + "zzzz" }),
			reason: ReasonInvalidSignature, msg: msgMismatch},
		{name: "payload hash header mismatch", edit: setHeader("X-Amz-Content-Sha256", emptySHA256),
			reason: ReasonInvalidSignature, msg: "The provided 'x-amz-content-sha256' header does not match what was computed."},
		{name: "expired", edit: keep, now: time.Date(2026, 11, 22, 1, 40, 0, 0, time.UTC),
			reason: ReasonInvalidSignature, msg: "Signature expired: 20261122T010000Z is now earlier than 20261122T012500Z (20261122T014000Z - 15 min.)"},
		{name: "future", edit: keep, now: time.Date(2026, 11, 22, 0, 20, 0, 0, time.UTC),
			reason: ReasonInvalidSignature, msg: "Signature not yet current: 20261122T010000Z is still later than 20261122T003500Z (20261122T002000Z + 15 min.)"},
		{name: "missing authorization", edit: func(r *http.Request) []byte { r.Header.Del("Authorization"); return body },
			reason: ReasonMissingToken, msg: "Missing Authentication Token"},
		{name: "missing date", edit: func(r *http.Request) []byte { r.Header.Del("X-Amz-Date"); return body },
			reason: ReasonIncomplete},
		{name: "missing signature parameter", edit: setAuth(func(a string) string { return a[:strings.Index(a, ", Signature=")] }),
			reason: ReasonIncomplete},
		{name: "malformed credential", edit: setAuth(func(a string) string { return strings.Replace(a, "/us-east-1/", "/", 1) }),
			reason: ReasonIncomplete},
		{name: "bad terminator", edit: setAuth(func(a string) string { return strings.Replace(a, "aws4_request", "aws5_request", 1) }),
			reason: ReasonIncomplete, msg: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."},
		{name: "scope date differs from X-Amz-Date", edit: setAuth(func(a string) string { return strings.Replace(a, "/20261122/", "/20261121/", 1) }),
			reason: ReasonIncomplete, msg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261121' != '20261122', from '20261122T010000Z'."},
		{name: "bad X-Amz-Date", edit: setHeader("X-Amz-Date", "2026-11-22T01:00:00Z"),
			reason: ReasonIncomplete, msg: "Date must be in ISO-8601 'basic format'. Got '2026-11-22T01:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "host not signed", edit: setAuth(func(a string) string { return strings.Replace(a, "host;", "", 1) }),
			reason: ReasonIncomplete, msg: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "sigv4a", edit: setAuth(func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1) }),
			reason: ReasonIncomplete, msg: "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'. Only AWS4-HMAC-SHA256 is supported."},
		{name: "other scheme", edit: setHeader("Authorization", "Bearer abc.def"),
			reason: ReasonIncomplete, msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=Bearer abc.def"},
		{name: "other scheme and no date", edit: func(r *http.Request) []byte {
			r.Header.Set("Authorization", "AWS AKID:sig")
			r.Header.Del("X-Amz-Date")
			return body
		}, reason: ReasonIncomplete, msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS AKID:sig"},
		{name: "parameter without equal sign", edit: setHeader("Authorization", "AWS4-HMAC-SHA256 Credential= AKID/20261122/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=00"),
			reason: ReasonIncomplete, msg: "'AKID/20261122/us-east-1/ecs/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential= AKID/20261122/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=00'."},
	} {
		t.Run(m.name, func(t *testing.T) {
			secret := m.secret
			if secret == "" {
				secret = testSecret
			}
			req := ecsRequest(t, rec.srv.URL, body)
			sdkSign(t, req, body, secret, "ecs", signedAt)
			got := rec.send(t, req)
			b := m.edit(got.r)
			now := m.now
			if now.IsZero() {
				now = signedAt
			}
			keys := m.keys
			if keys == nil {
				keys = testKeys
			}
			_, err := Verify(got.r, b, now, keys)
			if m.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantErr(t, err, m.reason, m.msg)
		})
	}
}

func TestVerifyDateHeaderFallback(t *testing.T) {
	// get-vanilla signed with a Date header instead of X-Amz-Date: the
	// string to sign carries the same instant in ISO 8601 basic format.
	r := &http.Request{Method: "GET", Host: suiteHost, URL: &url.URL{Path: "/"}, Header: http.Header{}}
	r.Header.Set("Date", "Sun, 30 Aug 2015 12:36:00 GMT")
	creq := canonicalRequest(r, "/", "", []string{"date", "host"}, "date;host", emptySHA256)
	sig := hexString(hmacSHA256(signingKey(suiteSecret, "20150830", suiteRegion, suiteService),
		stringToSign(suiteDate, "20150830/us-east-1/service/aws4_request", creq)))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=date;host, Signature="+sig)
	if _, err := Verify(r, nil, suiteTime, staticKeys(suiteKey, suiteSecret)); err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Date", "20150830T123601Z") // X-Amz-Date wins over Date
	_, err := Verify(r, nil, suiteTime, staticKeys(suiteKey, suiteSecret))
	wantErr(t, err, ReasonInvalidSignature, msgMismatch)
}

func TestVerifyUnsignedPayload(t *testing.T) {
	rec := newRecorder(t)
	body := []byte(`{"big":"upload"}`)
	req := ecsRequest(t, rec.srv.URL, body)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	now := time.Now()
	creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "ecs", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	got := rec.send(t, req)
	if _, err := Verify(got.r, []byte("any body at all"), now, testKeys); err != nil {
		t.Fatal(err)
	}
}

// presign makes a presigned GET URL with the SDK's PresignHTTP.
func presign(t *testing.T, rawURL string, expires int, payloadHash string, at time.Time) string {
	t.Helper()
	req := newRequest(t, "GET", rawURL, nil)
	if expires > 0 {
		q := req.URL.Query()
		q.Set("X-Amz-Expires", strconv.Itoa(expires))
		req.URL.RawQuery = q.Encode()
	}
	creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret, SessionToken: "token/with+specials="}
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, payloadHash, "sts", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestVerifyPresigned(t *testing.T) {
	rec := newRecorder(t)
	signedAt := time.Now().UTC().Truncate(time.Second)
	base := rec.srv.URL + "/?Action=GetCallerIdentity&Version=2011-06-15"
	get := func(u string) captured { return rec.send(t, newRequest(t, "GET", u, nil)) }

	t.Run("valid", func(t *testing.T) {
		got := get(presign(t, base, 900, emptySHA256, signedAt))
		s, err := Verify(got.r, got.body, signedAt.Add(10*time.Minute), testKeys)
		if err != nil {
			t.Fatalf("Verify: %v (%s)", err, got.r.URL.RawQuery)
		}
		if s.Service != "sts" || s.AccessKey != testKey {
			t.Fatalf("scope %+v", s)
		}
		if ps, ok := ParseScope(got.r); !ok || ps != s {
			t.Fatalf("ParseScope = %+v, %v", ps, ok)
		}
	})
	t.Run("unsigned payload", func(t *testing.T) {
		got := get(presign(t, base, 900, unsignedPayload, signedAt))
		if _, err := Verify(got.r, got.body, signedAt, testKeys); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("long expiry", func(t *testing.T) {
		got := get(presign(t, base, 3*24*3600, emptySHA256, signedAt))
		if _, err := Verify(got.r, got.body, signedAt.Add(48*time.Hour), testKeys); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		got := get(presign(t, base, 60, emptySHA256, signedAt))
		_, err := Verify(got.r, got.body, signedAt.Add(61*time.Second), testKeys)
		wantErr(t, err, ReasonInvalidSignature, "")
		if !strings.HasPrefix(errs.MessageOf(err), "Signature expired: ") {
			t.Fatal(errs.MessageOf(err))
		}
	})
	t.Run("no expiry uses the skew window", func(t *testing.T) {
		got := get(presign(t, base, 0, emptySHA256, signedAt))
		if _, err := Verify(got.r, got.body, signedAt.Add(14*time.Minute), testKeys); err != nil {
			t.Fatal(err)
		}
		_, err := Verify(got.r, got.body, signedAt.Add(16*time.Minute), testKeys)
		wantErr(t, err, ReasonInvalidSignature, "")
	})
	t.Run("future", func(t *testing.T) {
		got := get(presign(t, base, 900, emptySHA256, signedAt))
		_, err := Verify(got.r, got.body, signedAt.Add(-20*time.Minute), testKeys)
		wantErr(t, err, ReasonInvalidSignature, "")
	})
	t.Run("tampered parameter", func(t *testing.T) {
		u := presign(t, base, 900, emptySHA256, signedAt)
		got := get(strings.Replace(u, "GetCallerIdentity", "AssumeRole", 1))
		_, err := Verify(got.r, got.body, signedAt, testKeys)
		wantErr(t, err, ReasonInvalidSignature, msgMismatch)
	})
	t.Run("parameter added", func(t *testing.T) {
		got := get(presign(t, base, 900, emptySHA256, signedAt) + "&RoleArn=x")
		_, err := Verify(got.r, got.body, signedAt, testKeys)
		wantErr(t, err, ReasonInvalidSignature, msgMismatch)
	})
	t.Run("signature removed", func(t *testing.T) {
		u := presign(t, base, 900, emptySHA256, signedAt)
		i := strings.Index(u, "&X-Amz-Signature=")
		got := get(u[:i])
		_, err := Verify(got.r, got.body, signedAt, testKeys)
		wantErr(t, err, ReasonIncomplete, msgPresignMissing)
	})
	t.Run("expiry over a week", func(t *testing.T) {
		got := get(presign(t, base, 604801, emptySHA256, signedAt))
		_, err := Verify(got.r, got.body, signedAt, testKeys)
		wantErr(t, err, ReasonIncomplete, "X-Amz-Expires must be less than a week (in seconds) that is; 604800")
	})
	t.Run("unknown key", func(t *testing.T) {
		got := get(presign(t, base, 900, emptySHA256, signedAt))
		_, err := Verify(got.r, got.body, signedAt, staticKeys())
		wantErr(t, err, ReasonUnrecognizedClient, msgUnrecognized)
	})
}

// TestSignMatchesSDK signs the same requests with Sign and with the AWS SDK
// for Go v2 and compares the headers.
func TestSignMatchesSDK(t *testing.T) {
	at := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
	for _, tc := range []struct {
		name, method, url, service string
		body                       []byte
		headers                    map[string]string
	}{
		{"ecs json", "POST", "http://127.0.0.1:4566/", "ecs", []byte(`{"cluster":"default"}`),
			map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters"}},
		{"empty body", "POST", "http://localhost:8080/", "logs", nil,
			map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.DescribeLogGroups"}},
		{"query and path", "GET", "https://berth.example/a%20b/c?z=1&a=two%20words&a=ünï&m=x+y", "execute-api", nil,
			map[string]string{"X-Berth-Spaces": "  a   b  ", "Accept": "application/json"}},
		{"form", "POST", "http://127.0.0.1:4566/", "sts", []byte("Action=GetCallerIdentity&Version=2011-06-15"),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "User-Agent": "berth-agent/1.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk := func() *http.Request {
				var rd io.Reader
				if tc.body != nil {
					rd = bytes.NewReader(tc.body)
				}
				r, err := http.NewRequest(tc.method, tc.url, rd)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.headers {
					r.Header.Set(k, v)
				}
				return r
			}
			ours, theirs := mk(), mk()
			Sign(ours, tc.body, testKey, testSecret, "us-east-1", tc.service, at)
			sdkSign(t, theirs, tc.body, testSecret, tc.service, at)
			for _, h := range []string{"Authorization", "X-Amz-Date"} {
				if a, b := ours.Header.Get(h), theirs.Header.Get(h); a != b {
					t.Errorf("%s:\nours: %s\nsdk:  %s", h, a, b)
				}
			}
			// And what Sign makes, Verify accepts.
			if _, err := Verify(ours, tc.body, at, testKeys); err != nil {
				t.Fatalf("Verify(Sign(...)): %v", err)
			}
		})
	}
}

func TestSignOverTheWire(t *testing.T) {
	rec := newRecorder(t)
	body := []byte(`{"taskDefinition":"web:1"}`)
	req := ecsRequest(t, rec.srv.URL, body)
	now := time.Now()
	Sign(req, body, testKey, testSecret, "eu-west-3", "ecs", now)
	got := rec.send(t, req)
	s, err := Verify(got.r, got.body, now, testKeys)
	if err != nil {
		t.Fatal(err)
	}
	if s.Region != "eu-west-3" || s.Service != "ecs" {
		t.Fatalf("scope %+v", s)
	}
}

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		auth, query string
		want        Scope
		ok          bool
	}{
		{auth: "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
			want: Scope{"AKID", "20261122", "us-east-1", "ecs"}, ok: true},
		{auth: "AWS4-HMAC-SHA256 Credential=AKID/20261122/eu-west-1/servicediscovery/aws4_request,SignedHeaders=host,Signature=00",
			want: Scope{"AKID", "20261122", "eu-west-1", "servicediscovery"}, ok: true},
		{auth: "AWS4-HMAC-SHA256 SignedHeaders=host, Credential=AKID/20261122/us-east-1/logs/aws4_request", // order and completeness do not matter here
			want: Scope{"AKID", "20261122", "us-east-1", "logs"}, ok: true},
		{query: "Action=GetCallerIdentity&X-Amz-Credential=AKID%2F20261122%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Signature=00",
			want: Scope{"AKID", "20261122", "us-east-1", "sts"}, ok: true},
		{auth: "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/aws4_request"},
		{auth: "AWS4-HMAC-SHA256 Credential=AKID/2026112/us-east-1/ecs/aws4_request"},
		{auth: "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/ecs/aws5_request"},
		{auth: "AWS4-ECDSA-P256-SHA256 Credential=AKID/20261122/ecs/aws4_request"},
		{auth: "Bearer x"},
		{query: "X-Amz-Credential=garbage"},
		{},
	} {
		r := &http.Request{Header: http.Header{}, URL: &url.URL{Path: "/", RawQuery: tc.query}}
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		got, ok := ParseScope(r)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseScope(%q, %q) = %+v, %v; want %+v, %v", tc.auth, tc.query, got, ok, tc.want, tc.ok)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"cluster":"default","services":["web","worker"],"include":["TAGS"]}`)
	req := ecsRequest(b, "http://127.0.0.1:4566", body)
	now := time.Now()
	sdkSign(b, req, body, testSecret, "ecs", now)
	req.Host = req.URL.Host
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(req, body, now, testKeys); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVerifyGoSDKClient runs a real AWS SDK for Go v2 service client (the
// natural client of Berth's Go tests) against the recorder.
func TestVerifyGoSDKClient(t *testing.T) {
	rec := newRecorder(t)
	client := ecs.New(ecs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(rec.srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(testKey, testSecret, ""),
	})
	if _, err := client.ListClusters(context.Background(), &ecs.ListClustersInput{MaxResults: aws.Int32(5)}); err != nil {
		t.Fatal(err)
	}
	got := rec.next(t)
	s, err := Verify(got.r, got.body, got.at, testKeys)
	if err != nil {
		t.Fatalf("Verify: %v\n%v", err, got.r.Header)
	}
	if s.Service != "ecs" {
		t.Fatalf("scope %+v", s)
	}
	a, _ := parseAuthorization(got.r.Header.Get("Authorization"))
	t.Logf("SignedHeaders=%s", a.SignedHeaders)
}
