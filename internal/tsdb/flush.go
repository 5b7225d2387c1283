package tsdb

import (
	"cmp"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/durable"
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
	// In key order (the cached sorted list), so each file's index comes out sorted.
	all := db.sortedSeries()
	withHead := 0
	perPart := map[int64]int{}
	for _, s := range all {
		if len(s.head) > 0 {
			withHead++
		}
		for _, hp := range s.head {
			perPart[hp.part]++
		}
	}
	byPart := map[int64][]seriesChunks{}
	flushed := make([]*series, 0, withHead)
	for _, s := range all {
		if len(s.head) == 0 {
			continue
		}
		for _, hp := range s.head {
			if _, ok := byPart[hp.part]; !ok {
				byPart[hp.part] = make([]seriesChunks, 0, perPart[hp.part])
			}
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
	type written struct {
		part   int64
		list   []seriesChunks
		refs   [][]diskChunk
		idxOff int64
	}
	var finals []string // relative to db.dir
	var dirs []string
	var wr []written
	for part, list := range byPart {
		if part+db.blockMs <= cutoff {
			continue // expired already
		}
		dir := partDir(db.blocksDir(), part)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			restore()
			return err
		}
		final := filepath.Join(dir, blockName(seg, seg))
		refs, idxOff, err := writeBlock(final+".tmp", list)
		if err != nil {
			for _, f := range finals {
				os.Remove(filepath.Join(db.dir, f) + ".tmp")
			}
			restore()
			return fmt.Errorf("tsdb: flush: %w", err)
		}
		rel, _ := filepath.Rel(db.dir, final)
		finals = append(finals, rel)
		dirs = append(dirs, dir)
		wr = append(wr, written{part, list, refs, idxOff})
	}
	dirs = append(dirs, db.blocksDir())
	for _, d := range dirs {
		if err := durable.SyncDir(d); err != nil {
			restore()
			return err
		}
	}
	if crash("written") {
		return errTestCrash("written")
	}
	// The commit point: a marker naming the files, written atomically.
	marker := filepath.Join(db.walDir(), fmt.Sprintf("flush-%016x.commit", seg))
	if err := durable.WriteFile(marker, []byte(strings.Join(finals, "\n")+"\n"), 0o644); err != nil {
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
		if err := durable.SyncDir(d); err != nil {
			return fail(err)
		}
	}
	opened := make([]*blockFile, len(wr))
	for i, f := range finals {
		p := filepath.Join(db.dir, f)
		fh, err := os.Open(p)
		if err != nil {
			return fail(err)
		}
		opened[i] = &blockFile{path: p, part: wr[i].part, lo: seg, hi: seg, f: fh, idxOff: wr[i].idxOff}
	}
	db.mu.Lock()
	for _, s := range flushed {
		s.flushing = nil
	}
	for i, bf := range opened {
		db.attachWritten(bf, wr[i].list, wr[i].refs)
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
	for _, s := range db.sortedSeries() { // key order: the index comes out sorted
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

	lo, hi := files[0].lo, files[0].hi
	for _, f := range files {
		lo, hi = min(lo, f.lo), max(hi, f.hi)
	}
	// Read the files whole (up to 256 MiB together) rather than a pread per chunk.
	whole := map[*blockFile][]byte{}
	budget := int64(256 << 20)
	for _, f := range files {
		if f.idxOff <= budget {
			data := make([]byte, f.idxOff)
			if err := readAt(f.f, data, 0); err != nil {
				return err
			}
			whole[f] = data
			budget -= f.idxOff
		}
	}
	var out []seriesChunks
	var buf []byte
	var it chunkIter
	for _, x := range items {
		var samples []rawSample
		for _, c := range x.chunks {
			var err error
			if data, ok := whole[c.file]; ok {
				buf = data[c.off : c.off+int64(c.length)]
				if crc32.Checksum(buf, castagnoli) != c.crc {
					return fmt.Errorf("tsdb: chunk at %d of %s: %w", c.off, c.file.path, errCorruptBlock)
				}
				buf = slices.Clip(buf)
			} else if buf, err = c.read(nil); err != nil {
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
	refs, idxOff, err := writeBlock(final+".tmp", out)
	if err != nil {
		return err
	}
	if err := os.Rename(final+".tmp", final); err != nil {
		return err
	}
	if err := durable.SyncDir(dir); err != nil {
		return err
	}
	if crash("compacted") {
		return errTestCrash("compacted")
	}
	fh, err := os.Open(final)
	if err != nil {
		return err
	}
	bf := &blockFile{path: final, part: part, lo: lo, hi: hi, f: fh, idxOff: idxOff}
	db.mu.Lock()
	for _, x := range items {
		x.s.disk = slices.DeleteFunc(x.s.disk, func(c diskChunk) bool { return c.file.part == part })
	}
	for _, f := range files {
		f.f.Close()
	}
	delete(db.blocks, part)
	db.attachWritten(bf, out, refs)
	db.mu.Unlock()
	for _, f := range files {
		os.Remove(f.path)
	}
	return durable.SyncDir(dir)
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
