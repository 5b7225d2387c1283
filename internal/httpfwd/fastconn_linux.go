package httpfwd

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// fastConn reads and writes a socket with raw system calls inside the runtime's poller (the
// socket is non-blocking, so a read or write returns at once, EAGAIN when it would wait; the poller
// then parks the goroutine as it does for net.Conn). A raw call does not tell the scheduler that
// the thread entered a system call: on a busy proxy, the few microseconds a loopback write spends
// delivering the segment made the runtime's monitor hand the thread's processor to another thread
// on most requests (sysmon's retake), a thread switch each time. Decision 27.
type fastConn struct {
	rc syscall.RawConn

	rbuf []byte
	rn   int
	rerr error

	wbuf []byte
	wn   int
	werr error

	readF, writeF func(uintptr) bool
}

// newFastIO returns what the connection's buffers should read from and write to: c's socket
// through raw system calls when c has one, else c.
func newFastIO(c net.Conn) io.ReadWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	f := &fastConn{rc: rc}
	f.readF, f.writeF = f.doRead, f.doWrite
	return f
}

func (f *fastConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f.rbuf, f.rn, f.rerr = p, 0, nil
	err := f.rc.Read(f.readF)
	f.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case f.rerr != nil:
		return 0, f.rerr
	case f.rn == 0:
		return 0, io.EOF
	}
	return f.rn, nil
}

func (f *fastConn) doRead(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&f.rbuf[0])), uintptr(len(f.rbuf)))
		switch e {
		case 0:
			f.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		f.rerr = os.NewSyscallError("read", e)
		return true
	}
}

func (f *fastConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f.wbuf, f.wn, f.werr = p, 0, nil
	err := f.rc.Write(f.writeF)
	f.wbuf = nil
	if err == nil {
		err = f.werr
	}
	return f.wn, err
}

func (f *fastConn) doWrite(fd uintptr) bool {
	for f.wn < len(f.wbuf) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&f.wbuf[f.wn])), uintptr(len(f.wbuf)-f.wn))
		switch e {
		case 0:
			f.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			f.werr = os.NewSyscallError("write", e)
			return true
		}
	}
	return true
}

// peerOpen reports whether the connection behind rw (from newFastIO) is still open and quiet: a
// non-blocking peek finds neither the peer's close nor unexpected bytes. Anything but a fastConn
// is taken as open.
func peerOpen(rw io.ReadWriter) bool {
	f, ok := rw.(*fastConn)
	if !ok {
		return true
	}
	open := true
	err := f.rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		open = e == syscall.EAGAIN // 0 bytes (the peer closed), data or an error: not reusable
		return true
	})
	return err == nil && open
}
