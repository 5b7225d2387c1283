package registry

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/berthdev/berth/internal/berthtest"
)

const denyPush = `{"Version":"2012-10-17","Statement":[{"Sid":"NoPush","Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}]}`

// TestRepositoryPolicyDenyPush sets a Deny on ecr:PutImage for "*": a push
// is refused over the ECR API (AccessDeniedException) and over /v2/
// (DENIED, 403), pulls still work, and deleting the policy lets pushes
// through again. Invalid policies are refused and not stored.
func TestRepositoryPolicyDenyPush(t *testing.T) {
	s := berthtest.Start(t, nil)
	cl := ecrClient(s)
	c := ctx(t)
	const repo = "pol/web"
	createRepo(t, s, repo)
	v2 := newClient(t, s)
	man, dg := v2.pushImage(repo, "v1", 512)

	// Invalid policies: refused with ECR's message, nothing stored.
	for _, bad := range []string{
		`not json`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*","Action":"ecr:PutImage"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`,
	} {
		_, err := cl.SetRepositoryPolicy(c, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String(repo), PolicyText: aws.String(bad)})
		wantCode(t, err, "InvalidParameterException")
		if !strings.Contains(err.Error(), "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'") {
			t.Fatalf("message: %v", err)
		}
	}
	_, err := cl.GetRepositoryPolicy(c, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String(repo)})
	wantCode(t, err, "RepositoryPolicyNotFoundException")

	if _, err := cl.SetRepositoryPolicy(c, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String(repo), PolicyText: aws.String(denyPush)}); err != nil {
		t.Fatal(err)
	}

	// Push over the ECR API: denied.
	_, err = cl.PutImage(c, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(string(man)), ImageTag: aws.String("v2")})
	wantCode(t, err, "AccessDeniedException")
	if !strings.Contains(err.Error(), "is not authorized to perform: ecr:PutImage on resource: arn:aws:ecr:us-east-1:000000000000:repository/pol/web with an explicit deny") {
		t.Fatalf("message: %v", err)
	}
	// Push over /v2/: layers may be uploaded (not denied), the manifest PUT is DENIED.
	v2.pushBlob(repo, randBytes(64))
	r := v2.do("PUT", "/v2/"+repo+"/manifests/v2", man, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if r.status != 403 || r.errCode() != "DENIED" {
		t.Fatalf("manifest PUT: %d %s", r.status, r.body)
	}
	var body struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(r.body, &body) != nil || len(body.Errors) != 1 || !strings.Contains(body.Errors[0].Message, "ecr:PutImage") {
		t.Fatalf("error body: %s", r.body)
	}

	// Pulls still work, over both APIs.
	if r := v2.do("GET", "/v2/"+repo+"/manifests/v1", nil, map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}); r.status != 200 || digestOf(r.body) != dg {
		t.Fatalf("pull: %d %s", r.status, r.body)
	}
	var m struct{ Layers []struct{ Digest string } }
	json.Unmarshal(man, &m)
	if r := v2.do("GET", "/v2/"+repo+"/blobs/"+m.Layers[0].Digest, nil, nil); r.status != 200 {
		t.Fatalf("blob pull: %d", r.status)
	}
	bg, err := cl.BatchGetImage(c, &ecr.BatchGetImageInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if err != nil || len(bg.Images) != 1 {
		t.Fatalf("BatchGetImage: %+v %v", bg, err)
	}
	if _, err := cl.GetDownloadUrlForLayer(c, &ecr.GetDownloadUrlForLayerInput{RepositoryName: aws.String(repo), LayerDigest: aws.String(m.Layers[0].Digest)}); err != nil {
		t.Fatal(err)
	}
	if r := v2.do("GET", "/v2/"+repo+"/tags/list", nil, nil); r.status != 200 {
		t.Fatalf("tags: %d", r.status)
	}

	// Delete the policy: pushes work again.
	if _, err := cl.DeleteRepositoryPolicy(c, &ecr.DeleteRepositoryPolicyInput{RepositoryName: aws.String(repo)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutImage(c, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(string(man)), ImageTag: aws.String("v2")}); err != nil {
		t.Fatal(err)
	}
	if r := v2.do("PUT", "/v2/"+repo+"/manifests/v3", man, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}); r.status != 201 {
		t.Fatalf("manifest PUT after delete: %d %s", r.status, r.body)
	}
}

// TestRepositoryPolicyDenyAll denies (with NotAction) every ecr: action
// except managing the policy: repository-scoped operations over both APIs
// are refused, other repositories are untouched, and the lock-out guard
// requires force for a policy that denies SetRepositoryPolicy.
func TestRepositoryPolicyDenyAll(t *testing.T) {
	s := berthtest.Start(t, nil)
	cl := ecrClient(s)
	c := ctx(t)
	createRepo(t, s, "pol/locked")
	createRepo(t, s, "pol/open")
	v2 := newClient(t, s)
	man, _ := v2.pushImage("pol/locked", "v1", 256)

	lockout := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"ecr:*"}]}`
	_, err := cl.SetRepositoryPolicy(c, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("pol/locked"), PolicyText: aws.String(lockout)})
	wantCode(t, err, "InvalidParameterException")
	if !strings.Contains(err.Error(), "force") {
		t.Fatalf("lock-out guard: %v", err)
	}
	// Deny everything but managing the policy (NotAction), with force not needed.
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"000000000000"},"NotAction":["ecr:*RepositoryPolicy"]}]}`
	if _, err := cl.SetRepositoryPolicy(c, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("pol/locked"), PolicyText: aws.String(pol)}); err != nil {
		t.Fatal(err)
	}
	name := aws.String("pol/locked")
	arn := aws.String("arn:aws:ecr:us-east-1:000000000000:repository/pol/locked")
	calls := map[string]func() error{
		"ListImages": func() error { _, err := cl.ListImages(c, &ecr.ListImagesInput{RepositoryName: name}); return err },
		"DescribeImages": func() error {
			_, err := cl.DescribeImages(c, &ecr.DescribeImagesInput{RepositoryName: name})
			return err
		},
		"BatchGetImage": func() error {
			_, err := cl.BatchGetImage(c, &ecr.BatchGetImageInput{RepositoryName: name, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
			return err
		},
		"BatchDeleteImage": func() error {
			_, err := cl.BatchDeleteImage(c, &ecr.BatchDeleteImageInput{RepositoryName: name, ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
			return err
		},
		"InitiateLayerUpload": func() error {
			_, err := cl.InitiateLayerUpload(c, &ecr.InitiateLayerUploadInput{RepositoryName: name})
			return err
		},
		"BatchCheckLayerAvailability": func() error {
			_, err := cl.BatchCheckLayerAvailability(c, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: name, LayerDigests: []string{digestOf(man)}})
			return err
		},
		"DeleteRepository": func() error {
			_, err := cl.DeleteRepository(c, &ecr.DeleteRepositoryInput{RepositoryName: name, Force: true})
			return err
		},
		"DescribeRepositories": func() error {
			_, err := cl.DescribeRepositories(c, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"pol/locked"}})
			return err
		},
		"PutLifecyclePolicy": func() error {
			_, err := cl.PutLifecyclePolicy(c, &ecr.PutLifecyclePolicyInput{RepositoryName: name, LifecyclePolicyText: aws.String(`{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)})
			return err
		},
		"PutImageTagMutability": func() error {
			_, err := cl.PutImageTagMutability(c, &ecr.PutImageTagMutabilityInput{RepositoryName: name, ImageTagMutability: types.ImageTagMutabilityImmutable})
			return err
		},
		"TagResource": func() error {
			_, err := cl.TagResource(c, &ecr.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		},
		"ListTagsForResource": func() error {
			_, err := cl.ListTagsForResource(c, &ecr.ListTagsForResourceInput{ResourceArn: arn})
			return err
		},
	}
	for op, call := range calls {
		err := call()
		wantCode(t, err, "AccessDeniedException")
		if !strings.Contains(err.Error(), "ecr:"+op) {
			t.Errorf("%s: %v", op, err)
		}
	}
	for _, req := range []struct{ method, path string }{
		{"GET", "/v2/pol/locked/manifests/v1"}, {"HEAD", "/v2/pol/locked/manifests/v1"}, {"GET", "/v2/pol/locked/tags/list"},
		{"POST", "/v2/pol/locked/blobs/uploads/"}, {"DELETE", "/v2/pol/locked/manifests/v1"}, {"GET", "/v2/pol/locked/blobs/" + digestOf(man)},
	} {
		if r := v2.do(req.method, req.path, nil, nil); r.status != 403 || (req.method != "HEAD" && r.errCode() != "DENIED") {
			t.Errorf("%s %s: %d %s", req.method, req.path, r.status, r.body)
		}
	}
	// The policy itself stays manageable; other repositories are unaffected.
	if _, err := cl.GetRepositoryPolicy(c, &ecr.GetRepositoryPolicyInput{RepositoryName: name}); err != nil {
		t.Fatal(err)
	}
	v2.pushImage("pol/open", "v1", 128)
	// Unknown repositories still answer RepositoryNotFoundException.
	_, err = cl.ListImages(c, &ecr.ListImagesInput{RepositoryName: aws.String("pol/none")})
	wantCode(t, err, "RepositoryNotFoundException")
	// With force, the lock-out policy is accepted; then even
	// SetRepositoryPolicy is denied, as in ECR.
	if _, err := cl.SetRepositoryPolicy(c, &ecr.SetRepositoryPolicyInput{RepositoryName: name, PolicyText: aws.String(lockout), Force: true}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.DeleteRepositoryPolicy(c, &ecr.DeleteRepositoryPolicyInput{RepositoryName: name})
	wantCode(t, err, "AccessDeniedException")
}

// TestRepositoryPolicyAWSCLI sets a Deny policy with `aws ecr
// set-repository-policy` and checks an invalid one is refused.
func TestRepositoryPolicyAWSCLI(t *testing.T) {
	t.Parallel() // its own server; CLI calls are mostly process start-up
	s := berthtest.Start(t, nil)
	createRepo(t, s, "pol/cli")
	for _, cli := range berthtest.CLIs(t) {
		t.Run(cli.Name, func(t *testing.T) {
			out, errOut, code := cli.Run(t, s, "ecr", "set-repository-policy", "--repository-name", "pol/cli", "--policy-text", denyPush)
			if code != 0 || !strings.Contains(out, "NoPush") {
				t.Fatalf("set-repository-policy: %d %s %s", code, out, errOut)
			}
			_, errOut, code = cli.Run(t, s, "ecr", "put-image", "--repository-name", "pol/cli", "--image-tag", "x",
				"--image-manifest", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
			if code == 0 || !strings.Contains(errOut, "AccessDeniedException") {
				t.Fatalf("put-image: %d %s", code, errOut)
			}
			_, errOut, code = cli.Run(t, s, "ecr", "set-repository-policy", "--repository-name", "pol/cli", "--policy-text", `{"Statement":[{"Effect":"Deny"}]}`)
			if code == 0 || !strings.Contains(errOut, "Invalid repository policy provided") {
				t.Fatalf("invalid policy: %d %s", code, errOut)
			}
			if _, errOut, code = cli.Run(t, s, "ecr", "delete-repository-policy", "--repository-name", "pol/cli"); code != 0 {
				t.Fatalf("delete-repository-policy: %s", errOut)
			}
		})
	}
}
