// Package registry is Berth's image registry: repositories, manifests,
// tags and blobs, served over the OCI distribution API at /v2/ (http.go)
// and used by the ECR API (package ecr).
//
// Blob contents live in a BlobStore (content-addressed files under the data
// directory today). Everything else — repositories, manifests (with their
// bytes), tags, which repositories may read which blob, upload sessions —
// lives in the store (etcd), one transaction per change:
//
//	/registry/repo/<name>                 Repository
//	/registry/manifest/<name>@<digest>    Manifest (bytes included)
//	/registry/tag/<name>@<tag>            tagRecord
//	/registry/link/<name>@<digest>        linkRecord: the repository may read the blob
//	/registry/blob/<digest>               blobRecord: the blob is committed
//	/registry/gc/condemned/<digest>       GC is deleting the blob (see gc.go)
//	/registry/upload/<id>                 uploadRecord
//	/registry/config/token-key            the key that signs registry tokens
//	/registry/config/blob-store-owner     the server that owns the blobs (owner.go)
//
// '@' cannot occur in a repository name, so "<name>@" prefixes never
// match another repository's keys.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/lazyre"
	"github.com/berthdev/berth/internal/store"
)

const (
	pfxRepo      = "/registry/repo/"
	pfxManifest  = "/registry/manifest/"
	pfxTag       = "/registry/tag/"
	pfxLink      = "/registry/link/"
	pfxBlob      = "/registry/blob/"
	pfxCondemned = "/registry/gc/condemned/"
	pfxUpload    = "/registry/upload/"
	keyTokenKey  = "/registry/config/token-key"
)

// Tag mutability values (ECR's).
const (
	Mutable   = "MUTABLE"
	Immutable = "IMMUTABLE"
	// MutableWithExclusion: tags are mutable except those matching one of
	// the repository's exclusion filters, which are immutable.
	MutableWithExclusion = "MUTABLE_WITH_EXCLUSION"
	// ImmutableWithExclusion: tags are immutable except those matching one
	// of the repository's exclusion filters, which are mutable.
	ImmutableWithExclusion = "IMMUTABLE_WITH_EXCLUSION"
)

// TagImmutable reports whether tag, once it exists in repo, may not be
// moved to another image: the repository's tag mutability with its
// exclusion filters (wildcards where * matches any run of characters).
func (repo Repository) TagImmutable(tag string) bool {
	switch repo.TagMutability {
	case Immutable:
		return true
	case MutableWithExclusion:
		return matchesAny(repo.TagMutabilityExclusions, tag)
	case ImmutableWithExclusion:
		return !matchesAny(repo.TagMutabilityExclusions, tag)
	}
	return false
}

func matchesAny(filters []string, tag string) bool {
	for _, f := range filters {
		if WildcardMatch(f, tag) {
			return true
		}
	}
	return false
}

// WildcardMatch reports whether s matches pattern, where * matches any run
// of characters (possibly empty) and every other character itself.
func WildcardMatch(pattern, s string) bool {
	// Greedy match with backtracking to the last star: linear in practice.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] != '*' && pattern[p] == s[i]:
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			mark++
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// MaxManifestSize caps a manifest's bytes: 4 MiB, the size the
// distribution spec says registries should accept. A larger one is
// refused (413, MANIFEST_INVALID).
const MaxManifestSize = 4 << 20

// inlineManifestSize is the largest manifest whose bytes are kept in its
// store record; a larger one is kept in the blob store under its own
// digest (etcd requests are limited to 1.5 MiB).
const inlineManifestSize = 256 << 10

// maxManifestRecord caps a manifest's store record (its references).
const maxManifestRecord = 1 << 20

// Config configures a Registry.
type Config struct {
	Store   store.Store
	Blobs   BlobStore
	Account string // registry id: the 12-digit account
	Log     *slog.Logger
	Now     func() time.Time // nil: time.Now
	// GCGrace is how long a blob no manifest references is kept after its
	// last upload or mount, and how long an orphaned file is kept
	// (default 1 h).
	GCGrace time.Duration
	// GCInterval is the period of the background collector (default 10 min).
	GCInterval time.Duration
	// UploadTTL is how long an idle upload session lives (default 24 h).
	UploadTTL time.Duration
	// Owns reports whether this server owns the blob store (owner.go);
	// Run collects garbage only then. nil: always.
	Owns func() bool
}

// Registry is the registry's domain layer. It is safe for concurrent use.
type Registry struct {
	st      store.Store
	blobs   BlobStore
	account string
	log     *slog.Logger
	now     func() time.Time
	cfg     Config

	digestLocks [256]sync.Mutex
	// verified holds blobs whose content this process has checked against
	// their digest (at commit, or on a first full read), by size.
	verified  sync.Map // Digest -> int64
	tokenKey  []byte
	tokenOnce sync.Mutex
	sealer    Sealer // seals tokenKey in the store (SetSecretSealer); nil: clear
	// repoARN writes a repository's ARN in access-denied messages (set by
	// package ecr, which knows the partition and region).
	repoARN func(name string) string
}

// New returns a registry.
func New(cfg Config) *Registry {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.GCGrace == 0 {
		cfg.GCGrace = time.Hour
	}
	if cfg.GCInterval == 0 {
		cfg.GCInterval = 10 * time.Minute
	}
	if cfg.UploadTTL == 0 {
		cfg.UploadTTL = 24 * time.Hour
	}
	return &Registry{st: cfg.Store, blobs: cfg.Blobs, account: cfg.Account, log: cfg.Log, now: cfg.Now, cfg: cfg}
}

// Account is the registry id.
func (r *Registry) Account() string { return r.account }

// Blobs returns the blob store.
func (r *Registry) Blobs() BlobStore { return r.blobs }

// lockDigest serialises, within this process, the commit of a blob file
// with its store record and the collector's delete of both.
func (r *Registry) lockDigest(d Digest) func() {
	h := d.Hex()
	b, _ := hex.DecodeString(h[:2])
	m := &r.digestLocks[b[0]]
	m.Lock()
	return m.Unlock
}

// Repository is one image repository.
type Repository struct {
	Name          string    `json:"name"`
	CreatedAt     time.Time `json:"createdAt"`
	TagMutability string    `json:"tagMutability"` // Mutable, Immutable or one of the *WithExclusion
	// TagMutabilityExclusions are the wildcard filters of a *WithExclusion
	// mutability.
	TagMutabilityExclusions []string      `json:"tagMutabilityExclusions,omitempty"`
	ScanOnPush              bool          `json:"scanOnPush,omitempty"`
	EncryptionType          string        `json:"encryptionType"` // AES256 or KMS
	KMSKey                  string        `json:"kmsKey,omitempty"`
	Tags                    []ResourceTag `json:"tags,omitempty"`
	// Policy is the repository policy text (validated by
	// ParseRepositoryPolicy; enforced by Authorize).
	Policy string `json:"policy,omitempty"`
	// LifecyclePolicy is the lifecycle policy text, evaluated by Run.
	LifecyclePolicy      string    `json:"lifecyclePolicy,omitempty"`
	LifecycleEvaluatedAt time.Time `json:"lifecycleEvaluatedAt,omitzero"`
	// PreviewPolicy is the policy of the last lifecycle preview started.
	PreviewPolicy string `json:"previewPolicy,omitempty"`
}

// ResourceTag is a key-value tag on a repository.
type ResourceTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Manifest is one manifest in a repository.
type Manifest struct {
	Digest       Digest            `json:"digest"`
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Size         int64             `json:"size"`
	PushedAt     time.Time         `json:"pushedAt"`
	LastPulledAt time.Time         `json:"lastPulledAt,omitzero"`
	Blobs        []Digest          `json:"blobs,omitempty"`    // config and layers
	Children     []Digest          `json:"children,omitempty"` // manifests of an index
	Subject      Digest            `json:"subject,omitempty"`
	ImageSize    int64             `json:"imageSize"` // sum of the layers' sizes
	Annotations  map[string]string `json:"annotations,omitempty"`
	Content      []byte            `json:"content"`
	// ContentInBlobs: the bytes are the blob Digest, not Content (a
	// manifest larger than inlineManifestSize).
	ContentInBlobs bool `json:"contentInBlobs,omitempty"`
}

type tagRecord struct {
	Digest    Digest    `json:"digest"`
	UpdatedAt time.Time `json:"updatedAt"`
}

type linkRecord struct {
	CreatedAt time.Time `json:"createdAt"`
}

type blobRecord struct {
	Size     int64     `json:"size"`
	LastUsed time.Time `json:"lastUsed"` // last upload or mount
}

type uploadRecord struct {
	Repo      string    `json:"repo"`
	StartedAt time.Time `json:"startedAt"`
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = lazyre.New(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// ValidName reports whether name is a valid repository name.
func ValidName(name string) bool {
	return len(name) >= 2 && len(name) <= 256 && nameRE.MatchString(name)
}

// ValidTag reports whether tag is a valid tag.
func ValidTag(tag string) bool { return tagRE.MatchString(tag) }

func repoKey(name string) string               { return pfxRepo + name }
func manifestKey(name string, d Digest) string { return pfxManifest + name + "@" + string(d) }
func tagKey(name, tag string) string           { return pfxTag + name + "@" + tag }
func linkKey(name string, d Digest) string     { return pfxLink + name + "@" + string(d) }
func blobKey(d Digest) string                  { return pfxBlob + string(d) }
func condemnedKey(d Digest) string             { return pfxCondemned + string(d) }
func uploadKey(id string) string               { return pfxUpload + id }
func mustJSON(v any) []byte                    { b, _ := json.Marshal(v); return b }
func (r *Registry) nameUnknown(name string) error {
	return errs.R(errs.NotFound, ReasonNameUnknown, "The repository with name '%s' does not exist in the registry with id '%s'", name, r.account)
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (r *Registry) getJSON(ctx context.Context, key string, v any) (int64, error) {
	kv, err := r.st.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return 0, errs.Wrap(errs.Internal, err, "decode %s", key)
	}
	return kv.ModRevision, nil
}

// listAll reads every key under prefix, paging through the store.
func (r *Registry) listAll(ctx context.Context, prefix string, keysOnly bool, rev int64) ([]store.KV, int64, error) {
	var out []store.KV
	after := ""
	for {
		res, err := r.st.List(ctx, prefix, store.ListOptions{StartAfter: after, Limit: 1000, KeysOnly: keysOnly, Revision: rev})
		if err != nil {
			return nil, 0, err
		}
		out = append(out, res.KVs...)
		rev = res.Revision
		if !res.More || len(res.KVs) == 0 {
			return out, rev, nil
		}
		after = res.KVs[len(res.KVs)-1].Key
	}
}

// ---- repositories ----

// CreateRepository creates a repository. AlreadyExists (ReasonRepoExists)
// when it exists.
func (r *Registry) CreateRepository(ctx context.Context, repo Repository) (Repository, error) {
	if !ValidName(repo.Name) {
		return Repository{}, errs.R(errs.Invalid, ReasonNameInvalid, "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression %s'", nameRE.String())
	}
	if repo.TagMutability == "" {
		repo.TagMutability = Mutable
	}
	if repo.EncryptionType == "" {
		repo.EncryptionType = "AES256"
	}
	repo.CreatedAt = r.now().UTC()
	res, err := r.st.Txn(ctx, []store.Cmp{store.Absent(repoKey(repo.Name))}, store.Put(repoKey(repo.Name), mustJSON(repo)))
	if err != nil {
		return Repository{}, err
	}
	if !res.Succeeded {
		return Repository{}, errs.R(errs.AlreadyExists, ReasonRepoExists, "The repository with name '%s' already exists in the registry with id '%s'", repo.Name, r.account)
	}
	return repo, nil
}

// Repository returns a repository. NotFound (ReasonNameUnknown).
func (r *Registry) Repository(ctx context.Context, name string) (Repository, error) {
	var repo Repository
	_, err := r.getJSON(ctx, repoKey(name), &repo)
	if errs.Is(err, errs.NotFound) {
		return repo, r.nameUnknown(name)
	}
	return repo, err
}

// Repositories lists repositories in name order after a name.
func (r *Registry) Repositories(ctx context.Context, after string, limit int) ([]Repository, bool, error) {
	opts := store.ListOptions{Limit: int64(limit)}
	if after != "" {
		opts.StartAfter = repoKey(after)
	}
	res, err := r.st.List(ctx, pfxRepo, opts)
	if err != nil {
		return nil, false, err
	}
	out := make([]Repository, 0, len(res.KVs))
	for _, kv := range res.KVs {
		var repo Repository
		if json.Unmarshal(kv.Value, &repo) == nil {
			out = append(out, repo)
		}
	}
	return out, res.More, nil
}

// UpdateRepository applies fn to a repository in one transaction, retrying
// on concurrent changes.
func (r *Registry) UpdateRepository(ctx context.Context, name string, fn func(*Repository) error) (Repository, error) {
	for {
		var repo Repository
		rev, err := r.getJSON(ctx, repoKey(name), &repo)
		if errs.Is(err, errs.NotFound) {
			return repo, r.nameUnknown(name)
		}
		if err != nil {
			return repo, err
		}
		if err := fn(&repo); err != nil {
			return repo, err
		}
		res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(repoKey(name), rev)}, store.Put(repoKey(name), mustJSON(repo)))
		if err != nil {
			return repo, err
		}
		if res.Succeeded {
			return repo, nil
		}
	}
}

// DeleteRepository deletes a repository with its manifests, tags and blob
// links. Without force, a repository holding images is Conflict
// (ReasonRepoNotEmpty). Blobs are reclaimed by the collector.
func (r *Registry) DeleteRepository(ctx context.Context, name string, force bool) (Repository, error) {
	var repo Repository
	rev, err := r.getJSON(ctx, repoKey(name), &repo)
	if errs.Is(err, errs.NotFound) {
		return repo, r.nameUnknown(name)
	}
	if err != nil {
		return repo, err
	}
	if !force {
		res, err := r.st.List(ctx, pfxManifest+name+"@", store.ListOptions{Limit: 1, KeysOnly: true})
		if err != nil {
			return repo, err
		}
		if len(res.KVs) > 0 {
			return repo, errs.R(errs.Conflict, ReasonRepoNotEmpty, "The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", name, r.account)
		}
	}
	res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(repoKey(name), rev)},
		store.DeletePrefix(pfxManifest+name+"@"),
		store.DeletePrefix(pfxTag+name+"@"),
		store.DeletePrefix(pfxLink+name+"@"),
		store.Delete(repoKey(name)))
	if err != nil {
		return repo, err
	}
	if !res.Succeeded {
		return r.DeleteRepository(ctx, name, force)
	}
	return repo, nil
}

// ---- blobs ----

// StatBlob returns the size of a blob the repository may read.
func (r *Registry) StatBlob(ctx context.Context, repo string, d Digest) (int64, error) {
	if _, err := r.st.Get(ctx, linkKey(repo, d)); err != nil {
		if errs.Is(err, errs.NotFound) {
			if _, err := r.Repository(ctx, repo); err != nil {
				return 0, err
			}
			return 0, blobUnknown(d)
		}
		return 0, err
	}
	var rec blobRecord
	if _, err := r.getJSON(ctx, blobKey(d), &rec); err != nil {
		if errs.Is(err, errs.NotFound) {
			return 0, blobUnknown(d)
		}
		return 0, err
	}
	return rec.Size, nil
}

// OpenBlob opens a blob the repository may read.
func (r *Registry) OpenBlob(ctx context.Context, repo string, d Digest) (Blob, error) {
	if _, err := r.StatBlob(ctx, repo, d); err != nil {
		return nil, err
	}
	return r.blobs.Open(ctx, d)
}

// DeleteBlob removes the repository's access to a blob. A blob a manifest
// of the repository references is refused (Conflict, ReasonBlobInUse):
// removing it would break the manifest. The delete compares the
// repository's manifests unchanged since the check, and PutManifest
// compares the links it relies on, so of a concurrent push and delete one
// fails and retries.
func (r *Registry) DeleteBlob(ctx context.Context, repo string, d Digest) error {
	for {
		if _, err := r.StatBlob(ctx, repo, d); err != nil {
			return err
		}
		lkv, err := r.st.Get(ctx, linkKey(repo, d))
		if errs.Is(err, errs.NotFound) {
			return blobUnknown(d)
		}
		if err != nil {
			return err
		}
		mprefix := pfxManifest + repo + "@"
		kvs, rev, err := r.listAll(ctx, mprefix, false, 0)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			var m Manifest
			if json.Unmarshal(kv.Value, &m) == nil && (slices.Contains(m.Blobs, d) || (m.ContentInBlobs && m.Digest == d)) {
				return errs.R(errs.Conflict, ReasonBlobInUse, "blob %s is referenced by manifest %s in repository %s; delete the manifest first", d, m.Digest, repo)
			}
		}
		res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(lkv.Key, lkv.ModRevision), store.PrefixUnchangedSince(mprefix, rev)}, store.Delete(lkv.Key))
		if err != nil {
			return err
		}
		if res.Succeeded {
			return nil
		}
	}
}

// readableElsewhere reports whether another repository holds blob d and
// canRead allows reading from it (nil allows none).
func (r *Registry) readableElsewhere(ctx context.Context, repo string, d Digest, canRead func(string) bool) (bool, error) {
	if canRead == nil {
		return false, nil
	}
	repos, _, err := r.listAll(ctx, pfxRepo, true, 0)
	if err != nil {
		return false, err
	}
	for _, kv := range repos {
		name := strings.TrimPrefix(kv.Key, pfxRepo)
		if name == repo {
			continue
		}
		if _, err := r.st.Get(ctx, linkKey(name, d)); err == nil {
			if canRead(name) {
				return true, nil
			}
		} else if !errs.Is(err, errs.NotFound) {
			return false, err
		}
	}
	return false, nil
}

// MountBlob gives repo access to a blob that from may read. Without from
// (OCI 1.1), the blob must be in a repository canRead allows (nil: none).
// It returns false (and no error) when the blob cannot be mounted, so the
// client uploads it instead.
func (r *Registry) MountBlob(ctx context.Context, repo, from string, d Digest, canRead func(string) bool) (bool, error) {
	if _, err := r.Repository(ctx, repo); err != nil {
		return false, err
	}
	if from == "" {
		if _, err := r.st.Get(ctx, linkKey(repo, d)); err != nil {
			ok, err := r.readableElsewhere(ctx, repo, d, canRead)
			if err != nil || !ok {
				return false, err
			}
		}
	} else if _, err := r.StatBlob(ctx, from, d); err != nil {
		return false, nil
	}
	var rec blobRecord
	if _, err := r.getJSON(ctx, blobKey(d), &rec); err != nil {
		return false, nil
	}
	rec.LastUsed = r.now().UTC()
	res, err := r.st.Txn(ctx, []store.Cmp{store.Exists(repoKey(repo)), store.Exists(blobKey(d)), store.Absent(condemnedKey(d))},
		store.Put(linkKey(repo, d), mustJSON(linkRecord{CreatedAt: r.now().UTC()})),
		store.Put(blobKey(d), mustJSON(rec)))
	if err != nil {
		return false, err
	}
	return res.Succeeded, nil
}

// ---- uploads ----

// StartUpload begins an upload session in a repository.
func (r *Registry) StartUpload(ctx context.Context, repo string) (string, error) {
	if _, err := r.Repository(ctx, repo); err != nil {
		return "", err
	}
	id := newID()
	if err := r.blobs.CreateUpload(ctx, id); err != nil {
		return "", err
	}
	_, err := r.st.Txn(ctx, nil, store.Put(uploadKey(id), mustJSON(uploadRecord{Repo: repo, StartedAt: r.now().UTC()})))
	if err != nil {
		r.blobs.AbortUpload(ctx, id)
		return "", err
	}
	return id, nil
}

func (r *Registry) checkUpload(ctx context.Context, repo, id string) error {
	if !validUploadID(id) {
		return uploadUnknown(id)
	}
	var rec uploadRecord
	if _, err := r.getJSON(ctx, uploadKey(id), &rec); err != nil {
		if errs.Is(err, errs.NotFound) {
			return uploadUnknown(id)
		}
		return err
	}
	if rec.Repo != repo {
		return uploadUnknown(id)
	}
	return nil
}

// AppendUpload appends a chunk that must start at offset (the bytes
// received so far) and returns the new size.
func (r *Registry) AppendUpload(ctx context.Context, repo, id string, offset int64, body io.Reader) (int64, error) {
	if err := r.checkUpload(ctx, repo, id); err != nil {
		return 0, err
	}
	return r.blobs.AppendUpload(ctx, id, offset, body)
}

// UploadStatus returns the bytes received so far.
func (r *Registry) UploadStatus(ctx context.Context, repo, id string) (int64, error) {
	if err := r.checkUpload(ctx, repo, id); err != nil {
		return 0, err
	}
	return r.blobs.UploadSize(ctx, id)
}

// CompleteUpload verifies the upload against d and commits it as a blob
// the repository may read.
func (r *Registry) CompleteUpload(ctx context.Context, repo, id string, d Digest) (int64, error) {
	if err := r.checkUpload(ctx, repo, id); err != nil {
		return 0, err
	}
	unlock := r.lockDigest(d)
	defer unlock()
	size, err := r.blobs.CommitUpload(ctx, id, d)
	if err != nil {
		if errs.Is(err, errs.Invalid) {
			r.st.Txn(ctx, nil, store.Delete(uploadKey(id)))
		}
		return 0, err
	}
	now := r.now().UTC()
	res, err := r.st.Txn(ctx, []store.Cmp{store.Exists(repoKey(repo))},
		store.Put(blobKey(d), mustJSON(blobRecord{Size: size, LastUsed: now})),
		store.Put(linkKey(repo, d), mustJSON(linkRecord{CreatedAt: now})),
		store.Delete(condemnedKey(d)),
		store.Delete(uploadKey(id)))
	if err != nil {
		return 0, err
	}
	r.verified.Store(d, size)
	if !res.Succeeded {
		r.st.Txn(ctx, nil, store.Delete(uploadKey(id)))
		return 0, r.nameUnknown(repo)
	}
	return size, nil
}

// CancelUpload ends an upload session and drops its bytes.
func (r *Registry) CancelUpload(ctx context.Context, repo, id string) error {
	if err := r.checkUpload(ctx, repo, id); err != nil {
		return err
	}
	if err := r.blobs.AbortUpload(ctx, id); err != nil {
		return err
	}
	_, err := r.st.Txn(ctx, nil, store.Delete(uploadKey(id)))
	return err
}

// PutBlob uploads a whole blob in one call.
func (r *Registry) PutBlob(ctx context.Context, repo string, d Digest, body io.Reader) (int64, error) {
	id, err := r.StartUpload(ctx, repo)
	if err != nil {
		return 0, err
	}
	if _, err := r.AppendUpload(ctx, repo, id, 0, body); err != nil {
		r.CancelUpload(ctx, repo, id)
		return 0, err
	}
	return r.CompleteUpload(ctx, repo, id, d)
}

// ---- tags and manifests (reads) ----

// Tags lists a repository's tags in lexical order after a tag.
func (r *Registry) Tags(ctx context.Context, repo, after string, limit int) ([]string, bool, error) {
	if _, err := r.Repository(ctx, repo); err != nil {
		return nil, false, err
	}
	prefix := pfxTag + repo + "@"
	opts := store.ListOptions{KeysOnly: true, Limit: int64(limit)}
	if after != "" {
		opts.StartAfter = prefix + after
	}
	res, err := r.st.List(ctx, prefix, opts)
	if err != nil {
		return nil, false, err
	}
	out := make([]string, 0, len(res.KVs))
	for _, kv := range res.KVs {
		out = append(out, strings.TrimPrefix(kv.Key, prefix))
	}
	return out, res.More, nil
}

// TagMap returns a repository's tags by digest, each list sorted.
func (r *Registry) TagMap(ctx context.Context, repo string) (map[Digest][]string, error) {
	prefix := pfxTag + repo + "@"
	kvs, _, err := r.listAll(ctx, prefix, false, 0)
	if err != nil {
		return nil, err
	}
	m := map[Digest][]string{}
	for _, kv := range kvs {
		var t tagRecord
		if json.Unmarshal(kv.Value, &t) == nil {
			m[t.Digest] = append(m[t.Digest], strings.TrimPrefix(kv.Key, prefix))
		}
	}
	for _, v := range m {
		sort.Strings(v)
	}
	return m, nil
}

// Manifests returns every manifest of a repository.
func (r *Registry) Manifests(ctx context.Context, repo string) ([]Manifest, error) {
	if _, err := r.Repository(ctx, repo); err != nil {
		return nil, err
	}
	kvs, _, err := r.listAll(ctx, pfxManifest+repo+"@", false, 0)
	if err != nil {
		return nil, err
	}
	out := make([]Manifest, 0, len(kvs))
	for _, kv := range kvs {
		var m Manifest
		if json.Unmarshal(kv.Value, &m) == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// ResolveTag returns the digest a tag points to.
func (r *Registry) ResolveTag(ctx context.Context, repo, tag string) (Digest, error) {
	var t tagRecord
	if _, err := r.getJSON(ctx, tagKey(repo, tag), &t); err != nil {
		if errs.Is(err, errs.NotFound) {
			if _, err := r.Repository(ctx, repo); err != nil {
				return "", err
			}
			return "", errs.R(errs.NotFound, ReasonManifestUnknown, "manifest tagged %q is not found in repository %s", tag, repo)
		}
		return "", err
	}
	return t.Digest, nil
}

// GetManifest returns a manifest by tag or digest. With recordPull the
// manifest's last pull time is updated (at most once a minute).
func (r *Registry) GetManifest(ctx context.Context, repo, ref string, recordPull bool) (Manifest, error) {
	d := Digest(ref)
	if !isDigest(ref) {
		var err error
		if d, err = r.ResolveTag(ctx, repo, ref); err != nil {
			return Manifest{}, err
		}
	} else if _, err := ParseDigest(ref); err != nil {
		return Manifest{}, err
	}
	var m Manifest
	kv, err := r.st.Get(ctx, manifestKey(repo, d))
	if errs.Is(err, errs.NotFound) {
		if _, err := r.Repository(ctx, repo); err != nil {
			return m, err
		}
		return m, errs.R(errs.NotFound, ReasonManifestUnknown, "manifest %s is not found in repository %s", ref, repo)
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(kv.Value, &m); err != nil {
		return m, errs.Wrap(errs.Internal, err, "decode manifest")
	}
	if m.ContentInBlobs {
		b, err := r.blobs.Open(ctx, m.Digest)
		if err != nil {
			return m, errs.Wrap(errs.Internal, err, "manifest %s: its bytes are missing from the blob store", m.Digest)
		}
		m.Content, err = io.ReadAll(io.LimitReader(b, MaxManifestSize+1))
		b.Close()
		if err != nil {
			return m, errs.Wrap(errs.Internal, err, "read manifest %s", m.Digest)
		}
		if DigestOf(m.Content) != m.Digest {
			return m, errs.E(errs.Internal, "manifest %s: the bytes in the blob store do not match its digest", m.Digest)
		}
	}
	if now := r.now().UTC(); recordPull && now.Sub(m.LastPulledAt) > time.Minute {
		m2 := m
		m2.LastPulledAt = now
		// Best effort: a concurrent change wins.
		r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(kv.Key, kv.ModRevision)}, store.Put(kv.Key, mustJSON(m2)))
	}
	return m, nil
}
