package httpfwd

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// fastPair is tcpPair with the first end read and written through a fastConn.
func fastPair(t *testing.T) (*fastConn, *net.TCPConn, *net.TCPConn) {
	t.Helper()
	a, b := tcpPair(t)
	f, ok := newFastIO(a).(*fastConn)
	if !ok {
		t.Fatalf("newFastIO(%T) is not a fastConn", a)
	}
	return f, a, b
}

func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestFastIOFallsBack(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := newFastIO(a); got != io.ReadWriter(a) {
		t.Fatalf("newFastIO of a pipe: %T", got)
	}
}

// TestFastConnLargeBothWays: several MB each way, the peer reading slowly at first so that the
// socket's buffer fills and writes are partial and wait for the poller.
func TestFastConnLargeBothWays(t *testing.T) {
	f, a, b := fastPair(t)
	a.SetDeadline(time.Now().Add(10 * time.Second))
	b.SetDeadline(time.Now().Add(10 * time.Second))
	out := randomBytes(6<<20, 1)
	in := randomBytes(5<<20, 2)
	var wg sync.WaitGroup
	var peerGot []byte
	var peerErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		time.Sleep(50 * time.Millisecond) // the fastConn's writes find the buffers full
		peerGot, peerErr = io.ReadAll(io.LimitReader(b, int64(len(out))))
	}()
	go func() {
		defer wg.Done()
		if _, err := b.Write(in); err != nil {
			t.Errorf("peer write: %v", err)
		}
	}()
	writeCalls := 0
	doWrite := f.writeF
	f.writeF = func(fd uintptr) bool { writeCalls++; return doWrite(fd) }
	n, err := f.Write(out)
	if err != nil || n != len(out) {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if writeCalls < 2 {
		t.Fatalf("the write was tried %d times: it never waited for the poller", writeCalls)
	}
	got := make([]byte, 0, len(in))
	buf := make([]byte, 100<<10)
	reads := 0
	for len(got) < len(in) {
		n, err := f.Read(buf)
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
		reads++
	}
	wg.Wait()
	if peerErr != nil || !bytes.Equal(peerGot, out) {
		t.Fatalf("peer read %d bytes (%v), want the %d written", len(peerGot), peerErr, len(out))
	}
	if !bytes.Equal(got, in) {
		t.Fatalf("read %d bytes, not the %d the peer wrote", len(got), len(in))
	}
	if n, err := f.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty Read: %d, %v", n, err)
	}
	if n, err := f.Write(nil); n != 0 || err != nil {
		t.Fatalf("empty Write: %d, %v", n, err)
	}
}

func TestFastConnEOF(t *testing.T) {
	f, _, b := fastPair(t)
	b.Write([]byte("abc"))
	b.Close()
	got, err := io.ReadAll(f)
	if err != nil || string(got) != "abc" {
		t.Fatalf("ReadAll: %q, %v", got, err)
	}
	if n, err := f.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF: %d, %v", n, err)
	}
}

func TestFastConnReset(t *testing.T) {
	f, a, b := fastPair(t)
	b.SetLinger(0)
	b.Close() // RST
	a.SetDeadline(time.Now().Add(2 * time.Second))
	_, err := f.Read(make([]byte, 8))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after RST: %v, want ECONNRESET", err)
	}
	if !StaleConn(err) {
		t.Fatalf("StaleConn(%v) = false", err)
	}
	// Writing to the reset connection fails too.
	_, err = f.Write([]byte("x"))
	if err == nil {
		_, err = f.Write([]byte("x"))
	}
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Write after RST: %v", err)
	}
}

func TestFastConnDeadlines(t *testing.T) {
	f, a, _ := fastPair(t)
	a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := f.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Fatalf("Read returned after %v", d)
	}
	// A write the peer does not read stops at its deadline, having written part.
	a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := f.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n <= 0 || n >= 64<<20 {
		t.Fatalf("Write past its deadline: %d, %v", n, err)
	}
	// A closed connection.
	a.Close()
	if _, err := f.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read on a closed connection: %v", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write on a closed connection: %v", err)
	}
}

// TestFastConnConcurrent: one goroutine writes while another reads the same fastConn (the peer
// echoes); run with -race.
func TestFastConnConcurrent(t *testing.T) {
	f, a, b := fastPair(t)
	a.SetDeadline(time.Now().Add(10 * time.Second))
	go io.Copy(b, b) // echo
	data := randomBytes(4<<20, 3)
	errc := make(chan error, 1)
	go func() {
		for rest := data; len(rest) > 0; {
			k := min(len(rest), 1+len(rest)%(300<<10))
			n, err := f.Write(rest[:k])
			if err != nil || n != k {
				errc <- err
				return
			}
			rest = rest[k:]
		}
		errc <- nil
	}()
	got := make([]byte, 0, len(data))
	buf := make([]byte, 64<<10)
	for len(got) < len(data) {
		n, err := f.Read(buf)
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("echoed bytes differ")
	}
}
