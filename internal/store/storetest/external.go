package storetest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/store"
)

// EtcdBinary is the external etcd tests start (Debian's etcd-server).
const EtcdBinary = "/usr/bin/etcd"

// StartExternalEtcd runs EtcdBinary on free loopback ports with a fresh data
// directory until the test ends (or kill), and returns its client URL.
func StartExternalEtcd(t testing.TB) (endpoints []string, kill func()) {
	if _, err := os.Stat(EtcdBinary); err != nil {
		if os.Getenv("BERTH_REQUIRE_ETCD") == "1" {
			t.Fatalf("%s is required (BERTH_REQUIRE_ETCD=1): %v", EtcdBinary, err)
		}
		t.Skipf("%s not installed (apt-get install etcd-server): %v", EtcdBinary, err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		eps, kill, err := tryStartEtcd(t)
		if err == nil {
			return eps, kill
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil, nil
}

func tryStartEtcd(t testing.TB) ([]string, func(), error) {
	dir := t.TempDir()
	ports := freePorts(t, 2)
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	cmd := exec.Command(EtcdBinary,
		"--name", "berth-test",
		"--data-dir", dir,
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "berth-test="+peer,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "berth-test",
		"--logger", "zap",
		"--log-level", "error",
	)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	kill := func() {
		once.Do(func() {
			cmd.Process.Kill()
			<-exited
		})
	}
	t.Cleanup(kill)

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err // for kill
			return nil, nil, fmt.Errorf("%s exited: %v\n%s", EtcdBinary, err, out.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s, err := store.Open(ctx, store.Config{Endpoints: []string{client}, DialTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
		cancel()
		if err == nil {
			s.Close()
			return []string{client}, kill, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, nil, fmt.Errorf("%s not ready after 30s\n%s", EtcdBinary, out.String())
}

func freePorts(t testing.TB, n int) []int {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
