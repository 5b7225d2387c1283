package scproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// serveTCP accepts connections until the listener closes and splices each
// to an endpoint.
func (l *listener) serveTCP() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		l.mu.Lock()
		if l.conns == nil {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go l.spliceTCP(c)
	}
}

// spliceTCP connects one client connection to an endpoint, trying up to
// MaxAttempts endpoints when connections fail, and copies both ways until
// either side closes or nothing moves either way for the idle timeout.
func (l *listener) spliceTCP(c net.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		if l.conns != nil {
			delete(l.conns, c)
		}
		l.mu.Unlock()
		c.Close()
	}()
	l.st.connOpened()
	defer l.st.connClosed()
	var up net.Conn
	var tried []*endpoint
	var ep *endpoint
	for attempt := 0; attempt < MaxAttempts && up == nil; attempt++ {
		ep = l.cl.pick(time.Now(), tried)
		if ep == nil {
			break
		}
		d := net.Dialer{Timeout: connectTimeout}
		conn, err := d.Dial("tcp", ep.addr)
		if err != nil {
			ep.result(0, time.Now())
			tried = append(tried, ep)
			continue
		}
		up = conn
	}
	if up == nil {
		return
	}
	defer up.Close()
	ep.outstanding.Add(1)
	defer ep.outstanding.Add(-1)
	ep.result(200, time.Now()) // a connection that works clears consecutive failures

	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		n := copyIdle(dst, src, l.idle, &last, l.st)
		_ = n
		// Half-close: tell the other side this one is done writing.
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go pipe(up, c)
	go pipe(c, up)
	wg.Wait()
}

// copyIdle copies src to dst. With idle > 0 it gives up (closing both)
// when neither direction has moved data for idle (last is shared by both
// directions).
func copyIdle(dst, src net.Conn, idle time.Duration, last *atomic.Int64, st *stats) int64 {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	b := *bp
	var n int64
	for {
		if idle > 0 {
			_ = src.SetReadDeadline(time.Unix(0, last.Load()).Add(idle))
		}
		m, err := src.Read(b)
		if m > 0 {
			last.Store(time.Now().UnixNano())
			if _, werr := dst.Write(b[:m]); werr != nil {
				src.Close()
				return n
			}
			n += int64(m)
			st.bytes(int64(m))
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && idle > 0 {
				if time.Since(time.Unix(0, last.Load())) < idle {
					continue // the other direction moved meanwhile
				}
				src.Close()
				dst.Close()
				return n
			}
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return n
		}
	}
}

// drainTCP closes the listener and waits for its connections to end, or
// for ctx, then closes what is left.
func (l *listener) drainTCP(ctx context.Context) error {
	l.ln.Close()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		l.closeConns()
		<-done
		return ctx.Err()
	}
}

func (l *listener) closeConns() {
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
}
