package tsdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/berthdev/berth/internal/durable"
)

// The write-ahead log is a directory of segments "<seq>.seg" (seq: 16 hex
// digits, increasing). A segment is a sequence of records:
//
//	uint32 length | uint32 CRC-32C of the payload | payload (one Append batch)
//
// Appends write their record and wait until an fsync covers it; concurrent
// waiters share one fsync (group commit).

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const maxWALRecord = 256 << 20

type wal struct {
	dir string

	mu      sync.Mutex
	cond    *sync.Cond
	f       *os.File
	seq     uint64 // current segment
	written uint64 // bytes written, over all segments of this process
	synced  uint64 // bytes known durable
	syncing bool
	err     error // sticky write or fsync error
}

func segName(seq uint64) string { return fmt.Sprintf("%016x.seg", seq) }

// listSegments returns the segment numbers in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(name, 16, 64); err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// openWAL starts a new segment seq in dir.
func openWAL(dir string, seq uint64) (*wal, error) {
	w := &wal{dir: dir, seq: seq}
	w.cond = sync.NewCond(&w.mu)
	f, err := createSegment(dir, seq)
	if err != nil {
		return nil, err
	}
	w.f = f
	return w, nil
}

func createSegment(dir string, seq uint64) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, segName(seq)), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if err := durable.SyncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// write appends one record and returns the position an fsync must reach
// for it to be durable. The caller serializes writes (DB.mu).
func (w *wal) write(payload []byte) (uint64, error) {
	rec := make([]byte, 8, 8+len(payload))
	binary.LittleEndian.PutUint32(rec[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(rec[4:], crc32.Checksum(payload, castagnoli))
	rec = append(rec, payload...)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if _, err := w.f.Write(rec); err != nil {
		w.err = fmt.Errorf("tsdb: write WAL: %w", err)
		return 0, w.err
	}
	w.written += uint64(len(rec))
	return w.written, nil
}

// waitSync returns once an fsync covered pos. Whoever finds no fsync running
// starts one for everything written so far; the others wait for it.
func (w *wal) waitSync(pos uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.synced < pos {
		if w.err != nil {
			return w.err
		}
		if w.syncing {
			w.cond.Wait()
			continue
		}
		w.syncing = true
		target, f := w.written, w.f
		w.mu.Unlock()
		err := f.Sync()
		w.mu.Lock()
		w.syncing = false
		if err != nil && w.err == nil {
			w.err = fmt.Errorf("tsdb: fsync WAL: %w", err)
		}
		if err == nil && target > w.synced {
			w.synced = target
		}
		w.cond.Broadcast()
	}
	return nil
}

// rotate syncs and closes the current segment and starts the next one,
// returning its number: every record written before is in a lower segment.
// The caller serializes it with write.
func (w *wal) rotate() (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.syncing {
		w.cond.Wait()
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("tsdb: fsync WAL: %w", err)
		return 0, w.err
	}
	w.synced = w.written
	w.cond.Broadcast()
	f, err := createSegment(w.dir, w.seq+1)
	if err != nil {
		return 0, fmt.Errorf("tsdb: new WAL segment: %w", err)
	}
	w.f.Close()
	w.f = f
	w.seq++
	return w.seq, nil
}

// removeBefore deletes the segments numbered below seq.
func (w *wal) removeBefore(seq uint64) error {
	return removeSegmentsBefore(w.dir, seq)
}

func removeSegmentsBefore(dir string, seq uint64) error {
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if s < seq {
			if err := os.Remove(filepath.Join(dir, segName(s))); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return durable.SyncDir(dir)
}

func (w *wal) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.syncing {
		w.cond.Wait()
	}
	if w.f == nil {
		return nil
	}
	err := w.f.Sync()
	if err == nil {
		w.synced = w.written
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if w.err == nil {
		w.err = errors.New("tsdb: closed")
	}
	w.cond.Broadcast()
	return err
}

// replaySegment calls fn with each intact record of the segment at path. A
// torn or corrupt record ends the segment: the file is truncated to the last
// intact record (it was never acknowledged) and the event logged.
func replaySegment(path string, log *slog.Logger, fn func(payload []byte) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	off := 0
	for off < len(data) {
		if len(data)-off < 8 {
			break
		}
		n := int(binary.LittleEndian.Uint32(data[off:]))
		crc := binary.LittleEndian.Uint32(data[off+4:])
		if n > maxWALRecord || len(data)-off-8 < n || crc32.Checksum(data[off+8:off+8+n], castagnoli) != crc {
			break
		}
		if err := fn(data[off+8 : off+8+n]); err != nil {
			log.Warn("tsdb: skipping undecodable WAL record", "segment", path, "offset", off, "err", err)
		}
		off += 8 + n
	}
	if off < len(data) {
		log.Warn("tsdb: torn WAL record dropped", "segment", path, "offset", off, "bytes", len(data)-off)
		if err := os.Truncate(path, int64(off)); err != nil {
			return err
		}
	}
	return nil
}

// readFull is io.ReadFull on an os.File at an offset.
func readAt(f *os.File, b []byte, off int64) error {
	_, err := f.ReadAt(b, off)
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
