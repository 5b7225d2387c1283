package ecsstate

import (
	"math/rand/v2"
	"testing"
	"time"
)

var lostT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestDecideReachable(t *testing.T) {
	const grace = 10 * time.Second
	at := func(d time.Duration) time.Time { return lostT0.Add(d) }
	up := InstancePresence{ID: "a", Status: InstanceActive, Connected: true}
	down := InstancePresence{ID: "a", Status: InstanceActive}
	steps := []struct {
		at          time.Duration
		in          InstancePresence
		unreachable bool
	}{
		{0, up, false},
		{time.Second, down, false}, // disconnected: the clock starts
		{10*time.Second + 999*time.Millisecond, down, false}, // within the grace
		{11 * time.Second, down, true},                       // grace over
		{30 * time.Second, down, true},
		{31 * time.Second, up, true}, // back: settling
		{31*time.Second + rejoinSettle - time.Millisecond, up, true},
		{31*time.Second + rejoinSettle, up, false}, // its reports are in: counts again
		{40 * time.Second, down, false},            // away again: a fresh grace
		{45 * time.Second, up, false},              // back within the grace: no settling
		{46 * time.Second, down, false},
		{56 * time.Second, down, true},
	}
	var clock ReachClock
	for _, st := range steps {
		var u map[string]bool
		clock, u, _ = DecideReachable([]InstancePresence{st.in}, clock, at(st.at), grace)
		if u["a"] != st.unreachable {
			t.Fatalf("at %s (connected %v): unreachable %v, want %v", st.at, st.in.Connected, u["a"], st.unreachable)
		}
	}
	// INACTIVE and vanished instances are forgotten; DRAINING ones count.
	clock, u, _ := DecideReachable([]InstancePresence{{ID: "a", Status: InstanceInactive}, {ID: "d", Status: InstanceDraining}}, clock, at(time.Minute), grace)
	if len(u) != 0 || len(clock.away) != 1 || len(clock.back) != 0 {
		t.Fatalf("unreachable %v, clock %+v", u, clock)
	}
	_, u, _ = DecideReachable([]InstancePresence{{ID: "d", Status: InstanceDraining}}, clock, at(time.Minute+grace), grace)
	if !u["d"] {
		t.Fatalf("DRAINING instance away for the grace: %v", u)
	}
}

// TestPropDecideReachable: over random connect/disconnect sequences, an
// instance is unreachable exactly when it has been disconnected for the
// grace, or came back from that less than rejoinSettle ago; a connected
// instance that was never unreachable is never unreachable.
func TestPropDecideReachable(t *testing.T) {
	const grace = 10 * time.Second
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 3))
		var clock ReachClock
		now := lostT0
		connected, downSince, backAt := true, time.Time{}, time.Time{}
		for range 200 {
			now = now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
			if rng.IntN(5) == 0 {
				if connected {
					downSince = now
				} else if now.Sub(downSince) >= grace {
					backAt = now // back from unreachable (seen when it came back)
				} else {
					backAt = time.Time{}
				}
				connected = !connected
			}
			var u map[string]bool
			var wake time.Duration
			clock, u, wake = DecideReachable([]InstancePresence{{ID: "a", Status: InstanceActive, Connected: connected}}, clock, now, grace)
			var want bool
			if connected {
				want = !backAt.IsZero() && now.Sub(backAt) < rejoinSettle
			} else {
				want = now.Sub(downSince) >= grace
			}
			if u["a"] != want {
				t.Fatalf("seed %d at %s: connected %v, unreachable %v, want %v", seed, now.Sub(lostT0), connected, u["a"], want)
			}
			// wake: when the answer changes by itself.
			var wantWake time.Duration
			switch {
			case !connected && !want:
				wantWake = downSince.Add(grace).Sub(now)
			case connected && want:
				wantWake = backAt.Add(rejoinSettle).Sub(now)
			}
			if wake != wantWake {
				t.Fatalf("seed %d at %s: wake %s, want %s", seed, now.Sub(lostT0), wake, wantWake)
			}
		}
	}
}
