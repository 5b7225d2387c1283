package registry

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/berthdev/berth/internal/berthtest"
)

// needDocker skips unless the Docker daemon answers (fails instead with
// BERTH_REQUIRE_DOCKER=1). It returns a docker command runner using a
// private client config directory.
func needDocker(t *testing.T) func(stdin string, args ...string) (string, error) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exec.CommandContext(c, "docker", "version", "--format", "{{.Server.Version}}").Run(); err != nil {
		if os.Getenv("BERTH_REQUIRE_DOCKER") == "1" {
			t.Fatalf("the Docker daemon is not answering: %v", err)
		}
		t.Skipf("the Docker daemon is not answering: %v", err)
	}
	cfgDir := t.TempDir()
	return func(stdin string, args ...string) (string, error) {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(c, "docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfgDir, "DOCKER_BUILDKIT=0")
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
}

// buildImage builds a FROM-scratch image holding a static Go binary that
// prints variant, tagged ref.
func buildImage(t *testing.T, docker func(string, ...string) (string, error), ref, variant string) {
	t.Helper()
	dir := t.TempDir()
	src, _ := filepath.Abs("testdata/hello")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.variant="+variant, "-o", filepath.Join(dir, "hello"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY hello /hello\nENTRYPOINT [\"/hello\"]\n"), 0o644)
	if out, err := docker("", "build", "-q", "-t", ref, dir); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { docker("", "rmi", "-f", ref) })
}

// TestDockerLoginPushPullRun is the user story: create a
// repository, docker login with get-login-password, docker push, docker
// pull after removing the local copy, and run the pulled image.
func TestDockerLoginPushPullRun(t *testing.T) {
	docker := needDocker(t)
	s := berthtest.Start(t, nil)
	cl := ecrClient(s)
	repo, err := cl.CreateRepository(ctx(t), &ecr.CreateRepositoryInput{RepositoryName: aws.String("docker/hello")})
	if err != nil {
		t.Fatal(err)
	}
	uri := aws.ToString(repo.Repository.RepositoryUri)
	if uri != host(s)+"/docker/hello" {
		t.Fatalf("repositoryUri %q", uri)
	}
	if out, err := docker(password(t, s), "login", "-u", "AWS", "--password-stdin", host(s)); err != nil || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %v\n%s", err, out)
	}
	buildImage(t, docker, uri+":v1", "one")
	if out, err := docker("", "push", uri+":v1"); err != nil {
		t.Fatalf("docker push: %v\n%s", err, out)
	}
	imgs, err := cl.DescribeImages(ctx(t), &ecr.DescribeImagesInput{RepositoryName: aws.String("docker/hello")})
	if err != nil || len(imgs.ImageDetails) != 1 {
		t.Fatalf("describe images: %+v %v", imgs, err)
	}
	d := imgs.ImageDetails[0]
	if d.ImageTags[0] != "v1" || aws.ToInt64(d.ImageSizeInBytes) <= 0 || d.ImagePushedAt == nil ||
		aws.ToString(d.ImageManifestMediaType) != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Fatalf("image detail: %+v", d)
	}
	docker("", "rmi", "-f", uri+":v1")
	if out, err := docker("", "pull", uri+":v1"); err != nil {
		t.Fatalf("docker pull: %v\n%s", err, out)
	}
	out, err := docker("", "run", "--rm", uri+":v1")
	if err != nil || !strings.Contains(out, "hello from berth one") {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	imgs, _ = cl.DescribeImages(ctx(t), &ecr.DescribeImagesInput{RepositoryName: aws.String("docker/hello")})
	if imgs.ImageDetails[0].LastRecordedPullTime == nil {
		t.Fatalf("no last pull time after a pull")
	}
	// Pull by digest too.
	if out, err := docker("", "pull", uri+"@"+aws.ToString(d.ImageDigest)); err != nil {
		t.Fatalf("pull by digest: %v\n%s", err, out)
	}
	t.Cleanup(func() { docker("", "rmi", "-f", uri+"@"+aws.ToString(d.ImageDigest)) })
}

// TestDockerPushToImmutableTagRefused: re-pushing a different image to an
// IMMUTABLE repository's tag fails, and the tag keeps its image.
func TestDockerPushToImmutableTagRefused(t *testing.T) {
	docker := needDocker(t)
	s := berthtest.Start(t, nil)
	cl := ecrClient(s)
	if _, err := cl.CreateRepository(ctx(t), &ecr.CreateRepositoryInput{RepositoryName: aws.String("docker/fixed"), ImageTagMutability: types.ImageTagMutabilityImmutable}); err != nil {
		t.Fatal(err)
	}
	uri := host(s) + "/docker/fixed"
	if out, err := docker(password(t, s), "login", "-u", "AWS", "--password-stdin", host(s)); err != nil {
		t.Fatalf("docker login: %v\n%s", err, out)
	}
	buildImage(t, docker, uri+":v1", "first")
	if out, err := docker("", "push", uri+":v1"); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	before, _ := cl.DescribeImages(ctx(t), &ecr.DescribeImagesInput{RepositoryName: aws.String("docker/fixed")})
	buildImage(t, docker, uri+":v1", "second")
	out, err := docker("", "push", uri+":v1")
	if err == nil || !strings.Contains(out, "immutable") {
		t.Fatalf("re-push to an immutable tag: err %v\n%s", err, out)
	}
	after, _ := cl.DescribeImages(ctx(t), &ecr.DescribeImagesInput{RepositoryName: aws.String("docker/fixed"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if aws.ToString(after.ImageDetails[0].ImageDigest) != aws.ToString(before.ImageDetails[0].ImageDigest) {
		t.Fatal("the immutable tag moved")
	}
}

// TestDockerPushTagMutabilityExclusions: in an IMMUTABLE_WITH_EXCLUSION
// repository whose filter is "latest", docker push may move latest but not
// v1.
func TestDockerPushTagMutabilityExclusions(t *testing.T) {
	docker := needDocker(t)
	s := berthtest.Start(t, nil)
	cl := ecrClient(s)
	if _, err := cl.CreateRepository(ctx(t), &ecr.CreateRepositoryInput{RepositoryName: aws.String("docker/excl"),
		ImageTagMutability:                 types.ImageTagMutabilityImmutableWithExclusion,
		ImageTagMutabilityExclusionFilters: []types.ImageTagMutabilityExclusionFilter{{Filter: aws.String("lat*"), FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard}}}); err != nil {
		t.Fatal(err)
	}
	uri := host(s) + "/docker/excl"
	if out, err := docker(password(t, s), "login", "-u", "AWS", "--password-stdin", host(s)); err != nil {
		t.Fatalf("docker login: %v\n%s", err, out)
	}
	digestOf := func(tag string) string {
		d, err := cl.DescribeImages(ctx(t), &ecr.DescribeImagesInput{RepositoryName: aws.String("docker/excl"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String(tag)}}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(d.ImageDetails[0].ImageDigest)
	}
	for _, tag := range []string{"v1", "latest"} {
		buildImage(t, docker, uri+":"+tag, "first")
		if out, err := docker("", "push", uri+":"+tag); err != nil {
			t.Fatalf("push %s: %v\n%s", tag, err, out)
		}
	}
	v1, latest := digestOf("v1"), digestOf("latest")
	buildImage(t, docker, uri+":v1", "second")
	if out, err := docker("", "push", uri+":v1"); err == nil || !strings.Contains(out, "cannot be overwritten") {
		t.Fatalf("re-push to the immutable tag v1: err %v\n%s", err, out)
	}
	buildImage(t, docker, uri+":latest", "second")
	if out, err := docker("", "push", uri+":latest"); err != nil {
		t.Fatalf("re-push to the excluded tag latest: %v\n%s", err, out)
	}
	if digestOf("v1") != v1 || digestOf("latest") == latest {
		t.Fatalf("v1 %s -> %s, latest %s -> %s", v1, digestOf("v1"), latest, digestOf("latest"))
	}
}
