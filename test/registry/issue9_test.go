package registry

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

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
