package httpfwd

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzReadResponse: no backend answer panics the response reader, a parsed response's framing is
// consistent, and reading its body stops at the framing's end.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n2\r\nok\r\n0\r\nX: y\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc",
	} {
		f.Add(s, false)
	}
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		uc := &upConn{br: bufio.NewReaderSize(strings.NewReader(raw), 4096)}
		req := &http.Request{Method: http.MethodGet}
		if head {
			req.Method = http.MethodHead
		}
		resp, err := readResponse(uc, req)
		if err != nil {
			return
		}
		if resp.StatusCode < 100 || resp.StatusCode > 999 || (resp.StatusCode/100 == 1 && resp.StatusCode != 101) {
			t.Fatalf("status %d", resp.StatusCode)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return
		}
		if resp.ContentLength >= 0 && !head && int64(len(b)) != resp.ContentLength {
			t.Fatalf("Content-Length %d, body %d bytes", resp.ContentLength, len(b))
		}
		if head && len(b) != 0 {
			t.Fatalf("body of %d bytes for HEAD", len(b))
		}
	})
}
