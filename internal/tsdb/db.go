// Package tsdb is the time-series store behind Berth's CloudWatch metrics:
// per series, Gorilla-style compressed chunks (delta-of-delta timestamps,
// XOR floats) in an in-memory head backed by a group-committed write-ahead
// log, flushed to immutable block files of two hours of sample time each,
// compacted once closed and deleted whole past the retention. See
// docs/metrics-storage.md for the layout and how it fails.
package tsdb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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
			if err := syncDir(filepath.Dir(final)); err != nil {
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
			bf, err := openBlock(filepath.Join(dir, f.name), part, f.lo, f.hi)
			if err != nil {
				db.opt.Log.Error("tsdb: skipping unreadable block file", "path", filepath.Join(dir, f.name), "err", err)
				continue
			}
			db.attachBlock(bf)
		}
	}
	return maxHi, nil
}

// attachBlock adds a block's chunks to its series. Caller holds mu (or is Open).
func (db *DB) attachBlock(bf *blockFile) {
	for _, bs := range bf.seriesIdx {
		ks := bs.key.String()
		s := db.series[ks]
		if s == nil {
			s = &series{key: bs.key, ks: ks}
			db.series[ks] = s
		}
		if len(bs.units) > len(s.units) { // unit tables only grow: the longest is the newest
			s.units = bs.units
		}
		s.lastWrite = max(s.lastWrite, bs.lastWrite)
		s.disk = append(s.disk, bs.chunks...)
		bf.refs += len(bs.chunks)
	}
	bf.seriesIdx = nil
	db.blocks[bf.part] = append(db.blocks[bf.part], bf)
}

func (db *DB) closeBlocks() {
	for _, files := range db.blocks {
		for _, bf := range files {
			bf.f.Close()
		}
	}
}

// walPoint is one point as logged.
type walPoint struct {
	key  SeriesKey
	ks   string
	t    int64
	s    Sample
	unit string
}

func encodeWALRecord(b []byte, wallMs int64, pts []Point, keys []SeriesKey) []byte {
	b = binary.AppendVarint(b, wallMs)
	b = binary.AppendUvarint(b, uint64(len(pts)))
	for i, p := range pts {
		b = appendKey(b, keys[i])
		b = binary.AppendVarint(b, p.T.UnixMilli())
		b = appendFloat(b, p.Sample.Min)
		b = appendFloat(b, p.Sample.Max)
		b = appendFloat(b, p.Sample.Sum)
		b = appendFloat(b, p.Sample.Count)
		b = appendString(b, p.Unit)
		var flags byte
		if p.HighResolution {
			flags |= 1
		}
		b = append(b, flags)
	}
	return b
}

func (db *DB) replayRecord(payload []byte) error {
	d := decoder{b: payload}
	wall := d.varint()
	n := d.uvarint()
	if n > uint64(len(payload)) {
		return errShort
	}
	pts := make([]walPoint, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		var p walPoint
		p.key = d.key()
		p.t = d.varint()
		p.s = Sample{Min: d.float(), Max: d.float(), Sum: d.float(), Count: d.float()}
		p.unit = d.string()
		d.byte()
		p.ks = p.key.String()
		pts = append(pts, p)
	}
	if d.err != nil {
		return d.err
	}
	for _, p := range pts {
		s := db.series[p.ks]
		if s == nil {
			s = &series{key: p.key, ks: p.ks}
			db.series[p.ks] = s
		}
		ui := s.unitIndex(p.unit)
		if ui < 0 {
			if len(s.units) >= MaxUnitsPerSeries {
				return errs.E(errs.LimitExceeded, "too many units for %s", p.ks)
			}
			s.units = append(s.units, p.unit)
			ui = len(s.units) - 1
		}
		s.lastWrite = max(s.lastWrite, wall)
		db.insert(s, p.t, p.s, uint8(ui))
	}
	return nil
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

// Append stores points durably: when it returns nil they survive kill -9
// (WAL + fsync, group commit across concurrent callers). It stores all of
// the points or none: a point older than the retention is errs.Invalid; a
// point of a new series past MaxSeries, or of a unit past
// MaxUnitsPerSeries, is errs.LimitExceeded.
func (db *DB) Append(ctx context.Context, pts []Point) error {
	if len(pts) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := db.opt.Now()
	nowMs := now.UnixMilli()
	oldest := nowMs - db.opt.Retention.Milliseconds()
	keys := make([]SeriesKey, len(pts))
	kss := make([]string, len(pts))
	for i, p := range pts {
		k := p.Key
		if !slices.IsSortedFunc(k.Dims, func(a, b Dim) int { return strings.Compare(a.Name, b.Name) }) {
			k = NewKey(k.Namespace, k.MetricName, k.Dims)
		}
		keys[i], kss[i] = k, k.String()
		if t := p.T.UnixMilli(); t < oldest {
			return errs.R(errs.Invalid, "tsdb.too_old", "the timestamp %s of %s is older than the retention period (%s)",
				p.T.UTC().Format(time.RFC3339), kss[i], db.opt.Retention)
		}
	}
	payload := encodeWALRecord(make([]byte, 0, 64*len(pts)), nowMs, pts, keys)

	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return errs.E(errs.Unavailable, "tsdb: closed")
	}
	if err := db.checkLimits(pts, kss); err != nil {
		db.mu.Unlock()
		return err
	}
	pos, err := db.wal.write(payload)
	if err != nil {
		db.mu.Unlock()
		return errs.Wrap(errs.Unavailable, err, "tsdb: append")
	}
	var s *series
	for i, p := range pts {
		if s == nil || s.ks != kss[i] {
			s = db.series[kss[i]]
			if s == nil {
				s = &series{key: keys[i], ks: kss[i]}
				db.series[kss[i]] = s
			}
		}
		ui := s.unitIndex(p.Unit)
		if ui < 0 {
			s.units = append(s.units, p.Unit)
			ui = len(s.units) - 1
		}
		s.lastWrite = max(s.lastWrite, nowMs)
		if db.headSamples == 0 {
			db.headSince = now
		}
		db.insert(s, p.T.UnixMilli(), p.Sample, uint8(ui))
	}
	full := db.headSamples >= db.opt.MaxHeadSamples
	db.mu.Unlock()
	if full {
		select {
		case db.flushCh <- struct{}{}:
		default:
		}
	}
	if err := db.wal.waitSync(pos); err != nil {
		return errs.Wrap(errs.Unavailable, err, "tsdb: append")
	}
	return nil
}

// checkLimits checks the series and unit bounds for a batch. Caller holds mu.
func (db *DB) checkLimits(pts []Point, kss []string) error {
	var newUnits map[string][]string // series key → units it would have (only when it changes)
	newSeries := 0
	for i, p := range pts {
		s := db.series[kss[i]]
		if s != nil && s.unitIndex(p.Unit) >= 0 {
			continue
		}
		if newUnits == nil {
			newUnits = map[string][]string{}
		}
		units, seen := newUnits[kss[i]]
		if !seen {
			if s == nil {
				newSeries++
				if len(db.series)+newSeries > db.opt.MaxSeries {
					return errs.R(errs.LimitExceeded, "tsdb.max_series", "the maximum number of metrics (%d) is reached; %s cannot be added",
						db.opt.MaxSeries, kss[i])
				}
			} else {
				units = slices.Clone(s.units)
			}
		}
		if !slices.Contains(units, p.Unit) {
			units = append(units, p.Unit)
			if len(units) > MaxUnitsPerSeries {
				return errs.R(errs.LimitExceeded, "tsdb.max_units", "the metric %s has more than %d units", kss[i], MaxUnitsPerSeries)
			}
		}
		newUnits[kss[i]] = units
	}
	return nil
}

// Series lists known series of a namespace ("" = all), sorted by key string.
func (db *DB) Series(namespace string) []SeriesInfo {
	db.mu.RLock()
	out := make([]*series, 0, len(db.series))
	for _, s := range db.series {
		if namespace == "" || s.key.Namespace == namespace {
			out = append(out, s)
		}
	}
	infos := make([]SeriesInfo, len(out))
	slices.SortFunc(out, func(a, b *series) int { return strings.Compare(a.ks, b.ks) })
	for i, s := range out {
		infos[i] = SeriesInfo{Key: s.key, LastWrite: time.UnixMilli(s.lastWrite), Units: slices.Clone(s.units)}
	}
	db.mu.RUnlock()
	return infos
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
