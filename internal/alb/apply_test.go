package alb

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Property: after any sequence of Apply calls, a group lists exactly its registered targets plus
// the ones deregistered less than the deregistration delay ago (as draining), and no listener
// address is held that the configuration does not name.
func TestApplySequencesProperty(t *testing.T) {
	t.Parallel()
	bs := []*backend{newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c"), newBackend(t, "d")}
	p := New(Options{})
	defer p.Close()
	rng := rand.New(rand.NewPCG(9, 10))
	drainingSince := map[string]time.Time{}
	registered := map[string]bool{}
	const delay = time.Hour // nothing expires during the test
	for step := 0; step < 60; step++ {
		tg := group("tg")
		tg.DeregistrationDelay = delay
		now := map[string]bool{}
		for _, b := range bs {
			if rng.IntN(2) == 0 {
				tg.Targets = append(tg.Targets, b.target())
				now[b.target().Addr] = true
			}
		}
		used := rng.IntN(4) > 0
		for addr := range registered {
			if !now[addr] && used { // an unused group's deregistered targets leave at once
				drainingSince[addr] = time.Now()
			}
		}
		for addr := range now {
			delete(drainingSince, addr)
		}
		registered = now
		cfg := Config{TargetGroups: []TargetGroup{tg}}
		if used {
			cfg = oneListener(Listener{DefaultActions: []Action{forward("tg")}}, tg)
		}
		if err := p.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, h := range p.TargetHealth("tg") {
			got[fmt.Sprintf("%s:%d", h.ID, h.Port)] = h.State
		}
		for addr := range registered {
			if s, ok := got[addr]; !ok || s == StateDraining {
				t.Fatalf("step %d: registered %s shows %q", step, addr, s)
			}
		}
		for addr := range drainingSince {
			if got[addr] != StateDraining {
				t.Fatalf("step %d: deregistered %s shows %q, want draining", step, addr, got[addr])
			}
		}
		if len(got) != len(registered)+len(drainingSince) {
			t.Fatalf("step %d: %d targets listed, want %d: %v", step, len(got), len(registered)+len(drainingSince), got)
		}
		p.mu.Lock()
		n := len(p.st.sockets)
		p.mu.Unlock()
		if want := len(cfg.LoadBalancers); n != want {
			t.Fatalf("step %d: %d sockets, want %d", step, n, want)
		}
	}
}

// Reconfiguring a listener (idle timeout, which needs a new server) under load refuses nothing.
func TestReconfigureUnderLoad(t *testing.T) {
	t.Parallel()
	a := newBackend(t, "a")
	tg := group("tg", a)
	p, url, _ := startPlane(t, oneListener(Listener{DefaultActions: []Action{forward("tg")}}, tg))
	waitFor(t, "healthy", 5*time.Second, allHealthy(p, "tg", 1))
	addr := strings.TrimPrefix(url, "http://")
	var failed, total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: w%2 == 0}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url + "/")
				total.Add(1)
				if err != nil {
					t.Log(err)
					failed.Add(1)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	for i := 0; i < 10; i++ {
		cfg := oneListener(Listener{Addr: addr, DefaultActions: []Action{forward("tg")}}, tg)
		cfg.LoadBalancers[0].IdleTimeout = time.Duration(10+i) * time.Second
		if err := p.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(swapGrace + 300*time.Millisecond) // the old servers shut down under load
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed across reconfigurations", failed.Load(), total.Load())
	}
}
