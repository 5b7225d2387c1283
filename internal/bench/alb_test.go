package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestServeBenchALB runs the data plane `berth bench alb` measures in its child process: it says
// "ready" once its targets are healthy, then balances across them until its context ends.
func TestServeBenchALB(t *testing.T) {
	var targets []string
	for i := 0; i < 2; i++ {
		name := fmt.Sprintf("t%d", i)
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		defer s.Close()
		targets = append(targets, strings.TrimPrefix(s.URL, "http://"))
	}
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeBenchALB(ctx, pw, addr, targets); pw.Close() }()
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(pr).ReadString('\n')
		line <- l
		io.Copy(io.Discard, pr)
	}()
	select {
	case l := <-line:
		if l != "ready\n" {
			t.Fatalf("first line %q, want ready", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30 s")
	}
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen[string(b)]++
	}
	if seen["t0"] != 5 || seen["t1"] != 5 {
		t.Fatalf("round robin over two targets: %v", seen)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the listener is still open after the context ended")
	}
}
