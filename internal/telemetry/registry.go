package telemetry

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// RegistryHandler wraps the registry's /v2/ handler: it counts requests by
// method, route and status, and the blob bytes received (upload bodies)
// and sent (blob downloads). The wrapped ResponseWriter keeps sendfile
// (io.ReaderFrom) and streaming (http.Flusher) working.
func (m *Metrics) RegistryHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := registryRoute(r.URL.Path)
		method := methodLabel(r.Method)
		rw := &countingWriter{ResponseWriter: w}
		var body *countingBody
		if route == "upload" && r.Body != nil {
			body = &countingBody{ReadCloser: r.Body}
			r.Body = body
		}
		h.ServeHTTP(rw, r)
		status := rw.status
		if status == 0 {
			status = http.StatusOK
		}
		m.registryRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
		if body != nil {
			m.registryBlobIn.Add(float64(body.n.Load()))
		}
		if route == "blob" && r.Method == http.MethodGet && status/100 == 2 {
			m.registryBlobOut.Add(float64(rw.n))
		}
	})
}

// registryRoute classifies a /v2/ path by the distribution API's routes:
// base, catalog, tags, manifest, blob, upload (starting or continuing a
// blob upload), referrers, or other.
func registryRoute(p string) string {
	rest := strings.Trim(strings.TrimPrefix(p, "/v2"), "/")
	switch {
	case rest == "":
		return "base"
	case rest == "_catalog":
		return "catalog"
	case strings.HasSuffix(rest, "/tags/list"):
		return "tags"
	case strings.Contains(rest, "/blobs/uploads"):
		return "upload"
	case strings.Contains(rest, "/manifests/"):
		return "manifest"
	case strings.Contains(rest, "/blobs/"):
		return "blob"
	case strings.Contains(rest, "/referrers/"):
		return "referrers"
	}
	return "other"
}

// methodLabel bounds the method label to the methods HTTP defines.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// countingWriter records the status and counts the body bytes written.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps the server's sendfile path for blob downloads.
func (w *countingWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.n += n
	return n, err
}

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the request body bytes read.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
