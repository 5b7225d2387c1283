package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/iam"
)

// HandlerConfig configures the OCI distribution handler.
type HandlerConfig struct {
	// Identities resolves the access key inside a registry token.
	Identities Identities
	// AllowAnonymousPull lets requests without credentials read (GET and
	// HEAD). Off by default.
	AllowAnonymousPull bool
	// Realm is the Basic auth realm; default "Berth ECR".
	Realm string
	Log   *slog.Logger
}

// Handler serves the OCI distribution API under /v2/.
type Handler struct {
	reg *Registry
	cfg HandlerConfig
}

// NewHandler returns the /v2/ handler.
func NewHandler(reg *Registry, cfg HandlerConfig) *Handler {
	if cfg.Realm == "" {
		cfg.Realm = "Berth ECR"
	}
	if cfg.Log == nil {
		cfg.Log = reg.log
	}
	return &Handler{reg: reg, cfg: cfg}
}

type identityKey struct{}

// IdentityFrom returns the identity a /v2/ request authenticated as.
func IdentityFrom(ctx context.Context) (iam.Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(iam.Identity)
	return id, ok
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, status := ociCode(err)
	if status >= 500 {
		h.cfg.Log.Error("registry request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q,service=\"ecr.amazonaws.com\"", h.cfg.Realm))
	}
	msg := errs.MessageOf(err)
	if status >= 500 && errs.KindOf(err) != errs.Unavailable {
		msg = "internal error"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	json.NewEncoder(w).Encode(struct {
		Errors []ociError `json:"errors"`
	}{[]ociError{{Code: code, Message: msg}}})
}

// TokenQueryParam carries a registry token in a blob URL (ECR's
// GetDownloadUrlForLayer); it is accepted on blob GETs only.
const TokenQueryParam = "berth-token"

// authenticateScoped authenticates a /v2/ request and says whether its
// credential is a pull token (pull only).
func (h *Handler) authenticateScoped(r *http.Request) (iam.Identity, bool, error) {
	if _, pass, ok := r.BasicAuth(); ok && strings.HasPrefix(pass, pullTokenPrefix) {
		if user, _, _ := r.BasicAuth(); user != "AWS" {
			return iam.Identity{}, true, errs.R(errs.Unauthenticated, ReasonUnauthorized, "the user name must be AWS")
		}
		id, _, err := h.reg.verifyPullToken(r.Context(), pass)
		return id, true, err
	}
	id, err := h.authenticateKey(r)
	return id, false, err
}

func (h *Handler) authenticateKey(r *http.Request) (iam.Identity, error) {
	user, pass, ok := r.BasicAuth()
	if tok := r.URL.Query().Get(TokenQueryParam); !ok && tok != "" && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
		user, pass, ok = "AWS", tok, true
	}
	if !ok {
		if h.cfg.AllowAnonymousPull && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			return iam.Identity{}, nil
		}
		return iam.Identity{}, errs.R(errs.Unauthenticated, ReasonUnauthorized, "authentication required: docker login -u AWS -p $(aws ecr get-login-password)")
	}
	if user != "AWS" {
		return iam.Identity{}, errs.R(errs.Unauthenticated, ReasonUnauthorized, "the user name must be AWS")
	}
	if h.cfg.Identities == nil {
		return iam.Identity{}, errs.R(errs.Unauthenticated, ReasonUnauthorized, "no identities configured")
	}
	id, err := h.reg.VerifyToken(r.Context(), h.cfg.Identities, pass)
	if err != nil {
		return id, err
	}
	// One account per installation today: a token reaches that account's
	// repositories only. Repository policies narrow this per request (ServeHTTP).
	if id.Account != "" && h.reg.account != "" && id.Account != h.reg.account {
		return id, errs.R(errs.Forbidden, ReasonDenied, "the credential may not access registry %s", h.reg.account)
	}
	return id, nil
}

// route is a parsed /v2/ path.
type route struct {
	kind string // base, catalog, tags, manifest, blob, uploads, upload, referrers
	name string
	arg  string
}

func parseRoute(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2")
	if !ok {
		return route{}, false
	}
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return route{kind: "base"}, true
	}
	if rest == "_catalog" {
		return route{kind: "catalog"}, true
	}
	seg := strings.Split(rest, "/")
	n := len(seg)
	join := func(k int) string { return strings.Join(seg[:k], "/") }
	switch {
	case n >= 3 && seg[n-2] == "tags" && seg[n-1] == "list":
		return route{kind: "tags", name: join(n - 2)}, true
	case n >= 3 && seg[n-2] == "blobs" && seg[n-1] == "uploads":
		return route{kind: "uploads", name: join(n - 2)}, true
	case n >= 4 && seg[n-3] == "blobs" && seg[n-2] == "uploads":
		return route{kind: "upload", name: join(n - 3), arg: seg[n-1]}, true
	case n >= 3 && seg[n-2] == "manifests":
		return route{kind: "manifest", name: join(n - 2), arg: seg[n-1]}, true
	case n >= 3 && seg[n-2] == "blobs":
		return route{kind: "blob", name: join(n - 2), arg: seg[n-1]}, true
	case n >= 3 && seg[n-2] == "referrers":
		return route{kind: "referrers", name: join(n - 2), arg: seg[n-1]}, true
	}
	return route{}, false
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	id, pullOnly, err := h.authenticateScoped(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		h.writeError(w, r, errs.R(errs.NotFound, ReasonNameUnknown, "no such registry endpoint %s", r.URL.Path))
		return
	}
	if pullOnly && !pullRoute(rt, r.Method) {
		h.writeError(w, r, errs.R(errs.Forbidden, ReasonDenied, "this registry token allows pulling only (%s %s refused)", r.Method, r.URL.Path))
		return
	}
	if rt.name != "" && !ValidName(rt.name) {
		h.writeError(w, r, errs.R(errs.Invalid, ReasonNameInvalid, "invalid repository name %q", rt.name))
		return
	}
	if acts := v2Actions(rt, r); rt.name != "" && len(acts) > 0 {
		if err := h.reg.Authorize(r.Context(), id, rt.name, acts...); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	switch rt.kind + " " + r.Method {
	case "base GET", "base HEAD":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	case "catalog GET":
		h.catalog(w, r)
	case "tags GET":
		h.tags(w, r, rt.name)
	case "manifest GET", "manifest HEAD":
		h.getManifest(w, r, rt.name, rt.arg)
	case "manifest PUT":
		h.putManifest(w, r, rt.name, rt.arg)
	case "manifest DELETE":
		h.deleteManifest(w, r, rt.name, rt.arg)
	case "blob GET", "blob HEAD":
		h.getBlob(w, r, rt.name, rt.arg)
	case "blob DELETE":
		h.deleteBlob(w, r, rt.name, rt.arg)
	case "uploads POST":
		h.startUpload(w, r, rt.name)
	case "upload GET":
		h.uploadStatus(w, r, rt.name, rt.arg)
	case "upload PATCH":
		h.patchUpload(w, r, rt.name, rt.arg)
	case "upload PUT":
		h.putUpload(w, r, rt.name, rt.arg)
	case "upload DELETE":
		h.cancelUpload(w, r, rt.name, rt.arg)
	case "referrers GET":
		h.referrers(w, r, rt.name, rt.arg)
	default:
		h.writeError(w, r, errs.R(errs.Unsupported, ReasonUnsupported, "%s is not supported on %s", r.Method, r.URL.Path))
	}
}

// v2Actions are the ECR actions a repository-scoped /v2/ request performs,
// checked against the repository policy (ECR's mapping: pull is
// BatchGetImage + GetDownloadUrlForLayer, push is InitiateLayerUpload,
// UploadLayerPart, CompleteLayerUpload, BatchCheckLayerAvailability and
// PutImage).
// pullRoute says whether a pull token may use a route: the version check,
// and manifests and blobs read.
func pullRoute(rt route, method string) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	switch rt.kind {
	case "base", "manifest", "blob":
		return true
	}
	return false
}

func v2Actions(rt route, r *http.Request) []string {
	q := r.URL.Query()
	switch rt.kind + " " + r.Method {
	case "tags GET":
		return []string{"ecr:ListImages"}
	case "manifest GET", "manifest HEAD", "referrers GET":
		return []string{"ecr:BatchGetImage"}
	case "manifest PUT":
		return []string{"ecr:PutImage"}
	case "manifest DELETE", "blob DELETE":
		return []string{"ecr:BatchDeleteImage"}
	case "blob GET":
		return []string{"ecr:GetDownloadUrlForLayer"}
	case "blob HEAD":
		return []string{"ecr:BatchCheckLayerAvailability"}
	case "uploads POST":
		switch {
		case q.Get("mount") != "":
			return []string{"ecr:InitiateLayerUpload", "ecr:CompleteLayerUpload"}
		case q.Get("digest") != "":
			return []string{"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"}
		}
		return []string{"ecr:InitiateLayerUpload"}
	case "upload GET", "upload PATCH", "upload DELETE":
		return []string{"ecr:UploadLayerPart"}
	case "upload PUT":
		if r.ContentLength != 0 {
			return []string{"ecr:UploadLayerPart", "ecr:CompleteLayerUpload"}
		}
		return []string{"ecr:CompleteLayerUpload"}
	}
	return nil
}

// pageParams reads n and last; n < 0 means no limit given.
func pageParams(r *http.Request) (int, string, error) {
	q := r.URL.Query()
	n := -1
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, "", errs.R(errs.Invalid, ReasonUnsupported, "invalid n %q", s)
		}
		n = v
	}
	return n, q.Get("last"), nil
}

func setNextLink(w http.ResponseWriter, path string, n int, last string) {
	q := url.Values{"n": {strconv.Itoa(n)}, "last": {last}}
	w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", path, q.Encode()))
}

func writeJSON(w http.ResponseWriter, ct string, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func (h *Handler) catalog(w http.ResponseWriter, r *http.Request) {
	n, last, err := pageParams(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	names := []string{}
	more := false
	if n != 0 {
		limit := n
		if limit < 0 {
			limit = 0
		}
		repos, m, err := h.reg.Repositories(r.Context(), last, limit)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		more = m
		for _, rp := range repos {
			names = append(names, rp.Name)
		}
	}
	if more && len(names) > 0 {
		setNextLink(w, "/v2/_catalog", n, names[len(names)-1])
	}
	writeJSON(w, "application/json", map[string]any{"repositories": names})
}

func (h *Handler) tags(w http.ResponseWriter, r *http.Request, name string) {
	n, last, err := pageParams(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	tags := []string{}
	more := false
	if n != 0 {
		limit := max(n, 0)
		tags, more, err = h.reg.Tags(r.Context(), name, last, limit)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
	} else if _, err := h.reg.Repository(r.Context(), name); err != nil {
		h.writeError(w, r, err)
		return
	}
	if more && len(tags) > 0 {
		setNextLink(w, "/v2/"+name+"/tags/list", n, tags[len(tags)-1])
	}
	writeJSON(w, "application/json", map[string]any{"name": name, "tags": tags})
}

func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	m, err := h.reg.GetManifest(r.Context(), name, ref, r.Method == http.MethodGet)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", m.MediaType)
	w.Header().Set("Docker-Content-Digest", string(m.Digest))
	w.Header().Set("Content-Length", strconv.Itoa(len(m.Content)))
	w.Header().Set("ETag", `"`+string(m.Digest)+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(m.Content)
	}
}

// canRead says whether the request's caller may read blobs of a
// repository under its policy.
func (h *Handler) canRead(ctx context.Context) func(string) bool {
	id, _ := IdentityFrom(ctx)
	return func(repo string) bool {
		return h.reg.Authorize(ctx, id, repo, "ecr:GetDownloadUrlForLayer") == nil
	}
}

func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxManifestSize+1))
	if err != nil {
		h.writeError(w, r, errs.Wrap(errs.Invalid, err, "read manifest"))
		return
	}
	if len(body) > MaxManifestSize {
		h.writeError(w, r, manifestTooLarge())
		return
	}
	m, err := h.reg.PutManifest(r.Context(), name, ref, r.Header.Get("Content-Type"), body, PutOptions{CanRead: h.canRead(r.Context())})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v2/"+name+"/manifests/"+string(m.Digest))
	w.Header().Set("Docker-Content-Digest", string(m.Digest))
	if m.Subject != "" {
		w.Header().Set("OCI-Subject", string(m.Subject))
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, name, ref string) {
	var err error
	if isDigest(ref) {
		var d Digest
		if d, err = ParseDigest(ref); err == nil {
			err = h.reg.DeleteManifest(r.Context(), name, d)
		}
	} else {
		err = h.reg.DeleteTag(r.Context(), name, ref)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request, name, ds string) {
	d, err := ParseDigest(ds)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if r.Method == http.MethodHead {
		size, err := h.reg.StatBlob(r.Context(), name, d)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("Docker-Content-Digest", string(d))
		w.Header().Set("Accept-Ranges", "bytes")
		w.WriteHeader(http.StatusOK)
		return
	}
	b, err := h.reg.OpenBlob(r.Context(), name, d)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	defer b.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Docker-Content-Digest", string(d))
	w.Header().Set("ETag", `"`+string(d)+`"`)
	w.Header().Set("Cache-Control", "max-age=31536000")
	if r.Header.Get("Range") != "" {
		// Partial reads cannot be verified here; the whole blob was
		// verified when it was committed.
		http.ServeContent(w, r, "", b.ModTime(), b)
		return
	}
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Length", strconv.FormatInt(b.Size(), 10))
	w.WriteHeader(http.StatusOK)
	if size, ok := h.reg.verified.Load(d); ok && size.(int64) == b.Size() {
		// Checked by this process already (at commit or on an earlier
		// read): serve the file directly (sendfile).
		var src io.Reader = b
		if f, ok := b.(interface{ OSFile() *os.File }); ok {
			src = f.OSFile()
		}
		io.Copy(w, src)
		return
	}
	vr := &verifyingReader{r: b, h: sha256.New()}
	_, err = io.CopyBuffer(w, vr, make([]byte, 256<<10))
	if err == nil && vr.sum() != d {
		// The bytes on disk do not match their name: never let a client
		// take them as good. Drop the file and abort the response, so
		// the client sees a broken transfer rather than bad content.
		h.cfg.Log.Error("blob content does not match its digest; removing it", "digest", d, "got", vr.sum())
		h.reg.quarantine(context.WithoutCancel(r.Context()), d)
		panic(http.ErrAbortHandler)
	}
	if err == nil {
		h.reg.verified.Store(d, b.Size())
	}
}

type verifyingReader struct {
	r io.Reader
	h hash.Hash
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	return n, err
}

func (v *verifyingReader) sum() Digest { return Digest("sha256:" + hex.EncodeToString(v.h.Sum(nil))) }

func (h *Handler) deleteBlob(w http.ResponseWriter, r *http.Request, name, ds string) {
	d, err := ParseDigest(ds)
	if err == nil {
		err = h.reg.DeleteBlob(r.Context(), name, d)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (h *Handler) blobCreated(w http.ResponseWriter, name string, d Digest) {
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+string(d))
	w.Header().Set("Docker-Content-Digest", string(d))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func (h *Handler) uploadAccepted(w http.ResponseWriter, name, id string, size int64, status int) {
	end := size - 1
	if end < 0 {
		end = 0
	}
	w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", end))
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	ctx := r.Context()
	if m := q.Get("mount"); m != "" {
		d, err := ParseDigest(m)
		if err == nil {
			// Mounting reads the blob from the source repository: its
			// policy must let the caller download it; otherwise fall
			// back to an upload, as for a blob that cannot be mounted.
			from := q.Get("from")
			if id, _ := IdentityFrom(ctx); ValidName(from) && h.reg.Authorize(ctx, id, from, "ecr:GetDownloadUrlForLayer") != nil {
				err = errs.E(errs.Forbidden, "mount source denied")
			}
		}
		if err == nil {
			ok, err := h.reg.MountBlob(ctx, name, q.Get("from"), d, h.canRead(ctx))
			if err != nil {
				h.writeError(w, r, err)
				return
			}
			if ok {
				h.blobCreated(w, name, d)
				return
			}
		}
		// Not mountable: fall back to an upload session, as the spec says.
	} else if ds := q.Get("digest"); ds != "" {
		d, err := ParseDigest(ds)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if _, err := h.reg.PutBlob(ctx, name, d, r.Body); err != nil {
			h.writeError(w, r, err)
			return
		}
		h.blobCreated(w, name, d)
		return
	}
	id, err := h.reg.StartUpload(ctx, name)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("OCI-Chunk-Min-Length", "0")
	h.uploadAccepted(w, name, id, 0, http.StatusAccepted)
}

func (h *Handler) uploadStatus(w http.ResponseWriter, r *http.Request, name, id string) {
	size, err := h.reg.UploadStatus(r.Context(), name, id)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.uploadAccepted(w, name, id, size, http.StatusNoContent)
}

// chunkOffset reads Content-Range ("start-end" or "bytes start-end") and
// checks it against Content-Length. ok is false without the header.
func chunkOffset(r *http.Request) (start int64, ok bool, err error) {
	cr := strings.TrimSpace(r.Header.Get("Content-Range"))
	if cr == "" {
		return 0, false, nil
	}
	cr = strings.TrimPrefix(cr, "bytes ")
	cr, _, _ = strings.Cut(cr, "/")
	a, b, found := strings.Cut(cr, "-")
	s, e1 := strconv.ParseInt(a, 10, 64)
	e, e2 := strconv.ParseInt(b, 10, 64)
	if !found || e1 != nil || e2 != nil || s < 0 || e < s {
		return 0, true, errs.R(errs.Conflict, ReasonRangeInvalid, "invalid Content-Range %q", r.Header.Get("Content-Range"))
	}
	if r.ContentLength >= 0 && r.ContentLength != e-s+1 {
		return 0, true, errs.R(errs.Conflict, ReasonRangeInvalid, "Content-Range %q does not match Content-Length %d", r.Header.Get("Content-Range"), r.ContentLength)
	}
	return s, true, nil
}

func (h *Handler) appendChunk(w http.ResponseWriter, r *http.Request, name, id string) (int64, bool) {
	ctx := r.Context()
	cur, err := h.reg.UploadStatus(ctx, name, id)
	if err != nil {
		h.writeError(w, r, err)
		return 0, false
	}
	start, has, err := chunkOffset(r)
	if err == nil && has && start != cur {
		err = errs.R(errs.Conflict, ReasonRangeInvalid, "the upload holds %d bytes; the chunk starts at %d", cur, start)
	}
	if err == nil && r.ContentLength != 0 {
		cur, err = h.reg.AppendUpload(ctx, name, id, cur, r.Body)
	}
	if err != nil {
		if errs.ReasonOf(err) == ReasonRangeInvalid {
			end := max(cur-1, 0)
			w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
			w.Header().Set("Range", fmt.Sprintf("0-%d", end))
		}
		h.writeError(w, r, err)
		return 0, false
	}
	return cur, true
}

func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	size, ok := h.appendChunk(w, r, name, id)
	if !ok {
		return
	}
	h.uploadAccepted(w, name, id, size, http.StatusAccepted)
}

func (h *Handler) putUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	d, err := ParseDigest(r.URL.Query().Get("digest"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if _, ok := h.appendChunk(w, r, name, id); !ok {
		return
	}
	if _, err := h.reg.CompleteUpload(r.Context(), name, id, d); err != nil {
		h.writeError(w, r, err)
		return
	}
	h.blobCreated(w, name, d)
}

func (h *Handler) cancelUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	if err := h.reg.CancelUpload(r.Context(), name, id); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) referrers(w http.ResponseWriter, r *http.Request, name, ds string) {
	d, err := ParseDigest(ds)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	at := r.URL.Query().Get("artifactType")
	descs, err := h.reg.Referrers(r.Context(), name, d, at)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, MediaTypeOCIIndex, map[string]any{"schemaVersion": 2, "mediaType": MediaTypeOCIIndex, "manifests": descs})
}
