package events

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/eventpattern"
	"github.com/berthdev/berth/internal/store"
)

// The dispatcher follows one watch over /berth/events/, so rule changes
// and outbox events are seen in commit order: an event committed after a
// rule change is matched against the changed rule. Each matching
// (rule, target) gets a job on that target's own queue, so a slow or
// failing target delays nobody else. An outbox record is deleted when all
// its jobs are done: invoked, dropped, or handed to a retry record (which
// the retrier runs when due).

// Default RetryPolicy, as AWS's.
const (
	defaultMaxAttempts = 185
	defaultMaxAge      = 24 * time.Hour
	invokeTimeout      = 10 * time.Second
)

type busRules struct {
	set   *eventpattern.Set
	rules map[string]ruleRecord
}

// job is one target invocation for one event.
type job struct {
	outboxID string // "" for a retry
	retryID  string // "" for a first attempt
	bus      string
	rule     ruleRecord
	target   eventsapi.Target
	event    json.RawMessage
	accepted time.Time
	attempts int // failed attempts so far
}

// retryRecord is a failed invocation waiting for its next attempt.
type retryRecord struct {
	Bus      string           `json:"bus"`
	Rule     ruleRecord       `json:"rule"`
	Target   eventsapi.Target `json:"target"`
	Event    json.RawMessage  `json:"event"`
	Accepted time.Time        `json:"accepted"`
	Attempts int              `json:"attempts"`
	Next     time.Time        `json:"next"`
}

type dispatcher struct {
	s   *Service
	ctx context.Context

	mu       sync.Mutex
	pending  map[string]int  // outbox id -> jobs not done
	inflight map[string]bool // retry ids queued or running
	queues   map[string]*queue
	history  map[string]*ruleHistory // bus/rule -> its delivery record keys (deliveries.go)

	buses map[string]*busRules // dispatcher goroutine only

	// onInvoke, when set, is told of every successful invocation (tests,
	// the latency benchmark).
	onInvoke func(ev json.RawMessage, target eventsapi.Target, at time.Time)

	metrics *metricBuf
	limits  *rateLimits
}

// queue is one target's FIFO of jobs, run by its own goroutine.
type queue struct {
	mu   sync.Mutex
	jobs []job
	wake chan struct{}
}

// RunDelivery dispatches outbox events to rules' targets and retries
// failed invocations until ctx ends. Run it on one server (the leader).
func (s *Service) RunDelivery(ctx context.Context) {
	d := s.newDispatcher(ctx)
	go d.runRetries()
	go d.metrics.run(ctx, s)
	d.run()
}

func (s *Service) newDispatcher(ctx context.Context) *dispatcher {
	d := &dispatcher{s: s, ctx: ctx, pending: map[string]int{}, inflight: map[string]bool{}, queues: map[string]*queue{},
		history: map[string]*ruleHistory{}, metrics: newMetricBuf(), limits: newRateLimits()}
	d.onInvoke = s.onInvoke
	return d
}

func (d *dispatcher) run() {
	for d.ctx.Err() == nil {
		rev, ok := d.relist()
		if !ok {
			sleepCtx(d.ctx, time.Second)
			continue
		}
		for wr := range d.s.st.Watch(d.ctx, keyRoot, rev+1) {
			if wr.Err != nil {
				if d.ctx.Err() == nil {
					d.s.log.Warn("events: watch ended; listing again", "err", wr.Err)
				}
				break
			}
			for _, ev := range wr.Events {
				d.apply(ev)
			}
		}
		sleepCtx(d.ctx, 200*time.Millisecond)
	}
}

// relist reads every rule and the outbox at one revision and dispatches
// the outbox's events not already being worked on.
func (d *dispatcher) relist() (int64, bool) {
	res, err := d.s.st.List(d.ctx, keyRules, store.ListOptions{})
	if err != nil {
		if d.ctx.Err() == nil {
			d.s.log.Warn("events: listing rules failed", "err", err)
		}
		return 0, false
	}
	d.buses = map[string]*busRules{}
	for _, kv := range res.KVs {
		d.putRule(kv.Value)
	}
	ob, err := d.s.st.List(d.ctx, keyOutbox, store.ListOptions{Revision: res.Revision})
	if err != nil {
		return 0, false
	}
	for _, kv := range ob.KVs {
		d.dispatch(strings.TrimPrefix(kv.Key, keyOutbox), kv.Value)
	}
	return res.Revision, true
}

func (d *dispatcher) apply(ev store.Event) {
	key := ev.KV.Key
	switch {
	case strings.HasPrefix(key, keyRules):
		if ev.Type == store.EventDelete {
			rest := strings.TrimPrefix(key, keyRules)
			bus, name, _ := strings.Cut(rest, "/")
			if b := d.buses[bus]; b != nil {
				delete(b.rules, name)
				b.set.Delete(name)
			}
			d.forgetHistory(bus, name)
			return
		}
		d.putRule(ev.KV.Value)
	case strings.HasPrefix(key, keyOutbox) && ev.Type == store.EventPut && ev.KV.Version == 1:
		d.dispatch(strings.TrimPrefix(key, keyOutbox), ev.KV.Value)
	}
}

func (d *dispatcher) putRule(value []byte) {
	var r ruleRecord
	if json.Unmarshal(value, &r) != nil {
		return
	}
	b := d.buses[r.Bus]
	if b == nil {
		b = &busRules{set: eventpattern.NewSet(), rules: map[string]ruleRecord{}}
		d.buses[r.Bus] = b
	}
	b.rules[r.Name] = r
	b.set.Delete(r.Name)
	if r.Pattern != "" && r.enabled() {
		p, err := eventpattern.Compile([]byte(r.Pattern))
		if err == nil {
			b.set.Put(r.Name, p)
		}
	}
}

// dispatch matches one outbox event and queues its jobs.
func (d *dispatcher) dispatch(id string, value []byte) {
	d.mu.Lock()
	_, busy := d.pending[id]
	d.mu.Unlock()
	if busy {
		return
	}
	var rec outboxRecord
	if json.Unmarshal(value, &rec) != nil {
		d.s.log.Error("events: corrupt outbox record dropped", "id", id)
		d.deleteKey(keyOutbox + id)
		return
	}
	var jobs []job
	b := d.buses[rec.Bus]
	if b != nil {
		var names []string
		if rec.Rule != "" {
			if r, ok := b.rules[rec.Rule]; ok && r.enabled() {
				names = []string{rec.Rule}
			}
		} else {
			var err error
			names, err = b.set.Match(rec.Event)
			if err != nil {
				d.s.log.Warn("events: event not matchable", "id", id, "err", err)
			}
		}
		now := d.s.now()
		if len(names) > 0 {
			d.metrics.add("MatchedEvents", "", now, 1)
		}
		for _, n := range names {
			r := b.rules[n]
			d.metrics.add("TriggeredRules", n, now, 1)
			for _, t := range r.Targets {
				jobs = append(jobs, job{outboxID: id, bus: rec.Bus, rule: r, target: t, event: rec.Event, accepted: rec.Accepted})
			}
		}
	}
	if len(jobs) == 0 {
		d.deleteKey(keyOutbox + id)
		return
	}
	d.mu.Lock()
	d.pending[id] = len(jobs)
	d.mu.Unlock()
	for _, j := range jobs {
		d.enqueue(j)
	}
}

func queueKey(j job) string { return j.bus + "/" + j.rule.Name + "/" + deref(j.target.Id) }

func (d *dispatcher) enqueue(j job) {
	k := queueKey(j)
	d.mu.Lock()
	q := d.queues[k]
	if q == nil {
		q = &queue{wake: make(chan struct{}, 1)}
		d.queues[k] = q
		go d.work(q)
	}
	d.mu.Unlock()
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) work(q *queue) {
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.mu.Unlock()
			select {
			case <-q.wake:
				continue
			case <-d.ctx.Done():
				return
			}
		}
		j := q.jobs[0]
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		d.runJob(j)
	}
}

// runJob invokes the target once and settles the job, recording the
// attempt (deliveries.go).
func (d *dispatcher) runJob(j job) {
	if d.ctx.Err() != nil {
		return
	}
	t0 := time.Now()
	err := d.invoke(j)
	took := time.Since(t0)
	now := d.s.now()
	name := j.rule.Name
	switch {
	case err == nil:
		d.metrics.add("Invocations", name, now, 1)
		if d.onInvoke != nil {
			d.onInvoke(j.event, j.target, now)
		}
		d.settle(j, nil, newDelivery(j, now, took, DeliveryDelivered, nil, nil))
	case !isRetryable(err) || !d.canRetry(j, now):
		d.metrics.add("Invocations", name, now, 1)
		d.metrics.add("FailedInvocations", name, now, 1)
		d.s.logFailure(j, err)
		d.settle(j, nil, newDelivery(j, now, took, DeliveryFailed, err, nil))
	default:
		rec := newDelivery(j, now, took, DeliveryRetrying, err, nil)
		j.attempts++
		rr := retryRecord{Bus: j.bus, Rule: j.rule, Target: j.target, Event: j.event, Accepted: j.accepted,
			Attempts: j.attempts, Next: now.Add(backoff(j.attempts))}
		rec.NextAttempt = &rr.Next
		d.settle(j, &rr, rec)
	}
}

func (d *dispatcher) canRetry(j job, now time.Time) bool {
	maxAttempts, maxAge := defaultMaxAttempts, defaultMaxAge
	if p := j.target.RetryPolicy; p != nil {
		if p.MaximumRetryAttempts != nil {
			maxAttempts = int(*p.MaximumRetryAttempts)
		}
		if p.MaximumEventAgeInSeconds != nil {
			maxAge = time.Duration(*p.MaximumEventAgeInSeconds) * time.Second
		}
	}
	return j.attempts < maxAttempts && now.Add(backoff(j.attempts+1)).Sub(j.accepted) <= maxAge
}

// backoff is the wait before retry n (1-based): exponential from 1 s,
// capped at 3 minutes, with jitter.
func backoff(n int) time.Duration {
	d := time.Second << min(n-1, 8)
	d = min(d, 3*time.Minute)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// settle ends a job: a retry record replaces it (rr set), or it is done.
// The outbox record goes when its last job is settled. The attempt's
// delivery record is written in the same transaction, on condition that
// the rule still exists (a deleted rule's records are gone with it); if it
// does not, the settling ops are committed without the record.
func (d *dispatcher) settle(j job, rr *retryRecord, rec Delivery) {
	var ops []store.Op
	if rr != nil {
		id := j.retryID
		if id == "" {
			id = d.s.ids.next(d.s.now())
		}
		ops = append(ops, store.Put(keyRetries+id, mustJSON(rr)))
	} else if j.retryID != "" {
		ops = append(ops, store.Delete(keyRetries+j.retryID))
	}
	if j.outboxID != "" {
		d.mu.Lock()
		d.pending[j.outboxID]--
		last := d.pending[j.outboxID] <= 0
		if last {
			delete(d.pending, j.outboxID)
		}
		d.mu.Unlock()
		if last {
			ops = append(ops, store.Delete(keyOutbox+j.outboxID))
		}
	}
	if j.retryID != "" {
		defer func() {
			d.mu.Lock()
			delete(d.inflight, j.retryID)
			d.mu.Unlock()
		}()
	}
	recOps := d.deliveryOps(j, rec)
	withRecord := append(slices.Clip(ops), recOps...)
	cmps := []store.Cmp{store.Exists(ruleKey(j.bus, j.rule.Name))}
	for attempt := 0; d.ctx.Err() == nil; attempt++ {
		res, err := d.s.st.Txn(d.ctx, cmps, withRecord...)
		if err == nil && !res.Succeeded {
			// The rule was deleted: settle without the record.
			cmps, withRecord = nil, ops
			if len(ops) == 0 {
				return
			}
			continue
		}
		if err == nil {
			return
		}
		if attempt%10 == 0 && d.ctx.Err() == nil {
			d.s.log.Warn("events: recording a delivery failed; trying again", "err", err)
		}
		sleepCtx(d.ctx, 500*time.Millisecond)
	}
}

func (d *dispatcher) deleteKey(key string) {
	if _, err := d.s.st.Txn(d.ctx, nil, store.Delete(key)); err != nil && d.ctx.Err() == nil {
		d.s.log.Warn("events: deleting a dispatched outbox record failed", "key", key, "err", err)
	}
}

// runRetries queues retry records when they are due.
func (d *dispatcher) runRetries() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		d.retryDue(d.s.now())
	}
}

func (d *dispatcher) retryDue(now time.Time) {
	res, err := d.s.st.List(d.ctx, keyRetries, store.ListOptions{})
	if err != nil {
		return
	}
	for _, kv := range res.KVs {
		id := strings.TrimPrefix(kv.Key, keyRetries)
		var rr retryRecord
		if json.Unmarshal(kv.Value, &rr) != nil || rr.Next.After(now) {
			continue
		}
		d.mu.Lock()
		busy := d.inflight[id]
		d.inflight[id] = true
		d.mu.Unlock()
		if busy {
			continue
		}
		d.enqueue(job{retryID: id, bus: rr.Bus, rule: rr.Rule, target: rr.Target, event: rr.Event, accepted: rr.Accepted, attempts: rr.Attempts})
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
