package awslogs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

// Record is one message of Docker's log stream: a line, or part of a
// line Docker split (json-file splits lines longer than 16 KiB), as Docker
// timestamped it.
type Record struct {
	Pos    Position
	Stderr bool
	// Data is the message without Docker's timestamp; it ends with '\n'
	// unless it is the first parts of a longer line.
	Data []byte
}

// Position identifies a record in a container's output: Docker's
// timestamp and, since several records may share one, its rank among the
// consecutive records with that timestamp (from 1).
type Position struct {
	TS time.Time `json:"ts"`
	N  int       `json:"n"`
}

// IsZero reports whether p is no position (the start of the output).
func (p Position) IsZero() bool { return p.TS.IsZero() }

// Equal reports whether p and q are the same position.
func (p Position) Equal(q Position) bool { return p.TS.Equal(q.TS) && p.N == q.N }

// maxFrame bounds one frame of the stream (Docker's are at most 16 KiB
// plus the timestamp).
const maxFrame = 1 << 20

// StreamReader parses Docker's log stream (ContainerLogs with timestamps)
// into records.
type StreamReader struct {
	r    *bufio.Reader
	tty  bool
	last Position
	hdr  [8]byte
}

// NewStreamReader reads r, multiplexed unless tty.
func NewStreamReader(r io.Reader, tty bool) *StreamReader {
	return &StreamReader{r: bufio.NewReaderSize(r, 64<<10), tty: tty}
}

// Next returns the next record, or io.EOF at the end of the stream.
func (s *StreamReader) Next() (Record, error) {
	var rec Record
	var msg []byte
	if s.tty {
		line, err := s.r.ReadBytes('\n')
		if len(line) == 0 {
			return Record{}, err
		}
		msg = line
	} else {
		if _, err := io.ReadFull(s.r, s.hdr[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return Record{}, errs.E(errs.Unavailable, "log stream cut inside a frame header")
			}
			return Record{}, err
		}
		size := binary.BigEndian.Uint32(s.hdr[4:])
		if size > maxFrame {
			return Record{}, errs.E(errs.Internal, "log stream frame of %d bytes", size)
		}
		msg = make([]byte, size)
		if _, err := io.ReadFull(s.r, msg); err != nil {
			return Record{}, errs.Wrap(errs.Unavailable, err, "log stream cut inside a frame")
		}
		rec.Stderr = s.hdr[0] == 2
	}
	ts, data := splitTimestamp(msg)
	if ts.IsZero() {
		// Not timestamped (a TTY's continuation): it belongs to the last.
		ts = s.last.TS
	}
	rec.Data = data
	if ts.Equal(s.last.TS) {
		rec.Pos = Position{TS: ts, N: s.last.N + 1}
	} else {
		rec.Pos = Position{TS: ts, N: 1}
	}
	s.last = rec.Pos
	return rec, nil
}

// splitTimestamp separates Docker's "<RFC 3339 time> " prefix.
func splitTimestamp(msg []byte) (time.Time, []byte) {
	i := bytes.IndexByte(msg, ' ')
	if i < 20 || i > 40 {
		return time.Time{}, msg
	}
	ts, err := time.Parse(time.RFC3339Nano, string(msg[:i]))
	if err != nil {
		return time.Time{}, msg
	}
	return ts, msg[i+1:]
}

// Resume decides which records of a re-opened stream were acknowledged
// already. The stream is re-opened a little before the checkpoint (Docker
// timestamps stdout and stderr separately, so its order and its
// timestamps' order can differ by a hair); every record up to and
// including the checkpoint's is skipped. If the checkpoint's record never
// shows (rotated away), skipping stops at the first record clearly after
// it.
type Resume struct {
	At     Position
	active bool
}

// ResumeWindow is how far before the checkpoint a stream is re-opened.
const ResumeWindow = time.Second

// NewResume resumes after at (zero: from the start).
func NewResume(at Position) *Resume { return &Resume{At: at, active: !at.IsZero()} }

// Since is where to re-open the stream (zero: the start).
func (r *Resume) Since() time.Time {
	if r.At.IsZero() {
		return time.Time{}
	}
	return r.At.TS.Add(-ResumeWindow)
}

// Skip reports whether the record at p was shipped before.
func (r *Resume) Skip(p Position) bool {
	if !r.active {
		return false
	}
	if p.Equal(r.At) {
		r.active = false
		return true
	}
	if p.TS.After(r.At.TS.Add(ResumeWindow)) {
		r.active = false
		return false
	}
	return true
}
