package scproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// The HTTP/1.1 path (listeners of protocol http) does not go through
// http.Transport: requests are written and responses read by the
// handler's own goroutine on keep-alive connections from a pool per
// listener (no reader and writer goroutines per connection and no
// hand-offs between them), the idea of internal/alb's fast path. h2c and
// gRPC go through http.Transport.

type connPool struct {
	mu      sync.Mutex
	idle    map[string][]*upConn
	idleFor time.Duration
	closed  bool
}

type upConn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	reused   bool
	lastUsed time.Time
}

const maxIdlePerEndpoint = 1024

var brPool, bwPool sync.Pool

func newConnPool(idleFor time.Duration) *connPool {
	return &connPool{idle: map[string][]*upConn{}, idleFor: idleFor}
}

func (p *connPool) get(ctx context.Context, addr string, now time.Time) (*upConn, error) {
	p.mu.Lock()
	for {
		list := p.idle[addr]
		if len(list) == 0 {
			break
		}
		uc := list[len(list)-1]
		p.idle[addr] = list[:len(list)-1]
		if p.idleFor > 0 && now.Sub(uc.lastUsed) > p.idleFor {
			p.mu.Unlock()
			uc.close()
			p.mu.Lock()
			continue
		}
		p.mu.Unlock()
		uc.reused = true
		return uc, nil
	}
	p.mu.Unlock()
	d := net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	uc := &upConn{c: c}
	if br, ok := brPool.Get().(*bufio.Reader); ok {
		br.Reset(c)
		uc.br = br
	} else {
		uc.br = bufio.NewReaderSize(c, 16<<10)
	}
	if bw, ok := bwPool.Get().(*bufio.Writer); ok {
		bw.Reset(c)
		uc.bw = bw
	} else {
		uc.bw = bufio.NewWriterSize(c, 8<<10)
	}
	return uc, nil
}

func (p *connPool) put(addr string, uc *upConn, now time.Time) {
	uc.lastUsed = now
	p.mu.Lock()
	if p.closed || len(p.idle[addr]) >= maxIdlePerEndpoint {
		p.mu.Unlock()
		uc.close()
		return
	}
	p.idle[addr] = append(p.idle[addr], uc)
	p.mu.Unlock()
}

func (p *connPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = map[string][]*upConn{}, true
	p.mu.Unlock()
	for _, list := range idle {
		for _, uc := range list {
			uc.close()
		}
	}
}

func (uc *upConn) close() {
	uc.c.Close()
	if uc.br != nil {
		uc.br.Reset(nil)
		brPool.Put(uc.br)
		uc.br = nil
	}
	if uc.bw != nil {
		uc.bw.Reset(nil)
		bwPool.Put(uc.bw)
		uc.bw = nil
	}
}

// staleConn: what a keep-alive connection the upstream had closed gives.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// roundTrip1 sends req to addr on a pooled connection and reads the
// response's head; a reused connection found closed is replaced by a fresh
// one once when the body can be sent again. The request's context bounds
// it (its deadline is the connection's; its cancellation cuts it). The
// response's body gives the connection back to the pool at its end.
func (l *listener) roundTrip1(req *http.Request, addr string, replayable bool) (*http.Response, error) {
	ctx := req.Context()
	for try := 0; ; try++ {
		now := time.Now()
		uc, err := l.pool.get(ctx, addr, now)
		if err != nil {
			var oe *net.OpError
			if errors.As(err, &oe) {
				return nil, err
			}
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
		}
		dl, _ := ctx.Deadline()
		uc.c.SetDeadline(dl)
		stop := context.AfterFunc(ctx, func() { uc.c.SetDeadline(time.Unix(1, 0)) })
		if err = req.Write(uc.bw); err == nil {
			err = uc.bw.Flush()
		}
		var resp *http.Response
		if err == nil {
			for {
				resp, err = http.ReadResponse(uc.br, req)
				if err != nil || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
					break
				}
			}
		}
		if err == nil {
			resp.Body = &pooledBody{rc: resp.Body, uc: uc, l: l, addr: addr, keep: !resp.Close, stop: stop}
			return resp, nil
		}
		stop()
		reused := uc.reused
		uc.close()
		if reused && replayable && try == 0 && staleConn(err) && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// pooledBody returns its connection to the pool when read to its end, and
// closes it when closed before.
type pooledBody struct {
	rc   io.ReadCloser
	uc   *upConn
	l    *listener
	addr string
	keep bool
	stop func() bool
	done bool
}

func (b *pooledBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.done = true
		b.rc.Close()
		if b.stop() && b.keep {
			b.uc.c.SetDeadline(time.Time{})
			b.l.pool.put(b.addr, b.uc, time.Now())
		} else {
			b.uc.close()
		}
	}
	return n, err
}

func (b *pooledBody) Close() error {
	if !b.done {
		b.done = true
		b.stop()
		b.uc.close()
	}
	return nil
}
