package dockerdriver

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

// A daemon that accepts connections and never answers: every call ends
// at its own named timeout with an Unavailable error saying so.
func TestStalledDaemonTimesOut(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})}
	go srv.Serve(ln)
	defer func() { close(done); srv.Close() }()

	d, err := New(Config{Host: "tcp://" + ln.Addr().String(), APIVersion: "1.41",
		Timeouts: Timeouts{Ping: 200 * time.Millisecond, Inspect: 300 * time.Millisecond, EventsConnect: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	for name, c := range map[string]struct {
		err  error
		want string
	}{
		"ping":    {d.Ping(ctx), "docker ping timed out after 200ms"},
		"inspect": {func() error { _, err := d.InspectContainer(ctx, "x"); return err }(), "docker inspect container x timed out after 300ms"},
	} {
		if !errs.Is(c.err, errs.Unavailable) || errs.ReasonOf(c.err) != ReasonTimeout || !strings.HasPrefix(c.err.Error(), c.want) {
			t.Errorf("%s: err = %v (kind %v, reason %q), want %q", name, c.err, errs.KindOf(c.err), errs.ReasonOf(c.err), c.want)
		}
	}
	evs, errc := d.Events(ctx, EventOptions{})
	if err := <-errc; !errs.Is(err, errs.Unavailable) || errs.ReasonOf(err) != ReasonTimeout {
		t.Errorf("events: err = %v, want a timeout", err)
	}
	if _, open := <-evs; open {
		t.Errorf("events channel still open")
	}
	// The caller's own cancellation is reported as such.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.InspectContainer(cctx, "x"); !errs.Is(err, errs.Unavailable) || errs.ReasonOf(err) == ReasonTimeout ||
		!strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled: err = %v", err)
	}
}
