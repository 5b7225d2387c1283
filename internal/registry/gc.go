package registry

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Online garbage collection.
//
// A blob is live while a manifest references it (config or layer, or the
// manifest's own bytes when too large for its record), or
// while it is younger than the grace period (GCGrace after its last upload
// or mount: a client may have pushed layers and not yet its manifest). The
// collector runs while pushes go on:
//
//  1. Stale uploads (no write for UploadTTL) are removed.
//  2. It reads every blob record (each with its ModRevision) and then every
//     manifest, and picks candidates: no manifest references them and
//     their last use is older than the grace period.
//  3. It condemns each candidate: a transaction puts
//     /registry/gc/condemned/<digest> if the blob record's ModRevision is
//     unchanged (no upload or mount since step 2).
//  4. It reads the manifests again. A manifest committed before a
//     condemnation is seen here and saves its blobs (the marker is
//     removed). A manifest put after it fails: PutManifest requires every
//     referenced blob's record present and its condemned marker absent
//     (compares in the manifest's own transaction), and mounts do the same.
//  5. For each blob still condemned, under the blob's in-process lock, one
//     transaction deletes the record, the marker and the repositories'
//     links if the record is still unchanged; then the file is deleted.
//     CompleteUpload takes the same lock around renaming the file into
//     place and writing the record (which also clears any marker), so a
//     concurrent upload of the same content either lands before (and
//     makes the delete's compare fail) or after (and writes a new file and
//     record).
//  6. Files without a record, older than the grace period (left by a crash
//     between rename and record, or by step 5 crashing before the file
//     delete), are deleted under the same lock.
//
// A crash anywhere leaves either a live blob, a condemned marker (cleared
// by the next run or by the next upload of that digest), or an orphan file
// (step 6). The collector runs on one server at a time (the blob store is
// local to it today).

// GCStats reports what one collection did.
type GCStats struct {
	BlobsDeleted   int
	BytesDeleted   int64
	OrphansDeleted int
	UploadsExpired int
}

// CollectGarbage runs one collection.
func (r *Registry) CollectGarbage(ctx context.Context) (GCStats, error) {
	var st GCStats
	now := r.now()
	grace := now.Add(-r.cfg.GCGrace)

	// Markers left by an interrupted run.
	if _, err := r.st.Txn(ctx, nil, store.DeletePrefix(pfxCondemned)); err != nil {
		return st, err
	}

	// 1. Stale uploads.
	uploadKVs, _, err := r.listAll(ctx, pfxUpload, false, 0)
	if err != nil {
		return st, err
	}
	known := map[string]bool{}
	for _, kv := range uploadKVs {
		known[strings.TrimPrefix(kv.Key, pfxUpload)] = true
	}
	expire := now.Add(-r.cfg.UploadTTL)
	r.blobs.WalkUploads(ctx, func(id string, mod time.Time) error {
		delete(known, id)
		if mod.Before(expire) {
			r.blobs.AbortUpload(ctx, id)
			r.st.Txn(ctx, nil, store.Delete(uploadKey(id)))
			st.UploadsExpired++
		}
		return nil
	})
	for id := range known { // records without bytes
		var rec uploadRecord
		if _, err := r.getJSON(ctx, uploadKey(id), &rec); err == nil && rec.StartedAt.Before(expire) {
			r.st.Txn(ctx, nil, store.Delete(uploadKey(id)))
			st.UploadsExpired++
		}
	}

	// 2. Candidates.
	blobKVs, _, err := r.listAll(ctx, pfxBlob, false, 0)
	if err != nil {
		return st, err
	}
	refs, err := r.referencedBlobs(ctx)
	if err != nil {
		return st, err
	}
	type cand struct {
		rev  int64
		size int64
	}
	cands := map[Digest]cand{}
	for _, kv := range blobKVs {
		d := Digest(strings.TrimPrefix(kv.Key, pfxBlob))
		var rec blobRecord
		if json.Unmarshal(kv.Value, &rec) != nil || refs[d] || !rec.LastUsed.Before(grace) {
			continue
		}
		cands[d] = cand{rev: kv.ModRevision, size: rec.Size}
	}

	// 3. Condemn.
	for d, c := range cands {
		res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(blobKey(d), c.rev)}, store.Put(condemnedKey(d), []byte(now.UTC().Format(time.RFC3339))))
		if err != nil {
			return st, err
		}
		if !res.Succeeded {
			delete(cands, d)
		}
	}

	// 4. Re-check.
	if len(cands) > 0 {
		refs, err = r.referencedBlobs(ctx)
		if err != nil {
			return st, err
		}
	}
	links, _, err := r.listAll(ctx, pfxLink, true, 0)
	if err != nil {
		return st, err
	}
	linksOf := map[Digest][]string{}
	for _, kv := range links {
		if i := strings.LastIndexByte(kv.Key, '@'); i >= 0 {
			d := Digest(kv.Key[i+1:])
			if _, ok := cands[d]; ok {
				linksOf[d] = append(linksOf[d], kv.Key)
			}
		}
	}

	// 5. Delete.
	for d, c := range cands {
		if refs[d] {
			r.st.Txn(ctx, nil, store.Delete(condemnedKey(d)))
			continue
		}
		unlock := r.lockDigest(d)
		ops := []store.Op{store.Delete(blobKey(d)), store.Delete(condemnedKey(d))}
		for _, k := range linksOf[d] {
			ops = append(ops, store.Delete(k))
		}
		res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(blobKey(d), c.rev)}, ops...)
		if err == nil && res.Succeeded {
			r.verified.Delete(d)
			if err = r.blobs.Delete(ctx, d); err == nil {
				st.BlobsDeleted++
				st.BytesDeleted += c.size
			}
		} else if err == nil {
			r.st.Txn(ctx, nil, store.Delete(condemnedKey(d)))
		}
		unlock()
		if err != nil {
			return st, err
		}
	}

	// 6. Orphan files.
	var orphans []Digest
	err = r.blobs.Walk(ctx, func(d Digest, _ int64, mod time.Time) error {
		if mod.Before(grace) {
			if _, err := r.st.Get(ctx, blobKey(d)); errs.Is(err, errs.NotFound) {
				orphans = append(orphans, d)
			}
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	for _, d := range orphans {
		unlock := r.lockDigest(d)
		if _, err := r.st.Get(ctx, blobKey(d)); errs.Is(err, errs.NotFound) {
			if r.blobs.Delete(ctx, d) == nil {
				st.OrphansDeleted++
			}
		}
		unlock()
	}
	return st, nil
}

// referencedBlobs returns every blob a manifest references.
func (r *Registry) referencedBlobs(ctx context.Context) (map[Digest]bool, error) {
	kvs, _, err := r.listAll(ctx, pfxManifest, false, 0)
	if err != nil {
		return nil, err
	}
	refs := map[Digest]bool{}
	for _, kv := range kvs {
		var m struct {
			Digest         Digest   `json:"digest"`
			Blobs          []Digest `json:"blobs"`
			ContentInBlobs bool     `json:"contentInBlobs"`
		}
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "decode %s", kv.Key)
		}
		for _, d := range m.Blobs {
			refs[d] = true
		}
		if m.ContentInBlobs {
			refs[m.Digest] = true // the manifest's own bytes
		}
	}
	return refs, nil
}

// quarantine removes a blob whose bytes do not match its digest.
func (r *Registry) quarantine(ctx context.Context, d Digest) {
	unlock := r.lockDigest(d)
	defer unlock()
	r.verified.Delete(d)
	r.st.Txn(ctx, nil, store.Delete(blobKey(d)))
	r.blobs.Delete(ctx, d)
}

// Run collects garbage and applies lifecycle policies every GCInterval
// until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.cfg.Owns != nil && !r.cfg.Owns() {
			r.log.Warn("registry garbage collection skipped: this server does not own the blob store")
			continue
		}
		if err := r.ApplyLifecyclePolicies(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("lifecycle policies not applied", "err", err)
		}
		st, err := r.CollectGarbage(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("registry garbage collection failed", "err", err)
		} else if st.BlobsDeleted+st.OrphansDeleted+st.UploadsExpired > 0 {
			r.log.Info("registry garbage collected", "blobs", st.BlobsDeleted, "bytes", st.BytesDeleted, "orphans", st.OrphansDeleted, "uploads", st.UploadsExpired)
		}
	}
}
