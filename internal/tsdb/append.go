package tsdb

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

// batch is one Append's points with their series and units listed once;
// it is also the WAL record:
//
//	varint wall time (ms) | uvarint nkeys, per key: key, byte flags (1: high resolution) | uvarint nunits, units |
//	uvarint npoints, per point: uvarint key index, uvarint unit index, varint time (ms),
//	float64 min, max, sum, count (little endian)
type batch struct {
	wall  int64
	keys  []batchKey
	units []string
	pts   []batchPoint
}

type batchKey struct {
	key     SeriesKey
	ks      string
	highRes bool    // some point of the batch has StorageResolution 1
	s       *series // resolved under DB.mu
}

type batchPoint struct {
	k, u uint32
	t    int64
	s    Sample
}

func sameKey(a, b *SeriesKey) bool {
	if a.Namespace != b.Namespace || a.MetricName != b.MetricName || len(a.Dims) != len(b.Dims) {
		return false
	}
	for i := range a.Dims {
		if a.Dims[i] != b.Dims[i] {
			return false
		}
	}
	return true
}

func dimsSorted(d []Dim) bool {
	return slices.IsSortedFunc(d, func(a, b Dim) int { return strings.Compare(a.Name, b.Name) })
}

// newBatch groups points by series and unit, rejecting points older than
// oldest or more than MaxFuture after wall (retention 0: no time checks,
// for the benchmark's baseline).
func newBatch(pts []Point, wall, oldest int64, retention time.Duration) (*batch, error) {
	newest := wall + MaxFuture.Milliseconds()
	b := &batch{wall: wall, pts: make([]batchPoint, len(pts))}
	idx := map[string]uint32{}
	var sb []byte
	var k uint32
	for i := range pts {
		p := &pts[i]
		if i == 0 || !sameKey(&p.Key, &pts[i-1].Key) {
			key := p.Key
			if !dimsSorted(key.Dims) {
				key = NewKey(key.Namespace, key.MetricName, key.Dims)
			}
			sb = appendKeyString(sb[:0], key)
			var ok bool
			if k, ok = idx[string(sb)]; !ok {
				k = uint32(len(b.keys))
				ks := string(sb)
				idx[ks] = k
				b.keys = append(b.keys, batchKey{key: key, ks: ks})
			}
		}
		if p.HighResolution {
			b.keys[k].highRes = true
		}
		u := slices.Index(b.units, p.Unit)
		if u < 0 {
			u = len(b.units)
			b.units = append(b.units, p.Unit)
		}
		t := p.T.UnixMilli()
		if t < oldest {
			return nil, errs.R(errs.Invalid, "tsdb.too_old", "the timestamp %s of %s is older than the retention period (%s)",
				p.T.UTC().Format(time.RFC3339), b.keys[k].ks, retention)
		}
		if t > newest && retention > 0 {
			return nil, errs.R(errs.Invalid, "tsdb.too_new", "the timestamp %s of %s is more than %s in the future",
				p.T.UTC().Format(time.RFC3339), b.keys[k].ks, MaxFuture)
		}
		b.pts[i] = batchPoint{k: k, u: uint32(u), t: t, s: p.Sample}
	}
	return b, nil
}

func (b *batch) encode(out []byte) []byte {
	out = binary.AppendVarint(out, b.wall)
	out = binary.AppendUvarint(out, uint64(len(b.keys)))
	for _, k := range b.keys {
		out = appendKey(out, k.key)
		var flags byte
		if k.highRes {
			flags |= 1
		}
		out = append(out, flags)
	}
	out = binary.AppendUvarint(out, uint64(len(b.units)))
	for _, u := range b.units {
		out = appendString(out, u)
	}
	out = binary.AppendUvarint(out, uint64(len(b.pts)))
	for _, p := range b.pts {
		out = binary.AppendUvarint(out, uint64(p.k))
		out = binary.AppendUvarint(out, uint64(p.u))
		out = binary.AppendVarint(out, p.t)
		out = appendFloat(out, p.s.Min)
		out = appendFloat(out, p.s.Max)
		out = appendFloat(out, p.s.Sum)
		out = appendFloat(out, p.s.Count)
	}
	return out
}

func decodeBatch(payload []byte) (*batch, error) {
	d := decoder{b: payload}
	b := &batch{wall: d.varint()}
	n := d.uvarint()
	if n > uint64(len(payload)) {
		return nil, errShort
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := d.key()
		b.keys = append(b.keys, batchKey{key: k, ks: k.String(), highRes: d.byte()&1 != 0})
	}
	if n = d.uvarint(); n > uint64(len(payload)) {
		return nil, errShort
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		b.units = append(b.units, d.string())
	}
	if n = d.uvarint(); n > uint64(len(payload)) {
		return nil, errShort
	}
	b.pts = make([]batchPoint, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		p := batchPoint{k: uint32(d.uvarint()), u: uint32(d.uvarint()), t: d.varint()}
		p.s = Sample{Min: d.float(), Max: d.float(), Sum: d.float(), Count: d.float()}
		if d.err == nil && (int(p.k) >= len(b.keys) || int(p.u) >= len(b.units)) {
			return nil, errShort
		}
		b.pts = append(b.pts, p)
	}
	if d.err != nil {
		return nil, d.err
	}
	return b, nil
}

// resolve looks up the batch's series. Caller holds mu.
func (db *DB) resolve(b *batch) {
	for i := range b.keys {
		b.keys[i].s = db.series[b.keys[i].ks]
	}
}

// checkLimits checks the series and unit bounds for a resolved batch.
// Caller holds mu.
func (db *DB) checkLimits(b *batch) error {
	newSeries := 0
	for _, k := range b.keys {
		if k.s == nil {
			newSeries++
			if len(db.series)+newSeries > db.opt.MaxSeries {
				return errs.R(errs.LimitExceeded, "tsdb.max_series", "the maximum number of metrics (%d) is reached; %s cannot be added",
					db.opt.MaxSeries, k.ks)
			}
		}
	}
	var grown map[uint32][]string // units a series would have, when the batch adds some
	for _, p := range b.pts {
		k := &b.keys[p.k]
		unit := b.units[p.u]
		if k.s != nil && k.s.unitIndex(unit) >= 0 {
			continue
		}
		if grown == nil {
			grown = map[uint32][]string{}
		}
		units, seen := grown[p.k]
		if !seen && k.s != nil {
			units = slices.Clone(k.s.units)
		}
		if !slices.Contains(units, unit) {
			units = append(units, unit)
			if len(units) > MaxUnitsPerSeries {
				return errs.R(errs.LimitExceeded, "tsdb.max_units", "the metric %s has more than %d units", k.ks, MaxUnitsPerSeries)
			}
		}
		grown[p.k] = units
	}
	return nil
}

// apply adds a resolved batch to the head. Caller holds mu.
func (db *DB) apply(b *batch) {
	for i := range b.keys {
		k := &b.keys[i]
		if k.s == nil {
			if k.s = db.series[k.ks]; k.s == nil {
				k.s = &series{key: k.key, ks: k.ks}
				db.series[k.ks] = k.s
				db.seriesVersion++
			}
		}
		k.s.lastWrite = max(k.s.lastWrite, b.wall)
		k.s.highRes = k.s.highRes || k.highRes
	}
	for _, p := range b.pts {
		s := b.keys[p.k].s
		unit := b.units[p.u]
		ui := 0
		if len(s.units) == 0 || s.units[0] != unit {
			if ui = s.unitIndex(unit); ui < 0 {
				if len(s.units) >= MaxUnitsPerSeries {
					continue // only from a WAL written with other limits
				}
				s.units = append(s.units, unit)
				ui = len(s.units) - 1
			}
		}
		db.insert(s, p.t, p.s, uint8(ui))
	}
}

func (db *DB) replayRecord(payload []byte) error {
	b, err := decodeBatch(payload)
	if err != nil {
		return err
	}
	db.resolve(b)
	db.apply(b)
	return nil
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
	b, err := newBatch(pts, nowMs, nowMs-db.opt.Retention.Milliseconds(), db.opt.Retention)
	if err != nil {
		return err
	}
	payload := b.encode(make([]byte, 0, 48*len(pts)+64*len(b.keys)))
	if len(payload) > maxWALRecord {
		return errs.R(errs.Invalid, "tsdb.batch_too_large", "a batch of %d points is %d bytes encoded, more than %d", len(pts), len(payload), maxWALRecord)
	}

	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return errs.E(errs.Unavailable, "tsdb: closed")
	}
	db.resolve(b)
	if err := db.checkLimits(b); err != nil {
		db.mu.Unlock()
		return err
	}
	pos, err := db.wal.write(payload)
	if err != nil {
		db.mu.Unlock()
		return errs.Wrap(errs.Unavailable, err, "tsdb: append")
	}
	if db.headSamples == 0 {
		db.headSince = now
	}
	db.apply(b)
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
