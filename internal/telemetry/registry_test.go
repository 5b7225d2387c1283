package telemetry

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestRegistryRoutes(t *testing.T) {
	for p, want := range map[string]string{
		"/v2/":                                   "base",
		"/v2":                                    "base",
		"/v2/_catalog":                           "catalog",
		"/v2/team/app/tags/list":                 "tags",
		"/v2/app/manifests/latest":               "manifest",
		"/v2/app/blobs/sha256:abc":               "blob",
		"/v2/app/blobs/uploads/":                 "upload",
		"/v2/team/app/blobs/uploads/0f3c-uuid":   "upload",
		"/v2/app/referrers/sha256:abc":           "referrers",
		"/v2/app/something":                      "other",
		"/v2/blobs/manifests/blobs/uploads/uuid": "upload",
	} {
		if got := registryRoute(p); got != want {
			t.Errorf("registryRoute(%q) = %q, want %q", p, got, want)
		}
	}
	if methodLabel("BREW") != "other" || methodLabel("PATCH") != "PATCH" {
		t.Error("methodLabel does not bound the method")
	}
}

// TestRegistryTraffic drives the middleware through a real HTTP server: an
// upload body is counted in, a blob download (served from a file, so the
// server may use sendfile through ReadFrom) is counted out, statuses land
// in the code label.
func TestRegistryTraffic(t *testing.T) {
	blob := bytes.Repeat([]byte("berth"), 50_000) // 250,000 bytes
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	var uploaded int
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch registryRoute(r.URL.Path) + " " + r.Method {
		case "upload PATCH":
			b, _ := io.ReadAll(r.Body)
			uploaded += len(b)
			w.WriteHeader(http.StatusAccepted)
		case "blob GET":
			f, err := os.Open(path)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			w.Header().Set("Content-Length", "250000")
			io.Copy(w, f) // ReadFrom: sendfile
		case "blob HEAD":
			w.Header().Set("Content-Length", "250000")
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errors":[{"code":"NAME_UNKNOWN"}]}`)
		}
	})
	m := New(Options{})
	srv := httptest.NewServer(m.RegistryHandler(inner))
	defer srv.Close()
	do := func(method, p string, body []byte) int {
		req, _ := http.NewRequest(method, srv.URL+p, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if method == "GET" && resp.StatusCode == 200 && n != int64(len(blob)) {
			t.Fatalf("downloaded %d bytes, want %d", n, len(blob))
		}
		return resp.StatusCode
	}
	do("PATCH", "/v2/app/blobs/uploads/u1", blob[:100_000])
	do("PATCH", "/v2/app/blobs/uploads/u1", blob[100_000:])
	do("GET", "/v2/app/blobs/sha256:abc", nil)
	do("HEAD", "/v2/app/blobs/sha256:abc", nil)
	do("GET", "/v2/nope/manifests/latest", nil)
	if uploaded != len(blob) {
		t.Fatalf("the handler read %d bytes, want %d", uploaded, len(blob))
	}

	mfs := scrape(t, m.Handler())
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"method": "PATCH", "route": "upload", "code": "202"}, 2},
		{map[string]string{"method": "GET", "route": "blob", "code": "200"}, 1},
		{map[string]string{"method": "HEAD", "route": "blob", "code": "200"}, 1},
		{map[string]string{"method": "GET", "route": "manifest", "code": "404"}, 1},
	} {
		if v := find(mfs, "berth_registry_requests_total", c.labels).GetCounter().GetValue(); v != c.want {
			t.Errorf("berth_registry_requests_total%v = %v, want %v", c.labels, v, c.want)
		}
	}
	if v := find(mfs, "berth_registry_blob_received_bytes_total", nil).GetCounter().GetValue(); v != float64(len(blob)) {
		t.Errorf("blob bytes received %v, want %d", v, len(blob))
	}
	if v := find(mfs, "berth_registry_blob_sent_bytes_total", nil).GetCounter().GetValue(); v != float64(len(blob)) {
		t.Errorf("blob bytes sent %v, want %d (HEAD and error bodies are not blob bytes)", v, len(blob))
	}
}
