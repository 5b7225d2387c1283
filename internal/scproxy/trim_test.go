package scproxy

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestTrimWhenIdle: the trim hook runs once per idle period, not while
// requests come, and again after activity stops.
func TestTrimWhenIdle(t *testing.T) {
	p := New(Options{})
	defer p.Close()
	var n atomic.Int32
	p.trim = func() { n.Add(1) }
	st := p.statsFor(true, "web")
	busy := make(chan struct{})
	go func() { // requests during the first periods: no trim
		for end := time.Now().Add(150 * time.Millisecond); time.Now().Before(end); {
			st.request(200, 10, time.Millisecond)
			time.Sleep(2 * time.Millisecond)
		}
		close(busy)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go trimWhenIdle(ctx, p, 20*time.Millisecond)
	<-busy
	if got := n.Load(); got != 0 {
		t.Fatalf("trimmed %d times while requests came", got)
	}
	waitFor(t, "first trim", func() bool { return n.Load() == 1 })
	time.Sleep(100 * time.Millisecond)
	if got := n.Load(); got != 1 {
		t.Fatalf("trimmed %d times in one idle period, want 1", got)
	}
	st.connOpened() // a new connection, left open
	waitFor(t, "trim after activity", func() bool { return n.Load() == 2 })
}
