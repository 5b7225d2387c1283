package logstore

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/durable"
	"github.com/berthdev/berth/internal/errs"
)

// Entry is an event to append: its timestamp (epoch ms) and message.
type Entry struct {
	Timestamp int64
	Message   string
}

func segName(num uint64) string { return fmt.Sprintf("%020d.seg", num) }

func newSegment(dir string, num uint64) *segment {
	return &segment{num: num, path: filepath.Join(dir, segName(num)),
		minTs: math.MaxInt64, maxTs: math.MinInt64, minIngest: math.MaxInt64,
		streams: map[uint64]*segStream{}}
}

// index adds one event to the segment's index.
func (seg *segment) index(sid, seq uint64, ts, ingest int64) {
	seg.count++
	seg.maxSeq = max(seg.maxSeq, seq)
	seg.minTs = min(seg.minTs, ts)
	seg.maxTs = max(seg.maxTs, ts)
	seg.minIngest = min(seg.minIngest, ingest)
	ss := seg.streams[sid]
	if ss == nil {
		ss = &segStream{minTs: ts, maxTs: ts}
		seg.streams[sid] = ss
	}
	ss.count++
	ss.minTs = min(ss.minTs, ts)
	ss.maxTs = max(ss.maxTs, ts)
	ss.maxIngest = max(ss.maxIngest, ingest)
}

func (st *stream) note(ts, ingest int64) {
	if !st.has {
		st.has, st.first, st.last = true, ts, ts
	}
	st.first = min(st.first, ts)
	st.last = max(st.last, ts)
	st.lastIngest = max(st.lastIngest, ingest)
}

// load scans the group's segments, truncating torn tails, and rebuilds
// the index and the streams' statistics.
func (g *group) load() error {
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return fmt.Errorf("logstore: %w", err)
	}
	ents, err := os.ReadDir(g.dir)
	if err != nil {
		return fmt.Errorf("logstore: %w", err)
	}
	var nums []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	for i, n := range nums {
		seg := newSegment(g.dir, n)
		// A sealed segment's index file saves scanning it; the last
		// segment, or one whose index file is missing or does not match,
		// is scanned.
		if i == len(nums)-1 || !g.loadIndex(seg) {
			if err := g.scan(seg); err != nil {
				return err
			}
		}
		g.segs = append(g.segs, seg)
	}
	if len(g.segs) > 0 {
		last := g.segs[len(g.segs)-1]
		if last.size < g.s.cfg.SegmentBytes {
			f, err := os.OpenFile(last.path, os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return fmt.Errorf("logstore: %w", err)
			}
			g.active = f
		}
	}
	return nil
}

func (g *group) scan(seg *segment) error {
	f, err := os.OpenFile(seg.path, os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("logstore: %w", err)
	}
	defer f.Close()
	r := &countingReader{r: bufio.NewReaderSize(f, 256<<10)}
	var buf []byte
	for {
		p, err := readRecord(r, buf)
		if err == io.EOF {
			break
		}
		if err == errTorn {
			g.s.log.Warn("log segment has a torn tail; truncating", "segment", seg.path, "offset", seg.size)
			break
		}
		if err != nil {
			return fmt.Errorf("logstore: read %s: %w", seg.path, err)
		}
		buf = p
		e, ok := decodeEvent(p)
		if !ok {
			g.s.log.Warn("log segment has a bad record; truncating", "segment", seg.path, "offset", seg.size)
			break
		}
		seg.size = r.n
		seg.index(e.sid, e.seq, e.ts, e.ingest)
		if e.seq >= g.nextSeq {
			g.nextSeq = e.seq + 1
		}
		if st := g.byID[e.sid]; st != nil {
			st.note(e.ts, e.ingest)
		}
	}
	if fi, err := f.Stat(); err == nil && fi.Size() != seg.size {
		if err := f.Truncate(seg.size); err != nil {
			return fmt.Errorf("logstore: truncate %s: %w", seg.path, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("logstore: %w", err)
		}
	}
	return nil
}

// Append appends entries to a stream and returns once they are on disk.
// The stream is created when missing and createStream is set; otherwise
// a missing stream is errs.NotFound. Entries are stored as given (the
// caller applies AWS's acceptance rules); now is the ingestion time (ms).
// It returns the sequence number the group's next event will get.
func (s *Store) Append(groupName, streamName string, entries []Entry, createStream bool, now int64) (uint64, error) {
	g, err := s.lookup(groupName)
	if err != nil {
		return 0, err
	}
	end, next, err := g.write(streamName, entries, createStream, now)
	if err != nil {
		return 0, err
	}
	return next, g.commit(end)
}

// write appends the records to the active segment under g.mu and returns
// the logical offset the caller must see synced.
func (g *group) write(streamName string, entries []Entry, createStream bool, now int64) (end int64, next uint64, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deleted {
		return 0, 0, errs.E(errs.NotFound, MsgGroupNotFound)
	}
	st := g.streams[streamName]
	if st == nil {
		if !createStream {
			return 0, 0, errs.E(errs.NotFound, MsgStreamNotFound)
		}
		if st, err = g.createStreamLocked(streamName, now); err != nil {
			return 0, 0, err
		}
	}
	if len(entries) == 0 {
		return g.written, g.nextSeq, nil
	}
	size := 0
	for _, e := range entries {
		size += len(e.Message) + 40
	}
	buf := make([]byte, 0, size)
	seq := g.nextSeq
	for _, e := range entries {
		buf = appendEvent(buf, st.id, seq, e.Timestamp, now, e.Message)
		seq++
	}
	if err := g.rotateIfNeeded(int64(len(buf)), now); err != nil {
		return 0, 0, err
	}
	seg := g.segs[len(g.segs)-1]
	if n, err := g.active.Write(buf); err != nil {
		// Leave no partial record behind a failed write.
		if n > 0 {
			_ = g.active.Truncate(seg.size)
		}
		return 0, 0, errs.Wrap(errs.Unavailable, err, "append log events")
	}
	for i, e := range entries {
		seg.index(st.id, g.nextSeq+uint64(i), e.Timestamp, now)
		st.note(e.Timestamp, now)
	}
	g.nextSeq = seq
	seg.size += int64(len(buf))
	g.written += int64(len(buf))
	return g.written, g.nextSeq, nil
}

// rotateIfNeeded makes sure an active segment with room exists; g.mu held.
func (g *group) rotateIfNeeded(n int64, now int64) error {
	if g.active != nil {
		seg := g.segs[len(g.segs)-1]
		full := seg.size > 0 && seg.size+n > g.s.cfg.SegmentBytes
		old := seg.count > 0 && now-seg.minIngest > g.s.cfg.SegmentAge.Milliseconds()
		if !full && !old {
			return nil
		}
		// The committer syncs and closes the retired file before it
		// acknowledges anything written after it.
		g.retired = append(g.retired, g.active)
		g.active = nil
	}
	var num uint64
	if len(g.segs) > 0 {
		num = g.segs[len(g.segs)-1].num + 1
	}
	seg := newSegment(g.dir, num)
	f, err := os.OpenFile(seg.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_EXCL, 0o644)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "create log segment")
	}
	if err := durable.SyncDir(g.dir); err != nil {
		f.Close()
		_ = os.Remove(seg.path)
		return errs.Wrap(errs.Unavailable, err, "create log segment")
	}
	g.active = f
	g.segs = append(g.segs, seg)
	return nil
}

// commit returns once every byte up to logical offset end is on disk.
// Concurrent callers share one fsync (group commit).
func (g *group) commit(end int64) error {
	g.commitMu.Lock()
	defer g.commitMu.Unlock()
	if g.synced >= end {
		return nil
	}
	g.mu.Lock()
	target, f, retired, deleted := g.written, g.active, g.retired, g.deleted
	g.retired = nil
	g.mu.Unlock()
	if deleted {
		return errs.E(errs.NotFound, MsgGroupNotFound)
	}
	for _, r := range retired {
		if err := r.Sync(); err != nil {
			r.Close()
			return errs.Wrap(errs.Unavailable, err, "sync log segment")
		}
		r.Close()
	}
	if f != nil {
		if err := f.Sync(); err != nil {
			return errs.Wrap(errs.Unavailable, err, "sync log segment")
		}
	}
	g.synced = target
	return nil
}

// EnforceRetention deletes sealed segments whose newest event is older
// than their group's retention, then, while all segments together exceed
// Config.MaxBytes, the sealed segment with the oldest ingestion. It
// returns how many segments it deleted.
func (s *Store) EnforceRetention(now time.Time) int {
	nowMs := now.UnixMilli()
	s.mu.RLock()
	gs := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		gs = append(gs, g)
	}
	s.mu.RUnlock()
	deleted := 0
	var total int64
	for _, g := range gs {
		g.mu.Lock()
		if days := g.info.RetentionDays; days > 0 && !g.deleted {
			cutoff := nowMs - int64(days)*86_400_000
			deleted += g.dropLocked(func(seg *segment) bool { return seg.maxTs < cutoff })
		}
		for _, seg := range g.segs {
			total += seg.size
		}
		g.mu.Unlock()
	}
	for total > s.cfg.MaxBytes {
		var victim *group
		var vseg *segment
		for _, g := range gs {
			g.mu.Lock()
			if n := len(g.sealedLocked()); n > 0 && !g.deleted {
				if seg := g.segs[0]; vseg == nil || seg.minIngest < vseg.minIngest {
					victim, vseg = g, seg
				}
			}
			g.mu.Unlock()
		}
		if victim == nil {
			break
		}
		victim.mu.Lock()
		if len(victim.segs) > 0 && victim.segs[0] == vseg && len(victim.sealedLocked()) > 0 {
			total -= vseg.size
			deleted += victim.dropLocked(func(seg *segment) bool { return seg == vseg })
			s.log.Warn("log store over its byte bound: deleted the oldest segment", "group", victim.info.Name, "bytes", vseg.size)
		}
		victim.mu.Unlock()
	}
	return deleted
}

// sealedLocked returns the segments no longer appended to.
func (g *group) sealedLocked() []*segment {
	if g.active != nil && len(g.segs) > 0 {
		return g.segs[:len(g.segs)-1]
	}
	return g.segs
}

// dropLocked deletes sealed segments for which drop is true; g.mu held.
func (g *group) dropLocked(drop func(*segment) bool) int {
	sealed := len(g.sealedLocked())
	n := 0
	kept := g.segs[:0:0]
	for i, seg := range g.segs {
		if i < sealed && drop(seg) {
			_ = os.Remove(indexPath(seg))
			if err := os.Remove(seg.path); err != nil && !os.IsNotExist(err) {
				g.s.log.Warn("delete expired log segment", "segment", seg.path, "err", err)
				kept = append(kept, seg)
				continue
			}
			n++
			continue
		}
		kept = append(kept, seg)
	}
	g.segs = kept
	return n
}

// segIndex is a sealed segment's index file (<n>.idx): the segment's
// size, so a file that does not match is ignored, and its index.
type segIndex struct {
	Size      int64            `json:"size"`
	Count     int              `json:"count"`
	MinTs     int64            `json:"minTs"`
	MaxTs     int64            `json:"maxTs"`
	MinIngest int64            `json:"minIngest"`
	MaxSeq    uint64           `json:"maxSeq"`
	Streams   []segIndexStream `json:"streams"`
}

type segIndexStream struct {
	ID        uint64 `json:"id"`
	Count     int    `json:"count"`
	MinTs     int64  `json:"minTs"`
	MaxTs     int64  `json:"maxTs"`
	MaxIngest int64  `json:"maxIngest"`
}

func indexPath(seg *segment) string { return strings.TrimSuffix(seg.path, ".seg") + ".idx" }

// loadIndex reads seg's index file; false if it is missing or does not
// match the segment.
func (g *group) loadIndex(seg *segment) bool {
	b, err := os.ReadFile(indexPath(seg))
	if err != nil {
		return false
	}
	p, err := readRecord(bytes.NewReader(b), nil)
	if err != nil {
		return false
	}
	var ix segIndex
	if json.Unmarshal(p, &ix) != nil {
		return false
	}
	fi, err := os.Stat(seg.path)
	if err != nil || fi.Size() != ix.Size {
		return false
	}
	seg.size, seg.count, seg.minTs, seg.maxTs = ix.Size, ix.Count, ix.MinTs, ix.MaxTs
	seg.minIngest, seg.maxSeq, seg.indexed = ix.MinIngest, ix.MaxSeq, true
	for _, ss := range ix.Streams {
		seg.streams[ss.ID] = &segStream{count: ss.Count, minTs: ss.MinTs, maxTs: ss.MaxTs, maxIngest: ss.MaxIngest}
		if st := g.byID[ss.ID]; st != nil {
			st.note(ss.MinTs, ss.MaxIngest)
			st.note(ss.MaxTs, ss.MaxIngest)
		}
	}
	if ix.MaxSeq >= g.nextSeq {
		g.nextSeq = ix.MaxSeq + 1
	}
	return true
}

// WriteIndexes writes the index file of every sealed segment that lacks
// one (the retention pass calls it), so the next start need not scan
// them. It returns how many it wrote.
func (s *Store) WriteIndexes() int {
	s.mu.RLock()
	gs := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		gs = append(gs, g)
	}
	s.mu.RUnlock()
	n := 0
	for _, g := range gs {
		g.mu.Lock()
		var todo []*segment
		var ixs []segIndex
		for _, seg := range g.sealedLocked() {
			if seg.indexed || g.deleted {
				continue
			}
			ix := segIndex{Size: seg.size, Count: seg.count, MinTs: seg.minTs, MaxTs: seg.maxTs,
				MinIngest: seg.minIngest, MaxSeq: seg.maxSeq}
			for id, ss := range seg.streams {
				ix.Streams = append(ix.Streams, segIndexStream{ID: id, Count: ss.count, MinTs: ss.minTs, MaxTs: ss.maxTs, MaxIngest: ss.maxIngest})
			}
			todo, ixs = append(todo, seg), append(ixs, ix)
		}
		g.mu.Unlock()
		for i, seg := range todo {
			if err := writeIndex(seg, ixs[i]); err != nil {
				g.s.log.Warn("write log segment index (the segment will be scanned at start)", "segment", seg.path, "err", err)
				continue
			}
			g.mu.Lock()
			seg.indexed = true
			g.mu.Unlock()
			n++
		}
	}
	return n
}

func writeIndex(seg *segment, ix segIndex) error {
	// The segment's bytes are on disk before an index claims them.
	f, err := os.Open(seg.path)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	p, err := json.Marshal(ix)
	if err != nil {
		return err
	}
	return durable.WriteFile(indexPath(seg), appendRecord(nil, p), 0o644)
}
