package events

import (
	"context"
	"net/url"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

func (s *Service) busARN(name string) string { return s.arns.Service("events", "event-bus/"+name) }

func msgBusNotFound(name string) string { return "Event bus " + name + " does not exist." }

// getBus reads a bus; the default bus always exists. rev is 0 when the
// bus has no record (the default bus before it is tagged).
func (s *Service) getBus(ctx context.Context, name string) (busRecord, int64, error) {
	var b busRecord
	rev, err := getJSON(ctx, s.st, busKey(name), &b)
	if err != nil {
		return b, 0, err
	}
	if rev == 0 {
		if name == DefaultBus {
			return busRecord{Name: DefaultBus}, 0, nil
		}
		return b, 0, errs.E(errs.NotFound, "%s", msgBusNotFound(name))
	}
	return b, rev, nil
}

func (s *Service) CreateEventBus(ctx context.Context, in *eventsapi.CreateEventBusRequest) (*eventsapi.CreateEventBusResponse, error) {
	name := *in.Name
	if in.EventSourceName != nil || strings.HasPrefix(name, "aws.") {
		return nil, errs.E(errs.Invalid, "Partner event sources are not available in Berth: %s", name)
	}
	if name == DefaultBus {
		return nil, errs.E(errs.AlreadyExists, "Event bus %s already exists.", name)
	}
	if err := busExtras(in.DeadLetterConfig, in.KmsKeyIdentifier, in.LogConfig); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	all, rev, err := listJSON[busRecord](ctx, s.st, keyBuses)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, b := range all {
		if b.Name == name {
			return nil, errs.E(errs.AlreadyExists, "Event bus %s already exists.", name)
		}
		if b.Name != DefaultBus {
			n++
		}
	}
	if n >= MaxCustomBuses {
		return nil, errs.E(errs.LimitExceeded, "The requested resource exceeds the maximum number allowed.")
	}
	now := s.now().UTC()
	b := busRecord{Name: name, Description: deref(in.Description), Created: now, Modified: now, Tags: in.Tags}
	err = commit(ctx, s.st, []store.Cmp{store.Absent(busKey(name)), store.PrefixUnchangedSince(keyBuses, rev)}, store.Put(busKey(name), mustJSON(b)))
	if err != nil {
		return nil, err
	}
	return &eventsapi.CreateEventBusResponse{EventBusArn: ptr(s.busARN(name)), Description: in.Description}, nil
}

func (s *Service) DescribeEventBus(ctx context.Context, in *eventsapi.DescribeEventBusRequest) (*eventsapi.DescribeEventBusResponse, error) {
	b, _, err := s.getBus(ctx, s.busName(in.Name))
	if err != nil {
		return nil, err
	}
	out := &eventsapi.DescribeEventBusResponse{Name: ptr(b.Name), Arn: ptr(s.busARN(b.Name)),
		CreationTime: awsTime(b.Created), LastModifiedTime: awsTime(b.Modified)}
	if b.Description != "" {
		out.Description = ptr(b.Description)
	}
	return out, nil
}

func (s *Service) DeleteEventBus(ctx context.Context, in *eventsapi.DeleteEventBusRequest) (*eventsapi.DeleteEventBusResponse, error) {
	name := *in.Name
	if name == DefaultBus {
		return nil, errs.E(errs.Invalid, "Cannot delete event bus default.")
	}
	// Deleting a bus that does not exist succeeds, as on AWS; its rules
	// go with it.
	if err := commit(ctx, s.st, nil, store.Delete(busKey(name)), store.DeletePrefix(rulesPrefix(name)),
		store.DeletePrefix(keySchedules+url.QueryEscape(name)+"/"), store.DeletePrefix(busDeliveriesPrefix(name))); err != nil {
		return nil, err
	}
	return &eventsapi.DeleteEventBusResponse{}, nil
}

func (s *Service) ListEventBuses(ctx context.Context, in *eventsapi.ListEventBusesRequest) (*eventsapi.ListEventBusesResponse, error) {
	all, _, err := listJSON[busRecord](ctx, s.st, keyBuses)
	if err != nil {
		return nil, err
	}
	hasDefault := false
	for _, b := range all {
		hasDefault = hasDefault || b.Name == DefaultBus
	}
	if !hasDefault {
		all = append([]busRecord{{Name: DefaultBus}}, all...)
	}
	sortBy(all, func(b busRecord) string { return b.Name })
	page, next, err := paginate(all, func(b busRecord) string { return b.Name }, deref(in.NamePrefix), in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := &eventsapi.ListEventBusesResponse{EventBuses: []eventsapi.EventBus{}, NextToken: next}
	for _, b := range page {
		eb := eventsapi.EventBus{Name: ptr(b.Name), Arn: ptr(s.busARN(b.Name)), CreationTime: awsTime(b.Created), LastModifiedTime: awsTime(b.Modified)}
		if b.Description != "" {
			eb.Description = ptr(b.Description)
		}
		out.EventBuses = append(out.EventBuses, eb)
	}
	return out, nil
}

// pagePos is the position a nextToken carries.
type pagePos struct {
	After string `json:"a"`
}

// paginate returns the page of sorted items (by key) with the prefix,
// after the token's position, at most limit (default 100) long.
func paginate[T any](items []T, key func(T) string, prefix string, token *string, limit *int32) ([]T, *string, error) {
	var pos pagePos
	if token != nil {
		if err := awsproto.DecodeToken(*token, &pos); err != nil {
			return nil, nil, err
		}
	}
	n := int(deref(limit))
	if n <= 0 {
		n = 100
	}
	var out []T
	for _, it := range items {
		k := key(it)
		if !strings.HasPrefix(k, prefix) || (pos.After != "" && k <= pos.After) {
			continue
		}
		if len(out) == n {
			return out, ptr(awsproto.EncodeToken(pagePos{After: key(out[n-1])})), nil
		}
		out = append(out, it)
	}
	return out, nil, nil
}

func sortBy[T any](items []T, key func(T) string) {
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(key(a), key(b)) })
}

func checkTags(tags []eventsapi.Tag) error {
	if len(tags) > 50 {
		return errs.E(errs.Invalid, "The number of tags exceeds the limit of 50.")
	}
	return nil
}

func encodeToken(pos any) string            { return awsproto.EncodeToken(pos) }
func decodeToken(tok string, pos any) error { return awsproto.DecodeToken(tok, pos) }

// busExtras refuses the bus settings Berth cannot honour (a dead-letter
// queue needs SQS, a customer managed key KMS, logging a log delivery).
func busExtras(dlq *eventsapi.DeadLetterConfig, kms *string, lc *eventsapi.LogConfig) error {
	if dlq != nil || kms != nil || lc != nil {
		return errs.E(errs.Unsupported, "Berth does not implement event bus dead-letter queues, KMS keys or logging (DeadLetterConfig, KmsKeyIdentifier, LogConfig).")
	}
	return nil
}

func (s *Service) UpdateEventBus(ctx context.Context, in *eventsapi.UpdateEventBusRequest) (*eventsapi.UpdateEventBusResponse, error) {
	if err := busExtras(in.DeadLetterConfig, in.KmsKeyIdentifier, in.LogConfig); err != nil {
		return nil, err
	}
	name := s.busName(in.Name)
	for {
		b, rev, err := s.getBus(ctx, name)
		if err != nil {
			return nil, err
		}
		now := s.now().UTC()
		if b.Created.IsZero() {
			b.Created = now
		}
		b.Description, b.Modified = deref(in.Description), now
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(busKey(name), rev)}, store.Put(busKey(name), mustJSON(b)))
		if err != nil {
			return nil, err
		}
		if res.Succeeded {
			return &eventsapi.UpdateEventBusResponse{Arn: ptr(s.busARN(name)), Name: ptr(name), Description: in.Description}, nil
		}
	}
}
