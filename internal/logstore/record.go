package logstore

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// A record on disk (segments and the catalog journal alike):
//
//	uint32 little-endian payload length
//	uint32 little-endian CRC-32C of the payload
//	payload
//
// A torn or corrupt tail (length beyond the file, CRC mismatch) ends the
// valid part of a file; Open truncates it.

const recordHeader = 8

// maxRecord bounds a payload so a corrupt length cannot make us allocate
// gigabytes. An event is at most 1 MiB of message plus a few varints.
const maxRecord = 2 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errTorn = errors.New("torn or corrupt record")

// appendRecord appends a framed payload to buf.
func appendRecord(buf, payload []byte) []byte {
	var h [recordHeader]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(payload, castagnoli))
	buf = append(buf, h[:]...)
	return append(buf, payload...)
}

// readRecord reads one framed record into buf (reused) and returns the
// payload. io.EOF at a clean end; errTorn for a partial or corrupt record.
func readRecord(r io.Reader, buf []byte) ([]byte, error) {
	var h [recordHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return nil, errTorn
		}
		return nil, err
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	if n > maxRecord {
		return nil, errTorn
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, errTorn
		}
		return nil, err
	}
	if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(h[4:8]) {
		return nil, errTorn
	}
	return buf, nil
}

// An event record's payload: uvarint stream id, uvarint sequence number,
// varint timestamp (ms), varint ingestion time (ms), then the message.

func appendEvent(buf []byte, sid, seq uint64, ts, ingest int64, msg string) []byte {
	var p [4 * binary.MaxVarintLen64]byte
	n := binary.PutUvarint(p[:], sid)
	n += binary.PutUvarint(p[n:], seq)
	n += binary.PutVarint(p[n:], ts)
	n += binary.PutVarint(p[n:], ingest)
	payload := make([]byte, 0, n+len(msg))
	payload = append(payload, p[:n]...)
	payload = append(payload, msg...)
	return appendRecord(buf, payload)
}

type rawEvent struct {
	sid, seq   uint64
	ts, ingest int64
	msg        []byte // aliases the read buffer
}

func decodeEvent(p []byte) (rawEvent, bool) {
	var e rawEvent
	var n int
	if e.sid, n = binary.Uvarint(p); n <= 0 {
		return e, false
	}
	p = p[n:]
	if e.seq, n = binary.Uvarint(p); n <= 0 {
		return e, false
	}
	p = p[n:]
	if e.ts, n = binary.Varint(p); n <= 0 {
		return e, false
	}
	p = p[n:]
	if e.ingest, n = binary.Varint(p); n <= 0 {
		return e, false
	}
	e.msg = p[n:]
	return e, true
}
