package logs

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/logsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/logfilter"
	"github.com/berthdev/berth/internal/logstore"
)

// Live Tail, as AWS documents it: an update about every second, at most
// 500 events per update (more are sampled), sessions end after 3 hours.
const (
	LiveTailInterval    = time.Second
	LiveTailPerUpdate   = 500
	LiveTailMaxDuration = 3 * time.Hour
)

const reasonSessionTimeout = "logs.session_timeout"

// StopStreams ends every Live Tail session (the server is shutting down).
// Idempotent.
func (s *Service) StopStreams() { s.stopOnce.Do(func() { close(s.stop) }) }

// tailGroup is one log group of a Live Tail session.
type tailGroup struct {
	ident string // as the client named it
	name  string
	last  uint64 // sequence of the last event considered
}

// startLiveTail checks a StartLiveTail request and returns the event
// stream that serves it.
func (s *Service) startLiveTail(ctx context.Context, input any) (any, error) {
	in, ok := input.(*logsapi.StartLiveTailRequest)
	if !ok {
		return nil, errs.E(errs.Internal, "StartLiveTail called with %T", input)
	}
	if len(in.LogStreamNames) > 0 && len(in.LogStreamNamePrefixes) > 0 {
		return nil, errs.E(errs.Invalid, "logStreamNames and logStreamNamePrefixes are mutually exclusive parameters.")
	}
	if (len(in.LogStreamNames) > 0 || len(in.LogStreamNamePrefixes) > 0) && len(in.LogGroupIdentifiers) != 1 {
		return nil, errs.E(errs.Invalid, "logStreamNames and logStreamNamePrefixes can only be given with exactly one log group.")
	}
	pat, err := logfilter.Parse(deref(in.LogEventFilterPattern))
	if err != nil {
		return nil, err
	}
	var groups []*tailGroup
	for _, id := range in.LogGroupIdentifiers {
		name := id
		if arn.IsARN(id) {
			if name, err = s.groupFromARN(id); err != nil {
				return nil, err
			}
		}
		last, err := s.st.LastSeq(name)
		if err != nil {
			return nil, err
		}
		groups = append(groups, &tailGroup{ident: id, name: name, last: last})
	}
	var match func(string) bool
	if strings.TrimSpace(deref(in.LogEventFilterPattern)) != "" {
		match = pat.Match
	}
	start := &logsapi.LiveTailSessionStart{
		RequestId:             ptr(awsproto.CallFrom(ctx).RequestID),
		SessionId:             ptr(awsproto.NewRequestID()),
		LogGroupIdentifiers:   in.LogGroupIdentifiers,
		LogStreamNames:        in.LogStreamNames,
		LogStreamNamePrefixes: in.LogStreamNamePrefixes,
		LogEventFilterPattern: in.LogEventFilterPattern,
	}
	return &awsproto.EventStream{Run: func(ctx context.Context, send func(string, any) error) error {
		if err := send("sessionStart", start); err != nil {
			return nil
		}
		t := time.NewTicker(LiveTailInterval)
		defer t.Stop()
		deadline := time.NewTimer(LiveTailMaxDuration)
		defer deadline.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-s.stop:
				return nil
			case <-deadline.C:
				return errs.R(errs.Unavailable, reasonSessionTimeout, "Session timed out after %s", LiveTailMaxDuration)
			case <-t.C:
			}
			up, err := s.tailOnce(groups, in.LogStreamNames, in.LogStreamNamePrefixes, match)
			if err != nil {
				return err
			}
			if err := send("sessionUpdate", up); err != nil {
				return nil
			}
		}
	}}, nil
}

// tailOnce collects what arrived in the session's groups since the last
// update.
func (s *Service) tailOnce(groups []*tailGroup, names, prefixes []string, match func(string) bool) (*logsapi.LiveTailSessionUpdate, error) {
	up := &logsapi.LiveTailSessionUpdate{SessionMetadata: &logsapi.LiveTailSessionMetadata{Sampled: ptr(false)},
		SessionResults: []logsapi.LiveTailSessionLogEvent{}}
	for _, g := range groups {
		last, err := s.st.LastSeq(g.name)
		if err != nil {
			return nil, err
		}
		if last <= g.last {
			continue
		}
		q := logstore.Query{Group: g.name, Streams: names, AfterSeq: g.last, Limit: LiveTailPerUpdate,
			Match: match, Now: s.nowMs()}
		if len(prefixes) > 0 {
			streams, err := s.st.Streams(g.name)
			if err != nil {
				return nil, err
			}
			for _, st := range streams {
				if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(st.Name, p) }) {
					q.Streams = append(q.Streams, st.Name)
				}
			}
			if len(q.Streams) == 0 {
				g.last = last
				continue
			}
		}
		res, err := s.st.Query(q)
		if err != nil {
			return nil, err
		}
		if res.More {
			*up.SessionMetadata.Sampled = true
		}
		next := last
		for _, e := range res.Events {
			next = max(next, e.Seq)
			up.SessionResults = append(up.SessionResults, logsapi.LiveTailSessionLogEvent{
				LogGroupIdentifier: ptr(g.ident),
				LogStreamName:      ptr(e.Stream),
				Message:            ptr(e.Message),
				Timestamp:          ptr(e.TS),
				IngestionTime:      ptr(e.Ingestion),
			})
		}
		g.last = next
	}
	slices.SortStableFunc(up.SessionResults, func(a, b logsapi.LiveTailSessionLogEvent) int {
		return compareInt(*a.Timestamp, *b.Timestamp)
	})
	if len(up.SessionResults) > LiveTailPerUpdate {
		up.SessionResults = up.SessionResults[len(up.SessionResults)-LiveTailPerUpdate:]
		*up.SessionMetadata.Sampled = true
	}
	return up, nil
}
