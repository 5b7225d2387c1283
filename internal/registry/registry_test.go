package registry

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/store"
)

var (
	sharedStore store.Store
	storeOnce   sync.Once
	storeErr    error
	storeDir    string
)

// testRegistry returns a registry on a fresh blob directory and a shared
// embedded etcd (each test uses its own repository names), with a clock
// the test moves.
func testRegistry(t *testing.T) (*Registry, *fakeClock) {
	t.Helper()
	storeOnce.Do(func() {
		storeDir, _ = os.MkdirTemp("", "berth-registry-test")
		sharedStore, storeErr = store.Open(context.Background(), store.Config{DataDir: storeDir + "/etcd"})
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	blobs, err := NewFSBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := New(Config{Store: sharedStore, Blobs: blobs, Account: "000000000000", Now: clk.Now, GCGrace: time.Hour})
	return r, clk
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedStore != nil {
		sharedStore.Close()
		os.RemoveAll(storeDir)
	}
	os.Exit(code)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func bg() context.Context { return context.Background() }

func mustRepo(t *testing.T, r *Registry, name string) {
	t.Helper()
	// A previous run of the shared store may hold it: start clean.
	r.DeleteRepository(bg(), name, true)
	if _, err := r.CreateRepository(bg(), Repository{Name: name}); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, r *Registry, repo string, b []byte) Digest {
	t.Helper()
	d := DigestOf(b)
	if _, err := r.PutBlob(bg(), repo, d, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return d
}

func manifestFor(cfg, layer Digest) []byte {
	return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		string(cfg) + `","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + string(layer) + `","size":3}]}`)
}

func TestUploadVerifiesDigestAndResumes(t *testing.T) {
	r, _ := testRegistry(t)
	mustRepo(t, r, "unit/up")
	b := []byte("hello, registry")
	id, err := r.StartUpload(bg(), "unit/up")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AppendUpload(bg(), "unit/up", id, 0, bytes.NewReader(b[:5])); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AppendUpload(bg(), "unit/up", id, 3, bytes.NewReader(b[5:])); errs.ReasonOf(err) != ReasonRangeInvalid {
		t.Fatalf("chunk at a wrong offset: %v", err)
	}
	// Simulate a restart: the in-memory hash state is gone.
	r.blobs.(*FSBlobs).forget(id)
	if _, err := r.AppendUpload(bg(), "unit/up", id, 5, bytes.NewReader(b[5:])); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CompleteUpload(bg(), "unit/up", id, DigestOf([]byte("other"))); errs.ReasonOf(err) != ReasonDigestInvalid {
		t.Fatalf("wrong digest: %v", err)
	}
	if _, err := r.StatBlob(bg(), "unit/up", DigestOf(b)); errs.ReasonOf(err) != ReasonBlobUnknown {
		t.Fatalf("blob visible after a failed commit: %v", err)
	}
	d := put(t, r, "unit/up", b)
	if n, err := r.StatBlob(bg(), "unit/up", d); err != nil || n != int64(len(b)) {
		t.Fatalf("stat: %d %v", n, err)
	}
}

func TestConcurrentPushesOfTheSameBlob(t *testing.T) {
	r, _ := testRegistry(t)
	mustRepo(t, r, "unit/conc")
	b := bytes.Repeat([]byte("layer"), 100000)
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.PutBlob(bg(), "unit/conc", DigestOf(b), bytes.NewReader(b))
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	blob, err := r.OpenBlob(bg(), "unit/conc", DigestOf(b))
	if err != nil {
		t.Fatal(err)
	}
	defer blob.Close()
	var buf bytes.Buffer
	buf.ReadFrom(blob)
	if !bytes.Equal(buf.Bytes(), b) {
		t.Fatal("content differs")
	}
}

func TestCorruptBlobIsNeverServed(t *testing.T) {
	r, _ := testRegistry(t)
	mustRepo(t, r, "unit/corrupt")
	d := put(t, r, "unit/corrupt", []byte("good content"))
	// The disk goes bad after the commit; a restarted server (nothing
	// verified in memory yet) must not serve it.
	os.WriteFile(r.blobs.(*FSBlobs).blobPath(d), []byte("evil content"), 0o644)
	r.verified.Delete(d)
	h := NewHandler(r, HandlerConfig{Identities: staticIDs{}, AllowAnonymousPull: true})
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/v2/unit/corrupt/blobs/" + string(d))
	if err == nil {
		var buf bytes.Buffer
		_, err = buf.ReadFrom(res.Body)
		res.Body.Close()
		if err == nil && buf.String() == "evil content" {
			t.Fatal("corrupt content served as complete")
		}
	}
	if _, err := r.StatBlob(bg(), "unit/corrupt", d); err == nil {
		t.Fatal("corrupt blob still listed")
	}
}

type staticIDs struct{}

func (staticIDs) Identity(ak string) (iam.Identity, bool) {
	if ak == "AKIATEST" {
		return iam.Identity{AccessKey: ak, Account: "000000000000"}, true
	}
	return iam.Identity{}, false
}

func TestTokens(t *testing.T) {
	r, clk := testRegistry(t)
	tok, exp, err := r.IssueToken(bg(), "AKIATEST")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(clk.Now().Add(12 * time.Hour)) {
		t.Fatalf("expiry %v", exp)
	}
	if id, err := r.VerifyToken(bg(), staticIDs{}, tok); err != nil || id.AccessKey != "AKIATEST" {
		t.Fatalf("verify: %v %v", id, err)
	}
	for name, bad := range map[string]string{
		"tampered mac":    tok[:len(tok)-2] + "AA",
		"other key":       strings.Replace(tok, "AKIATEST", "AKIAOTHR", 1),
		"longer validity": strings.Replace(tok, ".17", ".18", 1),
		"garbage":         "nope",
	} {
		if _, err := r.VerifyToken(bg(), staticIDs{}, bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A key that is no longer in the keyring loses access.
	tok2, _, _ := r.IssueToken(bg(), "AKIAGONE")
	if _, err := r.VerifyToken(bg(), staticIDs{}, tok2); err == nil {
		t.Error("token of a removed key accepted")
	}
	clk.Advance(12*time.Hour + time.Second)
	if _, err := r.VerifyToken(bg(), staticIDs{}, tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
}

func TestGarbageCollection(t *testing.T) {
	r, clk := testRegistry(t)
	mustRepo(t, r, "unit/gc")
	cfg := put(t, r, "unit/gc", []byte("{}"))
	layer := put(t, r, "unit/gc", []byte("abc"))
	orphan := put(t, r, "unit/gc", []byte("pushed, never referenced"))
	m, err := r.PutManifest(bg(), "unit/gc", "v1", "", manifestFor(cfg, layer), PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Within the grace period nothing goes.
	st, err := r.CollectGarbage(bg())
	if err != nil || st.BlobsDeleted != 0 {
		t.Fatalf("inside grace: %+v %v", st, err)
	}
	clk.Advance(2 * time.Hour)
	st, err = r.CollectGarbage(bg())
	if err != nil || st.BlobsDeleted < 1 {
		t.Fatalf("after grace: %+v %v", st, err)
	}
	if _, err := r.StatBlob(bg(), "unit/gc", orphan); err == nil {
		t.Fatal("unreferenced blob survived")
	}
	if _, err := r.blobs.Stat(bg(), orphan); err == nil {
		t.Fatal("unreferenced file survived")
	}
	for _, d := range []Digest{cfg, layer} {
		if _, err := r.StatBlob(bg(), "unit/gc", d); err != nil {
			t.Fatalf("referenced blob collected: %v", err)
		}
	}
	// Delete the image: its blobs go after the grace period.
	if err := r.DeleteManifest(bg(), "unit/gc", m.Digest); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := r.CollectGarbage(bg()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.blobs.Stat(bg(), layer); err == nil {
		t.Fatal("blob of a deleted image survived")
	}
	// A manifest cannot reference a collected blob.
	if _, err := r.PutManifest(bg(), "unit/gc", "v2", "", manifestFor(cfg, layer), PutOptions{}); errs.ReasonOf(err) != ReasonManifestBlobUnknown {
		t.Fatalf("manifest over collected blobs: %v", err)
	}
}

// TestGCRacesWithManifestPut: a manifest put that reaches the store after
// a blob was condemned fails instead of leaving a dangling reference; one
// that reaches it before saves the blob.
func TestGCRacesWithManifestPut(t *testing.T) {
	r, clk := testRegistry(t)
	mustRepo(t, r, "unit/race")
	cfg := put(t, r, "unit/race", []byte(`{"a":1}`))
	layer := put(t, r, "unit/race", []byte("xyz"))
	clk.Advance(2 * time.Hour)
	// Condemn by hand, as step 3 of the collector does.
	if _, err := r.st.Txn(bg(), nil, store.Put(condemnedKey(layer), []byte("now"))); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutManifest(bg(), "unit/race", "v1", "", manifestFor(cfg, layer), PutOptions{}); errs.ReasonOf(err) != ReasonManifestBlobUnknown {
		t.Fatalf("put over a condemned blob: %v", err)
	}
	// A fresh upload of the same content clears the condemnation.
	put(t, r, "unit/race", []byte("xyz"))
	if _, err := r.PutManifest(bg(), "unit/race", "v1", "", manifestFor(cfg, layer), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := r.CollectGarbage(bg()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.StatBlob(bg(), "unit/race", layer); err != nil {
		t.Fatalf("referenced blob collected: %v", err)
	}
}

func TestImmutableTags(t *testing.T) {
	r, _ := testRegistry(t)
	mustRepo(t, r, "unit/imm")
	r.UpdateRepository(bg(), "unit/imm", func(rp *Repository) error { rp.TagMutability = Immutable; return nil })
	cfg := put(t, r, "unit/imm", []byte("{}"))
	l1, l2 := put(t, r, "unit/imm", []byte("1")), put(t, r, "unit/imm", []byte("2"))
	if _, err := r.PutManifest(bg(), "unit/imm", "v1", "", manifestFor(cfg, l1), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// The same manifest again is fine (docker re-push); another is not.
	if _, err := r.PutManifest(bg(), "unit/imm", "v1", "", manifestFor(cfg, l1), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutManifest(bg(), "unit/imm", "v1", "", manifestFor(cfg, l2), PutOptions{}); errs.ReasonOf(err) != ReasonTagImmutable {
		t.Fatalf("moving an immutable tag: %v", err)
	}
}

func TestDeleteRepositoryNeedsForceWhenNotEmpty(t *testing.T) {
	r, _ := testRegistry(t)
	mustRepo(t, r, "unit/del")
	cfg := put(t, r, "unit/del", []byte("{}"))
	if _, err := r.PutManifest(bg(), "unit/del", "v1", "", manifestFor(cfg, cfg), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteRepository(bg(), "unit/del", false); errs.ReasonOf(err) != ReasonRepoNotEmpty {
		t.Fatalf("delete non-empty: %v", err)
	}
	if _, err := r.DeleteRepository(bg(), "unit/del", true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Repository(bg(), "unit/del"); errs.ReasonOf(err) != ReasonNameUnknown {
		t.Fatalf("after delete: %v", err)
	}
}

// Agents' registry credentials pull and nothing else, for an hour (they
// were the root key's 12-hour token: push and delete everywhere).
func TestPullTokenIsPullOnly(t *testing.T) {
	r, clk := testRegistry(t)
	mustRepo(t, r, "unit/pull")
	layer := put(t, r, "unit/pull", []byte("layer"))
	cfg := put(t, r, "unit/pull", []byte("{}"))
	man := manifestFor(cfg, layer)
	if _, err := r.PutManifest(bg(), "unit/pull", "v1", "application/vnd.oci.image.manifest.v1+json", man, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, exp, err := r.IssuePullToken(bg(), "inst1")
	if err != nil || !exp.Equal(clk.Now().Add(PullTokenTTL)) {
		t.Fatalf("IssuePullToken: %v %v", exp, err)
	}
	srv := httptest.NewServer(NewHandler(r, HandlerConfig{Identities: staticIDs{}}))
	defer srv.Close()
	do := func(method, path, pass string) int {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.SetBasicAuth("AWS", pass)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v2/", 200},
		{"GET", "/v2/unit/pull/manifests/v1", 200},
		{"HEAD", "/v2/unit/pull/manifests/v1", 200},
		{"GET", "/v2/unit/pull/blobs/" + string(layer), 200},
		{"HEAD", "/v2/unit/pull/blobs/" + string(layer), 200},
		{"DELETE", "/v2/unit/pull/manifests/v1", 403},
		{"PUT", "/v2/unit/pull/manifests/v2", 403},
		{"POST", "/v2/unit/pull/blobs/uploads/", 403},
		{"DELETE", "/v2/unit/pull/blobs/" + string(layer), 403},
		{"GET", "/v2/_catalog", 403},
		{"GET", "/v2/unit/pull/tags/list", 403},
	} {
		if got := do(c.method, c.path, tok); got != c.want {
			t.Errorf("%s %s with a pull token: %d, want %d", c.method, c.path, got, c.want)
		}
	}
	// Change one character of the MAC that carries no padding bits (the
	// old test wrote "AA" over the last two, which were "AA" one run in
	// 256 and then changed nothing).
	i := len(tok) - 5
	tampered := tok[:i] + map[bool]string{true: "B", false: "A"}[tok[i] == 'A'] + tok[i+1:]
	if got := do("GET", "/v2/unit/pull/manifests/v1", tampered); got != 401 {
		t.Errorf("tampered pull token: %d, want 401", got)
	}
	if got := do("GET", "/v2/unit/pull/manifests/v1", strings.Replace(tok, "inst1", "inst2", 1)); got != 401 {
		t.Errorf("pull token with another subject: %d, want 401", got)
	}
	clk.Advance(PullTokenTTL + time.Second)
	if got := do("GET", "/v2/unit/pull/manifests/v1", tok); got != 401 {
		t.Errorf("expired pull token: %d, want 401", got)
	}
}

func TestCredentialsFor(t *testing.T) {
	r, _ := testRegistry(t)
	c, ok, err := r.CredentialsFor(bg(), "127.0.0.1:4566/web:1", []string{"127.0.0.1:4566"}, "inst1")
	if err != nil || !ok || c.Username != "AWS" || c.ServerAddress != "127.0.0.1:4566" {
		t.Fatalf("%+v %v %v", c, ok, err)
	}
	// A pull token, not a user key's token.
	if _, isPull, err := r.verifyPullToken(bg(), c.Password); err != nil || !isPull {
		t.Fatalf("agent credential is not a valid pull token: %v", err)
	}
	if _, ok, _ := r.CredentialsFor(bg(), "docker.io/library/nginx", []string{"127.0.0.1:4566"}, "AKIATEST"); ok {
		t.Fatal("credentials for another registry")
	}
}

func TestParseRoute(t *testing.T) {
	for path, want := range map[string]route{
		"/v2/":                                  {kind: "base"},
		"/v2/_catalog":                          {kind: "catalog"},
		"/v2/a/b/tags/list":                     {kind: "tags", name: "a/b"},
		"/v2/a/manifests/v1":                    {kind: "manifest", name: "a", arg: "v1"},
		"/v2/a/b/c/blobs/sha256:00":             {kind: "blob", name: "a/b/c", arg: "sha256:00"},
		"/v2/a/blobs/uploads/":                  {kind: "uploads", name: "a"},
		"/v2/a/blobs/uploads/abc":               {kind: "upload", name: "a", arg: "abc"},
		"/v2/x/referrers/sha256:1":              {kind: "referrers", name: "x", arg: "sha256:1"},
		"/v2/manifests/manifests/blobs/uploads": {kind: "uploads", name: "manifests/manifests"},
	} {
		got, ok := parseRoute(path)
		if !ok || got != want {
			t.Errorf("%s: got %+v", path, got)
		}
	}
}

// A manifest too large for a store record (up to MaxManifestSize) is kept
// in the blob store: it reads back byte for byte, survives collection
// while it exists and goes with its image; a larger one is refused.
func TestLargeManifestKeptInBlobs(t *testing.T) {
	r, clk := testRegistry(t)
	mustRepo(t, r, "unit/big")
	cfg := put(t, r, "unit/big", []byte("{}"))
	layer := put(t, r, "unit/big", []byte("abc"))
	big := func(n int) []byte {
		base := manifestFor(cfg, layer)
		pad := n - len(base) - len(`,"annotations":{"pad":""}`)
		return append(base[:len(base)-1], []byte(`,"annotations":{"pad":"`+strings.Repeat("x", pad)+`"}}`)...)
	}
	body := big(MaxManifestSize)
	if len(body) != MaxManifestSize {
		t.Fatalf("test manifest is %d bytes", len(body))
	}
	m, err := r.PutManifest(bg(), "unit/big", "v1", "", body, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		got, err := r.GetManifest(bg(), "unit/big", "v1", false)
		if err != nil || !bytes.Equal(got.Content, body) {
			t.Fatalf("read back: %v (%d bytes)", err, len(got.Content))
		}
	}
	check()
	clk.Advance(2 * time.Hour)
	if _, err := r.CollectGarbage(bg()); err != nil {
		t.Fatal(err)
	}
	check()
	if _, err := r.PutManifest(bg(), "unit/big", "v2", "", big(MaxManifestSize+1), PutOptions{}); errs.ReasonOf(err) != ReasonManifestTooLarge {
		t.Fatalf("over the limit: %v", err)
	}
	if err := r.DeleteManifest(bg(), "unit/big", m.Digest); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := r.CollectGarbage(bg()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.blobs.Stat(bg(), m.Digest); err == nil {
		t.Fatal("a deleted manifest's bytes survived")
	}
}

// A blob DELETE racing a manifest push that references the blob: never a
// manifest whose blob the repository cannot read. Either the delete wins
// (the push fails MANIFEST_BLOB_UNKNOWN) or the push wins (the delete is
// refused ReasonBlobInUse).
func TestDeleteBlobRacesManifestPush(t *testing.T) {
	r, _ := testRegistry(t)
	mustRepo(t, r, "unit/blobrace")
	cfg := put(t, r, "unit/blobrace", []byte("{}"))
	for i := 0; i < 30; i++ {
		layer := put(t, r, "unit/blobrace", []byte(fmt.Sprint("layer ", i)))
		var wg sync.WaitGroup
		var putErr, delErr error
		var m Manifest
		wg.Add(2)
		go func() {
			defer wg.Done()
			m, putErr = r.PutManifest(bg(), "unit/blobrace", "", "", manifestFor(cfg, layer), PutOptions{})
		}()
		go func() { defer wg.Done(); delErr = r.DeleteBlob(bg(), "unit/blobrace", layer) }()
		wg.Wait()
		switch {
		case putErr == nil && delErr == nil:
			t.Fatalf("round %d: both the push and the delete succeeded", i)
		case putErr == nil:
			if errs.ReasonOf(delErr) != ReasonBlobInUse {
				t.Fatalf("round %d: delete: %v", i, delErr)
			}
			if _, err := r.StatBlob(bg(), "unit/blobrace", layer); err != nil {
				t.Fatalf("round %d: manifest %s without its blob: %v", i, m.Digest, err)
			}
			if err := r.DeleteManifest(bg(), "unit/blobrace", m.Digest); err != nil {
				t.Fatal(err)
			}
		case errs.ReasonOf(putErr) != ReasonManifestBlobUnknown || delErr != nil:
			t.Fatalf("round %d: push %v, delete %v", i, putErr, delErr)
		}
	}
}
