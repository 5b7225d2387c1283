package events

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"github.com/berthdev/berth/internal/store"
)

// Scheduled rules: a rule with a ScheduleExpression fires a "Scheduled
// Event" (source aws.events) to its own targets. The last firing of each
// rule is kept in the store in the same transaction as the event it put
// in the outbox, so a restart neither repeats nor loses a firing; firings
// missed while Berth was down are made up by one firing, not a burst.

const keySchedules = keyRoot + "schedules/"

func scheduleKey(bus, rule string) string { return keySchedules + url.QueryEscape(bus) + "/" + rule }

type firedRecord struct {
	Last time.Time `json:"last"`
}

// Firing is one due firing of a scheduled rule.
type Firing struct {
	Bus, Rule string
	At        time.Time // the scheduled instant
}

// dueFirings decides which rules fire at now: for each enabled scheduled
// rule, the latest scheduled instant in (last, now], where last is the
// rule's last firing or its creation. Pure: no I/O, now passed in.
func dueFirings(rules []ruleRecord, last map[string]time.Time, now time.Time) []Firing {
	var out []Firing
	for _, r := range rules {
		if r.Schedule == "" || !r.enabled() {
			continue
		}
		sch, err := parseSchedule(r.Schedule)
		if err != nil {
			continue
		}
		from, ok := last[url.QueryEscape(r.Bus)+"/"+r.Name]
		if !ok || from.Before(r.Created) {
			from = r.Created
		}
		next := sch.Next(from)
		if next.IsZero() || next.After(now) {
			continue
		}
		// Catch up to the latest due instant (bounded: a rate of one
		// minute over a year is 525,600 steps; stop far earlier).
		for i := 0; i < 100000; i++ {
			n := sch.Next(next)
			if n.IsZero() || n.After(now) {
				break
			}
			next = n
		}
		out = append(out, Firing{Bus: r.Bus, Rule: r.Name, At: next})
	}
	return out
}

// Tick fires the scheduled rules due at now: one outbox event and the new
// last firing per rule, in one transaction each. The scheduler loop calls
// it with the clock's time; tests call it with theirs.
func (s *Service) Tick(ctx context.Context, now time.Time) error {
	rules, _, err := listJSON[ruleRecord](ctx, s.st, rulesPrefix(DefaultBus))
	if err != nil {
		return err
	}
	var sched []ruleRecord
	for _, r := range rules {
		if r.Schedule != "" {
			sched = append(sched, r)
		}
	}
	if len(sched) == 0 {
		return nil
	}
	res, err := s.st.List(ctx, keySchedules, store.ListOptions{})
	if err != nil {
		return err
	}
	last := map[string]time.Time{}
	for _, kv := range res.KVs {
		var f firedRecord
		if json.Unmarshal(kv.Value, &f) == nil {
			last[kv.Key[len(keySchedules):]] = f.Last
		}
	}
	for _, f := range dueFirings(sched, last, now) {
		ev := s.newEvent("aws.events", "Scheduled Event", f.At, []string{s.ruleARN(f.Bus, f.Rule)}, json.RawMessage("{}"))
		rec := outboxRecord{Bus: f.Bus, Rule: f.Rule, Event: mustJSON(ev), Accepted: now.UTC()}
		_, err := s.st.Txn(ctx, nil,
			store.Put(keyOutbox+s.ids.next(now), mustJSON(rec)),
			store.Put(scheduleKey(f.Bus, f.Rule), mustJSON(firedRecord{Last: f.At})))
		if err != nil {
			return err
		}
	}
	return nil
}

// RunScheduler calls Tick twice a second until ctx ends.
func (s *Service) RunScheduler(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if err := s.Tick(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.log.Warn("events: scheduler tick failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
