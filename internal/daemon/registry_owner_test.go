package daemon

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/store/storetest"
)

// TestSecondServerOnOneEtcdRefused: the registry's blobs live on the disk
// of the server that owns the store, so a second server (another data
// directory) on the same external etcd refuses to start, naming the owner;
// once the owner stops, the second server starts; and the owner's data
// directory restarted takes its claim back at once.
func TestSecondServerOnOneEtcdRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	endpoints, _ := storetest.StartExternalEtcd(t)
	cfg := func(dir string) Config {
		return Config{Listen: "127.0.0.1:0", DataDir: dir, EtcdEndpoints: endpoints, Log: slog.New(slog.DiscardHandler)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := Start(ctx, cfg(dirA))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	b, err := Start(ctx, cfg(dirB))
	if err == nil {
		b.Close()
		a.Close()
		t.Fatal("a second server started on the same store")
	}
	for _, want := range []string{"owned by another Berth server", "address " + a.Addr(), dirA, "one store serves one server"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if d := time.Since(t0); d > 20*time.Second {
		t.Errorf("refusal took %v", d)
	}
	// The owner still serves.
	if a.Addr() == "" {
		t.Fatal("owner stopped")
	}
	a.Close()
	b, err = Start(ctx, cfg(dirB))
	if err != nil {
		t.Fatalf("after the owner stopped: %v", err)
	}
	b.Close()
	// A restart of the same data directory is not kept waiting by its own claim.
	t1 := time.Now()
	b, err = Start(ctx, cfg(dirB))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if d := time.Since(t1); d > 5*time.Second {
		t.Errorf("restart took %v", d)
	}
}
