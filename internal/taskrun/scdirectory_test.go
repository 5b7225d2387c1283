package taskrun

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/serviceconnect"
)

func TestDirectoryHub(t *testing.T) {
	var opens, open atomic.Int32
	lines := make(chan serviceconnect.Directory, 8)
	stream := func(ctx context.Context, ns string, fn func(serviceconnect.Directory) error) error {
		opens.Add(1)
		open.Add(1)
		defer open.Add(-1)
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case d, ok := <-lines:
				if !ok {
					return errors.New("broken")
				}
				fn(d)
				if d.Revision == 2 {
					return errors.New("stream broke") // reconnected
				}
			}
		}
	}
	h := NewDirectoryHub(stream, nil)
	var mu sync.Mutex
	var a, b []int64
	stopA := h.Follow("ns", func(d serviceconnect.Directory) { mu.Lock(); a = append(a, d.Revision); mu.Unlock() })
	lines <- serviceconnect.Directory{NamespaceArn: "ns", Revision: 1}
	wait := func(cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			mu.Lock()
			ok := cond()
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out: a=%v b=%v opens=%d", a, b, opens.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait(func() bool { return len(a) == 1 })
	// A second follower of the namespace shares the stream and gets the
	// newest line at once.
	stopB := h.Follow("ns", func(d serviceconnect.Directory) { mu.Lock(); b = append(b, d.Revision); mu.Unlock() })
	wait(func() bool { return len(b) == 1 && b[0] == 1 })
	lines <- serviceconnect.Directory{NamespaceArn: "ns", Revision: 2}
	lines <- serviceconnect.Directory{NamespaceArn: "ns", Revision: 3}
	wait(func() bool { return len(a) == 3 && len(b) == 3 })
	if opens.Load() != 2 {
		t.Fatalf("%d streams opened, want 2 (one reconnect)", opens.Load())
	}
	stopA()
	stopA()
	if open.Load() != 1 {
		t.Fatal("stream closed while a follower remains")
	}
	stopB()
	deadline := time.Now().Add(3 * time.Second)
	for open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("stream still open without followers")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
