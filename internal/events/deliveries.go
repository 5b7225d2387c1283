package events

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/store"
)

// Delivery records (docs/events.md "Delivery records"): every attempt to
// invoke a rule's target leaves one record under the rule, written in the
// same transaction as the outbox or retry change that settles the attempt,
// so a record exists exactly when the attempt's outcome is committed. A
// rule keeps its newest MaxDeliveriesPerRule records; each new one past
// that deletes the oldest in the same transaction. Deleting a rule (or its
// bus) deletes its records.

// MaxDeliveriesPerRule bounds the delivery records kept per rule.
const MaxDeliveriesPerRule = 100

// Outcomes of a delivery attempt.
const (
	DeliveryDelivered = "Delivered" // the target accepted the event
	DeliveryRetrying  = "Retrying"  // failed; a retry record will try again
	DeliveryFailed    = "Failed"    // failed for good: not retryable, or retries used up
)

// Delivery is one attempt to invoke one target of a rule with one event.
type Delivery struct {
	Time      time.Time `json:"time"` // when the attempt ended
	EventID   string    `json:"eventId"`
	TargetID  string    `json:"targetId"`
	TargetArn string    `json:"targetArn"`
	Outcome   string    `json:"outcome"`
	Error     string    `json:"error,omitempty"`
	Attempt   int       `json:"attempt"` // 1 for the first
	// DurationMs is how long the invocation took; SinceAcceptedMs the time
	// from the event's acceptance (PutEvents, the controller's commit or
	// the schedule) to the attempt's end.
	DurationMs      float64    `json:"durationMs"`
	SinceAcceptedMs float64    `json:"sinceAcceptedMs"`
	NextAttempt     *time.Time `json:"nextAttempt,omitempty"` // Retrying: when it is due
}

// deliveriesPrefix holds a rule's records. The bus name is escaped: it may
// hold "/", and one rule's prefix must not hold another bus's records.
func deliveriesPrefix(bus, rule string) string { return busDeliveriesPrefix(bus) + rule + "/" }

// busDeliveriesPrefix holds the records of every rule of a bus.
func busDeliveriesPrefix(bus string) string { return keyDeliveries + url.QueryEscape(bus) + "/" }

// RuleDeliveries returns a rule's delivery records, newest first. A rule
// that does not exist is ResourceNotFoundException, as DescribeRule's.
func (s *Service) RuleDeliveries(ctx context.Context, bus, rule string) ([]Delivery, error) {
	bus = s.busName(&bus)
	if _, _, err := s.getRule(ctx, bus, rule); err != nil {
		return nil, err
	}
	out, _, err := listJSON[Delivery](ctx, s.st, deliveriesPrefix(bus, rule))
	if err != nil {
		return nil, err
	}
	// Keys sort in the order records were written; attempts on several
	// targets run side by side, so a record can be written after a newer
	// one: newest first by the attempt's time.
	slices.Reverse(out) // keys sort oldest first
	slices.SortStableFunc(out, func(a, b Delivery) int { return b.Time.Compare(a.Time) })
	return out, nil
}

// ruleHistory is the dispatcher's list of a rule's record keys, oldest
// first (loaded from the store at the rule's first delivery since start).
type ruleHistory struct{ keys []string }

// deliveryOps returns the ops that record one attempt: the record, and the
// deletion of the rule's oldest records past MaxDeliveriesPerRule.
func (d *dispatcher) deliveryOps(j job, rec Delivery) []store.Op {
	hk := j.bus + "/" + j.rule.Name
	prefix := deliveriesPrefix(j.bus, j.rule.Name)
	d.mu.Lock()
	h := d.history[hk]
	d.mu.Unlock()
	if h == nil {
		loaded := &ruleHistory{}
		res, err := d.s.st.List(d.ctx, prefix, store.ListOptions{KeysOnly: true})
		if err != nil {
			// The record goes in anyway; the list is read again at the
			// next delivery, and trimming catches up then.
			if d.ctx.Err() == nil {
				d.s.log.Warn("events: listing a rule's delivery records failed", "rule", j.rule.Name, "err", err)
			}
			return []store.Op{store.Put(prefix+d.s.ids.next(rec.Time), mustJSON(rec))}
		}
		for _, kv := range res.KVs {
			loaded.keys = append(loaded.keys, kv.Key)
		}
		d.mu.Lock()
		if h = d.history[hk]; h == nil {
			h = loaded
			d.history[hk] = h
		}
		d.mu.Unlock()
	}
	key := prefix + d.s.ids.next(rec.Time)
	ops := []store.Op{store.Put(key, mustJSON(rec))}
	d.mu.Lock()
	h.keys = append(h.keys, key)
	for len(h.keys) > MaxDeliveriesPerRule {
		ops = append(ops, store.Delete(h.keys[0]))
		h.keys = h.keys[1:]
	}
	if cap(h.keys) > 4*MaxDeliveriesPerRule {
		h.keys = slices.Clone(h.keys)
	}
	d.mu.Unlock()
	return ops
}

// forgetHistory drops a deleted rule's key list (its records went with it).
func (d *dispatcher) forgetHistory(bus, rule string) {
	d.mu.Lock()
	delete(d.history, bus+"/"+rule)
	d.mu.Unlock()
}

// newDelivery describes one attempt of j that ended at now after took.
func newDelivery(j job, now time.Time, took time.Duration, outcome string, err error, next *time.Time) Delivery {
	var ev struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(j.event, &ev)
	rec := Delivery{Time: now.UTC(), EventID: ev.ID, TargetID: deref(j.target.Id), TargetArn: deref(j.target.Arn), Outcome: outcome,
		Attempt: j.attempts + 1, DurationMs: ms(took), SinceAcceptedMs: ms(now.Sub(j.accepted)), NextAttempt: next}
	if err != nil {
		rec.Error = strings.TrimSpace(err.Error())
		if len(rec.Error) > 1024 {
			rec.Error = rec.Error[:1024] + "…"
		}
	}
	return rec
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
