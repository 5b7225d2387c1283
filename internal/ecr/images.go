package ecr

import (
	"bytes"
	"context"
	"net/url"
	"sort"

	"github.com/berthdev/berth/internal/api/ecrapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/registry"
)

// layerPartSize is the part size InitiateLayerUpload advertises: a part
// base64-encoded in JSON stays under the front door's 10 MiB body limit.
const layerPartSize = 5 << 20

func pageLimit(p *int32, def int) int {
	if p == nil || *p <= 0 {
		return def
	}
	return int(*p)
}

type pagePos struct {
	Offset int `json:"o"`
}

func page(tok *string) (int, error) {
	if tok == nil {
		return 0, nil
	}
	var p pagePos
	if err := awsproto.DecodeToken(*tok, &p); err != nil {
		return 0, err
	}
	return p.Offset, nil
}

// ListImages lists (digest, tag) pairs; untagged images once with no tag.
func (s *Service) ListImages(ctx context.Context, in *ecrapi.ListImagesRequest) (*ecrapi.ListImagesResponse, error) {
	name := deref(in.RepositoryName)
	ms, err := s.reg.Manifests(ctx, name)
	if err != nil {
		return nil, err
	}
	tags, err := s.reg.TagMap(ctx, name)
	if err != nil {
		return nil, err
	}
	filter := ecrapi.TagStatus("")
	if in.Filter != nil {
		filter = deref(in.Filter.TagStatus)
	}
	var ids []ecrapi.ImageIdentifier
	for _, m := range ms {
		d := string(m.Digest)
		ts := tags[m.Digest]
		if len(ts) == 0 && filter != ecrapi.TagStatusTagged {
			ids = append(ids, ecrapi.ImageIdentifier{ImageDigest: ptr(d)})
		}
		if filter != ecrapi.TagStatusUntagged {
			for _, t := range ts {
				ids = append(ids, ecrapi.ImageIdentifier{ImageDigest: ptr(d), ImageTag: ptr(t)})
			}
		}
	}
	off, err := page(in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageLimit(in.MaxResults, 100)
	out := &ecrapi.ListImagesResponse{ImageIds: []ecrapi.ImageIdentifier{}}
	if off < len(ids) {
		end := min(off+limit, len(ids))
		out.ImageIds = ids[off:end]
		if end < len(ids) {
			out.NextToken = ptr(awsproto.EncodeToken(pagePos{end}))
		}
	}
	return out, nil
}

func (s *Service) imageDetail(repo string, m registry.Manifest, tags []string) ecrapi.ImageDetail {
	d := ecrapi.ImageDetail{
		ImageDigest:            ptr(string(m.Digest)),
		ImageManifestMediaType: ptr(m.MediaType),
		ImagePushedAt:          awsproto.NewTime(m.PushedAt),
		ImageSizeInBytes:       ptr(m.ImageSize),
		ImageTags:              tags,
		RegistryId:             ptr(s.cfg.Account),
		RepositoryName:         ptr(repo),
		LastRecordedPullTime:   awsproto.NewTime(m.LastPulledAt),
	}
	st := ecrapi.ImageStatus("ACTIVE")
	d.ImageStatus = &st
	if m.ArtifactType != "" {
		d.ArtifactMediaType = ptr(m.ArtifactType)
	} else if len(m.Blobs) > 0 {
		d.ArtifactMediaType = ptr(configMediaType(m))
	}
	if m.Subject != "" {
		d.SubjectManifestDigest = ptr(string(m.Subject))
	}
	return d
}

func configMediaType(m registry.Manifest) string {
	if m.MediaType == registry.MediaTypeDockerManifest {
		return "application/vnd.docker.container.image.v1+json"
	}
	return "application/vnd.oci.image.config.v1+json"
}

// resolve finds the manifest an image id names. A tag and a digest must
// agree.
func (s *Service) resolve(ctx context.Context, repo string, id ecrapi.ImageIdentifier) (registry.Manifest, *ecrapi.ImageFailure, error) {
	fail := func(code ecrapi.ImageFailureCode, reason string) (registry.Manifest, *ecrapi.ImageFailure, error) {
		idc := id
		return registry.Manifest{}, &ecrapi.ImageFailure{FailureCode: &code, FailureReason: ptr(reason), ImageId: &idc}, nil
	}
	dg, tag := deref(id.ImageDigest), deref(id.ImageTag)
	if dg == "" && tag == "" {
		return fail(ecrapi.ImageFailureCodeMissingDigestAndTag, "Missing image digest and image tag")
	}
	if dg != "" {
		if _, err := registry.ParseDigest(dg); err != nil {
			return fail(ecrapi.ImageFailureCodeInvalidImageDigest, "Invalid image digest")
		}
	}
	if tag != "" && !registry.ValidTag(tag) {
		return fail(ecrapi.ImageFailureCodeInvalidImageTag, "Invalid image tag")
	}
	ref := dg
	if ref == "" {
		ref = tag
	}
	m, err := s.reg.GetManifest(ctx, repo, ref, false)
	if errs.ReasonOf(err) == registry.ReasonManifestUnknown {
		return fail(ecrapi.ImageFailureCodeImageNotFound, "Requested image not found")
	}
	if err != nil {
		return m, nil, err
	}
	if dg != "" && tag != "" {
		td, err := s.reg.ResolveTag(ctx, repo, tag)
		if errs.ReasonOf(err) == registry.ReasonManifestUnknown {
			return fail(ecrapi.ImageFailureCodeImageNotFound, "Requested image not found")
		}
		if err != nil {
			return m, nil, err
		}
		if string(td) != dg {
			return fail(ecrapi.ImageFailureCodeImageTagDoesNotMatchDigest, "Image tag does not match digest")
		}
	}
	return m, nil, nil
}

// DescribeImages describes images: the named ones, or all (filtered).
func (s *Service) DescribeImages(ctx context.Context, in *ecrapi.DescribeImagesRequest) (*ecrapi.DescribeImagesResponse, error) {
	name := deref(in.RepositoryName)
	tags, err := s.reg.TagMap(ctx, name)
	if err != nil {
		return nil, err
	}
	out := &ecrapi.DescribeImagesResponse{ImageDetails: []ecrapi.ImageDetail{}}
	if len(in.ImageIds) > 0 {
		if _, err := s.reg.Repository(ctx, name); err != nil {
			return nil, err
		}
		seen := map[registry.Digest]bool{}
		for _, id := range in.ImageIds {
			m, f, err := s.resolve(ctx, name, id)
			if err != nil {
				return nil, err
			}
			if f != nil {
				return nil, errs.R(errs.NotFound, registry.ReasonManifestUnknown, "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
					deref(id.ImageDigest), deref(id.ImageTag), name, s.cfg.Account)
			}
			if !seen[m.Digest] {
				seen[m.Digest] = true
				out.ImageDetails = append(out.ImageDetails, s.imageDetail(name, m, tags[m.Digest]))
			}
		}
		return out, nil
	}
	ms, err := s.reg.Manifests(ctx, name)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].PushedAt.Before(ms[j].PushedAt) })
	filter := ecrapi.TagStatus("")
	if in.Filter != nil {
		filter = deref(in.Filter.TagStatus)
	}
	var all []ecrapi.ImageDetail
	for _, m := range ms {
		ts := tags[m.Digest]
		if filter == ecrapi.TagStatusTagged && len(ts) == 0 || filter == ecrapi.TagStatusUntagged && len(ts) > 0 {
			continue
		}
		all = append(all, s.imageDetail(name, m, ts))
	}
	off, err := page(in.NextToken)
	if err != nil {
		return nil, err
	}
	limit := pageLimit(in.MaxResults, 100)
	if off < len(all) {
		end := min(off+limit, len(all))
		out.ImageDetails = all[off:end]
		if end < len(all) {
			out.NextToken = ptr(awsproto.EncodeToken(pagePos{end}))
		}
	}
	return out, nil
}

// BatchGetImage returns manifests.
func (s *Service) BatchGetImage(ctx context.Context, in *ecrapi.BatchGetImageRequest) (*ecrapi.BatchGetImageResponse, error) {
	name := deref(in.RepositoryName)
	if _, err := s.reg.Repository(ctx, name); err != nil {
		return nil, err
	}
	out := &ecrapi.BatchGetImageResponse{Images: []ecrapi.Image{}, Failures: []ecrapi.ImageFailure{}}
	for _, id := range in.ImageIds {
		m, f, err := s.resolve(ctx, name, id)
		if err != nil {
			return nil, err
		}
		if f != nil {
			out.Failures = append(out.Failures, *f)
			continue
		}
		if len(in.AcceptedMediaTypes) > 0 && !contains(in.AcceptedMediaTypes, m.MediaType) {
			code := ecrapi.ImageFailureCode("UnsupportedImageType")
			out.Failures = append(out.Failures, ecrapi.ImageFailure{FailureCode: &code, FailureReason: ptr("The image's media type " + m.MediaType + " is not among acceptedMediaTypes"), ImageId: &id})
			continue
		}
		s.reg.GetManifest(ctx, name, string(m.Digest), true) // records the pull
		idc := ecrapi.ImageIdentifier{ImageDigest: ptr(string(m.Digest)), ImageTag: id.ImageTag}
		out.Images = append(out.Images, ecrapi.Image{ImageId: &idc, ImageManifest: ptr(string(m.Content)), ImageManifestMediaType: ptr(m.MediaType),
			RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(name)})
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// BatchDeleteImage deletes images by digest (with all their tags) or
// removes tags; removing an image's last tag deletes the image, as in ECR.
func (s *Service) BatchDeleteImage(ctx context.Context, in *ecrapi.BatchDeleteImageRequest) (*ecrapi.BatchDeleteImageResponse, error) {
	name := deref(in.RepositoryName)
	if _, err := s.reg.Repository(ctx, name); err != nil {
		return nil, err
	}
	out := &ecrapi.BatchDeleteImageResponse{ImageIds: []ecrapi.ImageIdentifier{}, Failures: []ecrapi.ImageFailure{}}
	for _, id := range in.ImageIds {
		m, f, err := s.resolve(ctx, name, id)
		if err != nil {
			return nil, err
		}
		if f != nil {
			out.Failures = append(out.Failures, *f)
			continue
		}
		tags, err := s.reg.TagMap(ctx, name)
		if err != nil {
			return nil, err
		}
		ts := tags[m.Digest]
		if tag := deref(id.ImageTag); tag != "" && deref(id.ImageDigest) == "" && len(ts) > 1 {
			if err := s.reg.DeleteTag(ctx, name, tag); err != nil {
				return nil, err
			}
			out.ImageIds = append(out.ImageIds, ecrapi.ImageIdentifier{ImageDigest: ptr(string(m.Digest)), ImageTag: ptr(tag)})
			continue
		}
		if err := s.reg.DeleteManifest(ctx, name, m.Digest); errs.ReasonOf(err) == registry.ReasonReferencedByIndex {
			// ECR refuses it per image and leaves the index whole.
			idc := id
			code := ecrapi.ImageFailureCodeImageReferencedByManifestList
			out.Failures = append(out.Failures, ecrapi.ImageFailure{ImageId: &idc, FailureCode: &code, FailureReason: ptr("Requested image referenced by manifest list")})
			continue
		} else if err != nil && errs.ReasonOf(err) != registry.ReasonManifestUnknown {
			return nil, err
		}
		if len(ts) == 0 {
			out.ImageIds = append(out.ImageIds, ecrapi.ImageIdentifier{ImageDigest: ptr(string(m.Digest))})
		}
		for _, t := range ts {
			out.ImageIds = append(out.ImageIds, ecrapi.ImageIdentifier{ImageDigest: ptr(string(m.Digest)), ImageTag: ptr(t)})
		}
	}
	return out, nil
}

// PutImage stores a manifest, optionally tagged.
func (s *Service) PutImage(ctx context.Context, in *ecrapi.PutImageRequest) (*ecrapi.PutImageResponse, error) {
	name := deref(in.RepositoryName)
	body := []byte(deref(in.ImageManifest))
	got := registry.DigestOf(body)
	if d := deref(in.ImageDigest); d != "" && d != string(got) {
		return nil, errs.R(errs.Invalid, reasonDigestMismatch, "The image digest %s does not match the digest of the manifest, %s", d, got)
	}
	ref := deref(in.ImageTag)
	caller := awsproto.CallFrom(ctx).Identity
	canRead := func(repo string) bool { return s.reg.Authorize(ctx, caller, repo, "ecr:GetDownloadUrlForLayer") == nil }
	m, err := s.reg.PutManifest(ctx, name, ref, deref(in.ImageManifestMediaType), body, registry.PutOptions{NoOverwrite: true, CanRead: canRead})
	if err != nil {
		return nil, err
	}
	id := ecrapi.ImageIdentifier{ImageDigest: ptr(string(m.Digest))}
	if ref != "" {
		id.ImageTag = ptr(ref)
	}
	return &ecrapi.PutImageResponse{Image: &ecrapi.Image{ImageId: &id, ImageManifest: ptr(string(body)), ImageManifestMediaType: ptr(m.MediaType),
		RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(name)}}, nil
}

// ---- layer uploads ----

// BatchCheckLayerAvailability says which layers the repository holds.
func (s *Service) BatchCheckLayerAvailability(ctx context.Context, in *ecrapi.BatchCheckLayerAvailabilityRequest) (*ecrapi.BatchCheckLayerAvailabilityResponse, error) {
	name := deref(in.RepositoryName)
	if _, err := s.reg.Repository(ctx, name); err != nil {
		return nil, err
	}
	out := &ecrapi.BatchCheckLayerAvailabilityResponse{Layers: []ecrapi.Layer{}, Failures: []ecrapi.LayerFailure{}}
	for _, ds := range in.LayerDigests {
		d, err := registry.ParseDigest(ds)
		if err != nil {
			code := ecrapi.LayerFailureCodeInvalidLayerDigest
			out.Failures = append(out.Failures, ecrapi.LayerFailure{FailureCode: &code, FailureReason: ptr("Invalid layer digest"), LayerDigest: ptr(ds)})
			continue
		}
		size, err := s.reg.StatBlob(ctx, name, d)
		if errs.ReasonOf(err) == registry.ReasonBlobUnknown {
			code := ecrapi.LayerFailureCodeMissingLayerDigest
			out.Failures = append(out.Failures, ecrapi.LayerFailure{FailureCode: &code, FailureReason: ptr("Layer not found"), LayerDigest: ptr(ds)})
			continue
		}
		if err != nil {
			return nil, err
		}
		av := ecrapi.LayerAvailabilityAvailable
		out.Layers = append(out.Layers, ecrapi.Layer{LayerAvailability: &av, LayerDigest: ptr(ds), LayerSize: ptr(size), MediaType: ptr("application/vnd.docker.image.rootfs.diff.tar.gzip")})
	}
	return out, nil
}

// InitiateLayerUpload starts an upload session.
func (s *Service) InitiateLayerUpload(ctx context.Context, in *ecrapi.InitiateLayerUploadRequest) (*ecrapi.InitiateLayerUploadResponse, error) {
	id, err := s.reg.StartUpload(ctx, deref(in.RepositoryName))
	if err != nil {
		return nil, err
	}
	return &ecrapi.InitiateLayerUploadResponse{UploadId: ptr(id), PartSize: ptr(int64(layerPartSize))}, nil
}

// UploadLayerPart appends a part, which must start where the upload ends.
func (s *Service) UploadLayerPart(ctx context.Context, in *ecrapi.UploadLayerPartRequest) (*ecrapi.UploadLayerPartResponse, error) {
	name, id := deref(in.RepositoryName), deref(in.UploadId)
	first, last := deref(in.PartFirstByte), deref(in.PartLastByte)
	if last-first+1 != int64(len(in.LayerPartBlob)) || first < 0 {
		return nil, errs.R(errs.Invalid, registry.ReasonRangeInvalid, "The part's byte range %d-%d does not match its %d bytes", first, last, len(in.LayerPartBlob))
	}
	cur, err := s.reg.UploadStatus(ctx, name, id)
	if err != nil {
		return nil, err
	}
	if first != cur {
		return nil, errs.R(errs.Invalid, registry.ReasonRangeInvalid, "The part must start at byte %d, not %d", cur, first)
	}
	size, err := s.reg.AppendUpload(ctx, name, id, first, bytes.NewReader(in.LayerPartBlob))
	if err != nil {
		return nil, err
	}
	return &ecrapi.UploadLayerPartResponse{LastByteReceived: ptr(size - 1), RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(name), UploadId: ptr(id)}, nil
}

// CompleteLayerUpload verifies and commits an upload.
func (s *Service) CompleteLayerUpload(ctx context.Context, in *ecrapi.CompleteLayerUploadRequest) (*ecrapi.CompleteLayerUploadResponse, error) {
	name, id := deref(in.RepositoryName), deref(in.UploadId)
	if len(in.LayerDigests) != 1 {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Exactly one layer digest is required")
	}
	d, err := registry.ParseDigest(in.LayerDigests[0])
	if err != nil {
		return nil, errs.R(errs.Invalid, reasonInvalidLayer, "Invalid layer digest %q", in.LayerDigests[0])
	}
	size, err := s.reg.UploadStatus(ctx, name, id)
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, errs.R(errs.Invalid, reasonEmptyUpload, "The upload %s holds no data", id)
	}
	if _, err := s.reg.StatBlob(ctx, name, d); err == nil {
		s.reg.CancelUpload(ctx, name, id)
		return nil, errs.R(errs.AlreadyExists, reasonLayerExists, "The layer %s already exists in the repository with name '%s' in the registry with id '%s'", d, name, s.cfg.Account)
	}
	if _, err := s.reg.CompleteUpload(ctx, name, id, d); err != nil {
		if errs.ReasonOf(err) == registry.ReasonDigestInvalid {
			return nil, errs.R(errs.Invalid, reasonInvalidLayer, "%s", errs.MessageOf(err))
		}
		return nil, err
	}
	return &ecrapi.CompleteLayerUploadResponse{LayerDigest: ptr(string(d)), RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(name), UploadId: ptr(id)}, nil
}

// GetDownloadUrlForLayer returns a URL that serves the layer: the /v2/
// blob URL with a registry token in its query, so it needs no other
// credential (like ECR's pre-signed URLs; valid as long as the token).
func (s *Service) GetDownloadUrlForLayer(ctx context.Context, in *ecrapi.GetDownloadUrlForLayerRequest) (*ecrapi.GetDownloadUrlForLayerResponse, error) {
	name := deref(in.RepositoryName)
	d, err := registry.ParseDigest(deref(in.LayerDigest))
	if err != nil {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Invalid layer digest")
	}
	if _, err := s.reg.StatBlob(ctx, name, d); err != nil {
		return nil, err
	}
	tok, _, err := s.reg.IssueToken(ctx, awsproto.CallFrom(ctx).Identity.AccessKey)
	if err != nil {
		return nil, err
	}
	u := "http://" + s.host() + "/v2/" + name + "/blobs/" + string(d) + "?" + url.Values{registry.TokenQueryParam: {tok}}.Encode()
	return &ecrapi.GetDownloadUrlForLayerResponse{DownloadUrl: ptr(u), LayerDigest: ptr(string(d))}, nil
}
