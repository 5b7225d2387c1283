package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/berthtest"
)

// The four workflows of the OCI distribution-spec conformance suite
// (pull, push, content discovery, content management), written against
// the spec's wording since the suite's module cannot be fetched here.

func TestConformancePull(t *testing.T) {
	s := berthtest.Start(t, nil)
	createRepo(t, s, "conf/pull")
	c := newClient(t, s)
	manifest, md := c.pushImage("conf/pull", "v1", 4096)

	for _, ref := range []string{"v1", md} {
		r := c.do("GET", "/v2/conf/pull/manifests/"+ref, nil, map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
		if r.status != 200 || string(r.body) != string(manifest) || r.header.Get("Docker-Content-Digest") != md ||
			r.header.Get("Content-Type") != "application/vnd.oci.image.manifest.v1+json" {
			t.Fatalf("GET manifest %s: %d %v %s", ref, r.status, r.header, r.body)
		}
		r = c.do("HEAD", "/v2/conf/pull/manifests/"+ref, nil, nil)
		if r.status != 200 || r.header.Get("Content-Length") != fmt.Sprint(len(manifest)) || len(r.body) != 0 {
			t.Fatalf("HEAD manifest: %d %v", r.status, r.header)
		}
	}
	var m struct {
		Layers []struct {
			Digest string
			Size   int
		}
	}
	json.Unmarshal(manifest, &m)
	ld := m.Layers[0].Digest
	r := c.do("GET", "/v2/conf/pull/blobs/"+ld, nil, nil)
	if r.status != 200 || digestOf(r.body) != ld || r.header.Get("Docker-Content-Digest") != ld {
		t.Fatalf("GET blob: %d", r.status)
	}
	full := r.body
	r = c.do("HEAD", "/v2/conf/pull/blobs/"+ld, nil, nil)
	if r.status != 200 || r.header.Get("Content-Length") != "4096" {
		t.Fatalf("HEAD blob: %d %v", r.status, r.header)
	}
	r = c.do("GET", "/v2/conf/pull/blobs/"+ld, nil, map[string]string{"Range": "bytes=10-19"})
	if r.status != 206 || string(r.body) != string(full[10:20]) || r.header.Get("Content-Range") != "bytes 10-19/4096" {
		t.Fatalf("range GET: %d %v", r.status, r.header)
	}
	// Errors.
	if r := c.do("GET", "/v2/conf/pull/manifests/nope", nil, nil); r.status != 404 || r.errCode() != "MANIFEST_UNKNOWN" {
		t.Fatalf("unknown tag: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v2/conf/pull/blobs/"+digestOf([]byte("x")), nil, nil); r.status != 404 || r.errCode() != "BLOB_UNKNOWN" {
		t.Fatalf("unknown blob: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v2/conf/nothere/manifests/v1", nil, nil); r.status != 404 || r.errCode() != "NAME_UNKNOWN" {
		t.Fatalf("unknown repo: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v2/conf/pull/blobs/sha256:zz", nil, nil); r.status != 400 || r.errCode() != "DIGEST_INVALID" {
		t.Fatalf("bad digest: %d %s", r.status, r.body)
	}
}

func TestConformancePush(t *testing.T) {
	s := berthtest.Start(t, nil)
	createRepo(t, s, "conf/push")
	createRepo(t, s, "conf/other")
	c := newClient(t, s)

	// Monolithic in one request.
	b := randBytes(1000)
	d := digestOf(b)
	r := c.do("POST", "/v2/conf/push/blobs/uploads/?digest="+d, b, map[string]string{"Content-Type": "application/octet-stream"})
	if r.status != 201 || r.header.Get("Location") == "" || r.header.Get("Docker-Content-Digest") != d {
		t.Fatalf("single-request push: %d %s", r.status, r.body)
	}
	// Chunked, with a status check and an out-of-order chunk.
	b = randBytes(3000)
	d = digestOf(b)
	r = c.do("POST", "/v2/conf/push/blobs/uploads/", nil, nil)
	loc := r.header.Get("Location")
	r = c.do("PATCH", loc, b[:1000], map[string]string{"Content-Range": "0-999", "Content-Type": "application/octet-stream"})
	if r.status != 202 || r.header.Get("Range") != "0-999" {
		t.Fatalf("chunk 1: %d %v %s", r.status, r.header, r.body)
	}
	loc = r.header.Get("Location")
	r = c.do("PATCH", loc, b[2000:], map[string]string{"Content-Range": "2000-2999"})
	if r.status != 416 {
		t.Fatalf("out-of-order chunk: %d %s", r.status, r.body)
	}
	r = c.do("GET", loc, nil, nil)
	if r.status != 204 || r.header.Get("Range") != "0-999" {
		t.Fatalf("status: %d %v", r.status, r.header)
	}
	r = c.do("PATCH", loc, b[1000:2000], map[string]string{"Content-Range": "1000-1999"})
	if r.status != 202 || r.header.Get("Range") != "0-1999" {
		t.Fatalf("chunk 2: %d %s", r.status, r.body)
	}
	r = c.do("PUT", r.header.Get("Location")+"?digest="+d, b[2000:], map[string]string{"Content-Range": "2000-2999"})
	if r.status != 201 {
		t.Fatalf("final chunk: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v2/conf/push/blobs/"+d, nil, nil); r.status != 200 || digestOf(r.body) != d {
		t.Fatalf("chunked blob: %d", r.status)
	}
	// Cross-repository mount, and a mount that falls back to an upload.
	r = c.do("POST", "/v2/conf/other/blobs/uploads/?mount="+d+"&from=conf/push", nil, nil)
	if r.status != 201 || r.header.Get("Location") != "/v2/conf/other/blobs/"+d {
		t.Fatalf("mount: %d %v", r.status, r.header)
	}
	r = c.do("POST", "/v2/conf/other/blobs/uploads/?mount="+digestOf([]byte("nope"))+"&from=conf/push", nil, nil)
	if r.status != 202 {
		t.Fatalf("mount fallback: %d", r.status)
	}
	// Upload cancel.
	if r := c.do("DELETE", r.header.Get("Location"), nil, nil); r.status != 204 {
		t.Fatalf("cancel: %d", r.status)
	}
	// Manifests: OCI by tag and by digest, Docker schema 2, a Docker
	// manifest list and an OCI index.
	manifest, md := c.pushImage("conf/push", "v1", 100)
	if r := c.do("PUT", "/v2/conf/push/manifests/"+md, manifest, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}); r.status != 201 || r.header.Get("Docker-Content-Digest") != md {
		t.Fatalf("put by digest: %d %s", r.status, r.body)
	}
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := randBytes(50)
	cd, ld := c.pushBlob("conf/push", cfg), c.pushBlob("conf/push", layer)
	docker := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":"%s"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":"%s"}]}`, len(cfg), cd, len(layer), ld)
	if r := c.do("PUT", "/v2/conf/push/manifests/docker", []byte(docker), map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}); r.status != 201 {
		t.Fatalf("docker manifest: %d %s", r.status, r.body)
	}
	list := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":%d,"digest":"%s","platform":{"architecture":"amd64","os":"linux"}}]}`, len(docker), digestOf([]byte(docker)))
	if r := c.do("PUT", "/v2/conf/push/manifests/list", []byte(list), map[string]string{"Content-Type": "application/vnd.docker.distribution.manifest.list.v2+json"}); r.status != 201 {
		t.Fatalf("manifest list: %d %s", r.status, r.body)
	}
	index := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":%d,"digest":"%s"}]}`, len(manifest), md)
	if r := c.do("PUT", "/v2/conf/push/manifests/index", []byte(index), map[string]string{"Content-Type": "application/vnd.oci.image.index.v1+json"}); r.status != 201 {
		t.Fatalf("index: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v2/conf/push/manifests/index", nil, nil); r.header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" {
		t.Fatalf("index content type: %v", r.header)
	}
	// Failures: a manifest whose blob is missing, a wrong digest, a bad
	// manifest, a push to an unknown repository.
	if r := c.do("PUT", "/v2/conf/push/manifests/bad", []byte(missingLayer(manifest)), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}); r.status != 400 || r.errCode() != "MANIFEST_BLOB_UNKNOWN" {
		t.Fatalf("missing blob: %d %s", r.status, r.body)
	}
	if r := c.do("PUT", "/v2/conf/push/manifests/"+digestOf([]byte("other")), manifest, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}); r.status != 400 || r.errCode() != "DIGEST_INVALID" {
		t.Fatalf("manifest digest mismatch: %d %s", r.status, r.body)
	}
	if r := c.do("PUT", "/v2/conf/push/manifests/junk", []byte("{not json"), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}); r.status != 400 || r.errCode() != "MANIFEST_INVALID" {
		t.Fatalf("junk manifest: %d %s", r.status, r.body)
	}
	if r := c.do("POST", "/v2/conf/unknown/blobs/uploads/", nil, nil); r.status != 404 || r.errCode() != "NAME_UNKNOWN" {
		t.Fatalf("unknown repo: %d %s", r.status, r.body)
	}
}

// missingLayer returns manifest with its layer digest replaced by one the
// registry does not hold.
func missingLayer(manifest []byte) string {
	var m map[string]any
	json.Unmarshal(manifest, &m)
	m["layers"].([]any)[0].(map[string]any)["digest"] = digestOf([]byte("never pushed"))
	b, _ := json.Marshal(m)
	return string(b)
}

func TestConformanceContentDiscovery(t *testing.T) {
	s := berthtest.Start(t, nil)
	createRepo(t, s, "conf/disc")
	createRepo(t, s, "conf/disc2")
	createRepo(t, s, "conf/disc3")
	c := newClient(t, s)
	manifest, md := c.pushImage("conf/disc", "a", 10)
	for _, tag := range []string{"b", "c", "d"} {
		if r := c.do("PUT", "/v2/conf/disc/manifests/"+tag, manifest, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}); r.status != 201 {
			t.Fatal(r.status)
		}
	}
	var tl struct {
		Name string
		Tags []string
	}
	r := c.do("GET", "/v2/conf/disc/tags/list", nil, nil)
	json.Unmarshal(r.body, &tl)
	if r.status != 200 || tl.Name != "conf/disc" || fmt.Sprint(tl.Tags) != "[a b c d]" {
		t.Fatalf("tags: %d %s", r.status, r.body)
	}
	r = c.do("GET", "/v2/conf/disc/tags/list?n=2", nil, nil)
	json.Unmarshal(r.body, &tl)
	if fmt.Sprint(tl.Tags) != "[a b]" || !strings.Contains(r.header.Get("Link"), `last=b`) || !strings.Contains(r.header.Get("Link"), `rel="next"`) {
		t.Fatalf("page 1: %s %v", r.body, r.header)
	}
	r = c.do("GET", "/v2/conf/disc/tags/list?n=2&last=b", nil, nil)
	json.Unmarshal(r.body, &tl)
	if fmt.Sprint(tl.Tags) != "[c d]" || r.header.Get("Link") != "" {
		t.Fatalf("page 2: %s %v", r.body, r.header)
	}
	r = c.do("GET", "/v2/conf/disc/tags/list?n=0", nil, nil)
	json.Unmarshal(r.body, &tl)
	if r.status != 200 || len(tl.Tags) != 0 {
		t.Fatalf("n=0: %s", r.body)
	}
	var cat struct{ Repositories []string }
	r = c.do("GET", "/v2/_catalog?n=2", nil, nil)
	json.Unmarshal(r.body, &cat)
	if fmt.Sprint(cat.Repositories) != "[conf/disc conf/disc2]" || !strings.Contains(r.header.Get("Link"), "last=conf%2Fdisc2") {
		t.Fatalf("catalog: %s %v", r.body, r.header)
	}
	r = c.do("GET", "/v2/_catalog?n=2&last=conf/disc2", nil, nil)
	json.Unmarshal(r.body, &cat)
	if fmt.Sprint(cat.Repositories) != "[conf/disc3]" {
		t.Fatalf("catalog 2: %s", r.body)
	}
	// Referrers: two artifacts refer to the image, of two types.
	emptyCfg := c.pushBlob("conf/disc", []byte("{}"))
	var art []string
	for _, at := range []string{"application/vnd.example.sbom", "application/vnd.example.sig"} {
		a := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"%s","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d}}`, at, emptyCfg, emptyCfg, md, len(manifest))
		r := c.do("PUT", "/v2/conf/disc/manifests/"+digestOf([]byte(a)), []byte(a), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
		if r.status != 201 || r.header.Get("OCI-Subject") != md {
			t.Fatalf("artifact: %d %v %s", r.status, r.header, r.body)
		}
		art = append(art, digestOf([]byte(a)))
	}
	var idx struct {
		MediaType string
		Manifests []struct{ Digest, ArtifactType string }
	}
	r = c.do("GET", "/v2/conf/disc/referrers/"+md, nil, nil)
	json.Unmarshal(r.body, &idx)
	if r.status != 200 || r.header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 2 {
		t.Fatalf("referrers: %d %s", r.status, r.body)
	}
	r = c.do("GET", "/v2/conf/disc/referrers/"+md+"?artifactType=application/vnd.example.sig", nil, nil)
	json.Unmarshal(r.body, &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != art[1] || r.header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered referrers: %s %v", r.body, r.header)
	}
	r = c.do("GET", "/v2/conf/disc/referrers/"+digestOf([]byte("none")), nil, nil)
	json.Unmarshal(r.body, &idx)
	if r.status != 200 || len(idx.Manifests) != 0 {
		t.Fatalf("no referrers: %d %s", r.status, r.body)
	}
}

func TestConformanceContentManagement(t *testing.T) {
	s := berthtest.Start(t, nil)
	createRepo(t, s, "conf/mgmt")
	c := newClient(t, s)
	manifest, md := c.pushImage("conf/mgmt", "v1", 10)
	c.do("PUT", "/v2/conf/mgmt/manifests/v2", manifest, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	// Deleting a tag leaves the manifest and the other tag.
	if r := c.do("DELETE", "/v2/conf/mgmt/manifests/v2", nil, nil); r.status != 202 {
		t.Fatalf("delete tag: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v2/conf/mgmt/manifests/v2", nil, nil); r.status != 404 {
		t.Fatalf("deleted tag: %d", r.status)
	}
	if r := c.do("GET", "/v2/conf/mgmt/manifests/v1", nil, nil); r.status != 200 {
		t.Fatalf("other tag: %d", r.status)
	}
	// Deleting the manifest removes its tags.
	if r := c.do("DELETE", "/v2/conf/mgmt/manifests/"+md, nil, nil); r.status != 202 {
		t.Fatalf("delete manifest: %d %s", r.status, r.body)
	}
	for _, ref := range []string{md, "v1"} {
		if r := c.do("GET", "/v2/conf/mgmt/manifests/"+ref, nil, nil); r.status != 404 || r.errCode() != "MANIFEST_UNKNOWN" {
			t.Fatalf("after delete %s: %d %s", ref, r.status, r.body)
		}
	}
	if r := c.do("DELETE", "/v2/conf/mgmt/manifests/"+md, nil, nil); r.status != 404 {
		t.Fatalf("delete again: %d", r.status)
	}
	// Blobs.
	var m struct{ Layers []struct{ Digest string } }
	json.Unmarshal(manifest, &m)
	ld := m.Layers[0].Digest
	if r := c.do("DELETE", "/v2/conf/mgmt/blobs/"+ld, nil, nil); r.status != 202 {
		t.Fatalf("delete blob: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v2/conf/mgmt/blobs/"+ld, nil, nil); r.status != 404 || r.errCode() != "BLOB_UNKNOWN" {
		t.Fatalf("deleted blob: %d", r.status)
	}
	if r := c.do("DELETE", "/v2/conf/mgmt/blobs/"+ld, nil, nil); r.status != 404 {
		t.Fatalf("delete blob again: %d", r.status)
	}
}

func TestAuthChallengeAndTokens(t *testing.T) {
	s := berthtest.Start(t, nil)
	createRepo(t, s, "auth/x")
	anon := &client{t: t, base: s.Endpoint}
	for _, p := range []string{"/v2/", "/v2/auth/x/tags/list", "/v2/_catalog"} {
		r := anon.do("GET", p, nil, nil)
		if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Basic realm="`) || r.errCode() != "UNAUTHORIZED" {
			t.Fatalf("anonymous %s: %d %v %s", p, r.status, r.header, r.body)
		}
		if r.header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
			t.Fatalf("no API version header")
		}
	}
	bad := &client{t: t, base: s.Endpoint, pass: "brt1.AKIAX.99999999999.bm9wZQ"}
	if r := bad.do("GET", "/v2/", nil, nil); r.status != 401 {
		t.Fatalf("forged token: %d", r.status)
	}
	// A token signed with the right key but for another access key that
	// does not exist: tampering with the key id breaks the MAC.
	good := newClient(t, s)
	parts := strings.SplitN(good.pass, ".", 3)
	tampered := &client{t: t, base: s.Endpoint, pass: parts[0] + ".AKIAOTHER." + parts[2]}
	if r := tampered.do("GET", "/v2/", nil, nil); r.status != 401 {
		t.Fatalf("tampered token: %d", r.status)
	}
	if r := good.do("GET", "/v2/", nil, nil); r.status != 200 || string(r.body) != "{}" {
		t.Fatalf("base with token: %d %s", r.status, r.body)
	}
}
