package registry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// The owner claim: another id is refused with a message naming the owner;
// the same id (the owner's data directory restarted after a crash, its
// old lease still alive) takes the key back at once; a released claim
// frees the store.
func TestClaimBlobStore(t *testing.T) {
	testRegistry(t) // opens the shared store
	ctx := context.Background()
	a := Owner{ID: "server-a", Address: "10.0.0.1:4566", Host: "host-a", DataDir: "/var/lib/berth-a"}
	ca, err := ClaimBlobStore(ctx, sharedStore, a, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ClaimBlobStore(ctx, sharedStore, Owner{ID: "server-b"}, 0, nil)
	if !errors.Is(err, ErrStoreOwned) || !strings.Contains(err.Error(), "10.0.0.1:4566") || !strings.Contains(err.Error(), "/var/lib/berth-a") {
		t.Fatalf("second owner: %v", err)
	}
	if !ca.Held() {
		t.Fatal("owner lost its claim")
	}
	// "Crash": a's first claim is never released; a restarted a claims at once.
	t0 := time.Now()
	ca2, err := ClaimBlobStore(ctx, sharedStore, a, 0, nil)
	if err != nil || time.Since(t0) > 2*time.Second {
		t.Fatalf("restart of the owner: %v after %v", err, time.Since(t0))
	}
	ca.Release(ctx) // the old lease ends; it no longer holds the key
	ca2.Release(ctx)
	cb, err := ClaimBlobStore(ctx, sharedStore, Owner{ID: "server-b"}, 0, nil)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	cb.Release(ctx)
}
