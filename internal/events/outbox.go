package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Event is an event's envelope as EventBridge hands it to rules and
// targets; members in AWS's order.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// outboxRecord is an accepted event waiting for dispatch. The record is
// deleted once every matching target was invoked or its failure handed
// to a retry record, so an event committed to the outbox reaches its
// targets at least once across restarts.
type outboxRecord struct {
	Bus      string          `json:"bus"`
	Rule     string          `json:"rule,omitempty"` // scheduled events: this rule's targets only
	Event    json.RawMessage `json:"event"`
	Accepted time.Time       `json:"accepted"`
}

// idGen makes outbox keys that sort in the order one process makes them.
type idGen struct {
	mu     sync.Mutex
	last   int64
	suffix string
}

func (g *idGen) next(now time.Time) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.suffix == "" {
		g.suffix = newUUID()[:8]
	}
	n := now.UnixNano()
	if n <= g.last {
		n = g.last + 1
	}
	g.last = n
	return fmt.Sprintf("%019d-%s", n, g.suffix)
}

func eventTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// Emit commits events to the outbox of bus in one transaction, with the
// extra ops (a controller's cursor), and returns once they are durable.
func (s *Service) Emit(ctx context.Context, bus string, evs []Event, extra ...store.Op) error {
	ops := make([]store.Op, 0, len(evs)+len(extra))
	now := s.now().UTC()
	for _, e := range evs {
		rec := outboxRecord{Bus: bus, Event: mustJSON(e), Accepted: now}
		ops = append(ops, store.Put(keyOutbox+s.ids.next(now), mustJSON(rec)))
	}
	ops = append(ops, extra...)
	_, err := s.st.Txn(ctx, nil, ops...)
	return err
}

// newEvent builds an envelope from this account and region.
func (s *Service) newEvent(source, detailType string, t time.Time, resources []string, detail json.RawMessage) Event {
	if resources == nil {
		resources = []string{}
	}
	return Event{Version: "0", ID: newUUID(), DetailType: detailType, Source: source, Account: s.cfg.Account,
		Time: eventTime(t), Region: s.cfg.Region, Resources: resources, Detail: detail}
}

func entryFailure(code, msg string) eventsapi.PutEventsResultEntry {
	return eventsapi.PutEventsResultEntry{ErrorCode: ptr(code), ErrorMessage: ptr(msg)}
}

// entrySize is AWS's size of a PutEvents entry: the UTF-8 bytes of
// Source, DetailType, Detail, Resources and 14 bytes for Time when set.
func entrySize(e *eventsapi.PutEventsRequestEntry) int {
	n := len(deref(e.Source)) + len(deref(e.DetailType)) + len(deref(e.Detail))
	for _, r := range e.Resources {
		n += len(r)
	}
	if e.Time != nil {
		n += 14
	}
	return n
}

func (s *Service) PutEvents(ctx context.Context, in *eventsapi.PutEventsRequest) (*eventsapi.PutEventsResponse, error) {
	total := 0
	for i := range in.Entries {
		total += entrySize(&in.Entries[i])
	}
	if total > MaxPutEventsBytes {
		return nil, errs.E(errs.Invalid, "Total size of the entries in the request is over the limit.")
	}
	now := s.now().UTC()
	out := &eventsapi.PutEventsResponse{Entries: make([]eventsapi.PutEventsResultEntry, len(in.Entries))}
	byBus := map[string][]Event{}
	buses := map[string]error{}
	var order []string
	for i := range in.Entries {
		e := &in.Entries[i]
		if r, bad := checkEntry(e); bad {
			out.Entries[i] = r
			continue
		}
		bus := s.busName(e.EventBusName)
		if _, ok := buses[bus]; !ok {
			_, _, err := s.getBus(ctx, bus)
			if err != nil && !errs.Is(err, errs.NotFound) {
				return nil, err
			}
			buses[bus] = err
			order = append(order, bus)
		}
		if buses[bus] != nil {
			out.Entries[i] = entryFailure("ResourceNotFoundException", msgBusNotFound(bus))
			continue
		}
		t := now
		if e.Time != nil {
			t = e.Time.Time
		}
		var detail bytes.Buffer
		_ = json.Compact(&detail, []byte(*e.Detail))
		ev := s.newEvent(*e.Source, *e.DetailType, t, e.Resources, detail.Bytes())
		byBus[bus] = append(byBus[bus], ev)
		out.Entries[i] = eventsapi.PutEventsResultEntry{EventId: ptr(ev.ID)}
	}
	// One transaction for the whole request: every accepted entry is
	// durable before the answer names its id.
	var ops []store.Op
	for _, bus := range order {
		for _, ev := range byBus[bus] {
			rec := outboxRecord{Bus: bus, Event: mustJSON(ev), Accepted: now}
			ops = append(ops, store.Put(keyOutbox+s.ids.next(now), mustJSON(rec)))
		}
	}
	if len(ops) > 0 {
		if _, err := s.st.Txn(ctx, nil, ops...); err != nil {
			return nil, err
		}
	}
	failed := int32(0)
	for _, r := range out.Entries {
		if r.ErrorCode != nil {
			failed++
		}
	}
	out.FailedEntryCount = ptr(failed)
	return out, nil
}

// checkEntry validates one PutEvents entry; bad is true with the entry's
// failure.
func checkEntry(e *eventsapi.PutEventsRequestEntry) (eventsapi.PutEventsResultEntry, bool) {
	switch {
	case deref(e.Source) == "":
		return entryFailure("InvalidArgument", "Parameter Source is not valid. Reason: Source is a required argument."), true
	case deref(e.DetailType) == "":
		return entryFailure("InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is a required argument."), true
	case e.Detail == nil:
		return entryFailure("InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required argument."), true
	case strings.HasPrefix(*e.Source, "aws."):
		return entryFailure("NotAuthorizedForSourceException", "Not authorized for the source."), true
	case entrySize(e) > MaxEntrySize:
		return entryFailure("InvalidArgument", "Parameter Detail is not valid. Reason: The entry size exceeds the limit of 256 KB."), true
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(*e.Detail), &obj) != nil || obj == nil {
		return entryFailure("MalformedDetail", "Detail is malformed."), true
	}
	return eventsapi.PutEventsResultEntry{}, false
}

// checkTestEvent checks TestEventPattern's event has the envelope's
// mandatory members.
func checkTestEvent(b []byte) error {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || m == nil {
		return errs.E(errs.Invalid, "Parameter Event is not valid.")
	}
	for _, k := range []string{"id", "account", "source", "time", "region", "detail-type"} {
		if _, ok := m[k]; !ok {
			return errs.E(errs.Invalid, "Parameter Event is not valid.")
		}
	}
	return nil
}
