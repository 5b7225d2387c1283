package httpfwd

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"time"
)

func errUnexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// maxTrailerBytes bounds a chunked body's trailer section.
const maxTrailerBytes = 16 << 10

// body reads one message body off a connection's reader by its framing: a fixed length, chunked
// (with its trailer section, stored in *trailer), or until the connection ends (until set).
type body struct {
	br        *bufio.Reader
	remaining int64 // fixed length: bytes left
	chunked   io.Reader
	untilEOF  bool
	trailer   *http.Header
	done      bool
	err       error // sticky

	// before runs before the first read (the server's 100 Continue).
	before func()
	// atEOF runs once when the body has been read to its end without error (the pool's put).
	atEOF func()

	// keepalive extends conn's read deadline as reads go on, when idle > 0: reads may take up to
	// idle each, never past limit (when not zero).
	conn     net.Conn
	idle     time.Duration
	limit    time.Time
	extended time.Time
}

func newBody(br *bufio.Reader, f framing) *body {
	b := &body{br: br}
	switch {
	case f.chunked:
		b.chunked = httputil.NewChunkedReader(br)
	case f.length < 0:
		b.untilEOF = true
	default:
		b.remaining = f.length
		b.done = f.length == 0
	}
	return b
}

var errBodyClosed = errors.New("httpfwd: read on closed body")

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if b.before != nil {
		f := b.before
		b.before = nil
		f()
	}
	if b.idle > 0 {
		b.extend()
	}
	var n int
	var err error
	switch {
	case b.chunked != nil:
		n, err = b.chunked.Read(p)
		if err == io.EOF {
			err = b.readTrailer()
		}
	case b.untilEOF:
		n, err = b.br.Read(p)
	default:
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err = b.br.Read(p)
		b.remaining -= int64(n)
		if b.remaining == 0 {
			err = io.EOF
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	if err == io.EOF {
		b.done = true
		if b.atEOF != nil {
			f := b.atEOF
			b.atEOF = nil
			f()
		}
	} else if err != nil {
		b.err = err
	}
	return n, err
}

// extend moves the read deadline to now+idle (capped at limit) when half of idle has passed since
// it was last moved: one deadline change per half idle period, not per read.
func (b *body) extend() {
	now := time.Now()
	if now.Sub(b.extended) < b.idle/2 {
		return
	}
	b.extended = now
	dl := now.Add(b.idle)
	if !b.limit.IsZero() && b.limit.Before(dl) {
		dl = b.limit
	}
	b.conn.SetReadDeadline(dl)
}

// readTrailer reads the trailer section after the last chunk.
func (b *body) readTrailer() error {
	var buf [256]byte
	head, err := readTrailerLines(b.br, buf[:0])
	if err != nil {
		return err
	}
	if len(head) <= 2 {
		return io.EOF
	}
	f, err := splitHead("x\r\n"+string(head), nil)
	if err != nil {
		return err
	}
	h, err := parseHeader(f.lines)
	if err != nil {
		return err
	}
	if b.trailer != nil {
		if *b.trailer == nil {
			*b.trailer = http.Header{}
		}
		for k, v := range h {
			(*b.trailer)[k] = v
		}
	}
	return io.EOF
}

// readTrailerLines reads header lines up to and including the empty line (which may come at
// once).
func readTrailerLines(br *bufio.Reader, buf []byte) ([]byte, error) {
	head := buf[:0]
	lineStart := 0
	for {
		frag, err := br.ReadSlice('\n')
		if len(head)+len(frag) > maxTrailerBytes {
			return nil, errTooLarge
		}
		head = append(head, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, errUnexpectedEOF(err)
		}
		line := head[lineStart:]
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			return head, nil
		}
		lineStart = len(head)
	}
}

// Close marks the body finished; what was not read stays unread (the owner decides whether the
// connection can go on).
func (b *body) Close() error {
	if b.err == nil && !b.done {
		b.err = errBodyClosed
	}
	return nil
}

// complete reports whether the body was read to its end.
func (b *body) complete() bool { return b.done }
