package registry

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/berthtest"
)

// wantError checks an error's code and that its message contains msg.
func wantError(t *testing.T, err error, code, msg string) {
	t.Helper()
	wantCode(t, err, code)
	var ae smithy.APIError
	errorAs(err, &ae)
	if !strings.Contains(ae.ErrorMessage(), msg) {
		t.Fatalf("%s: message %q does not contain %q", code, ae.ErrorMessage(), msg)
	}
}

// wantExactError checks an error's code and exact message.
func wantExactError(t *testing.T, err error, code, msg string) {
	t.Helper()
	wantCode(t, err, code)
	var ae smithy.APIError
	errorAs(err, &ae)
	if ae.ErrorMessage() != msg {
		t.Fatalf("%s: message %q, want %q", code, ae.ErrorMessage(), msg)
	}
}

var managedKeyRE = regexp.MustCompile(`^arn:aws:kms:us-east-1:000000000000:key/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestECRKMSManagedKey: a KMS repository created without a key reports the
// account's managed key ARN (the same for every repository, and in
// DescribeRepositories); a given key is kept.
func TestECRKMSManagedKey(t *testing.T) {
	s := berthtest.Start(t, nil)
	cl, c := ecrClient(s), ctx(t)
	var keys []string
	for _, name := range []string{"kms/a", "kms/b"} {
		out, err := cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String(name),
			EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms}})
		if err != nil {
			t.Fatal(err)
		}
		k := aws.ToString(out.Repository.EncryptionConfiguration.KmsKey)
		if !managedKeyRE.MatchString(k) {
			t.Fatalf("kmsKey %q is not a KMS key ARN", k)
		}
		keys = append(keys, k)
	}
	if keys[0] != keys[1] {
		t.Fatalf("two managed keys: %v", keys)
	}
	d, err := cl.DescribeRepositories(c, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"kms/a"}})
	if err != nil || aws.ToString(d.Repositories[0].EncryptionConfiguration.KmsKey) != keys[0] {
		t.Fatalf("describe: %v %+v", err, d)
	}
	out, err := cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("kms/own"),
		EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("arn:aws:kms:us-east-1:000000000000:key/mine")}})
	if err != nil || aws.ToString(out.Repository.EncryptionConfiguration.KmsKey) != "arn:aws:kms:us-east-1:000000000000:key/mine" {
		t.Fatalf("own key: %v %+v", err, out)
	}
	out, err = cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("kms/aes")})
	if err != nil || out.Repository.EncryptionConfiguration.KmsKey != nil || out.Repository.EncryptionConfiguration.EncryptionType != types.EncryptionTypeAes256 {
		t.Fatalf("AES256: %v %+v", err, out.Repository.EncryptionConfiguration)
	}
}

const blockCreate = `{"Version":"2012-10-17","Statement":[{"Sid":"NoBlocked","Effect":"Deny","Principal":"*","Action":"ecr:CreateRepository","Resource":"arn:aws:ecr:us-east-1:000000000000:repository/blocked/*"},
{"Sid":"Replicate","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"*"}]}`

// TestECRRegistryPolicyWithSDK: Put/Get/DeleteRegistryPolicy, ECR's
// validation and not-found errors, and a Deny of ecr:CreateRepository
// enforced on the repositories its Resource names.
func TestECRRegistryPolicyWithSDK(t *testing.T) {
	s := berthtest.Start(t, nil)
	cl, c := ecrClient(s), ctx(t)
	_, err := cl.GetRegistryPolicy(c, &ecr.GetRegistryPolicyInput{})
	wantError(t, err, "RegistryPolicyNotFoundException", "Registry policy does not exist in the registry with id '000000000000'")
	_, err = cl.DeleteRegistryPolicy(c, &ecr.DeleteRegistryPolicyInput{})
	wantCode(t, err, "RegistryPolicyNotFoundException")
	for _, bad := range []string{
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:PutImage","Resource":"*"}]}`, // not a registry action
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:ReplicateImage"}]}`,          // no Resource
		`{"Statement":`,
	} {
		_, err = cl.PutRegistryPolicy(c, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(bad)})
		wantExactError(t, err, "InvalidParameterException", "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'")
	}
	if _, err := cl.GetRegistryPolicy(c, &ecr.GetRegistryPolicyInput{}); err == nil {
		t.Fatal("a refused policy was stored")
	}
	put, err := cl.PutRegistryPolicy(c, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(blockCreate)})
	if err != nil || aws.ToString(put.PolicyText) != blockCreate || aws.ToString(put.RegistryId) != "000000000000" {
		t.Fatalf("put: %v %+v", err, put)
	}
	got, err := cl.GetRegistryPolicy(c, &ecr.GetRegistryPolicyInput{})
	if err != nil || aws.ToString(got.PolicyText) != blockCreate {
		t.Fatalf("get: %v %+v", err, got)
	}
	_, err = cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("blocked/x")})
	wantError(t, err, "AccessDeniedException", "ecr:CreateRepository on resource: arn:aws:ecr:us-east-1:000000000000:repository/blocked/x")
	if _, err := cl.DescribeRepositories(c, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"blocked/x"}}); err == nil {
		t.Fatal("a denied repository was created")
	}
	createRepo(t, s, "open/x")
	// A repository policy ECR refuses gets ECR's message, word for word;
	// one with repeated Sids is accepted, as ECR does.
	_, err = cl.SetRepositoryPolicy(c, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("open/x"),
		PolicyText: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:PushImage"}]}`)})
	wantExactError(t, err, "InvalidParameterException", "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'")
	if _, err := cl.SetRepositoryPolicy(c, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("open/x"),
		PolicyText: aws.String(`{"Version":"2012-10-17","Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"},{"Sid":"a","Effect":"Allow","Principal":"*","Action":"ecr:GetDownloadUrlForLayer"}]}`)}); err != nil {
		t.Fatalf("repeated Sids: %v", err)
	}
	del, err := cl.DeleteRegistryPolicy(c, &ecr.DeleteRegistryPolicyInput{})
	if err != nil || aws.ToString(del.PolicyText) != blockCreate {
		t.Fatalf("delete: %v %+v", err, del)
	}
	createRepo(t, s, "blocked/x")
	_, err = cl.GetRegistryPolicy(c, &ecr.GetRegistryPolicyInput{})
	wantCode(t, err, "RegistryPolicyNotFoundException")
}

// TestECRReplicationConfiguration: Berth serves one registry in one region,
// so every replication destination is refused (the source registry with
// ECR's message, any other with Berth's); an empty configuration is
// accepted, and DescribeRegistry reports no rules.
func TestECRReplicationConfiguration(t *testing.T) {
	s := berthtest.Start(t, nil)
	cl, c := ecrClient(s), ctx(t)
	put := func(region, account string) error {
		_, err := cl.PutReplicationConfiguration(c, &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: &types.ReplicationConfiguration{
			Rules: []types.ReplicationRule{{Destinations: []types.ReplicationDestination{{Region: aws.String(region), RegistryId: aws.String(account)}}}}}})
		return err
	}
	wantError(t, put("us-east-1", "000000000000"), "InvalidParameterException",
		"Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Replication destination cannot be the same as the source registry'")
	wantError(t, put("eu-west-1", "000000000000"), "InvalidParameterException", "cannot replicate images to the registry '000000000000' in region 'eu-west-1'")
	wantError(t, put("us-east-1", "111122223333"), "InvalidParameterException", "cannot replicate images")
	out, err := cl.PutReplicationConfiguration(c, &ecr.PutReplicationConfigurationInput{ReplicationConfiguration: &types.ReplicationConfiguration{Rules: []types.ReplicationRule{}}})
	if err != nil || out.ReplicationConfiguration == nil || len(out.ReplicationConfiguration.Rules) != 0 {
		t.Fatalf("empty configuration: %v %+v", err, out)
	}
	d, err := cl.DescribeRegistry(c, &ecr.DescribeRegistryInput{})
	if err != nil || aws.ToString(d.RegistryId) != "000000000000" || d.ReplicationConfiguration == nil || len(d.ReplicationConfiguration.Rules) != 0 {
		t.Fatalf("describe-registry: %v %+v", err, d)
	}
}

func wildcard(filters ...string) []types.ImageTagMutabilityExclusionFilter {
	var out []types.ImageTagMutabilityExclusionFilter
	for _, f := range filters {
		out = append(out, types.ImageTagMutabilityExclusionFilter{Filter: aws.String(f), FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard})
	}
	return out
}

// TestECRTagMutabilityExclusions: IMMUTABLE_WITH_EXCLUSION and
// MUTABLE_WITH_EXCLUSION with their filters through CreateRepository and
// PutImageTagMutability, enforced on pushes through /v2/ and PutImage;
// ECR's validation messages.
func TestECRTagMutabilityExclusions(t *testing.T) {
	s := berthtest.Start(t, nil)
	cl, c := ecrClient(s), ctx(t)
	const repo = "excl/app"
	out, err := cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo),
		ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion, ImageTagMutabilityExclusionFilters: wildcard("latest", "dev-*")})
	if err != nil {
		t.Fatal(err)
	}
	if out.Repository.ImageTagMutability != types.ImageTagMutabilityImmutableWithExclusion || len(out.Repository.ImageTagMutabilityExclusionFilters) != 2 ||
		aws.ToString(out.Repository.ImageTagMutabilityExclusionFilters[1].Filter) != "dev-*" {
		t.Fatalf("create: %+v", out.Repository)
	}
	raw := newClient(t, s)
	// newManifest uploads a fresh layer and returns an image manifest
	// (not yet pushed) that references it.
	newManifest := func() []byte {
		cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
		layer := randBytes(16)
		cd, ld := raw.pushBlob(repo, cfg), raw.pushBlob(repo, layer)
		m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
			"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
			"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": len(layer)}}})
		return m
	}
	push := func(tag string) int {
		m := newManifest()
		return raw.do("PUT", "/v2/"+repo+"/manifests/"+tag, m, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}).status
	}
	for _, tag := range []string{"v1", "latest", "dev-7"} {
		if st := push(tag); st != 201 {
			t.Fatalf("first push of %s: %d", tag, st)
		}
	}
	if st := push("v1"); st != 400 {
		t.Fatalf("re-push of immutable v1: %d", st)
	}
	for _, tag := range []string{"latest", "dev-7"} {
		if st := push(tag); st != 201 {
			t.Fatalf("re-push of excluded %s: %d", tag, st)
		}
	}
	// PutImage of another manifest under v1 is refused the same way.
	m := newManifest()
	_, err = cl.PutImage(c, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageTag: aws.String("v1"), ImageManifest: aws.String(string(m))})
	wantError(t, err, "ImageTagAlreadyExistsException", "The image tag 'v1' already exists")

	// Reverse it: everything mutable except release-*.
	pt, err := cl.PutImageTagMutability(c, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String(repo),
		ImageTagMutability: types.ImageTagMutabilityMutableWithExclusion, ImageTagMutabilityExclusionFilters: wildcard("release-*")})
	if err != nil || pt.ImageTagMutability != types.ImageTagMutabilityMutableWithExclusion || len(pt.ImageTagMutabilityExclusionFilters) != 1 {
		t.Fatalf("put-image-tag-mutability: %v %+v", err, pt)
	}
	if _, err := cl.PutImage(c, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageTag: aws.String("v1"), ImageManifest: aws.String(string(m))}); err != nil {
		t.Fatalf("v1 is mutable now: %v", err)
	}
	if st := push("release-1"); st != 201 {
		t.Fatalf("first push of release-1: %d", st)
	}
	if st := push("release-1"); st != 400 {
		t.Fatalf("re-push of release-1: %d", st)
	}
	d, err := cl.DescribeRepositories(c, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	if err != nil || aws.ToString(d.Repositories[0].ImageTagMutabilityExclusionFilters[0].Filter) != "release-*" {
		t.Fatalf("describe: %v %+v", err, d)
	}

	// Validation, in ECR's words; nothing changes.
	_, err = cl.PutImageTagMutability(c, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String(repo), ImageTagMutability: "SOMETIMES"})
	wantError(t, err, "InvalidParameterException", "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [")
	_, err = cl.PutImageTagMutability(c, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String(repo), ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion})
	wantError(t, err, "InvalidParameterException",
		"Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'ImageTagMutabilityExclusionFilters can't be null when imageTagMutability is set as IMMUTABLE_WITH_EXCLUSION'")
	_, err = cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("excl/bad"), ImageTagMutability: types.ImageTagMutabilityImmutable, ImageTagMutabilityExclusionFilters: wildcard("x")})
	wantError(t, err, "InvalidParameterException", "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: ")
	_, err = cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("excl/bad"), ImageTagMutability: types.ImageTagMutabilityMutableWithExclusion,
		ImageTagMutabilityExclusionFilters: []types.ImageTagMutabilityExclusionFilter{{Filter: aws.String("x"), FilterType: "REGEX"}}})
	wantError(t, err, "InvalidParameterException", "filterType' failed to satisfy constraint: 'Member must satisfy enum value set: [WILDCARD]'")
	_, err = cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("excl/bad"), ImageTagMutability: types.ImageTagMutabilityMutableWithExclusion,
		ImageTagMutabilityExclusionFilters: wildcard("no/slash")})
	wantCode(t, err, "InvalidParameterException")
	if _, err := cl.DescribeRepositories(c, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"excl/bad"}}); err == nil {
		t.Fatal("a refused repository was created")
	}
	d, _ = cl.DescribeRepositories(c, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}})
	if d.Repositories[0].ImageTagMutability != types.ImageTagMutabilityMutableWithExclusion {
		t.Fatalf("a refused change changed the repository: %+v", d.Repositories[0])
	}
}

// TestECRBatchDeleteImageWithoutIDs: an empty imageIds list is refused in
// ECR's words.
func TestECRBatchDeleteImageWithoutIDs(t *testing.T) {
	s := berthtest.Start(t, nil)
	createRepo(t, s, "del/none")
	_, err := ecrClient(s).BatchDeleteImage(ctx(t), &ecr.BatchDeleteImageInput{RepositoryName: aws.String("del/none"), ImageIds: []types.ImageIdentifier{}})
	wantError(t, err, "InvalidParameterException", "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length greater than or equal to 1'")
}

// TestAWSCLIsECRRegistry drives the registry-level operations and the
// managed KMS key with both AWS CLIs, and tag mutability exclusions with
// the CLI that knows them.
func TestAWSCLIsECRRegistry(t *testing.T) {
	t.Parallel() // its own server; CLI calls are mostly process start-up
	s := berthtest.Start(t, nil)
	for _, cli := range berthtest.CLIs(t) {
		t.Run(cli.Name, func(t *testing.T) {
			run := func(args ...string) (string, string, int) { return cli.Run(t, s, append([]string{"ecr"}, args...)...) }
			out, errOut, code := run("put-registry-policy", "--policy-text", blockCreate)
			if code != 0 || !strings.Contains(out, "NoBlocked") {
				t.Fatalf("put-registry-policy: %d %s %s", code, out, errOut)
			}
			if out, errOut, code = run("get-registry-policy"); code != 0 || !strings.Contains(out, "NoBlocked") {
				t.Fatalf("get-registry-policy: %d %s %s", code, out, errOut)
			}
			_, errOut, code = run("create-repository", "--repository-name", "blocked/"+strings.ReplaceAll(cli.Name, "-", ""))
			if code == 0 || !strings.Contains(errOut, "AccessDeniedException") {
				t.Fatalf("create-repository under a Deny: %d %s", code, errOut)
			}
			if _, errOut, code = run("delete-registry-policy"); code != 0 {
				t.Fatalf("delete-registry-policy: %s", errOut)
			}
			_, errOut, code = run("get-registry-policy")
			if code == 0 || !strings.Contains(errOut, "RegistryPolicyNotFoundException") {
				t.Fatalf("get-registry-policy after delete: %d %s", code, errOut)
			}
			_, errOut, code = run("put-replication-configuration", "--replication-configuration", `{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"000000000000"}]}]}`)
			if code == 0 || !strings.Contains(errOut, "InvalidParameterException") || !strings.Contains(errOut, "cannot replicate") {
				t.Fatalf("put-replication-configuration: %d %s", code, errOut)
			}
			if out, errOut, code = run("describe-registry"); code != 0 || !strings.Contains(out, `"rules": []`) {
				t.Fatalf("describe-registry: %d %s %s", code, out, errOut)
			}
			name := "kms/" + strings.ReplaceAll(cli.Name, "-", "")
			out, errOut, code = run("create-repository", "--repository-name", name, "--encryption-configuration", "encryptionType=KMS")
			var cr struct {
				Repository struct {
					EncryptionConfiguration struct{ KmsKey string }
				}
			}
			json.Unmarshal([]byte(out), &cr)
			if code != 0 || !managedKeyRE.MatchString(cr.Repository.EncryptionConfiguration.KmsKey) {
				t.Fatalf("create-repository KMS: %d %s %s", code, out, errOut)
			}
			if cli.Name != "aws-v1" {
				return // aws-cli 2.9 predates tag mutability exclusion filters
			}
			out, errOut, code = run("create-repository", "--repository-name", "excl/cli", "--image-tag-mutability", "IMMUTABLE_WITH_EXCLUSION",
				"--image-tag-mutability-exclusion-filters", "filterType=WILDCARD,filter=latest")
			if code != 0 || !strings.Contains(out, `"IMMUTABLE_WITH_EXCLUSION"`) || !strings.Contains(out, `"latest"`) {
				t.Fatalf("create-repository with exclusions: %d %s %s", code, out, errOut)
			}
			_, errOut, code = run("put-image-tag-mutability", "--repository-name", "excl/cli", "--image-tag-mutability", "MUTABLE_WITH_EXCLUSION")
			if code == 0 || !strings.Contains(errOut, "ImageTagMutabilityExclusionFilters can't be null when imageTagMutability is set as MUTABLE_WITH_EXCLUSION") {
				t.Fatalf("put-image-tag-mutability without filters: %d %s", code, errOut)
			}
		})
	}
}

// TestECRRegistrySettingsSurviveCrashRealBinary runs `berth up`: the
// registry policy, a KMS repository's key and a repository's tag
// mutability exclusions survive a SIGKILL, and the exclusions are still
// enforced on a push after the restart.
func TestECRRegistrySettingsSurviveCrashRealBinary(t *testing.T) {
	dir := t.TempDir()
	p := berthtest.StartProcess(t, "up", dir, nil)
	cl, c := ecrClient(p.Server), ctx(t)
	if _, err := cl.PutRegistryPolicy(c, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(blockCreate)}); err != nil {
		t.Fatal(err)
	}
	kms, err := cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("up/kms"),
		EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("up/excl"),
		ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion, ImageTagMutabilityExclusionFilters: wildcard("latest")}); err != nil {
		t.Fatal(err)
	}
	raw := newClient(t, p.Server)
	raw.pushImage("up/excl", "v1", 16)
	p.Kill9()

	p2 := berthtest.StartProcess(t, "up", dir, nil)
	cl = ecrClient(p2.Server)
	if got, err := cl.GetRegistryPolicy(c, &ecr.GetRegistryPolicyInput{}); err != nil || aws.ToString(got.PolicyText) != blockCreate {
		t.Fatalf("registry policy after a crash: %v %+v", err, got)
	}
	_, err = cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("blocked/after")})
	wantCode(t, err, "AccessDeniedException")
	d, err := cl.DescribeRepositories(c, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"up/kms", "up/excl"}})
	if err != nil || aws.ToString(d.Repositories[0].EncryptionConfiguration.KmsKey) != aws.ToString(kms.Repository.EncryptionConfiguration.KmsKey) ||
		len(d.Repositories[1].ImageTagMutabilityExclusionFilters) != 1 {
		t.Fatalf("repositories after a crash: %v %+v", err, d)
	}
	raw.base = p2.Endpoint
	raw.pushImage("up/excl", "latest", 16)
	raw.pushImage("up/excl", "latest", 16)
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": raw.pushBlob("up/excl", []byte("{}")), "size": 2}, "layers": []any{}})
	if r := raw.do("PUT", "/v2/up/excl/manifests/v1", m, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}); r.status != 400 || r.errCode() != "TAG_INVALID" {
		t.Fatalf("re-push of immutable v1 after a crash: %d %s", r.status, r.body)
	}
}
