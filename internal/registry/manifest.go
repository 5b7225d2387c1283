package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Manifest media types the registry accepts.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerSchema1  = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeForeignLayer   = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       Digest            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     json.RawMessage   `json:"platform,omitempty"`
}

type manifestDoc struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

func manifestTooLarge() error {
	return errs.R(errs.Invalid, ReasonManifestTooLarge, "the manifest exceeds the registry's limit of %d bytes", MaxManifestSize)
}

func manifestInvalid(format string, args ...any) error {
	return errs.R(errs.Invalid, ReasonManifestInvalid, format, args...)
}

// ParseManifest reads a manifest's references. contentType is the type
// the client declared (may be empty); the document's own mediaType wins
// when present and must agree with it.
func ParseManifest(contentType string, body []byte) (Manifest, error) {
	var m Manifest
	if len(body) > MaxManifestSize {
		return m, manifestTooLarge()
	}
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return m, manifestInvalid("the manifest is not valid JSON: %v", err)
	}
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.TrimSpace(ct)
	mt := doc.MediaType
	if mt == "" {
		mt = ct
	}
	if mt == "" {
		// OCI manifests may omit mediaType: tell them by shape.
		if doc.Manifests != nil {
			mt = MediaTypeOCIIndex
		} else {
			mt = MediaTypeOCIManifest
		}
	}
	if doc.MediaType != "" && ct != "" && ct != doc.MediaType && ct != "application/json" {
		return m, manifestInvalid("the Content-Type %q does not match the manifest's mediaType %q", ct, doc.MediaType)
	}
	if doc.SchemaVersion != 2 {
		if mt == mediaTypeDockerSchema1 || doc.SchemaVersion == 1 {
			return m, errs.R(errs.Invalid, ReasonManifestInvalid, "Docker schema 1 manifests are not supported")
		}
		return m, manifestInvalid("schemaVersion must be 2")
	}
	m.MediaType = mt
	m.Size = int64(len(body))
	m.Digest = DigestOf(body)
	m.ArtifactType = doc.ArtifactType
	m.Annotations = doc.Annotations
	m.Content = body
	switch mt {
	case MediaTypeOCIManifest, MediaTypeDockerManifest:
		if doc.Config == nil {
			return m, manifestInvalid("an image manifest needs a config descriptor")
		}
		descs := append([]Descriptor{*doc.Config}, doc.Layers...)
		for i, d := range descs {
			if _, err := ParseDigest(string(d.Digest)); err != nil {
				return m, manifestInvalid("descriptor %d has an invalid digest %q", i, d.Digest)
			}
			if i > 0 {
				m.ImageSize += d.Size
			}
			if len(d.URLs) > 0 || d.MediaType == mediaTypeForeignLayer {
				continue // non-distributable: not held here
			}
			if !slices.Contains(m.Blobs, d.Digest) {
				m.Blobs = append(m.Blobs, d.Digest)
			}
		}
		if m.ArtifactType == "" && mt == MediaTypeOCIManifest {
			// The distribution spec: an image manifest without
			// artifactType is listed with its config's mediaType.
			m.ArtifactType = doc.Config.MediaType
		}
	case MediaTypeOCIIndex, MediaTypeDockerList:
		for i, d := range doc.Manifests {
			if _, err := ParseDigest(string(d.Digest)); err != nil {
				return m, manifestInvalid("manifest %d has an invalid digest %q", i, d.Digest)
			}
			m.Children = append(m.Children, d.Digest)
		}
	default:
		return m, errs.R(errs.Invalid, ReasonManifestInvalid, "unsupported manifest media type %q", mt)
	}
	if doc.Subject != nil {
		if _, err := ParseDigest(string(doc.Subject.Digest)); err != nil {
			return m, manifestInvalid("the subject has an invalid digest")
		}
		m.Subject = doc.Subject.Digest
	}
	return m, nil
}

// PutOptions adjust PutManifest.
type PutOptions struct {
	// NoOverwrite refuses (ReasonImageExists) a push that changes nothing:
	// the manifest exists and the tag, if any, already points to it (ECR's
	// PutImage).
	NoOverwrite bool
	// CanRead says whether the caller may read blobs of another
	// repository. A blob the manifest references that is not yet in the
	// repository is linked only from a repository CanRead allows; nil
	// allows none (the blob must be pushed or mounted first).
	CanRead func(repo string) bool
}

// PutManifest stores a manifest under ref (a tag or its digest) in one
// transaction: every blob it references must be committed and not being
// collected. In an IMMUTABLE repository, moving an existing tag is
// Conflict (ReasonTagImmutable).
func (r *Registry) PutManifest(ctx context.Context, repo, ref, contentType string, body []byte, opts PutOptions) (Manifest, error) {
	m, err := ParseManifest(contentType, body)
	if err != nil {
		return m, err
	}
	tag := ""
	if isDigest(ref) {
		d, err := ParseDigest(ref)
		if err != nil {
			return m, err
		}
		if d != m.Digest {
			return m, errs.R(errs.Invalid, ReasonDigestInvalid, "the manifest has digest %s, not %s", m.Digest, d)
		}
	} else if ref != "" {
		if !ValidTag(ref) {
			return m, errs.R(errs.Invalid, ReasonTagInvalid, "invalid tag %q", ref)
		}
		tag = ref
	}
	if len(body) > inlineManifestSize {
		// Too large for a store record: the bytes go to the blob store
		// under the manifest's digest (linked to the repository, and
		// referenced by the record so the collector keeps them).
		if _, err := r.PutBlob(ctx, repo, m.Digest, bytes.NewReader(body)); err != nil {
			return m, err
		}
		m.ContentInBlobs = true
	}
	for attempt := 0; ; attempt++ {
		repoRec, err := r.Repository(ctx, repo)
		if err != nil {
			return m, err
		}
		now := r.now().UTC()
		m.PushedAt = now
		cmps := []store.Cmp{store.Exists(repoKey(repo))}
		var ops []store.Op
		linksAdded := false
		for _, d := range m.Blobs {
			if _, err := r.st.Get(ctx, blobKey(d)); err != nil {
				if errs.Is(err, errs.NotFound) {
					return m, errs.R(errs.Invalid, ReasonManifestBlobUnknown, "blob %s referenced by the manifest is not known to the registry", d)
				}
				return m, err
			}
			if _, err := r.st.Get(ctx, condemnedKey(d)); err == nil {
				return m, errs.R(errs.Invalid, ReasonManifestBlobUnknown, "blob %s referenced by the manifest is being deleted; push it again", d)
			}
			cmps = append(cmps, store.Absent(condemnedKey(d)))
			_, err := r.st.Get(ctx, linkKey(repo, d))
			switch {
			case err == nil:
				// The link still there at commit (a concurrent DeleteBlob
				// compares the repository's manifests, so one of the
				// two fails). The collector deletes links with their
				// blob's record, so the link stands for the record too.
				cmps = append(cmps, store.Exists(linkKey(repo, d)))
			case errs.Is(err, errs.NotFound):
				ok, err := r.readableElsewhere(ctx, repo, d, opts.CanRead)
				if err != nil {
					return m, err
				}
				if !ok {
					return m, errs.R(errs.Invalid, ReasonManifestBlobUnknown, "blob %s referenced by the manifest is not in repository %s; push or mount it first", d, repo)
				}
				cmps = append(cmps, store.Exists(blobKey(d)))
				ops = append(ops, store.Put(linkKey(repo, d), mustJSON(linkRecord{CreatedAt: now})))
				linksAdded = true
			default:
				return m, err
			}
		}
		if m.ContentInBlobs {
			cmps = append(cmps, store.Exists(blobKey(m.Digest)), store.Absent(condemnedKey(m.Digest)))
		}
		existing := false
		var old Manifest
		if mrev, err := r.getJSON(ctx, manifestKey(repo, m.Digest), &old); err == nil {
			existing = true
			m.PushedAt, m.LastPulledAt = old.PushedAt, old.LastPulledAt
			cmps = append(cmps, store.ModRevisionIs(manifestKey(repo, m.Digest), mrev))
		} else if errs.Is(err, errs.NotFound) {
			cmps = append(cmps, store.Absent(manifestKey(repo, m.Digest)))
		} else {
			return m, err
		}
		tagUnchanged := true
		if tag != "" {
			var t tagRecord
			trev, err := r.getJSON(ctx, tagKey(repo, tag), &t)
			switch {
			case errs.Is(err, errs.NotFound):
				tagUnchanged = false
			case err != nil:
				return m, err
			case t.Digest != m.Digest:
				tagUnchanged = false
				if repoRec.TagImmutable(tag) {
					return m, errs.R(errs.Conflict, ReasonTagImmutable, "%s", tagImmutableMessage(repoRec, tag))
				}
			}
			cmps = append(cmps, store.ModRevisionIs(tagKey(repo, tag), trev))
			if !tagUnchanged {
				ops = append(ops, store.Put(tagKey(repo, tag), mustJSON(tagRecord{Digest: m.Digest, UpdatedAt: now})))
			}
		}
		if existing && tagUnchanged {
			if opts.NoOverwrite {
				return m, errs.R(errs.AlreadyExists, ReasonImageExists, "Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'", m.Digest, tag, repo, r.account)
			}
			if !linksAdded {
				old.Content = body
				return old, nil
			}
		}
		if !existing {
			rec := m
			if rec.ContentInBlobs {
				rec.Content, rec.Annotations = nil, nil // read from the bytes
			}
			b := mustJSON(rec)
			if len(b) > maxManifestRecord {
				return m, errs.R(errs.Invalid, ReasonManifestTooLarge, "the manifest references too many descriptors (%d); the registry's limit is about %d", len(m.Blobs)+len(m.Children), maxManifestRecord/80)
			}
			ops = append(ops, store.Put(manifestKey(repo, m.Digest), b))
		}
		res, err := r.st.Txn(ctx, cmps, ops...)
		if err != nil {
			return m, err
		}
		if res.Succeeded {
			return m, nil
		}
		if attempt > 20 {
			return m, errs.E(errs.Unavailable, "too much contention on repository %s; retry", repo)
		}
	}
}

// DeleteManifest deletes a manifest and every tag pointing to it. A
// manifest an index of the repository lists is refused (Conflict,
// ReasonReferencedByIndex), as ECR refuses it: deleting it would break the
// index.
func (r *Registry) DeleteManifest(ctx context.Context, repo string, d Digest) error {
	for {
		kv, err := r.st.Get(ctx, manifestKey(repo, d))
		if errs.Is(err, errs.NotFound) {
			if _, err := r.Repository(ctx, repo); err != nil {
				return err
			}
			return errs.R(errs.NotFound, ReasonManifestUnknown, "manifest %s is not found in repository %s", d, repo)
		}
		if err != nil {
			return err
		}
		ms, err := r.Manifests(ctx, repo)
		if err != nil {
			return err
		}
		for _, idx := range ms {
			if idx.Digest != d && slices.Contains(idx.Children, d) {
				return errs.R(errs.Conflict, ReasonReferencedByIndex, "manifest %s is referenced by the manifest list %s in repository %s; delete the manifest list first", d, idx.Digest, repo)
			}
		}
		prefix := pfxTag + repo + "@"
		tags, _, err := r.listAll(ctx, prefix, false, 0)
		if err != nil {
			return err
		}
		cmps := []store.Cmp{store.ModRevisionIs(kv.Key, kv.ModRevision)}
		ops := []store.Op{store.Delete(kv.Key)}
		for _, t := range tags {
			var rec tagRecord
			if json.Unmarshal(t.Value, &rec) == nil && rec.Digest == d {
				cmps = append(cmps, store.ModRevisionIs(t.Key, t.ModRevision))
				ops = append(ops, store.Delete(t.Key))
			}
		}
		res, err := r.st.Txn(ctx, cmps, ops...)
		if err != nil {
			return err
		}
		if res.Succeeded {
			return nil
		}
	}
}

// DeleteTag removes a tag, leaving its manifest.
func (r *Registry) DeleteTag(ctx context.Context, repo, tag string) error {
	if _, err := r.ResolveTag(ctx, repo, tag); err != nil {
		return err
	}
	_, err := r.st.Txn(ctx, nil, store.Delete(tagKey(repo, tag)))
	return err
}

// Referrers returns descriptors of the manifests in repo whose subject is
// d, optionally only those of one artifact type.
func (r *Registry) Referrers(ctx context.Context, repo string, d Digest, artifactType string) ([]Descriptor, error) {
	ms, err := r.Manifests(ctx, repo)
	if err != nil {
		return nil, err
	}
	out := []Descriptor{}
	for _, m := range ms {
		if m.Subject != d {
			continue
		}
		if m.ContentInBlobs {
			// Its annotations are in its bytes only.
			if full, err := r.GetManifest(ctx, repo, string(m.Digest), false); err == nil {
				if pm, err := ParseManifest(full.MediaType, full.Content); err == nil {
					m.Annotations = pm.Annotations
				}
			}
		}
		at := m.ArtifactType
		if at == "" && m.MediaType == MediaTypeOCIManifest && len(m.Content) > 0 {
			// Recorded before the config's type was kept for it.
			if pm, err := ParseManifest(m.MediaType, m.Content); err == nil {
				at = pm.ArtifactType
			}
		}
		if artifactType != "" && at != artifactType {
			continue
		}
		out = append(out, Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, ArtifactType: at, Annotations: m.Annotations})
	}
	return out, nil
}

// tagImmutableMessage is ECR's message for a push that would move an
// immutable tag.
func tagImmutableMessage(repo Repository, tag string) string {
	if repo.TagMutability == Immutable {
		return fmt.Sprintf("The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.", tag, repo.Name)
	}
	return fmt.Sprintf("The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the tag is immutable under the repository's tag mutability setting %s and its exclusion filters.", tag, repo.Name, repo.TagMutability)
}
