package registry

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/berthdev/berth/internal/berthtest"
)

// Issue 9, item 7: what the OCI conformance suite and ECR users found.

// A referrer without artifactType is listed with its config's mediaType,
// whatever that type is, and ?artifactType= finds it by that type.
func TestReferrerArtifactTypeFromConfig(t *testing.T) {
	s := berthtest.Start(t, nil)
	createRepo(t, s, "ref/cfg")
	c := newClient(t, s)
	manifest, md := c.pushImage("ref/cfg", "v1", 64)
	cfg := c.pushBlob("ref/cfg", []byte(`{"architecture":"amd64","os":"linux"}`))
	const cfgType = "application/vnd.oci.image.config.v1+json"
	a := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"%s","digest":"%s","size":37},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d}}`, cfgType, cfg, md, len(manifest))
	r := c.do("PUT", "/v2/ref/cfg/manifests/"+digestOf([]byte(a)), []byte(a), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if r.status != 201 {
		t.Fatalf("put referrer: %d %s", r.status, r.body)
	}
	var idx struct {
		Manifests []struct{ Digest, ArtifactType string }
	}
	for _, q := range []string{"", "?artifactType=" + url.QueryEscape(cfgType)} {
		r = c.do("GET", "/v2/ref/cfg/referrers/"+md+q, nil, nil)
		idx.Manifests = nil
		json.Unmarshal(r.body, &idx)
		if r.status != 200 || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != digestOf([]byte(a)) || idx.Manifests[0].ArtifactType != cfgType {
			t.Fatalf("referrers%s: %d %s", q, r.status, r.body)
		}
	}
}

// BatchDeleteImage of a manifest an index lists fails for that image with
// ECR's ImageReferencedByManifestList and leaves the index whole; once the
// index is gone the child can be deleted.
func TestBatchDeleteChildOfIndex(t *testing.T) {
	s := berthtest.Start(t, nil)
	const repo = "idx/app"
	createRepo(t, s, repo)
	c := newClient(t, s)
	child, cd := c.pushImage(repo, "child", 64)
	idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"platform":{"architecture":"amd64","os":"linux"}}]}`, cd, len(child))
	if r := c.do("PUT", "/v2/"+repo+"/manifests/multi", []byte(idx), map[string]string{"Content-Type": "application/vnd.oci.image.index.v1+json"}); r.status != 201 {
		t.Fatalf("put index: %d %s", r.status, r.body)
	}
	cl := ecrClient(s)
	out, err := cl.BatchDeleteImage(ctx(t), &ecr.BatchDeleteImageInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(cd)}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.ImageIds) != 0 || len(out.Failures) != 1 || out.Failures[0].FailureCode != types.ImageFailureCodeImageReferencedByManifestList ||
		aws.ToString(out.Failures[0].FailureReason) != "Requested image referenced by manifest list" || aws.ToString(out.Failures[0].ImageId.ImageDigest) != cd {
		t.Fatalf("BatchDeleteImage: %+v %+v", out.ImageIds, out.Failures)
	}
	// The index and its child are intact.
	if r := c.do("GET", "/v2/"+repo+"/manifests/multi", nil, map[string]string{"Accept": "application/vnd.oci.image.index.v1+json"}); r.status != 200 {
		t.Fatalf("index: %d", r.status)
	}
	if r := c.do("GET", "/v2/"+repo+"/manifests/"+cd, nil, map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}); r.status != 200 {
		t.Fatalf("child: %d", r.status)
	}
	// The OCI DELETE is refused the same way.
	if r := c.do("DELETE", "/v2/"+repo+"/manifests/"+cd, nil, nil); r.status != 405 || r.errCode() != "UNSUPPORTED" {
		t.Fatalf("OCI delete of a child: %d %s", r.status, r.body)
	}
	// Index first, then the child: both deleted.
	out, err = cl.BatchDeleteImage(ctx(t), &ecr.BatchDeleteImageInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("multi")}, {ImageDigest: aws.String(cd)}}})
	if err != nil || len(out.Failures) != 0 || len(out.ImageIds) != 2 {
		t.Fatalf("delete index then child: %v %+v %+v", err, out.ImageIds, out.Failures)
	}
}

// A blob DELETE is refused (405 UNSUPPORTED) while a manifest of the
// repository references the blob, and the blob stays readable; once the
// manifest is deleted the blob DELETE succeeds.
func TestBlobDeleteReferencedRefused(t *testing.T) {
	s := berthtest.Start(t, nil)
	const repo = "blob/inuse"
	createRepo(t, s, repo)
	c := newClient(t, s)
	man, md := c.pushImage(repo, "v1", 128)
	var m struct{ Layers []struct{ Digest string } }
	json.Unmarshal(man, &m)
	ld := m.Layers[0].Digest
	if r := c.do("DELETE", "/v2/"+repo+"/blobs/"+ld, nil, nil); r.status != 405 || r.errCode() != "UNSUPPORTED" || !strings.Contains(string(r.body), md) {
		t.Fatalf("delete referenced blob: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v2/"+repo+"/blobs/"+ld, nil, nil); r.status != 200 || digestOf(r.body) != ld {
		t.Fatalf("blob after refused delete: %d", r.status)
	}
	if r := c.do("DELETE", "/v2/"+repo+"/manifests/"+md, nil, nil); r.status != 202 {
		t.Fatalf("delete manifest: %d %s", r.status, r.body)
	}
	if r := c.do("DELETE", "/v2/"+repo+"/blobs/"+ld, nil, nil); r.status != 202 {
		t.Fatalf("delete unreferenced blob: %d %s", r.status, r.body)
	}
}

// A manifest push and a mount without `from` link a blob held by another
// repository only when the caller may read that repository: a blob of a
// repository whose policy denies the caller is not linked (the manifest
// is MANIFEST_BLOB_UNKNOWN over /v2/ and LayersNotFoundException over
// PutImage; the mount falls back to an upload session).
func TestCrossRepositoryLinkNeedsReadAccess(t *testing.T) {
	s := berthtest.Start(t, nil)
	const private, public, open = "xr/private", "xr/public", "xr/open"
	for _, r := range []string{private, public, open} {
		createRepo(t, s, r)
	}
	c := newClient(t, s)
	secret := c.pushBlob(private, randBytes(256))
	shared := c.pushBlob(open, randBytes(256))
	cfg := c.pushBlob(public, []byte(`{"os":"linux"}`))
	cl := ecrClient(s)
	deny := `{"Version":"2012-10-17","Statement":[{"Sid":"NoPull","Effect":"Deny","Principal":"*","Action":["ecr:GetDownloadUrlForLayer","ecr:BatchGetImage"]}]}`
	if _, err := cl.SetRepositoryPolicy(ctx(t), &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String(private), PolicyText: aws.String(deny)}); err != nil {
		t.Fatal(err)
	}
	manifest := func(layer string) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":14},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":256}]}`, cfg, layer))
	}
	hdr := map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
	if r := c.do("PUT", "/v2/"+public+"/manifests/steal", manifest(secret), hdr); r.status != 400 || r.errCode() != "MANIFEST_BLOB_UNKNOWN" {
		t.Fatalf("manifest linking a denied blob: %d %s", r.status, r.body)
	}
	_, err := cl.PutImage(ctx(t), &ecr.PutImageInput{RepositoryName: aws.String(public), ImageManifest: aws.String(string(manifest(secret))), ImageTag: aws.String("steal")})
	wantCode(t, err, "LayersNotFoundException")
	if r := c.do("HEAD", "/v2/"+public+"/blobs/"+secret, nil, nil); r.status != 404 {
		t.Fatalf("denied blob linked: %d", r.status)
	}
	if r := c.do("POST", "/v2/"+public+"/blobs/uploads/?mount="+secret, nil, nil); r.status != 202 {
		t.Fatalf("mount of a denied blob without from: %d %s", r.status, r.body)
	}
	if r := c.do("HEAD", "/v2/"+public+"/blobs/"+secret, nil, nil); r.status != 404 {
		t.Fatalf("denied blob mounted: %d", r.status)
	}
	// From a repository the caller may read, both work.
	if r := c.do("POST", "/v2/"+public+"/blobs/uploads/?mount="+shared, nil, nil); r.status != 201 {
		t.Fatalf("mount without from of a readable blob: %d %s", r.status, r.body)
	}
	other := c.pushBlob(open, randBytes(256))
	if r := c.do("PUT", "/v2/"+public+"/manifests/ok", manifest(other), hdr); r.status != 201 {
		t.Fatalf("manifest linking a readable blob: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v2/"+public+"/blobs/"+other, nil, nil); r.status != 200 {
		t.Fatalf("linked blob: %d", r.status)
	}
}

// Manifests up to 4 MiB are accepted and read back byte for byte (the
// spec's SHOULD); a larger one is refused with 413 and MANIFEST_INVALID.
func TestFourMegabyteManifest(t *testing.T) {
	s := berthtest.Start(t, nil)
	const repo = "big/manifest"
	createRepo(t, s, repo)
	c := newClient(t, s)
	cfg := c.pushBlob(repo, []byte(`{"os":"linux"}`))
	layer := c.pushBlob(repo, []byte("layer"))
	mk := func(n int) []byte {
		base := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":14},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":5}],"annotations":{"pad":"`, cfg, layer)
		return []byte(base + strings.Repeat("x", n-len(base)-3) + `"}}`)
	}
	hdr := map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
	body := mk(4 << 20)
	r := c.do("PUT", "/v2/"+repo+"/manifests/big", body, hdr)
	if r.status != 201 || r.header.Get("Docker-Content-Digest") != digestOf(body) {
		t.Fatalf("4 MiB manifest: %d %s", r.status, r.body)
	}
	r = c.do("GET", "/v2/"+repo+"/manifests/big", nil, map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
	if r.status != 200 || digestOf(r.body) != digestOf(body) {
		t.Fatalf("GET 4 MiB manifest: %d (%d bytes)", r.status, len(r.body))
	}
	r = c.do("PUT", "/v2/"+repo+"/manifests/bigger", mk(4<<20+1), hdr)
	if r.status != 413 || r.errCode() != "MANIFEST_INVALID" {
		t.Fatalf("over 4 MiB: %d %s", r.status, r.body)
	}
}
