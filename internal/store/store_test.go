package store_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/storetest"
	"github.com/berthdev/berth/internal/tlsca"
)

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func startEmbedded(tb testing.TB, dir string) *store.Embedded {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := store.StartEmbedded(ctx, store.EmbeddedConfig{Dir: dir, Logger: testLogger()})
	if err != nil {
		tb.Fatalf("StartEmbedded: %v", err)
	}
	tb.Cleanup(func() {
		if err := e.Close(); err != nil {
			tb.Errorf("Embedded.Close: %v", err)
		}
	})
	return e
}

func TestEmbedded(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "etcd")
	e := startEmbedded(t, dir)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v, %v; want mode 0700", fi.Mode(), err)
	}
	if eps := e.Endpoints(); len(eps) != 1 || !strings.HasPrefix(eps[0], "http://127.0.0.1:") {
		t.Fatalf("Endpoints() = %v, want one loopback URL", eps)
	}
	storetest.Run(t, func(*testing.T) store.Store { return e.Store() })
}

func TestExternal(t *testing.T) {
	t.Parallel()
	endpoints, _ := storetest.StartExternalEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, store.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: testLogger()})
	if err != nil {
		t.Fatalf("Open(%v): %v", endpoints, err)
	}
	t.Cleanup(func() { s.Close() })
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

// TestExternalDies checks the failure contract: once etcd is gone, calls
// fail with kind Unavailable by their deadline.
func TestExternalDies(t *testing.T) {
	t.Parallel()
	endpoints, kill := storetest.StartExternalEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, store.Config{Endpoints: endpoints, Logger: testLogger()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if _, err := s.Txn(ctx, nil, store.Put("/berth/test/k", []byte("v"))); err != nil {
		t.Fatalf("Txn: %v", err)
	}
	kill()
	for _, call := range []struct {
		name string
		fn   func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "/berth/test/k"); return err }},
		{"Txn", func(ctx context.Context) error { _, err := s.Txn(ctx, nil, store.Delete("/berth/test/k")); return err }},
		{"List", func(ctx context.Context) error { _, err := s.List(ctx, "/berth/", store.ListOptions{}); return err }},
		{"Grant", func(ctx context.Context) error { _, err := s.Grant(ctx, 10*time.Second); return err }},
	} {
		cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := call.fn(cctx)
		ccancel()
		if !errs.Is(err, errs.Unavailable) {
			t.Errorf("%s with etcd down: %v (kind %v), want kind Unavailable", call.name, err, errs.KindOf(err))
		}
	}
}

// TestOpenEmbeddedRestart opens an embedded store, closes it, and opens the
// same directory again (on new ports): data survives, Close is idempotent,
// and calls after Close fail with Unavailable.
func TestOpenEmbeddedRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	s, err := store.Open(ctx, store.Config{DataDir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	w := s.Watch(ctx, "/berth/test/", 0)
	res, err := s.Txn(ctx, nil, store.Put("/berth/test/k", []byte("v")))
	if err != nil {
		t.Fatalf("Txn: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err = s.Get(ctx, "/berth/test/k")
	if !errs.Is(err, errs.Unavailable) || !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Get after Close: %v, want Unavailable wrapping ErrClosed", err)
	}
	// The watch ends with an error (not silently) and its channel closes.
	var last error
	for r := range w {
		if r.Err != nil {
			last = r.Err
		}
	}
	if !errs.Is(last, errs.Unavailable) {
		t.Fatalf("watch on a closed store ended with %v, want an Unavailable error", last)
	}

	s, err = store.Open(ctx, store.Config{DataDir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	kv, err := s.Get(ctx, "/berth/test/k")
	if err != nil || string(kv.Value) != "v" || kv.ModRevision != res.Revision {
		t.Fatalf("after restart: %+v, %v; want v at revision %d", kv, err, res.Revision)
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	_, err = store.Open(context.Background(), store.Config{
		Endpoints:   []string{"http://" + addr},
		DialTimeout: time.Second,
		Logger:      testLogger(),
	})
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("Open(unreachable) = %v, want kind Unavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Open(unreachable) took %v", d)
	}
}

func TestStartEmbeddedFailsCleanly(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.StartEmbedded(t.Context(), store.EmbeddedConfig{Dir: file, Logger: testLogger()}); err == nil {
		t.Fatal("StartEmbedded on a file succeeded")
	}
	if _, err := store.StartEmbedded(t.Context(), store.EmbeddedConfig{}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("StartEmbedded without Dir: %v, want Invalid", err)
	}

	// Giving up half-way (not ready in time, context ended) stops the
	// server: the same directory can be opened again at once.
	dir := t.TempDir()
	if _, err := store.StartEmbedded(t.Context(), store.EmbeddedConfig{Dir: dir, ReadyTimeout: time.Nanosecond, Logger: testLogger()}); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("StartEmbedded with a 1ns ready timeout: %v, want Unavailable", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := store.StartEmbedded(ctx, store.EmbeddedConfig{Dir: dir, Logger: testLogger()}); !errors.Is(err, context.Canceled) {
		t.Fatalf("StartEmbedded with a cancelled context: %v, want context.Canceled", err)
	}
	startEmbedded(t, dir)
}

func TestMeasureRawWrites(t *testing.T) {
	t.Parallel()
	e := startEmbedded(t, t.TempDir())
	p50, p99, err := store.MeasureRawWrites(t.Context(), e.Store(), 50)
	if err != nil {
		t.Fatalf("MeasureRawWrites: %v", err)
	}
	if p50 <= 0 || p99 < p50 {
		t.Fatalf("p50 %v, p99 %v", p50, p99)
	}
	t.Logf("embedded etcd raw writes: p50 %v, p99 %v", p50, p99)
	res, err := e.Store().List(t.Context(), "/berth/bench/", store.ListOptions{})
	if err != nil || len(res.KVs) != 0 {
		t.Fatalf("bench keys left behind: %d, %v", len(res.KVs), err)
	}
}

// durabilityEnv, when set, makes TestDurability the child: it writes keys
// to an embedded store in the named directory and prints "ack N" after each
// Txn returns, until killed.
const durabilityEnv = "BERTH_STORE_DURABILITY_CHILD_DIR"

const durabilityPrefix = "/berth/durability/"

func durabilityKey(i int) string { return fmt.Sprintf("%s%06d", durabilityPrefix, i) }

// TestDurability kills (SIGKILL) a process writing to an embedded store and
// checks that every write it acknowledged is there after a restart.
func TestDurability(t *testing.T) {
	if dir := os.Getenv(durabilityEnv); dir != "" {
		durabilityChild(t, dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurability$", "-test.count=1")
	cmd.Env = append(os.Environ(), durabilityEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const killAfter = 300
	acked := -1
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		n, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(n)
		if err != nil || i != acked+1 {
			t.Errorf("child printed %q after ack %d", sc.Text(), acked)
		}
		acked = i
		if acked+1 >= killAfter && !killed {
			// Kill while the child is mid-write; acks already in the pipe
			// still count.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acks without being killed: %v\n%s", acked+1, err, stderr.String())
	}

	e := startEmbedded(t, dir)
	res, err := e.Store().List(t.Context(), durabilityPrefix, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[string]string, len(res.KVs))
	for _, kv := range res.KVs {
		have[kv.Key] = string(kv.Value)
	}
	for i := 0; i <= acked; i++ {
		if v, ok := have[durabilityKey(i)]; !ok || v != strconv.Itoa(i) {
			t.Fatalf("acknowledged key %d lost after SIGKILL (%d acked, %d present)", i, acked+1, len(res.KVs))
		}
	}
	if len(res.KVs) > acked+2 {
		t.Fatalf("%d keys present, at most %d were written", len(res.KVs), acked+2)
	}
	t.Logf("%d acknowledged writes, %d present after SIGKILL and restart", acked+1, len(res.KVs))
}

func durabilityChild(t *testing.T, dir string) {
	ctx := context.Background()
	e, err := store.StartEmbedded(ctx, store.EmbeddedConfig{Dir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatalf("child: StartEmbedded: %v", err)
	}
	defer e.Close()
	s := e.Store()
	for i := 0; i < 1_000_000; i++ {
		k := durabilityKey(i)
		res, err := s.Txn(ctx, []store.Cmp{store.Absent(k)}, store.Put(k, []byte(strconv.Itoa(i))))
		if err != nil || !res.Succeeded {
			t.Fatalf("child: Txn %d: %+v, %v", i, res, err)
		}
		fmt.Fprintf(os.Stdout, "ack %d\n", i)
	}
}

// BenchmarkEtcdPut measures one-key Txn puts on an embedded store; each
// waits for the fsync of etcd's write-ahead log.
func BenchmarkEtcdPut(b *testing.B) {
	s := startEmbedded(b, b.TempDir()).Store()
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), 256)
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := s.Txn(ctx, nil, store.Put(fmt.Sprintf("/berth/bench/%08d", i), value)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

// BenchmarkEmbeddedTxn measures compare-and-swap updates of one key, the
// shape of every Berth write.
func BenchmarkEmbeddedTxn(b *testing.B) {
	s := startEmbedded(b, b.TempDir()).Store()
	ctx := context.Background()
	const key = "/berth/bench/cas"
	value := bytes.Repeat([]byte("v"), 256)
	rev := int64(0)
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		res, err := s.Txn(ctx, []store.Cmp{store.ModRevisionIs(key, rev)}, store.Put(key, value))
		if err != nil || !res.Succeeded {
			b.Fatalf("Txn: %+v, %v", res, err)
		}
		lat = append(lat, time.Since(start))
		rev = res.Revision
	}
	reportLatency(b, lat)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(store.Percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(store.Percentile(lat, 99)), "p99-ms")
}

// The embedded etcd Open runs answers only clients holding a certificate
// from its own CA (kept in the data directory, keys 0600): any other local
// user reaching its loopback port gets nothing. The same server, reached
// as an external etcd with the client files (--etcd-cacert, --etcd-cert,
// --etcd-key), works.
func TestEmbeddedEtcdNeedsClientCertificate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	e, err := store.StartEmbedded(ctx, store.EmbeddedConfig{Dir: filepath.Join(dir, "etcd"), PKIDir: filepath.Join(dir, "pki"), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Store().Txn(ctx, nil, store.Put("/berth/k", []byte("v"))); err != nil {
		t.Fatal(err)
	}
	files := e.ClientTLS()
	for _, f := range []string{files.Key, filepath.Join(dir, "pki", "ca.key"), filepath.Join(dir, "pki", "server.key")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, want mode 0600", f, err)
		}
	}
	eps := e.Endpoints()
	if !strings.HasPrefix(eps[0], "https://127.0.0.1:") {
		t.Fatalf("endpoints %v, want https on loopback", eps)
	}
	// No client certificate (even trusting the server): refused.
	for name, files := range map[string]store.TLSFiles{
		"no TLS":            {},
		"no client cert":    {CACert: files.CACert},
		"another CA's cert": otherClient(t, files.CACert),
	} {
		_, err := store.Open(ctx, store.Config{Endpoints: eps, TLS: files, DialTimeout: time.Second, Logger: testLogger()})
		if err == nil {
			t.Fatalf("%s: the locked-down etcd answered", name)
		}
	}
	// With the files, as an external etcd: the data is there.
	s, err := store.Open(ctx, store.Config{Endpoints: eps, TLS: files, Logger: testLogger()})
	if err != nil {
		t.Fatalf("external etcd with TLS files: %v", err)
	}
	defer s.Close()
	kv, err := s.Get(ctx, "/berth/k")
	if err != nil || string(kv.Value) != "v" {
		t.Fatalf("Get over TLS: %v %v", kv, err)
	}
}

// otherClient makes a client certificate from an unrelated CA.
func otherClient(t *testing.T, serverCA string) store.TLSFiles {
	dir := t.TempDir()
	ca, err := tlsca.LoadOrCreateCA(dir, "other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l, err := ca.Issue(dir, "client", tlsca.LeafSpec{CommonName: "x", Client: true}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return store.TLSFiles{CACert: serverCA, Cert: l.CertFile, Key: l.KeyFile}
}
