package awsproto_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/sigv4"
)

// keyAuth is testAuth that tells known keys before the body is read.
type keyAuth struct{ testAuth }

func (keyAuth) KnownKey(ak string) bool { return ak == testAK }

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// preAuthCall serves one request straight through the front door and says
// how many body bytes it read. ak "" sends no signature.
func preAuthCall(t *testing.T, fd http.Handler, ak string, header map[string]string, body []byte) (*httptest.ResponseRecorder, int64) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if ak != "" {
		sigv4.Sign(req, body, ak, testSecret, testRegion, "monitoring", time.Now())
	}
	cr := &countingReader{r: bytes.NewReader(body)}
	req.Body = io.NopCloser(cr)
	req.ContentLength = int64(len(body))
	w := httptest.NewRecorder()
	fd.ServeHTTP(w, req)
	return w, cr.n.Load()
}

func jsonHeader(op string) map[string]string {
	return map[string]string{"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "GraniteServiceVersion20100801." + op}
}

func TestBodyReadBeforeAuthenticationIsCapped(t *testing.T) {
	f := &fakeCloudWatch{}
	svc := f.handlers().Service()
	svc.ValidationCode = "ValidationError"
	fd := awsproto.New(awsproto.Config{Auth: keyAuth{}, Region: testRegion, Services: []*awsproto.Service{svc}})
	put := `{"Namespace":"App","MetricData":[{"MetricName":"m","Value":1}]}`
	big := []byte(put + strings.Repeat(" ", 8<<20)) // JSON whitespace: a valid 8 MiB PutMetricData

	// An unknown key or no signature: the authentication error, after at
	// most PreAuthBody bytes of the 8 MiB.
	for _, c := range []struct{ ak, code string }{{"AKIDUNKNOWN", "UnrecognizedClientException"}, {"", "MissingAuthenticationTokenException"}} {
		w, read := preAuthCall(t, fd, c.ak, jsonHeader("PutMetricData"), big)
		if w.Code != 403 || !strings.Contains(w.Body.String(), c.code) {
			t.Fatalf("key %q: got %d %s", c.ak, w.Code, w.Body)
		}
		if read > awsproto.PreAuthBody+1 {
			t.Fatalf("key %q: read %d bytes before authenticating, cap %d", c.ak, read, awsproto.PreAuthBody)
		}
	}
	// A compressed body is not decompressed before authentication: garbage
	// under an unknown key is an authentication error, not a gzip one.
	h := jsonHeader("PutMetricData")
	h["Content-Encoding"] = "gzip"
	if w, _ := preAuthCall(t, fd, "AKIDUNKNOWN", h, []byte("not gzip")); w.Code != 403 || !strings.Contains(w.Body.String(), "UnrecognizedClientException") {
		t.Fatalf("gzip under an unknown key: got %d %s", w.Code, w.Body)
	}
	// A known key: PutMetricData may be large, other operations stop at
	// OrdinaryBody.
	if w, read := preAuthCall(t, fd, testAK, jsonHeader("PutMetricData"), big); w.Code != 200 || read != int64(len(big)) {
		t.Fatalf("large PutMetricData with a known key: got %d %s (read %d)", w.Code, w.Body, read)
	}
	list := []byte(`{}` + strings.Repeat(" ", 2<<20))
	w, read := preAuthCall(t, fd, testAK, jsonHeader("ListMetrics"), list)
	if w.Code != 413 || !strings.Contains(w.Body.String(), "RequestEntityTooLargeException") || read > awsproto.OrdinaryBody+1 {
		t.Fatalf("2 MiB ListMetrics: got %d %s (read %d)", w.Code, w.Body, read)
	}
	if w, _ := preAuthCall(t, fd, testAK, jsonHeader("ListMetrics"), []byte(`{}`+strings.Repeat(" ", 512<<10))); w.Code != 200 {
		t.Fatalf("512 KiB ListMetrics: got %d %s", w.Code, w.Body)
	}
}
