package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/durable"
	"github.com/berthdev/berth/internal/errs"
)

// BlobStore keeps blob contents, addressed by digest, and the bytes of
// uploads in progress. It knows nothing of repositories: which repository
// may read a blob, and whether a blob is still referenced, is metadata kept
// in the store by Registry.
//
// Contract for every implementation (FSBlobs today; an S3-compatible object
// store later):
//   - A blob is visible (Stat, Open) only once CommitUpload has verified its
//     whole content against its digest and made it durable; a crash at any
//     point before leaves no visible blob.
//   - Committing a digest that already exists is not an error, and two
//     commits of the same digest may race.
//   - Stat, Open, Delete and the upload calls return an error of kind
//     errs.NotFound (reason ReasonBlobUnknown or ReasonUploadUnknown) for an
//     absent blob or upload.
type BlobStore interface {
	// Stat returns a blob's size.
	Stat(ctx context.Context, d Digest) (int64, error)
	// Open opens a blob for reading.
	Open(ctx context.Context, d Digest) (Blob, error)
	// Delete removes a blob. Deleting an absent blob is not an error.
	Delete(ctx context.Context, d Digest) error
	// Walk calls fn for every committed blob.
	Walk(ctx context.Context, fn func(d Digest, size int64, modTime time.Time) error) error

	// CreateUpload starts an empty upload.
	CreateUpload(ctx context.Context, id string) error
	// AppendUpload appends r to an upload that holds exactly offset bytes
	// and returns the new size. An offset that is not the current size is
	// errs.Conflict with reason ReasonRangeInvalid; nothing is written.
	AppendUpload(ctx context.Context, id string, offset int64, r io.Reader) (int64, error)
	// UploadSize returns the bytes received so far.
	UploadSize(ctx context.Context, id string) (int64, error)
	// CommitUpload verifies the upload's content against want, makes it the
	// blob want (durably) and removes the upload. A mismatch is errs.Invalid
	// with reason ReasonDigestInvalid, and the upload is removed.
	CommitUpload(ctx context.Context, id string, want Digest) (size int64, err error)
	// AbortUpload removes an upload; absent is not an error.
	AbortUpload(ctx context.Context, id string) error
	// WalkUploads calls fn for every upload with the time of its last write.
	WalkUploads(ctx context.Context, fn func(id string, modTime time.Time) error) error
}

// Blob is an open blob.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
}

// FSBlobs is a BlobStore on a local directory:
//
//	<root>/blobs/sha256/<first two hex>/<hex>   committed blobs
//	<root>/uploads/<id>                          uploads in progress
//
// A commit hashes while receiving (re-reading the file only if the server
// restarted mid-upload), fsyncs the upload file, renames it into place and
// fsyncs the directory, so a blob path only ever holds complete, verified
// content.
type FSBlobs struct {
	root string

	mu      sync.Mutex
	uploads map[string]*fsUpload // per-upload state, created lazily
}

type fsUpload struct {
	mu     sync.Mutex
	h      hash.Hash // sha256 of the first n bytes, or nil if unknown
	n      int64
	closed bool
}

// NewFSBlobs returns a blob store rooted at dir, creating its directories.
func NewFSBlobs(dir string) (*FSBlobs, error) {
	for _, d := range []string{filepath.Join(dir, "blobs", "sha256"), filepath.Join(dir, "uploads")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	return &FSBlobs{root: dir, uploads: map[string]*fsUpload{}}, nil
}

func (f *FSBlobs) blobPath(d Digest) string {
	h := d.Hex()
	return filepath.Join(f.root, "blobs", "sha256", h[:2], h)
}

func (f *FSBlobs) uploadPath(id string) string { return filepath.Join(f.root, "uploads", id) }

func blobUnknown(d Digest) error {
	return errs.R(errs.NotFound, ReasonBlobUnknown, "blob %s is not known to the registry", d)
}

func uploadUnknown(id string) error {
	return errs.R(errs.NotFound, ReasonUploadUnknown, "upload %s is not known to the registry", id)
}

func validUploadID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// Stat implements BlobStore.
func (f *FSBlobs) Stat(_ context.Context, d Digest) (int64, error) {
	fi, err := os.Stat(f.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, blobUnknown(d)
	}
	if err != nil {
		return 0, errs.Wrap(errs.Unavailable, err, "stat blob")
	}
	return fi.Size(), nil
}

type fsBlob struct {
	*os.File
	size int64
	mod  time.Time
}

func (b fsBlob) Size() int64        { return b.size }
func (b fsBlob) ModTime() time.Time { return b.mod }

// OSFile exposes the file so that serving it can use sendfile.
func (b fsBlob) OSFile() *os.File { return b.File }

// Open implements BlobStore.
func (f *FSBlobs) Open(_ context.Context, d Digest) (Blob, error) {
	fh, err := os.Open(f.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, blobUnknown(d)
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "open blob")
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, errs.Wrap(errs.Unavailable, err, "stat blob")
	}
	return fsBlob{File: fh, size: fi.Size(), mod: fi.ModTime()}, nil
}

// Delete implements BlobStore.
func (f *FSBlobs) Delete(_ context.Context, d Digest) error {
	err := os.Remove(f.blobPath(d))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errs.Wrap(errs.Unavailable, err, "delete blob")
	}
	return nil
}

// Walk implements BlobStore.
func (f *FSBlobs) Walk(ctx context.Context, fn func(Digest, int64, time.Time) error) error {
	base := filepath.Join(f.root, "blobs", "sha256")
	dirs, err := os.ReadDir(base)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "list blobs")
	}
	for _, dir := range dirs {
		ents, err := os.ReadDir(filepath.Join(base, dir.Name()))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d, err := ParseDigest("sha256:" + e.Name())
			if err != nil {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			if err := fn(d, fi.Size(), fi.ModTime()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *FSBlobs) state(id string) *fsUpload {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.uploads[id]
	if u == nil {
		u = &fsUpload{}
		f.uploads[id] = u
	}
	return u
}

func (f *FSBlobs) forget(id string) {
	f.mu.Lock()
	delete(f.uploads, id)
	f.mu.Unlock()
}

// CreateUpload implements BlobStore.
func (f *FSBlobs) CreateUpload(_ context.Context, id string) error {
	if !validUploadID(id) {
		return errs.E(errs.Invalid, "invalid upload id %q", id)
	}
	fh, err := os.OpenFile(f.uploadPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "create upload")
	}
	u := f.state(id)
	u.mu.Lock()
	u.h, u.n = sha256.New(), 0
	u.mu.Unlock()
	return fh.Close()
}

// AppendUpload implements BlobStore.
func (f *FSBlobs) AppendUpload(_ context.Context, id string, offset int64, r io.Reader) (int64, error) {
	if !validUploadID(id) {
		return 0, uploadUnknown(id)
	}
	u := f.state(id)
	u.mu.Lock()
	defer u.mu.Unlock()
	fh, err := os.OpenFile(f.uploadPath(id), os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, uploadUnknown(id)
	}
	if err != nil {
		return 0, errs.Wrap(errs.Unavailable, err, "open upload")
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return 0, errs.Wrap(errs.Unavailable, err, "stat upload")
	}
	size := fi.Size()
	if offset != size {
		return size, errs.R(errs.Conflict, ReasonRangeInvalid, "upload %s holds %d bytes; a chunk must start there, not at %d", id, size, offset)
	}
	if u.h == nil || u.n != size {
		u.h, u.n = nil, 0 // rebuilt at commit
	}
	if _, err := fh.Seek(size, io.SeekStart); err != nil {
		return size, errs.Wrap(errs.Unavailable, err, "seek upload")
	}
	var w io.Writer = fh
	if u.h != nil {
		w = io.MultiWriter(fh, u.h)
	}
	n, err := io.CopyBuffer(w, r, make([]byte, 256<<10))
	if u.h != nil {
		u.n += n
	}
	if err != nil {
		// Keep what arrived: the client may resume from the size we report.
		// The hash may hold bytes the file lacks if the write failed: drop it.
		if fi2, e2 := fh.Stat(); e2 == nil && fi2.Size() != u.n {
			u.h, u.n = nil, 0
		}
		return size + n, errs.Wrap(errs.Invalid, err, "upload interrupted after %d bytes", size+n)
	}
	return size + n, nil
}

// UploadSize implements BlobStore.
func (f *FSBlobs) UploadSize(_ context.Context, id string) (int64, error) {
	if !validUploadID(id) {
		return 0, uploadUnknown(id)
	}
	fi, err := os.Stat(f.uploadPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, uploadUnknown(id)
	}
	if err != nil {
		return 0, errs.Wrap(errs.Unavailable, err, "stat upload")
	}
	return fi.Size(), nil
}

// CommitUpload implements BlobStore.
func (f *FSBlobs) CommitUpload(_ context.Context, id string, want Digest) (int64, error) {
	if !validUploadID(id) {
		return 0, uploadUnknown(id)
	}
	u := f.state(id)
	u.mu.Lock()
	defer u.mu.Unlock()
	path := f.uploadPath(id)
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, uploadUnknown(id)
	}
	if err != nil {
		return 0, errs.Wrap(errs.Unavailable, err, "open upload")
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return 0, errs.Wrap(errs.Unavailable, err, "stat upload")
	}
	size := fi.Size()
	h := u.h
	if h == nil || u.n != size {
		// State lost (restart) or out of step: hash the file again.
		h = sha256.New()
		if _, err := io.Copy(h, fh); err != nil {
			fh.Close()
			return 0, errs.Wrap(errs.Unavailable, err, "read upload")
		}
	}
	got := Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))
	if got != want {
		fh.Close()
		os.Remove(path)
		f.forget(id)
		return 0, errs.R(errs.Invalid, ReasonDigestInvalid, "the uploaded content has digest %s, not %s", got, want)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return 0, errs.Wrap(errs.Unavailable, err, "sync upload")
	}
	fh.Close()
	dst := f.blobPath(want)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return 0, errs.Wrap(errs.Unavailable, err, "create blob directory")
	}
	if err := os.Rename(path, dst); err != nil {
		return 0, errs.Wrap(errs.Unavailable, err, "commit blob")
	}
	_ = durable.SyncDir(filepath.Dir(dst)) // best effort: the blob is already written and renamed
	f.forget(id)
	return size, nil
}

// AbortUpload implements BlobStore.
func (f *FSBlobs) AbortUpload(_ context.Context, id string) error {
	if !validUploadID(id) {
		return nil
	}
	u := f.state(id)
	u.mu.Lock()
	defer u.mu.Unlock()
	err := os.Remove(f.uploadPath(id))
	f.forget(id)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errs.Wrap(errs.Unavailable, err, "remove upload")
	}
	return nil
}

// WalkUploads implements BlobStore.
func (f *FSBlobs) WalkUploads(ctx context.Context, fn func(string, time.Time) error) error {
	ents, err := os.ReadDir(filepath.Join(f.root, "uploads"))
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "list uploads")
	}
	for _, e := range ents {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if err := fn(e.Name(), fi.ModTime()); err != nil {
			return err
		}
	}
	return nil
}
