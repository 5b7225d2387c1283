package registry

import (
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/berthdev/berth/internal/berthtest"
)

// TestCranePushPullCopy drives the registry with go-containerregistry, a
// second, independent client: push, pull, digest round trip, tags,
// catalog, a cross-repository copy (blob mounts) and a delete.
func TestCranePushPullCopy(t *testing.T) {
	s := berthtest.Start(t, nil)
	createRepo(t, s, "crane/app")
	createRepo(t, s, "crane/copy")
	opts := []crane.Option{crane.Insecure, crane.WithAuth(&authn.Basic{Username: "AWS", Password: password(t, s)})}

	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref := fmt.Sprintf("%s/crane/app:v1", host(s))
	if err := crane.Push(img, ref, opts...); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	got, err := crane.Digest(ref, opts...)
	if err != nil || got != want.String() {
		t.Fatalf("digest %s %v, want %s", got, err, want)
	}
	pulled, err := crane.Pull(ref, opts...)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := pulled.Layers()
	for _, l := range layers {
		rc, err := l.Compressed() // verifies the digest while reading
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readAll(rc); err != nil {
			t.Fatalf("layer: %v", err)
		}
	}
	if err := crane.Copy(ref, host(s)+"/crane/copy:v1", opts...); err != nil {
		t.Fatal(err)
	}
	if err := crane.Tag(ref, "v2", opts...); err != nil {
		t.Fatal(err)
	}
	tags, err := crane.ListTags(host(s)+"/crane/app", opts...)
	if err != nil || fmt.Sprint(tags) != "[v1 v2]" {
		t.Fatalf("tags %v %v", tags, err)
	}
	cat, err := crane.Catalog(host(s), opts...)
	if err != nil || fmt.Sprint(cat) != "[crane/app crane/copy]" {
		t.Fatalf("catalog %v %v", cat, err)
	}
	if err := crane.Delete(host(s)+"/crane/app@"+want.String(), opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := crane.Digest(ref, opts...); err == nil {
		t.Fatal("deleted manifest still resolves")
	}
	// The copy is untouched.
	if d, err := crane.Digest(host(s)+"/crane/copy:v1", opts...); err != nil || d != want.String() {
		t.Fatalf("copy: %s %v", d, err)
	}
}
