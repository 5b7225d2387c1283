// Package tsdb is the time-series store behind Berth's CloudWatch metrics:
// per series, Gorilla-style compressed chunks (delta-of-delta timestamps,
// XOR floats) in an in-memory head backed by a group-committed write-ahead
// log, flushed to immutable block files of two hours of sample time each,
// compacted once closed and deleted whole past the retention. See
// docs/metrics-storage.md for the layout and how it fails.
package tsdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/durable"
	"github.com/berthdev/berth/internal/errs"
)

// memChunk is a sealed in-memory chunk (bytes as on disk).
type memChunk struct {
	b          []byte
	minT, maxT int64
}

// headPart holds the head samples of one series in one partition.
type headPart struct {
	part   int64
	n      int
	sealed []memChunk
	cur    *chunkEncoder
}

func (hp *headPart) chunks() []memChunk {
	out := slices.Clone(hp.sealed)
	if hp.cur != nil && hp.cur.n > 0 {
		out = append(out, memChunk{b: hp.cur.bytes(), minT: hp.cur.minT, maxT: hp.cur.maxT})
	}
	return out
}

type series struct {
	key       SeriesKey
	ks        string
	units     []string
	lastWrite int64 // ms, wall time of the last Append
	highRes   bool  // some sample was stored with StorageResolution 1
	head      []*headPart
	flushing  []*headPart // being written to blocks; still read by queries
	disk      []diskChunk
}

func (s *series) unitIndex(u string) int {
	for i, x := range s.units {
		if x == u {
			return i
		}
	}
	return -1
}

// DB is an open time-series store. Its methods are safe for concurrent use.
type DB struct {
	dir     string
	opt     Options
	blockMs int64

	maintMu sync.Mutex // one flush, compaction or retention pass at a time

	mu          sync.RWMutex
	series      map[string]*series
	headSamples int
	headSince   time.Time // wall time of the first sample in an empty head
	blocks      map[int64][]*blockFile
	closed      bool
	// seriesVersion changes whenever a series is added or removed; the
	// sorted list Series answers from is rebuilt when it changed.
	seriesVersion uint64

	sortMu        sync.Mutex // guards the two fields below (read under mu.RLock)
	sorted        []*series  // all series by key string
	sortedVersion uint64

	wal     *wal
	flushCh chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func (db *DB) walDir() string    { return filepath.Join(db.dir, "wal") }
func (db *DB) blocksDir() string { return filepath.Join(db.dir, "blocks") }

// Open opens (creating if needed) the store in dir: it completes or rolls
// back an interrupted flush, loads the block indexes, replays the WAL (a torn
// final record is dropped) and starts the background maintenance loop.
func Open(dir string, opt Options) (*DB, error) {
	opt = opt.withDefaults()
	db := &DB{
		dir: dir, opt: opt, blockMs: opt.BlockDuration.Milliseconds(),
		series: map[string]*series{}, blocks: map[int64][]*blockFile{},
		flushCh: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if db.blockMs <= 0 {
		return nil, errs.E(errs.Invalid, "tsdb: block duration %s is below a millisecond", opt.BlockDuration)
	}
	for _, d := range []string{db.walDir(), db.blocksDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := db.completeCommits(); err != nil {
		return nil, err
	}
	maxHi, err := db.loadBlocks()
	if err != nil {
		db.closeBlocks()
		return nil, err
	}
	segs, err := listSegments(db.walDir())
	if err != nil {
		db.closeBlocks()
		return nil, err
	}
	next := maxHi + 1
	for _, seg := range segs {
		if err := replaySegment(filepath.Join(db.walDir(), segName(seg)), opt.Log, db.replayRecord); err != nil {
			db.closeBlocks()
			return nil, fmt.Errorf("tsdb: replay WAL: %w", err)
		}
		next = max(next, seg+1)
	}
	if db.headSamples > 0 {
		db.headSince = opt.Now()
	}
	if db.wal, err = openWAL(db.walDir(), next); err != nil {
		db.closeBlocks()
		return nil, err
	}
	opt.Log.Info("tsdb: opened", "dir", dir, "series", len(db.series), "head_samples", db.headSamples, "partitions", len(db.blocks))
	if opt.MaintainInterval > 0 {
		go db.maintain()
	} else {
		close(db.done)
	}
	return db, nil
}

// completeCommits finishes flushes whose commit marker was written: their
// block files are renamed into place and the WAL segments they cover
// deleted. Then leftover temporary files (flushes without a marker) go.
func (db *DB) completeCommits() error {
	ents, err := os.ReadDir(db.walDir())
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(db.walDir(), name))
			continue
		}
		hex, ok := strings.CutSuffix(strings.TrimPrefix(name, "flush-"), ".commit")
		if !ok || !strings.HasPrefix(name, "flush-") {
			continue
		}
		seg, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			continue
		}
		marker := filepath.Join(db.walDir(), name)
		data, err := os.ReadFile(marker)
		if err != nil {
			return err
		}
		for _, rel := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if rel == "" {
				continue
			}
			final := filepath.Join(db.dir, rel)
			if err := os.Rename(final+".tmp", final); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if err := durable.SyncDir(filepath.Dir(final)); err != nil {
				return err
			}
		}
		if err := removeSegmentsBefore(db.walDir(), seg); err != nil {
			return err
		}
		if err := os.Remove(marker); err != nil {
			return err
		}
		db.opt.Log.Info("tsdb: completed an interrupted flush", "flush", seg)
	}
	return nil
}

// loadBlocks opens every block file and attaches its chunks to its series.
// It returns the highest flush number seen.
func (db *DB) loadBlocks() (uint64, error) {
	parts, err := os.ReadDir(db.blocksDir())
	if err != nil {
		return 0, err
	}
	var maxHi uint64
	for _, pe := range parts {
		part, err := strconv.ParseInt(pe.Name(), 10, 64)
		if err != nil || !pe.IsDir() {
			continue
		}
		dir := filepath.Join(db.blocksDir(), pe.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			return 0, err
		}
		type named struct {
			name   string
			lo, hi uint64
		}
		var files []named
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".tmp") {
				os.Remove(filepath.Join(dir, e.Name()))
				continue
			}
			if lo, hi, ok := parseBlockName(e.Name()); ok {
				files = append(files, named{e.Name(), lo, hi})
			}
		}
		for _, f := range files {
			covered := slices.ContainsFunc(files, func(g named) bool {
				return g.name != f.name && g.lo <= f.lo && f.hi <= g.hi && (g.lo < f.lo || f.hi < g.hi || g.name < f.name)
			})
			if covered { // left behind by a compaction interrupted before its clean-up
				os.Remove(filepath.Join(dir, f.name))
				continue
			}
			maxHi = max(maxHi, f.hi)
			bf, idx, err := openBlock(filepath.Join(dir, f.name), part, f.lo, f.hi)
			if err != nil {
				db.opt.Log.Error("tsdb: skipping unreadable block file", "path", filepath.Join(dir, f.name), "err", err)
				continue
			}
			if err := db.attachIndex(bf, idx); err != nil { // checked by openBlock: a bug
				return 0, fmt.Errorf("tsdb: %s: %w", bf.path, err)
			}
		}
	}
	return maxHi, nil
}

// attachIndex adds the chunks of a block read from disk to their series.
// Caller holds mu (or is Open).
func (db *DB) attachIndex(bf *blockFile, idx []byte) error {
	err := bf.parseIndex(idx, func(e *indexEntry) {
		s := db.series[string(e.ks)]
		if s == nil {
			s = &series{key: e.key(), ks: string(e.ks)}
			db.series[s.ks] = s
			db.seriesVersion++
		}
		if len(e.units) > len(s.units) { // unit tables only grow: the longest is the newest
			s.units = make([]string, len(e.units))
			for i, u := range e.units {
				s.units[i] = string(u)
			}
		}
		s.lastWrite = max(s.lastWrite, e.lastWrite)
		s.highRes = s.highRes || e.highRes
		s.disk = append(s.disk, e.chunks...)
	})
	db.blocks[bf.part] = append(db.blocks[bf.part], bf)
	return err
}

// attachWritten adds the chunks of a block just written (refs as
// writeBlock returned them, for list) to their series. Caller holds mu.
func (db *DB) attachWritten(bf *blockFile, list []seriesChunks, refs [][]diskChunk) {
	for i, sc := range list {
		s := db.series[sc.ks]
		if s == nil { // cannot happen: a series with samples being written is not forgotten
			s = &series{key: sc.key, ks: sc.ks, units: sc.units, lastWrite: sc.lastWrite}
			db.series[s.ks] = s
			db.seriesVersion++
		}
		for _, c := range refs[i] {
			c.file = bf
			s.disk = append(s.disk, c)
		}
	}
	db.blocks[bf.part] = append(db.blocks[bf.part], bf)
}

func (db *DB) closeBlocks() {
	for _, files := range db.blocks {
		for _, bf := range files {
			bf.f.Close()
		}
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// insert adds a sample to a series' head. Caller holds mu.
func (db *DB) insert(s *series, t int64, smp Sample, unit uint8) {
	part := floorDiv(t, db.blockMs) * db.blockMs
	var hp *headPart
	for _, h := range s.head {
		if h.part == part {
			hp = h
			break
		}
	}
	if hp == nil {
		hp = &headPart{part: part}
		s.head = append(s.head, hp)
	}
	if hp.cur == nil {
		hp.cur = newChunkEncoder()
	} else if hp.cur.full() {
		hp.sealed = append(hp.sealed, memChunk{b: hp.cur.bytes(), minT: hp.cur.minT, maxT: hp.cur.maxT})
		hp.cur = newChunkEncoder()
	}
	hp.cur.append(t, smp, unit)
	hp.n++
	db.headSamples++
}

// Series lists known series of a namespace ("" = all), sorted by key string.
func (db *DB) Series(namespace string) []SeriesInfo {
	db.mu.RLock()
	defer db.mu.RUnlock()
	all := db.sortedSeries()
	lo, hi := 0, len(all)
	if namespace != "" {
		prefix := string(appendEscaped(nil, namespace)) + "|"
		lo, _ = slices.BinarySearchFunc(all, prefix, func(s *series, p string) int { return strings.Compare(s.ks, p) })
		for hi = lo; hi < len(all) && strings.HasPrefix(all[hi].ks, prefix); hi++ {
		}
	}
	infos := make([]SeriesInfo, 0, hi-lo)
	for _, s := range all[lo:hi] {
		if namespace == "" || s.key.Namespace == namespace {
			infos = append(infos, s.info())
		}
	}
	return infos
}

// Lookup returns what is known of one series.
func (db *DB) Lookup(key SeriesKey) (SeriesInfo, bool) {
	if !dimsSorted(key.Dims) {
		key = NewKey(key.Namespace, key.MetricName, key.Dims)
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	s := db.series[key.String()]
	if s == nil {
		return SeriesInfo{}, false
	}
	return s.info(), true
}

func (s *series) info() SeriesInfo {
	return SeriesInfo{Key: s.key, LastWrite: time.UnixMilli(s.lastWrite), Units: slices.Clone(s.units), HighResolution: s.highRes}
}

// sortedSeries returns all series sorted by key string, rebuilding the list
// when series were added or removed. Caller holds mu (read or write).
func (db *DB) sortedSeries() []*series {
	db.sortMu.Lock()
	defer db.sortMu.Unlock()
	if db.sorted == nil || db.sortedVersion != db.seriesVersion {
		all := make([]*series, 0, len(db.series))
		for _, s := range db.series {
			all = append(all, s)
		}
		slices.SortFunc(all, func(a, b *series) int { return strings.Compare(a.ks, b.ks) })
		db.sorted, db.sortedVersion = all, db.seriesVersion
	}
	return db.sorted
}

// Close stops the maintenance loop, flushes the head to blocks and closes
// the files. The DB is unusable afterwards.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	close(db.stop)
	<-db.done
	err := db.Flush()
	if werr := db.wal.close(); err == nil {
		err = werr
	}
	db.mu.Lock()
	db.closeBlocks()
	db.blocks = map[int64][]*blockFile{}
	db.mu.Unlock()
	return err
}

func (db *DB) maintain() {
	defer close(db.done)
	t := time.NewTicker(db.opt.MaintainInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-db.flushCh:
		case <-t.C:
		}
		if err := db.Maintain(); err != nil {
			db.opt.Log.Error("tsdb: maintenance", "err", err)
		}
	}
}

// Maintain flushes the head if it is older than FlushInterval or larger
// than MaxHeadSamples, compacts closed partitions and applies retention.
func (db *DB) Maintain() error {
	db.mu.RLock()
	due := db.headSamples >= db.opt.MaxHeadSamples ||
		(db.headSamples > 0 && db.opt.Now().Sub(db.headSince) >= db.opt.FlushInterval)
	db.mu.RUnlock()
	var errsOut []error
	if due {
		errsOut = append(errsOut, db.Flush())
	}
	errsOut = append(errsOut, db.Compact(), db.ApplyRetention())
	return errors.Join(errsOut...)
}
