package sigv4

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// The AWS SigV4 test suite ("aws-sig-v4-test-suite", published with the
// SigV4 documentation and kept current in awslabs/aws-c-auth under
// tests/aws-signing-test-suite/v4). Every case signs with the same key, day,
// region and service; inputs are the request as written in the suite, where
// paths are NOT yet percent-encoded, so the canonical URI encodes them once.
// (On the wire a client sends the encoded path and the server encodes it a
// second time; TestVerifySuiteOverTheWire covers that side.)
const (
	suiteKey     = "AKIDEXAMPLE"
	suiteSecret  = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	suiteDate    = "20150830T123600Z"
	suiteRegion  = "us-east-1"
	suiteService = "service"
	suiteHost    = "example.amazonaws.com"
)

var suiteTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

type suiteCase struct {
	name, method, path, query string
	raw                       bool // the suite's "normalize": false
	headers                   [][2]string
	body                      string // signed via X-Amz-Content-Sha256
	token                     string // X-Amz-Security-Token
	creq                      string // expected canonical request
	sig                       string // expected signature
}

var suite = []suiteCase{
	{name: "get-header-key-duplicate", method: "GET", path: "/", query: "",
		headers: [][2]string{{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
		creq:    "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
	{name: "get-header-value-order", method: "GET", path: "/", query: "",
		headers: [][2]string{{"My-Header1", "value4"}, {"My-Header1", "value1"}, {"My-Header1", "value3"}, {"My-Header1", "value2"}},
		creq:    "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
	{name: "get-header-value-trim", method: "GET", path: "/", query: "",
		headers: [][2]string{{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
		creq:    "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
	{name: "get-relative-normalized", method: "GET", path: "/example/..", query: "",
		creq: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	{name: "get-relative-relative-normalized", method: "GET", path: "/example1/example2/../..", query: "",
		creq: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	{name: "get-relative-relative-unnormalized", method: "GET", path: "/example1/example2/../..", query: "", raw: true,
		creq: "GET\n/example1/example2/../..\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "dc33e0856fd4baca4d7aa2146c38958283844764f38c74252a333df5e613003b"},
	{name: "get-relative-unnormalized", method: "GET", path: "/example/..", query: "", raw: true,
		creq: "GET\n/example/..\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "eca7ead57bb5aa5c8e28007acd4ff04e1ff9a0ff3b237ec1554a184887ff9282"},
	{name: "get-slash-dot-slash-normalized", method: "GET", path: "/./", query: "",
		creq: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	{name: "get-slash-dot-slash-unnormalized", method: "GET", path: "/./", query: "", raw: true,
		creq: "GET\n/./\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "68714168e6557f8f2de0ef956fc24dc2593a4bd2961f8df51898d8a134695145"},
	{name: "get-slash-normalized", method: "GET", path: "//", query: "",
		creq: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	{name: "get-slash-pointless-dot-normalized", method: "GET", path: "/./example", query: "",
		creq: "GET\n/example\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
	{name: "get-slash-pointless-dot-unnormalized", method: "GET", path: "/./example", query: "", raw: true,
		creq: "GET\n/./example\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "beb03f223f7deae4146464f06e29eebbee9c8afbe15c290cf07aa8b119e14cff"},
	{name: "get-slash-unnormalized", method: "GET", path: "//", query: "", raw: true,
		creq: "GET\n//\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "c88bcd3d312d75078c0cd961d6deae3f4c754924b01669efcfcb439fd5e5b76e"},
	{name: "get-slashes-normalized", method: "GET", path: "//example//", query: "",
		creq: "GET\n/example/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
	{name: "get-slashes-unnormalized", method: "GET", path: "//example//", query: "", raw: true,
		creq: "GET\n//example//\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5"},
	{name: "get-space-normalized", method: "GET", path: "/example space/", query: "",
		creq: "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
	{name: "get-space-unnormalized", method: "GET", path: "/example space/", query: "", raw: true,
		creq: "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
	{name: "get-unreserved", method: "GET", path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", query: "",
		creq: "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
	{name: "get-utf8", method: "GET", path: "/ሴ", query: "",
		creq: "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
	{name: "get-vanilla-empty-query-key", method: "GET", path: "/", query: "Param1=value1",
		creq: "GET\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
	{name: "get-vanilla-query-order-encoded", method: "GET", path: "/", query: "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
		creq: "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"},
	{name: "get-vanilla-query-order-key-case", method: "GET", path: "/", query: "Param2=value2&Param1=value1",
		creq: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
	{name: "get-vanilla-query-unreserved", method: "GET", path: "/", query: "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
		creq: "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
	{name: "get-vanilla-utf8-query", method: "GET", path: "/", query: "ሴ=bar",
		creq: "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
	{name: "get-vanilla-with-session-token", method: "GET", path: "/", query: "",
		token: "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
		creq:  "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:   "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"},
	{name: "get-vanilla", method: "GET", path: "/", query: "",
		creq: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	{name: "post-header-key-case", method: "POST", path: "/", query: "",
		creq: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
	{name: "post-header-key-sort", method: "POST", path: "/", query: "",
		headers: [][2]string{{"My-Header1", "value1"}},
		creq:    "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
	{name: "post-header-value-case", method: "POST", path: "/", query: "",
		headers: [][2]string{{"My-Header1", "VALUE1"}},
		creq:    "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
	{name: "post-vanilla-empty-query-value", method: "POST", path: "/", query: "Param1=value1",
		creq: "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
	{name: "post-vanilla-query", method: "POST", path: "/", query: "Param1=value1",
		creq: "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
	{name: "post-vanilla", method: "POST", path: "/", query: "",
		creq: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		sig:  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
	{name: "post-x-www-form-urlencoded-parameters", method: "POST", path: "/", query: "",
		headers: [][2]string{{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}, {"Content-Length", "13"}}, body: "Param1=value1",
		creq: "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:example.amazonaws.com\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:20150830T123600Z\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
		sig:  "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422"},
	{name: "post-x-www-form-urlencoded", method: "POST", path: "/", query: "",
		headers: [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}, {"Content-Length", "13"}}, body: "Param1=value1",
		creq: "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:20150830T123600Z\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
		sig:  "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"},
}

// suiteRequest builds the suite case as a server would see it, with the
// headers the suite's signer adds, and returns it with its signed headers.
func suiteRequest(tc suiteCase) (*http.Request, []string) {
	r := &http.Request{Method: tc.method, Host: suiteHost, Header: http.Header{}, URL: &url.URL{Path: tc.path, RawQuery: tc.query}}
	for _, h := range tc.headers {
		r.Header.Add(h[0], h[1])
	}
	r.Header.Set("X-Amz-Date", suiteDate)
	if tc.body != "" {
		r.Header.Set("X-Amz-Content-Sha256", hashHex([]byte(tc.body)))
	}
	if tc.token != "" {
		r.Header.Set("X-Amz-Security-Token", tc.token)
	}
	names := []string{"host"}
	for k := range r.Header {
		names = append(names, strings.ToLower(k))
	}
	slices.Sort(names)
	return r, slices.Compact(names)
}

func TestCanonicalRequestSuite(t *testing.T) {
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			r, names := suiteRequest(tc)
			creq := canonicalRequest(r, canonicalURI(tc.path, !tc.raw), canonicalQuery(tc.query, true, ""),
				names, strings.Join(names, ";"), hashHex([]byte(tc.body)))
			if creq != tc.creq {
				t.Fatalf("canonical request:\n%s\nwant:\n%s", creq, tc.creq)
			}
			scope := Scope{Date: suiteDate[:8], Region: suiteRegion, Service: suiteService}.String()
			sig := hexString(hmacSHA256(signingKey(suiteSecret, suiteDate[:8], suiteRegion, suiteService), stringToSign(suiteDate, scope, creq)))
			if sig != tc.sig {
				t.Fatalf("signature %s, want %s", sig, tc.sig)
			}
		})
	}
}

// The documented intermediate values of the get-vanilla case.
func TestGetVanillaStringToSign(t *testing.T) {
	creq := "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + emptySHA256
	got := stringToSign(suiteDate, "20150830/us-east-1/service/aws4_request", creq)
	want := "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
	if got != want {
		t.Fatalf("string to sign:\n%s\nwant:\n%s", got, want)
	}
}

func TestCanonicalURI(t *testing.T) {
	for _, tc := range []struct {
		wire      string
		normalize bool
		want      string
	}{
		{"", true, "/"},
		{"/", true, "/"},
		{"/example%20space/", true, "/example%2520space/"}, // encoded twice
		{"/%E1%88%B4", true, "/%25E1%2588%25B4"},
		{"/a%2Fb", true, "/a%252Fb"},
		{"/a+b/!$&'()*,;=:@", true, "/a%2Bb/%21%24%26%27%28%29%2A%2C%3B%3D%3A%40"},
		{"//example//", true, "/example/"},
		{"//example//", false, "//example//"},
		{"/a/b/../c/./d", true, "/a/c/d"},
		{"/a/b/..", true, "/a"},
		{"/..", true, "/"},
		{"/-._~AZaz09", true, "/-._~AZaz09"},
	} {
		if got := canonicalURI(tc.wire, tc.normalize); got != tc.want {
			t.Errorf("canonicalURI(%q, %v) = %q, want %q", tc.wire, tc.normalize, got, tc.want)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	for _, tc := range []struct {
		raw         string
		plusIsSpace bool
		skip        string
		want        string
	}{
		{"", true, "", ""},
		{"b=2&a=1", true, "", "a=1&b=2"},
		{"a=2&a=1&a=10", true, "", "a=1&a=10&a=2"},
		{"a", true, "", "a="},
		{"a=&b", true, "", "a=&b="},
		{"&&a=1&", true, "", "a=1"},
		{"q=hello%20world", true, "", "q=hello%20world"},
		{"q=hello+world", true, "", "q=hello%20world"},
		{"q=hello+world", false, "", "q=hello%2Bworld"},
		{"q=a%2Bb", true, "", "q=a%2Bb"},
		{"k=%7e%2d%5F", true, "", "k=~-_"},                         // needlessly encoded unreserved characters
		{"k=:@/?*!'()", true, "", "k=%3A%40%2F%3F%2A%21%27%28%29"}, // reserved characters sent bare
		{"%E1%88%B4=bar", true, "", "%E1%88%B4=bar"},
		{"ሴ=bar", true, "", "%E1%88%B4=bar"},
		{"bad=%zz", true, "", "bad=%25zz"}, // a malformed escape is taken literally
		{"a=1&X-Amz-Signature=abc&b=2", true, "X-Amz-Signature", "a=1&b=2"},
		{"Param-3=Value3&Param=Value2&%E1%88%B4=Value1", true, "", "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"},
	} {
		if got := canonicalQuery(tc.raw, tc.plusIsSpace, tc.skip); got != tc.want {
			t.Errorf("canonicalQuery(%q, %v, %q) = %q, want %q", tc.raw, tc.plusIsSpace, tc.skip, got, tc.want)
		}
	}
}

func TestCanonicalValue(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"  a  ":           "a",
		"\ta b\t":         "a b",
		"a   b    c":      "a b c",
		`"a   b   c"`:     `"a b c"`,
		"already trimmed": "already trimmed",
	} {
		if got := canonicalValue(in); got != want {
			t.Errorf("canonicalValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// wireSafe reports whether a suite path and query can be sent as they are
// in an HTTP request line and mean the same after the server's second
// encoding: no character in them needs encoding.
func wireSafe(tc suiteCase) bool {
	for _, c := range []byte(tc.path + tc.query) {
		if !unreserved(c) && !strings.ContainsRune("/=&", rune(c)) {
			return false
		}
	}
	return true
}

// sendRaw writes a raw HTTP/1.1 request to a recorder and returns what the
// server saw.
func sendRaw(t *testing.T, rec *recorder, raw string) captured {
	t.Helper()
	c, err := net.Dial("tcp", rec.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("server answered %s to:\n%s", resp.Status, raw)
	}
	return rec.next(t)
}

// TestVerifySuiteOverTheWire sends the suite's requests over a real socket,
// with the suite's expected signatures, and verifies what the server read.
func TestVerifySuiteOverTheWire(t *testing.T) {
	rec := newRecorder(t)
	secrets := staticKeys(suiteKey, suiteSecret)
	for _, tc := range suite {
		if !wireSafe(tc) {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			_, names := suiteRequest(tc)
			target := tc.path
			if tc.query != "" {
				target += "?" + tc.query
			}
			var b strings.Builder
			fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nX-Amz-Date: %s\r\n", tc.method, target, suiteHost, suiteDate)
			for _, h := range tc.headers {
				fmt.Fprintf(&b, "%s:%s\r\n", h[0], h[1])
			}
			if tc.body != "" {
				fmt.Fprintf(&b, "X-Amz-Content-Sha256: %s\r\n", hashHex([]byte(tc.body)))
			}
			if tc.token != "" {
				fmt.Fprintf(&b, "X-Amz-Security-Token: %s\r\n", tc.token)
			}
			fmt.Fprintf(&b, "Authorization: AWS4-HMAC-SHA256 Credential=%s/20150830/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s\r\n\r\n%s",
				suiteKey, suiteRegion, suiteService, strings.Join(names, ";"), tc.sig, tc.body)
			got := sendRaw(t, rec, b.String())
			if _, err := Verify(got.r, got.body, suiteTime, secrets); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}

	// get-header-value-multiline: an obsolete folded header; Go's server
	// unfolds it into the single-space form the suite signs.
	t.Run("get-header-value-multiline", func(t *testing.T) {
		raw := "GET / HTTP/1.1\r\nHost: example.amazonaws.com\r\nConnection: close\r\nX-Amz-Date: 20150830T123600Z\r\n" +
			"My-Header1:value1\r\n  value2\r\n     value3\r\n" +
			"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd\r\n\r\n"
		got := sendRaw(t, rec, raw)
		if _, err := Verify(got.r, got.body, suiteTime, secrets); err != nil {
			t.Fatalf("Verify: %v (My-Header1 = %q)", err, got.r.Header.Values("My-Header1"))
		}
	})

	// The suite's presigned form of get-vanilla.
	t.Run("get-vanilla-presigned", func(t *testing.T) {
		raw := "GET /?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host" +
			"&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d HTTP/1.1\r\nHost: example.amazonaws.com\r\nConnection: close\r\n\r\n"
		got := sendRaw(t, rec, raw)
		if _, err := Verify(got.r, got.body, suiteTime.Add(59*time.Minute), secrets); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		_, err := Verify(got.r, got.body, suiteTime.Add(61*time.Minute), secrets)
		wantErr(t, err, ReasonInvalidSignature, "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T133700Z - 3600 sec.)")
	})
}
