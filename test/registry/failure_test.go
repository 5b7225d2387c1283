package registry

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthdev/berth/internal/berthtest"
)

// TestWrongDigestAndTruncatedUploadLeaveNothing: an upload whose bytes do
// not match the digest named at the end, and one cut short, never become
// blobs.
func TestWrongDigestAndTruncatedUploadLeaveNothing(t *testing.T) {
	s := berthtest.Start(t, nil)
	createRepo(t, s, "fail/x")
	c := newClient(t, s)
	b := randBytes(5000)
	d := digestOf(b)

	// Wrong digest: the content is b with one byte changed.
	bad := bytes.Clone(b)
	bad[100] ^= 1
	r := c.do("POST", "/v2/fail/x/blobs/uploads/?digest="+d, bad, nil)
	if r.status != 400 || r.errCode() != "DIGEST_INVALID" {
		t.Fatalf("wrong digest: %d %s", r.status, r.body)
	}
	if r := c.do("HEAD", "/v2/fail/x/blobs/"+d, nil, nil); r.status != 404 {
		t.Fatalf("a mismatched upload became a blob: %d", r.status)
	}

	// Truncated: the client says 5000 bytes and sends 3000, then closes.
	r = c.do("POST", "/v2/fail/x/blobs/uploads/", nil, nil)
	loc := r.header.Get("Location")
	req, _ := http.NewRequest("PATCH", s.Endpoint+loc, bytes.NewReader(b[:3000]))
	req.ContentLength = 5000
	req.SetBasicAuth("AWS", c.pass)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
	// Finishing with the full digest and no more bytes fails...
	r = c.do("PUT", loc+"?digest="+d, nil, nil)
	if r.status == 201 {
		t.Fatalf("a truncated upload was accepted")
	}
	if r := c.do("HEAD", "/v2/fail/x/blobs/"+d, nil, nil); r.status != 404 {
		t.Fatalf("a truncated upload became a blob: %d", r.status)
	}
	// ... and the blob pushes fine afterwards.
	c.pushBlob("fail/x", b)
	if r := c.do("GET", "/v2/fail/x/blobs/"+d, nil, nil); r.status != 200 || digestOf(r.body) != d {
		t.Fatalf("blob after retry: %d", r.status)
	}
	// The only file in the blob store is the committed blob.
	filepath.Walk(filepath.Join(s.DataDir, "registry", "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Name() != d[len("sha256:"):] {
			t.Errorf("unexpected file in the blob store: %s", p)
		}
		return nil
	})
}

// TestCrashMidPushLeavesNoBlob kills Berth (SIGKILL) in the middle of a
// chunked push, restarts it on the same data directory and checks that
// the half-pushed blob is not visible, the upload can be resumed from what
// reached the disk, and the push completes.
func TestCrashMidPushLeavesNoBlob(t *testing.T) {
	dir := t.TempDir()
	p := berthtest.StartProcess(t, "server", dir, nil)
	createRepo(t, p.Server, "crash/x")
	c := newClient(t, p.Server)
	b := randBytes(1 << 20)
	d := digestOf(b)
	r := c.do("POST", "/v2/crash/x/blobs/uploads/", nil, nil)
	loc := r.header.Get("Location")
	if r := c.do("PATCH", loc, b[:400000], map[string]string{"Content-Range": "0-399999"}); r.status != 202 {
		t.Fatalf("chunk: %d %s", r.status, r.body)
	}
	p.Kill9()

	// The same data directory, a new address; the token stays valid (its
	// key is in the store).
	p2 := berthtest.StartProcess(t, "server", dir, nil)
	c.base = p2.Endpoint
	if r := c.do("HEAD", "/v2/crash/x/blobs/"+d, nil, nil); r.status != 404 {
		t.Fatalf("half-pushed blob visible after a crash: %d", r.status)
	}
	r = c.do("GET", loc, nil, nil)
	if r.status != 204 || r.header.Get("Range") != "0-399999" {
		t.Fatalf("upload status after restart: %d %v %s", r.status, r.header, r.body)
	}
	if r := c.do("PUT", loc+"?digest="+d, b[400000:], map[string]string{"Content-Range": fmt.Sprintf("400000-%d", len(b)-1)}); r.status != 201 {
		t.Fatalf("resume after restart: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v2/crash/x/blobs/"+d, nil, nil); r.status != 200 || digestOf(r.body) != d {
		t.Fatalf("blob after resume: %d", r.status)
	}
}
