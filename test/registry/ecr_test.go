package registry

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/berthdev/berth/internal/berthtest"
)

// uploadLayer pushes a blob through the ECR layer-upload operations.
func uploadLayer(t *testing.T, cl *ecr.Client, repo string, b []byte, part int) string {
	t.Helper()
	up, err := cl.InitiateLayerUpload(ctx(t), &ecr.InitiateLayerUploadInput{RepositoryName: aws.String(repo)})
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(b); off += part {
		end := min(off+part, len(b))
		out, err := cl.UploadLayerPart(ctx(t), &ecr.UploadLayerPartInput{RepositoryName: aws.String(repo), UploadId: up.UploadId,
			PartFirstByte: aws.Int64(int64(off)), PartLastByte: aws.Int64(int64(end - 1)), LayerPartBlob: b[off:end]})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt64(out.LastByteReceived) != int64(end-1) {
			t.Fatalf("lastByteReceived %d", aws.ToInt64(out.LastByteReceived))
		}
	}
	d := digestOf(b)
	if _, err := cl.CompleteLayerUpload(ctx(t), &ecr.CompleteLayerUploadInput{RepositoryName: aws.String(repo), UploadId: up.UploadId, LayerDigests: []string{d}}); err != nil {
		t.Fatal(err)
	}
	return d
}

func imageManifest(cfgDigest string, cfgSize int, layerDigest string, layerSize int) string {
	return fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":"%s"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":"%s"}]}`, cfgSize, cfgDigest, layerSize, layerDigest)
}

// TestECRImageLifecycleWithSDK pushes an image with the ECR API alone
// (layer uploads and PutImage) and reads, lists, tags and deletes it.
func TestECRImageLifecycleWithSDK(t *testing.T) {
	s := berthtest.Start(t, nil)
	cl := ecrClient(s)
	c := ctx(t)
	out, err := cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("sdk/app"),
		ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true},
		EncryptionConfiguration:    &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("alias/x")},
		Tags:                       []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Repository
	if aws.ToString(r.RepositoryArn) != "arn:aws:ecr:us-east-1:000000000000:repository/sdk/app" || !r.ImageScanningConfiguration.ScanOnPush ||
		r.EncryptionConfiguration.EncryptionType != types.EncryptionTypeKms || r.ImageTagMutability != types.ImageTagMutabilityMutable {
		t.Fatalf("repository: %+v", r)
	}
	_, err = cl.CreateRepository(c, &ecr.CreateRepositoryInput{RepositoryName: aws.String("sdk/app")})
	wantCode(t, err, "RepositoryAlreadyExistsException")
	_, err = cl.DescribeRepositories(c, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"sdk/none"}})
	wantCode(t, err, "RepositoryNotFoundException")

	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := randBytes(12 << 10)
	cd := uploadLayer(t, cl, "sdk/app", cfg, 1000)
	ld := uploadLayer(t, cl, "sdk/app", layer, 5000)
	avail, err := cl.BatchCheckLayerAvailability(c, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: aws.String("sdk/app"), LayerDigests: []string{ld, digestOf([]byte("no"))}})
	if err != nil || len(avail.Layers) != 1 || aws.ToInt64(avail.Layers[0].LayerSize) != int64(len(layer)) || len(avail.Failures) != 1 {
		t.Fatalf("availability: %+v %v", avail, err)
	}
	man := imageManifest(cd, len(cfg), ld, len(layer))
	put, err := cl.PutImage(c, &ecr.PutImageInput{RepositoryName: aws.String("sdk/app"), ImageManifest: aws.String(man), ImageTag: aws.String("v1")})
	if err != nil || aws.ToString(put.Image.ImageId.ImageDigest) != digestOf([]byte(man)) {
		t.Fatalf("put image: %+v %v", put, err)
	}
	_, err = cl.PutImage(c, &ecr.PutImageInput{RepositoryName: aws.String("sdk/app"), ImageManifest: aws.String(man), ImageTag: aws.String("v1")})
	wantCode(t, err, "ImageAlreadyExistsException")
	_, err = cl.PutImage(c, &ecr.PutImageInput{RepositoryName: aws.String("sdk/app"), ImageManifest: aws.String(man), ImageDigest: aws.String(digestOf([]byte("x")))})
	wantCode(t, err, "ImageDigestDoesNotMatchException")
	_, err = cl.PutImage(c, &ecr.PutImageInput{RepositoryName: aws.String("sdk/app"), ImageManifest: aws.String(imageManifest(cd, len(cfg), digestOf([]byte("gone")), 4)), ImageTag: aws.String("bad")})
	wantCode(t, err, "LayersNotFoundException")
	if _, err := cl.PutImage(c, &ecr.PutImageInput{RepositoryName: aws.String("sdk/app"), ImageManifest: aws.String(man), ImageTag: aws.String("latest")}); err != nil {
		t.Fatal(err)
	}

	got, err := cl.BatchGetImage(c, &ecr.BatchGetImageInput{RepositoryName: aws.String("sdk/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}, {ImageTag: aws.String("nope")}}})
	if err != nil || len(got.Images) != 1 || aws.ToString(got.Images[0].ImageManifest) != man || len(got.Failures) != 1 || got.Failures[0].FailureCode != types.ImageFailureCodeImageNotFound {
		t.Fatalf("batch get: %+v %v", got, err)
	}
	list, err := cl.ListImages(c, &ecr.ListImagesInput{RepositoryName: aws.String("sdk/app"), MaxResults: aws.Int32(1)})
	if err != nil || len(list.ImageIds) != 1 || list.NextToken == nil {
		t.Fatalf("list page 1: %+v %v", list, err)
	}
	list2, err := cl.ListImages(c, &ecr.ListImagesInput{RepositoryName: aws.String("sdk/app"), NextToken: list.NextToken})
	if err != nil || len(list2.ImageIds) != 1 || list2.NextToken != nil {
		t.Fatalf("list page 2: %+v %v", list2, err)
	}
	desc, err := cl.DescribeImages(c, &ecr.DescribeImagesInput{RepositoryName: aws.String("sdk/app")})
	if err != nil || len(desc.ImageDetails) != 1 || strings.Join(desc.ImageDetails[0].ImageTags, ",") != "latest,v1" || aws.ToInt64(desc.ImageDetails[0].ImageSizeInBytes) != int64(len(layer)) {
		t.Fatalf("describe: %+v %v", desc, err)
	}
	_, err = cl.DescribeImages(c, &ecr.DescribeImagesInput{RepositoryName: aws.String("sdk/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("nope")}}})
	wantCode(t, err, "ImageNotFoundException")
	dl, err := cl.GetDownloadUrlForLayer(c, &ecr.GetDownloadUrlForLayerInput{RepositoryName: aws.String("sdk/app"), LayerDigest: aws.String(ld)})
	if err != nil {
		t.Fatal(err)
	}
	anon := &client{t: t}
	if r := anon.do("GET", aws.ToString(dl.DownloadUrl), nil, nil); r.status != 200 || digestOf(r.body) != ld {
		t.Fatalf("download url: %d", r.status)
	}

	// Repository settings: mutability, policy, tags.
	if _, err := cl.PutImageTagMutability(c, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("sdk/app"), ImageTagMutability: types.ImageTagMutabilityImmutable}); err != nil {
		t.Fatal(err)
	}
	man2 := imageManifest(cd, len(cfg), cd, len(cfg))
	_, err = cl.PutImage(c, &ecr.PutImageInput{RepositoryName: aws.String("sdk/app"), ImageManifest: aws.String(man2), ImageTag: aws.String("v1")})
	wantCode(t, err, "ImageTagAlreadyExistsException")
	_, err = cl.GetRepositoryPolicy(c, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String("sdk/app")})
	wantCode(t, err, "RepositoryPolicyNotFoundException")
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}`
	if _, err := cl.SetRepositoryPolicy(c, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("sdk/app"), PolicyText: aws.String(pol)}); err != nil {
		t.Fatal(err)
	}
	gp, err := cl.GetRepositoryPolicy(c, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String("sdk/app")})
	if err != nil || aws.ToString(gp.PolicyText) != pol {
		t.Fatalf("policy: %+v %v", gp, err)
	}
	if _, err := cl.DeleteRepositoryPolicy(c, &ecr.DeleteRepositoryPolicyInput{RepositoryName: aws.String("sdk/app")}); err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(r.RepositoryArn)
	cl.TagResource(c, &ecr.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("dev")}}})
	cl.UntagResource(c, &ecr.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"team"}})
	tags, err := cl.ListTagsForResource(c, &ecr.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "env" {
		t.Fatalf("tags: %+v %v", tags, err)
	}

	// Deleting: a repository with images needs force.
	_, err = cl.DeleteRepository(c, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("sdk/app")})
	wantCode(t, err, "RepositoryNotEmptyException")
	del, err := cl.BatchDeleteImage(c, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("sdk/app"), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("latest")}}})
	if err != nil || len(del.ImageIds) != 1 {
		t.Fatalf("batch delete tag: %+v %v", del, err)
	}
	if d, _ := cl.DescribeImages(c, &ecr.DescribeImagesInput{RepositoryName: aws.String("sdk/app")}); len(d.ImageDetails) != 1 || len(d.ImageDetails[0].ImageTags) != 1 {
		t.Fatalf("removing one of two tags keeps the image: %+v", d)
	}
	if _, err := cl.DeleteRepository(c, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("sdk/app"), Force: true}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.ListImages(c, &ecr.ListImagesInput{RepositoryName: aws.String("sdk/app")})
	wantCode(t, err, "RepositoryNotFoundException")
}

// TestECRLayerUploadFailures: parts out of order, a wrong digest, an
// unknown upload, an empty upload.
func TestECRLayerUploadFailures(t *testing.T) {
	s := berthtest.Start(t, nil)
	cl := ecrClient(s)
	c := ctx(t)
	createRepo(t, s, "sdk/fail")
	up, _ := cl.InitiateLayerUpload(c, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String("sdk/fail")})
	_, err := cl.CompleteLayerUpload(c, &ecr.CompleteLayerUploadInput{RepositoryName: aws.String("sdk/fail"), UploadId: up.UploadId, LayerDigests: []string{digestOf(nil)}})
	wantCode(t, err, "EmptyUploadException")
	b := randBytes(100)
	_, err = cl.UploadLayerPart(c, &ecr.UploadLayerPartInput{RepositoryName: aws.String("sdk/fail"), UploadId: up.UploadId, PartFirstByte: aws.Int64(10), PartLastByte: aws.Int64(109), LayerPartBlob: b})
	wantCode(t, err, "InvalidLayerPartException")
	cl.UploadLayerPart(c, &ecr.UploadLayerPartInput{RepositoryName: aws.String("sdk/fail"), UploadId: up.UploadId, PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(99), LayerPartBlob: b})
	_, err = cl.CompleteLayerUpload(c, &ecr.CompleteLayerUploadInput{RepositoryName: aws.String("sdk/fail"), UploadId: up.UploadId, LayerDigests: []string{digestOf([]byte("other"))}})
	wantCode(t, err, "InvalidLayerException")
	avail, _ := cl.BatchCheckLayerAvailability(c, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: aws.String("sdk/fail"), LayerDigests: []string{digestOf(b), digestOf([]byte("other"))}})
	if len(avail.Layers) != 0 {
		t.Fatalf("a failed upload left a layer: %+v", avail.Layers)
	}
	_, err = cl.UploadLayerPart(c, &ecr.UploadLayerPartInput{RepositoryName: aws.String("sdk/fail"), UploadId: aws.String("00000000-0000-0000-0000-000000000000"), PartFirstByte: aws.Int64(0), PartLastByte: aws.Int64(0), LayerPartBlob: []byte{1}})
	wantCode(t, err, "UploadNotFoundException")
	_, err = cl.InitiateLayerUpload(c, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String("sdk/none")})
	wantCode(t, err, "RepositoryNotFoundException")
}

// TestECRLifecyclePolicyPreview: put, get, preview (untagged older than a
// day expire; keep the newest prod* image), delete.
func TestECRLifecyclePolicyPreview(t *testing.T) {
	s := berthtest.Start(t, nil)
	cl := ecrClient(s)
	c := ctx(t)
	createRepo(t, s, "sdk/lc")
	oc := newClient(t, s)
	for _, tag := range []string{"prod-1", "prod-2", "prod-3"} {
		oc.pushImage("sdk/lc", tag, 10)
	}
	policy := `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}`
	_, err := cl.PutLifecyclePolicy(c, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("sdk/lc"), LifecyclePolicyText: aws.String(`{"rules":[{"rulePriority":1}]}`)})
	wantCode(t, err, "InvalidParameterException")
	_, err = cl.GetLifecyclePolicy(c, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("sdk/lc")})
	wantCode(t, err, "LifecyclePolicyNotFoundException")
	if _, err := cl.PutLifecyclePolicy(c, &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String("sdk/lc"), LifecyclePolicyText: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	g, err := cl.GetLifecyclePolicy(c, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("sdk/lc")})
	if err != nil || aws.ToString(g.LifecyclePolicyText) != policy {
		t.Fatalf("get: %+v %v", g, err)
	}
	if _, err := cl.StartLifecyclePolicyPreview(c, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: aws.String("sdk/lc")}); err != nil {
		t.Fatal(err)
	}
	p, err := cl.GetLifecyclePolicyPreview(c, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: aws.String("sdk/lc")})
	if err != nil || p.Status != types.LifecyclePolicyPreviewStatusComplete || len(p.PreviewResults) != 2 || aws.ToInt32(p.Summary.ExpiringImageTotalCount) != 2 {
		b, _ := json.Marshal(p)
		t.Fatalf("preview: %s %v", b, err)
	}
	for _, r := range p.PreviewResults {
		if r.ImageTags[0] == "prod-3" || r.Action.Type != types.ImageActionTypeExpire || aws.ToInt32(r.AppliedRulePriority) != 1 {
			t.Fatalf("preview result: %+v", r)
		}
	}
	if _, err := cl.DeleteLifecyclePolicy(c, &ecr.DeleteLifecyclePolicyInput{RepositoryName: aws.String("sdk/lc")}); err != nil {
		t.Fatal(err)
	}
}
