package httpfwd

import (
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// blackhole returns the address of a listener whose accept queue is full: a connection to it is
// never set up (the SYN is dropped).
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	c, err := net.DialTimeout("tcp", addr, time.Second) // fills the queue
	if err != nil {
		t.Skipf("cannot fill an accept queue here: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return addr
}

// TestRawExchangeDeadlineBoundsDial: the deadline bounds the connection's set-up too.
func TestRawExchangeDeadlineBoundsDial(t *testing.T) {
	addr := blackhole(t)
	p := &Pool{DialTimeout: 5 * time.Second}
	defer p.Close()
	const d = 200 * time.Millisecond
	start := time.Now()
	res := relayDirect(p, addr, "GET", getHead, start.Add(d))
	took := time.Since(start)
	if res.exErr == nil || !IsDialError(res.exErr) || took > d+300*time.Millisecond {
		t.Fatalf("Exchange with a deadline of %v to an address that does not answer: %v after %v", d, res.exErr, took)
	}
}
