package tsdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A block file holds the chunks of one partition (BlockDuration of sample
// time) written by the flushes numbered lo..hi:
//
//	"BTSDBK01" | chunks... | index | footer
//	index  = uvarint nseries, per series: key, varint lastWrite (ms), byte flags (1: high
//	         resolution), uvarint nunits, units,
//	         uvarint nchunks, per chunk: varint minT, varint maxT, uvarint offset, uvarint length,
//	         uint32 CRC-32C of the chunk
//	footer = uint64 index offset | uint64 index length | uint32 CRC-32C of the index | "BTSE"
//
// Strings are uvarint length + bytes; a key is namespace, name, uvarint ndims, name/value pairs.

const (
	blockMagic  = "BTSDBK01"
	footerMagic = "BTSE"
	footerSize  = 8 + 8 + 4 + 4
)

type blockFile struct {
	path      string
	part      int64 // partition start (ms)
	lo, hi    uint64
	f         *os.File
	size      int64
	refs      int // chunk references held by series
	seriesIdx []blockSeries
}

type blockSeries struct {
	key       SeriesKey
	lastWrite int64
	highRes   bool
	units     []string
	chunks    []diskChunk
}

type diskChunk struct {
	file       *blockFile
	minT, maxT int64
	off        int64
	length     uint32
	crc        uint32
}

func blockName(lo, hi uint64) string { return fmt.Sprintf("%016x-%016x.blk", lo, hi) }

func parseBlockName(name string) (lo, hi uint64, ok bool) {
	base, ok := strings.CutSuffix(name, ".blk")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(base, "-")
	if !ok {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(a, 16, 64)
	hi, err2 := strconv.ParseUint(b, 16, 64)
	return lo, hi, err1 == nil && err2 == nil && lo <= hi
}

func partDir(root string, part int64) string {
	return filepath.Join(root, strconv.FormatInt(part, 10))
}

// seriesChunks is what a block writer takes for one series.
type seriesChunks struct {
	key       SeriesKey
	ks        string
	lastWrite int64
	highRes   bool
	units     []string
	chunks    []memChunk
}

// writeBlock writes a block file at path (which should end in .tmp) and
// fsyncs it.
func writeBlock(path string, series []seriesChunks) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	off := int64(0)
	write := func(b []byte) {
		bw.Write(b)
		off += int64(len(b))
	}
	write([]byte(blockMagic))
	var idx []byte
	idx = binary.AppendUvarint(idx, uint64(len(series)))
	for _, s := range series {
		idx = appendKey(idx, s.key)
		idx = binary.AppendVarint(idx, s.lastWrite)
		if s.highRes {
			idx = append(idx, 1)
		} else {
			idx = append(idx, 0)
		}
		idx = binary.AppendUvarint(idx, uint64(len(s.units)))
		for _, u := range s.units {
			idx = appendString(idx, u)
		}
		idx = binary.AppendUvarint(idx, uint64(len(s.chunks)))
		for _, c := range s.chunks {
			idx = binary.AppendVarint(idx, c.minT)
			idx = binary.AppendVarint(idx, c.maxT)
			idx = binary.AppendUvarint(idx, uint64(off))
			idx = binary.AppendUvarint(idx, uint64(len(c.b)))
			idx = binary.LittleEndian.AppendUint32(idx, crc32.Checksum(c.b, castagnoli))
			write(c.b)
		}
	}
	idxOff := off
	write(idx)
	var foot [footerSize]byte
	binary.LittleEndian.PutUint64(foot[0:], uint64(idxOff))
	binary.LittleEndian.PutUint64(foot[8:], uint64(len(idx)))
	binary.LittleEndian.PutUint32(foot[16:], crc32.Checksum(idx, castagnoli))
	copy(foot[20:], footerMagic)
	write(foot[:])
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Sync()
}

// openBlock opens a block file and reads its index.
func openBlock(path string, part int64, lo, hi uint64) (*blockFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	b, err := readBlockIndex(f, path, part, lo, hi)
	if err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

var errCorruptBlock = errors.New("tsdb: corrupt block file")

func readBlockIndex(f *os.File, path string, part int64, lo, hi uint64) (*blockFile, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size < int64(len(blockMagic))+footerSize {
		return nil, errCorruptBlock
	}
	var foot [footerSize]byte
	if err := readAt(f, foot[:], size-footerSize); err != nil {
		return nil, err
	}
	if string(foot[20:]) != footerMagic {
		return nil, errCorruptBlock
	}
	idxOff := int64(binary.LittleEndian.Uint64(foot[0:]))
	idxLen := int64(binary.LittleEndian.Uint64(foot[8:]))
	if idxOff < int64(len(blockMagic)) || idxLen < 0 || idxOff+idxLen != size-footerSize {
		return nil, errCorruptBlock
	}
	idx := make([]byte, idxLen)
	if err := readAt(f, idx, idxOff); err != nil {
		return nil, err
	}
	if crc32.Checksum(idx, castagnoli) != binary.LittleEndian.Uint32(foot[16:]) {
		return nil, errCorruptBlock
	}
	bf := &blockFile{path: path, part: part, lo: lo, hi: hi, f: f, size: size}
	d := decoder{b: idx}
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		var s blockSeries
		s.key = d.key()
		s.lastWrite = d.varint()
		s.highRes = d.byte()&1 != 0
		nu := d.uvarint()
		if nu > MaxUnitsPerSeries {
			return nil, errCorruptBlock
		}
		for j := uint64(0); j < nu; j++ {
			s.units = append(s.units, d.string())
		}
		nc := d.uvarint()
		for j := uint64(0); j < nc && d.err == nil; j++ {
			c := diskChunk{file: bf, minT: d.varint(), maxT: d.varint()}
			c.off = int64(d.uvarint())
			l := d.uvarint()
			c.crc = d.uint32()
			if c.off < int64(len(blockMagic)) || l > math.MaxUint32 || c.off+int64(l) > idxOff {
				return nil, errCorruptBlock
			}
			c.length = uint32(l)
			s.chunks = append(s.chunks, c)
		}
		bf.seriesIdx = append(bf.seriesIdx, s)
	}
	if d.err != nil {
		return nil, errCorruptBlock
	}
	return bf, nil
}

// readChunk reads a chunk into buf (grown as needed) and checks its CRC.
func (c *diskChunk) read(buf []byte) ([]byte, error) {
	if cap(buf) < int(c.length) {
		buf = make([]byte, c.length)
	}
	buf = buf[:c.length]
	if err := readAt(c.file.f, buf, c.off); err != nil {
		return buf, fmt.Errorf("tsdb: read chunk of %s: %w", c.file.path, err)
	}
	if crc32.Checksum(buf, castagnoli) != c.crc {
		return buf, fmt.Errorf("tsdb: chunk at %d of %s: %w", c.off, c.file.path, errCorruptBlock)
	}
	return buf, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendKey(b []byte, k SeriesKey) []byte {
	b = appendString(b, k.Namespace)
	b = appendString(b, k.MetricName)
	b = binary.AppendUvarint(b, uint64(len(k.Dims)))
	for _, d := range k.Dims {
		b = appendString(b, d.Name)
		b = appendString(b, d.Value)
	}
	return b
}

// decoder reads what the append* functions wrote; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("tsdb: short record")

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.err = errShort
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) float() float64 {
	if d.err != nil || len(d.b) < 8 {
		d.err = errShort
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.err = errShort
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) key() SeriesKey {
	k := SeriesKey{Namespace: d.string(), MetricName: d.string()}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = errShort
		return k
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		k.Dims = append(k.Dims, Dim{Name: d.string(), Value: d.string()})
	}
	return k
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}
