package tsdb

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Flush writes the head to block files (one per partition), then deletes
// the WAL segments it covered. Queries see the samples throughout.
func (db *DB) Flush() error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()

	db.mu.Lock()
	if db.headSamples == 0 {
		db.mu.Unlock()
		return nil
	}
	seg, err := db.wal.rotate() // every logged sample is now in a segment below seg
	if err != nil {
		db.mu.Unlock()
		return err
	}
	byPart := map[int64][]seriesChunks{}
	var flushed []*series
	for _, s := range db.series {
		if len(s.head) == 0 {
			continue
		}
		for _, hp := range s.head {
			byPart[hp.part] = append(byPart[hp.part], seriesChunks{key: s.key, ks: s.ks, lastWrite: s.lastWrite, highRes: s.highRes,
				units: slices.Clone(s.units), chunks: hp.chunks()})
		}
		s.flushing, s.head = s.head, nil
		flushed = append(flushed, s)
	}
	headSamples := db.headSamples
	db.headSamples = 0
	db.mu.Unlock()

	restore := func() { // the flush failed before its commit: the head keeps the samples, the WAL too
		db.mu.Lock()
		for _, s := range flushed {
			s.head, s.flushing = append(s.flushing, s.head...), nil
		}
		db.headSamples += headSamples
		db.mu.Unlock()
	}

	cutoff := db.opt.Now().UnixMilli() - db.opt.Retention.Milliseconds()
	var finals []string // relative to db.dir
	var dirs []string
	for part, list := range byPart {
		if part+db.blockMs <= cutoff {
			continue // expired already
		}
		slices.SortFunc(list, func(a, b seriesChunks) int { return strings.Compare(a.ks, b.ks) })
		dir := partDir(db.blocksDir(), part)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			restore()
			return err
		}
		final := filepath.Join(dir, blockName(seg, seg))
		if err := writeBlock(final+".tmp", list); err != nil {
			for _, f := range finals {
				os.Remove(filepath.Join(db.dir, f) + ".tmp")
			}
			restore()
			return fmt.Errorf("tsdb: flush: %w", err)
		}
		rel, _ := filepath.Rel(db.dir, final)
		finals = append(finals, rel)
		dirs = append(dirs, dir)
	}
	dirs = append(dirs, db.blocksDir())
	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			restore()
			return err
		}
	}
	if crash("written") {
		return errTestCrash("written")
	}
	// The commit point: a marker naming the files, written atomically.
	marker := filepath.Join(db.walDir(), fmt.Sprintf("flush-%016x.commit", seg))
	if err := writeFileSync(marker, []byte(strings.Join(finals, "\n")+"\n")); err != nil {
		for _, f := range finals {
			os.Remove(filepath.Join(db.dir, f) + ".tmp")
		}
		restore()
		return fmt.Errorf("tsdb: flush commit: %w", err)
	}
	// Past the commit point a failure must not put the samples back in the
	// head (reopening completes the commit): it stops appends instead.
	fail := func(err error) error {
		err = fmt.Errorf("tsdb: flush after commit (reopen the DB to complete it): %w", err)
		db.wal.mu.Lock()
		if db.wal.err == nil {
			db.wal.err = err
		}
		db.wal.mu.Unlock()
		return err
	}
	if crash("committed") {
		return errTestCrash("committed")
	}
	for _, f := range finals {
		p := filepath.Join(db.dir, f)
		if err := os.Rename(p+".tmp", p); err != nil {
			return fail(err)
		}
	}
	if crash("renamed") {
		return errTestCrash("renamed")
	}
	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			return fail(err)
		}
	}
	var opened []*blockFile
	for _, f := range finals {
		p := filepath.Join(db.dir, f)
		part, _ := strconv.ParseInt(filepath.Base(filepath.Dir(p)), 10, 64)
		bf, err := openBlock(p, part, seg, seg)
		if err != nil {
			return fail(err)
		}
		opened = append(opened, bf)
	}
	db.mu.Lock()
	for _, s := range flushed {
		s.flushing = nil
	}
	for _, bf := range opened {
		db.attachBlock(bf)
	}
	db.mu.Unlock()
	if err := db.wal.removeBefore(seg); err != nil {
		return fail(err)
	}
	if err := os.Remove(marker); err != nil {
		return fail(err)
	}
	db.opt.Log.Debug("tsdb: flushed", "flush", seg, "samples", headSamples, "files", len(finals))
	return nil
}

func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// Compact merges the files of each closed partition (whose end is at least
// FlushInterval in the past) into one, with each series' samples sorted by
// time in full chunks.
func (db *DB) Compact() error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	closedBefore := db.opt.Now().UnixMilli() - db.opt.FlushInterval.Milliseconds()
	db.mu.RLock()
	var parts []int64
	for part, files := range db.blocks {
		if len(files) > 1 && part+db.blockMs <= closedBefore {
			parts = append(parts, part)
		}
	}
	db.mu.RUnlock()
	slices.Sort(parts)
	var errsOut []error
	for _, part := range parts {
		if err := db.compactPart(part); err != nil {
			errsOut = append(errsOut, fmt.Errorf("tsdb: compact partition %d: %w", part, err))
		}
	}
	return errors.Join(errsOut...)
}

func (db *DB) compactPart(part int64) error {
	// maintMu is held: no flush, compaction or retention changes files now.
	db.mu.RLock()
	files := slices.Clone(db.blocks[part])
	type item struct {
		s      *series
		chunks []diskChunk
		units  []string
		lw     int64
		hr     bool
	}
	var items []item
	for _, s := range db.series {
		var cs []diskChunk
		for _, c := range s.disk {
			if c.file.part == part {
				cs = append(cs, c)
			}
		}
		if len(cs) > 0 {
			items = append(items, item{s, cs, slices.Clone(s.units), s.lastWrite, s.highRes})
		}
	}
	db.mu.RUnlock()
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.s.ks, b.s.ks) })

	lo, hi := files[0].lo, files[0].hi
	for _, f := range files {
		lo, hi = min(lo, f.lo), max(hi, f.hi)
	}
	var out []seriesChunks
	var buf []byte
	var it chunkIter
	for _, x := range items {
		var samples []rawSample
		for _, c := range x.chunks {
			var err error
			if buf, err = c.read(buf); err != nil {
				return err
			}
			it.reset(buf)
			for it.next() {
				samples = append(samples, rawSample{it.t, it.s, it.unit})
			}
			if it.err != nil {
				return fmt.Errorf("%s: %w", c.file.path, it.err)
			}
		}
		slices.SortStableFunc(samples, func(a, b rawSample) int { return cmp.Compare(a.t, b.t) })
		sc := seriesChunks{key: x.s.key, ks: x.s.ks, lastWrite: x.lw, highRes: x.hr, units: x.units}
		for i := 0; i < len(samples); i += maxChunkSamples {
			e := newChunkEncoder()
			for _, r := range samples[i:min(i+maxChunkSamples, len(samples))] {
				e.append(r.t, r.s, r.unit)
			}
			sc.chunks = append(sc.chunks, memChunk{b: e.bytes(), minT: e.minT, maxT: e.maxT})
		}
		out = append(out, sc)
	}
	dir := partDir(db.blocksDir(), part)
	final := filepath.Join(dir, blockName(lo, hi))
	if err := writeBlock(final+".tmp", out); err != nil {
		return err
	}
	if err := os.Rename(final+".tmp", final); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if crash("compacted") {
		return errTestCrash("compacted")
	}
	bf, err := openBlock(final, part, lo, hi)
	if err != nil {
		return err
	}
	db.mu.Lock()
	for _, x := range items {
		x.s.disk = slices.DeleteFunc(x.s.disk, func(c diskChunk) bool { return c.file.part == part })
	}
	for _, f := range files {
		f.f.Close()
	}
	delete(db.blocks, part)
	db.attachBlock(bf)
	db.mu.Unlock()
	for _, f := range files {
		os.Remove(f.path)
	}
	return syncDir(dir)
}

// rawSample is a decoded sample.
type rawSample struct {
	t    int64
	s    Sample
	unit uint8
}

// ApplyRetention deletes whole partitions whose end is older than the
// retention (files and head samples), and forgets series left without
// samples whose last write is older than the retention.
func (db *DB) ApplyRetention() error {
	db.maintMu.Lock()
	defer db.maintMu.Unlock()
	cutoff := db.opt.Now().UnixMilli() - db.opt.Retention.Milliseconds()
	expired := func(part int64) bool { return part+db.blockMs <= cutoff }

	db.mu.Lock()
	var gone []*blockFile
	for part, files := range db.blocks {
		if expired(part) {
			gone = append(gone, files...)
			delete(db.blocks, part)
		}
	}
	for ks, s := range db.series {
		if len(gone) > 0 {
			s.disk = slices.DeleteFunc(s.disk, func(c diskChunk) bool { return expired(c.file.part) })
		}
		s.head = slices.DeleteFunc(s.head, func(hp *headPart) bool {
			if expired(hp.part) {
				db.headSamples -= hp.n
				return true
			}
			return false
		})
		if len(s.head) == 0 && len(s.flushing) == 0 && len(s.disk) == 0 && s.lastWrite <= cutoff {
			delete(db.series, ks)
			db.seriesVersion++
		}
	}
	for _, f := range gone {
		f.f.Close()
	}
	db.mu.Unlock()

	ents, err := os.ReadDir(db.blocksDir())
	if err != nil {
		return err
	}
	var errsOut []error
	for _, e := range ents {
		part, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || !expired(part) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(db.blocksDir(), e.Name())); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	if len(gone) > 0 {
		db.opt.Log.Info("tsdb: retention deleted partitions", "files", len(gone))
	}
	return errors.Join(errsOut...)
}

// testHookFlush, when set, stops a flush or compaction at the named stage
// as a crash would (tests only).
var testHookFlush func(stage string) bool

func crash(stage string) bool { return testHookFlush != nil && testHookFlush(stage) }

func errTestCrash(stage string) error { return errors.New("tsdb: test crash at " + stage) }
