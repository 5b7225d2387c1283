package ecsstate

import (
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// Reachability of container instances: the decision the service
// controller (package ecs) and the lost-instance monitor (package
// instancemon) share. The lost-host policy is in docs/agent.md, "Lost
// hosts", and at the top of internal/ecs/instancemon.

// DefaultDisconnectGrace is how long an agent may stay disconnected before
// the service tasks on its instance are started elsewhere. An agent that
// crashes or is killed (its connection closes) is disconnected at once, a
// silent host after AgentSilenceLimit (7 s): their service tasks are
// started elsewhere 5 s and 12 s later, which leaves room for a slow
// container start within the goal of 20 s. A shorter grace costs only
// an extra task while an agent is away (the old ones keep running); an
// agent restart takes about a second.
const DefaultDisconnectGrace = 5 * time.Second

// rejoinSettle is how long an agent that was unreachable must be back
// before its tasks count again: long enough for the reports it queued
// while away (a task that died meanwhile) to arrive.
const rejoinSettle = 2 * agentapi.AgentHeartbeatInterval

// InstancePresence is what the decisions look at for one container
// instance.
type InstancePresence struct {
	ID, Cluster, EC2InstanceID, Status string
	Connected                          bool // the presence key exists
}

// ReachClock is what DecideReachable remembers between calls, per
// instance: since when it has been disconnected (away) and, for one that
// came back after it was unreachable, when it came back (back).
type ReachClock struct {
	away, back map[string]time.Time
}

// DecideReachable decides which instances are unreachable at now, from the
// previous call's clock (zero at first), and returns the next clock. An
// ACTIVE or DRAINING instance is unreachable once disconnected for grace
// (timed from when a call first saw it disconnected, so after a server
// restart every agent has the grace again), and, once its agent is back,
// for rejoinSettle more. INACTIVE and vanished instances are forgotten
// (the service scheduler stops their tasks as deregistered).
//
// wake is how soon the answer changes by itself (a grace or a settling
// ending), 0 when it does not.
func DecideReachable(view []InstancePresence, prev ReachClock, now time.Time, grace time.Duration) (next ReachClock, unreachable map[string]bool, wake time.Duration) {
	next = ReachClock{away: map[string]time.Time{}, back: map[string]time.Time{}}
	unreachable = map[string]bool{}
	soon := func(at time.Time) {
		if d := at.Sub(now); d > 0 && (wake == 0 || d < wake) {
			wake = d
		}
	}
	for _, in := range view {
		if in.ID == "" || (in.Status != InstanceActive && in.Status != InstanceDraining) {
			continue
		}
		if !in.Connected {
			since, ok := prev.away[in.ID]
			if !ok {
				since = now
			}
			next.away[in.ID] = since
			unreachable[in.ID] = now.Sub(since) >= grace
			soon(since.Add(grace))
			continue
		}
		back, ok := prev.back[in.ID]
		if since, was := prev.away[in.ID]; was && now.Sub(since) >= grace {
			back, ok = now, true // back from unreachable
		}
		if ok && now.Sub(back) < rejoinSettle {
			next.back[in.ID] = back
			unreachable[in.ID] = true
			soon(back.Add(rejoinSettle))
		}
	}
	for id, u := range unreachable {
		if !u {
			delete(unreachable, id)
		}
	}
	return next, unreachable, wake
}
