package tsdb

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
)

// A chunk holds up to maxChunkSamples samples of one series, Gorilla-style:
//
//	chunk     = uvarint(count) stream
//	sample    = time kind floats unit
//	time      = first sample: 64 bits; then delta-of-delta (ms) against the previous delta:
//	            '0' = 0 | '10' 14 bits | '110' 20 bits | '1110' 32 bits | '1111' 64 bits (signed)
//	kind      = '0' value, count as before | '10' value with a new count | '11' statistic set
//	floats    = value: Min (and Count if new); statistic set: Min Max Sum Count; each XOR'd
//	            against the previous value of the same field (initially 0, Count 1):
//	            '0' same | '10' meaningful bits in the previous window | '11' 5 bits leading zeros,
//	            6 bits meaningful length (0 = 64), the meaningful bits
//	unit      = '0' same as before (initially index 0) | '1' 5 bits index into the series' units
//
// Samples are kept in append order (times may go backwards: late and duplicate samples are fine).
const maxChunkSamples = 240

const (
	fMin = iota
	fMax
	fSum
	fCount
)

var one = math.Float64bits(1)

type bitWriter struct {
	b    []byte
	free uint8 // unused low bits in the last byte
}

func (w *bitWriter) writeBit(bit bool) {
	if w.free == 0 {
		w.b = append(w.b, 0)
		w.free = 8
	}
	w.free--
	if bit {
		w.b[len(w.b)-1] |= 1 << w.free
	}
}

func (w *bitWriter) writeBits(v uint64, n int) {
	for n > 0 {
		if w.free == 0 {
			w.b = append(w.b, 0)
			w.free = 8
		}
		take := min(int(w.free), n)
		chunk := byte(v>>(n-take)) & byte(1<<take-1)
		w.free -= uint8(take)
		w.b[len(w.b)-1] |= chunk << w.free
		n -= take
	}
}

type bitReader struct {
	b   []byte
	pos uint // bit position
	bad bool
}

func (r *bitReader) readBit() bool {
	if r.pos >= uint(len(r.b))*8 {
		r.bad = true
		return false
	}
	bit := r.b[r.pos>>3]>>(7-r.pos&7)&1 == 1
	r.pos++
	return bit
}

func (r *bitReader) readBits(n int) uint64 {
	if r.pos+uint(n) > uint(len(r.b))*8 {
		r.bad = true
		return 0
	}
	var v uint64
	for n > 0 {
		off := int(r.pos & 7)
		avail := 8 - off
		take := min(avail, n)
		v = v<<take | uint64(r.b[r.pos>>3]>>(avail-take)&byte(1<<take-1))
		r.pos += uint(take)
		n -= take
	}
	return v
}

// fieldState is the XOR state of one float field.
type fieldState struct {
	prev        uint64
	lead, trail uint8
	window      bool
}

// chunkEncoder appends samples to a chunk stream.
type chunkEncoder struct {
	w        bitWriter
	n        int
	t, delta int64
	f        [4]fieldState
	unit     uint8
	minT     int64
	maxT     int64
}

func newChunkEncoder() *chunkEncoder {
	e := &chunkEncoder{}
	e.f[fCount].prev = one
	return e
}

func (e *chunkEncoder) full() bool { return e.n >= maxChunkSamples }

func (e *chunkEncoder) append(t int64, s Sample, unit uint8) {
	w := &e.w
	switch e.n {
	case 0:
		w.writeBits(uint64(t), 64)
		e.minT, e.maxT = t, t
	default:
		d := t - e.t
		writeDod(w, d-e.delta)
		e.delta = d
		e.minT, e.maxT = min(e.minT, t), max(e.maxT, t)
	}
	e.t = t
	if s.isValue() {
		c := math.Float64bits(s.Count)
		if c == e.f[fCount].prev {
			w.writeBit(false)
			e.f[fMin].put(w, math.Float64bits(s.Min))
		} else {
			w.writeBits(0b10, 2)
			e.f[fMin].put(w, math.Float64bits(s.Min))
			e.f[fCount].put(w, c)
		}
	} else {
		w.writeBits(0b11, 2)
		e.f[fMin].put(w, math.Float64bits(s.Min))
		e.f[fMax].put(w, math.Float64bits(s.Max))
		e.f[fSum].put(w, math.Float64bits(s.Sum))
		e.f[fCount].put(w, math.Float64bits(s.Count))
	}
	if unit == e.unit {
		w.writeBit(false)
	} else {
		w.writeBit(true)
		w.writeBits(uint64(unit), 5)
		e.unit = unit
	}
	e.n++
}

func writeDod(w *bitWriter, dod int64) {
	switch {
	case dod == 0:
		w.writeBit(false)
	case fits(dod, 14):
		w.writeBits(0b10, 2)
		w.writeBits(uint64(dod), 14)
	case fits(dod, 20):
		w.writeBits(0b110, 3)
		w.writeBits(uint64(dod), 20)
	case fits(dod, 32):
		w.writeBits(0b1110, 4)
		w.writeBits(uint64(dod), 32)
	default:
		w.writeBits(0b1111, 4)
		w.writeBits(uint64(dod), 64)
	}
}

// fits reports whether v fits in n bits as a two's complement number.
func fits(v int64, n uint) bool { return -(1<<(n-1)) <= v && v < 1<<(n-1) }

func signExtend(v uint64, n uint) int64 { return int64(v<<(64-n)) >> (64 - n) }

func (f *fieldState) put(w *bitWriter, v uint64) {
	x := v ^ f.prev
	f.prev = v
	if x == 0 {
		w.writeBit(false)
		return
	}
	lead := uint8(min(bits.LeadingZeros64(x), 31))
	trail := uint8(bits.TrailingZeros64(x))
	if f.window && lead >= f.lead && trail >= f.trail {
		w.writeBits(0b10, 2)
		w.writeBits(x>>f.trail, 64-int(f.lead)-int(f.trail))
		return
	}
	f.lead, f.trail, f.window = lead, trail, true
	sig := 64 - int(lead) - int(trail)
	w.writeBits(0b11, 2)
	w.writeBits(uint64(lead), 5)
	w.writeBits(uint64(sig&63), 6) // 64 is written as 0
	w.writeBits(x>>trail, sig)
}

func (f *fieldState) get(r *bitReader) uint64 {
	if !r.readBit() {
		return f.prev
	}
	if !r.readBit() {
		if !f.window {
			r.bad = true
			return 0
		}
		x := r.readBits(64-int(f.lead)-int(f.trail)) << f.trail
		f.prev ^= x
		return f.prev
	}
	lead := uint8(r.readBits(5))
	sig := int(r.readBits(6))
	if sig == 0 {
		sig = 64
	}
	if int(lead)+sig > 64 {
		r.bad = true
		return 0
	}
	trail := uint8(64 - int(lead) - sig)
	f.lead, f.trail, f.window = lead, trail, true
	x := r.readBits(sig) << trail
	f.prev ^= x
	return f.prev
}

// bytes returns the chunk (count header and stream) as a new slice.
func (e *chunkEncoder) bytes() []byte {
	out := binary.AppendUvarint(make([]byte, 0, len(e.w.b)+3), uint64(e.n))
	return append(out, e.w.b...)
}

var errCorruptChunk = errors.New("tsdb: corrupt chunk")

// chunkIter decodes a chunk stream.
type chunkIter struct {
	r        bitReader
	n, i     int
	t, delta int64
	f        [4]fieldState
	unit     uint8
	s        Sample
	err      error
}

// newChunkIter decodes a chunk as written by chunkEncoder.bytes.
func newChunkIter(b []byte) *chunkIter {
	it := &chunkIter{}
	it.reset(b)
	return it
}

func (it *chunkIter) reset(b []byte) {
	n, k := binary.Uvarint(b)
	*it = chunkIter{}
	if k <= 0 || n > maxChunkSamples {
		it.err = errCorruptChunk
		return
	}
	it.resetStream(b[k:], int(n))
}

// resetStream decodes n samples of a bare stream (a head chunk still being written).
func (it *chunkIter) resetStream(stream []byte, n int) {
	*it = chunkIter{r: bitReader{b: stream}, n: n}
	it.f[fCount].prev = one
}

func (it *chunkIter) next() bool {
	if it.err != nil || it.i >= it.n {
		return false
	}
	r := &it.r
	if it.i == 0 {
		it.t = int64(r.readBits(64))
	} else {
		it.delta += readDod(r)
		it.t += it.delta
	}
	if !r.readBit() {
		v := math.Float64frombits(it.f[fMin].get(r))
		c := math.Float64frombits(it.f[fCount].prev)
		it.s = Sample{Min: v, Max: v, Sum: v * c, Count: c}
	} else if !r.readBit() {
		v := math.Float64frombits(it.f[fMin].get(r))
		c := math.Float64frombits(it.f[fCount].get(r))
		it.s = Sample{Min: v, Max: v, Sum: v * c, Count: c}
	} else {
		it.s.Min = math.Float64frombits(it.f[fMin].get(r))
		it.s.Max = math.Float64frombits(it.f[fMax].get(r))
		it.s.Sum = math.Float64frombits(it.f[fSum].get(r))
		it.s.Count = math.Float64frombits(it.f[fCount].get(r))
	}
	if r.readBit() {
		it.unit = uint8(r.readBits(5))
	}
	if r.bad {
		it.err = errCorruptChunk
		return false
	}
	it.i++
	return true
}

func readDod(r *bitReader) int64 {
	switch {
	case !r.readBit():
		return 0
	case !r.readBit():
		return signExtend(r.readBits(14), 14)
	case !r.readBit():
		return signExtend(r.readBits(20), 20)
	case !r.readBit():
		return signExtend(r.readBits(32), 32)
	default:
		return int64(r.readBits(64))
	}
}
