// Package registry holds Berth's registry scenarios: the OCI distribution
// API's four conformance workflows over raw HTTP, go-containerregistry's
// crane as a client, the ECR API through the Go SDK and both AWS CLIs, a
// real docker push and pull, and failure cases (a crash mid-push among
// them).
package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/berthtest"
)

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func host(s *berthtest.Server) string { return strings.TrimPrefix(s.Endpoint, "http://") }

func ecrClient(s *berthtest.Server) *ecr.Client { return ecr.NewFromConfig(s.AWSConfig()) }

// password gets a registry password the way `aws ecr get-login-password` does.
func password(t testing.TB, s *berthtest.Server) string {
	t.Helper()
	out, err := ecrClient(s).GetAuthorizationToken(ctx(t), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		t.Fatal(err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user != "AWS" {
		t.Fatalf("token %q is not AWS:<password>", raw)
	}
	return pass
}

func createRepo(t testing.TB, s *berthtest.Server, name string) {
	t.Helper()
	if _, err := ecrClient(s).CreateRepository(ctx(t), &ecr.CreateRepositoryInput{RepositoryName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if err == nil {
		t.Fatalf("want %s, got success", code)
	}
	if !errorAs(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

// client is a raw OCI distribution client.
type client struct {
	t    testing.TB
	base string
	pass string
}

func newClient(t testing.TB, s *berthtest.Server) *client {
	return &client{t: t, base: s.Endpoint, pass: password(t, s)}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) errCode() string {
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	json.Unmarshal(r.body, &e)
	if len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

func (c *client) do(method, path string, body []byte, hdr map[string]string) resp {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := path
	if !strings.HasPrefix(u, "http") {
		u = c.base + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.pass != "" {
		req.SetBasicAuth("AWS", c.pass)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// pushBlob uploads a blob monolithically (POST then PUT).
func (c *client) pushBlob(repo string, b []byte) string {
	c.t.Helper()
	r := c.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	if r.status != 202 {
		c.t.Fatalf("start upload: %d %s", r.status, r.body)
	}
	d := digestOf(b)
	loc := r.header.Get("Location")
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	r = c.do("PUT", loc+sep+"digest="+d, b, map[string]string{"Content-Type": "application/octet-stream"})
	if r.status != 201 {
		c.t.Fatalf("finish upload: %d %s", r.status, r.body)
	}
	return d
}

// image makes and pushes a one-layer OCI image; it returns the manifest.
func (c *client) pushImage(repo, tag string, layerSize int) (manifest []byte, digest string) {
	c.t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := randBytes(layerSize)
	cd, ld := c.pushBlob(repo, cfg), c.pushBlob(repo, layer)
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": len(layer)}},
	}
	manifest, _ = json.Marshal(m)
	r := c.do("PUT", "/v2/"+repo+"/manifests/"+tag, manifest, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if r.status != 201 {
		c.t.Fatalf("put manifest: %d %s", r.status, r.body)
	}
	return manifest, digestOf(manifest)
}
