package logs

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/berthdev/berth/internal/api/logsapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/logfilter"
	"github.com/berthdev/berth/internal/logstore"
)

// PutLogEvents' limits, as AWS documents them.
const (
	MaxBatchBytes  = 1_048_576 // sum of len(message)+26 per event
	MaxEventBytes  = 1_048_576 // one event, len(message)+26
	MaxBatchSpanMs = 24 * 3600 * 1000
	TooNewMs       = 2 * 3600 * 1000       // events more than 2 h ahead are rejected
	TooOldMs       = 14 * 24 * 3600 * 1000 // events more than 14 days old are rejected
	// Reads answer at most this many events and bytes per page.
	MaxReadEvents = 10_000
	MaxReadBytes  = 1_048_576
)

// window classifies a sorted batch: events[:oldEnd] are too old,
// events[oldEnd:expEnd] older than the group's retention (expEnd >=
// oldEnd), events[newStart:] too new. It is pure: now is passed in.
type window struct {
	tooOldEnd, expiredEnd, tooNewStart int
}

func classify(ts []int64, now int64, retentionDays int32) window {
	w := window{tooNewStart: len(ts)}
	for i, t := range ts {
		if t < now-TooOldMs {
			w.tooOldEnd = i + 1
		}
		if retentionDays > 0 && t < now-int64(retentionDays)*86_400_000 {
			w.expiredEnd = i + 1
		}
		if t > now+TooNewMs && w.tooNewStart == len(ts) {
			w.tooNewStart = i
		}
	}
	w.expiredEnd = max(w.expiredEnd, w.tooOldEnd)
	w.tooNewStart = max(w.tooNewStart, w.expiredEnd)
	return w
}

// PutLogEvents appends a batch of events to a stream. Sequence tokens are
// ignored, as AWS has done since 2023.
func (s *Service) PutLogEvents(ctx context.Context, in *logsapi.PutLogEventsRequest) (*logsapi.PutLogEventsResponse, error) {
	total := 0
	ts := make([]int64, len(in.LogEvents))
	for i, e := range in.LogEvents {
		n := len(deref(e.Message)) + logstore.EventOverhead
		if n > MaxEventBytes {
			return nil, errs.E(errs.Invalid, "Log event too large: %d bytes exceeds limit of %d", n, MaxEventBytes)
		}
		total += n
		ts[i] = deref(e.Timestamp)
		if i > 0 && ts[i] < ts[i-1] {
			return nil, errs.E(errs.Invalid, "Log events in a single PutLogEvents request must be in chronological order.")
		}
	}
	if total > MaxBatchBytes {
		return nil, errs.E(errs.Invalid, "Upload too large: %d bytes exceeds limit of %d", total, MaxBatchBytes)
	}
	if len(ts) > 0 && ts[len(ts)-1]-ts[0] > MaxBatchSpanMs {
		return nil, errs.E(errs.Invalid, "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
	}
	group, stream := deref(in.LogGroupName), deref(in.LogStreamName)
	g, err := s.st.Group(group)
	if err != nil {
		return nil, err
	}
	now := s.nowMs()
	w := classify(ts, now, g.RetentionDays)
	entries := make([]logstore.Entry, 0, w.tooNewStart-w.expiredEnd)
	for _, e := range in.LogEvents[w.expiredEnd:w.tooNewStart] {
		entries = append(entries, logstore.Entry{Timestamp: *e.Timestamp, Message: *e.Message})
	}
	next, err := s.st.Append(group, stream, entries, false, now)
	if err != nil {
		return nil, err
	}
	out := &logsapi.PutLogEventsResponse{NextSequenceToken: ptr(fmt.Sprintf("%056d", next))}
	if w.tooOldEnd > 0 || w.expiredEnd > 0 || w.tooNewStart < len(ts) {
		info := &logsapi.RejectedLogEventsInfo{}
		if w.tooOldEnd > 0 {
			info.TooOldLogEventEndIndex = ptr(int32(w.tooOldEnd))
		}
		if w.expiredEnd > w.tooOldEnd {
			info.ExpiredLogEventEndIndex = ptr(int32(w.expiredEnd))
		}
		if w.tooNewStart < len(ts) {
			info.TooNewLogEventStartIndex = ptr(int32(w.tooNewStart))
		}
		out.RejectedLogEventsInfo = info
	}
	return out, nil
}

// InputEvent is an event for Ingest.
type InputEvent struct {
	Timestamp int64 // epoch ms
	Message   string
}

var (
	groupNameRE  = regexp.MustCompile(`^[\.\-_/#A-Za-z0-9]+$`)
	streamNameRE = regexp.MustCompile(`^[^:*]*$`)
)

func checkNames(group, stream string) error {
	if n := utf8.RuneCountInString(group); n < 1 || n > 512 || !groupNameRE.MatchString(group) {
		return errs.E(errs.Invalid, "Invalid log group name %q", group)
	}
	if n := utf8.RuneCountInString(stream); n < 1 || n > 512 || !streamNameRE.MatchString(stream) {
		return errs.E(errs.Invalid, "Invalid log stream name %q", stream)
	}
	return nil
}

// Ingest appends events to group/stream, creating the stream when
// missing, and the group too when createGroup. A missing group without
// createGroup returns an error of kind errs.NotFound whose message is
// AWS's "The specified log group does not exist.".
//
// Events are sorted by timestamp; those PutLogEvents would reject (more
// than 2 h ahead, more than 14 days old, older than the group's
// retention, larger than 1 MiB with the 26-byte overhead) are dropped, as
// the awslogs driver sees them rejected by CloudWatch Logs. The call
// returns once the kept events are on disk.
func (s *Service) Ingest(ctx context.Context, group, stream string, createGroup bool, events []InputEvent) error {
	if err := checkNames(group, stream); err != nil {
		return err
	}
	now := s.nowMs()
	if createGroup {
		err := s.st.CreateGroup(logstore.GroupInfo{Name: group, Created: now, Class: string(logsapi.LogGroupClassStandard)})
		if err != nil && !errs.Is(err, errs.AlreadyExists) {
			return err
		}
	}
	g, err := s.st.Group(group)
	if err != nil {
		return err
	}
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b InputEvent) int { return compareInt(a.Timestamp, b.Timestamp) })
	entries := make([]logstore.Entry, 0, len(sorted))
	for _, e := range sorted {
		if len(e.Message) == 0 || len(e.Message)+logstore.EventOverhead > MaxEventBytes {
			continue
		}
		if w := classify([]int64{e.Timestamp}, now, g.RetentionDays); w.expiredEnd > 0 || w.tooNewStart == 0 {
			continue
		}
		entries = append(entries, logstore.Entry{Timestamp: e.Timestamp, Message: e.Message})
	}
	_, err = s.st.Append(group, stream, entries, true, now)
	return err
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// GetLogEvents tokens have AWS's shape: "f/" or "b/" and 56 digits. Ours
// carry the position (timestamp, sequence) of the boundary event.

func formatToken(dir byte, k logstore.Key) string {
	return fmt.Sprintf("%c/%020d%020d%016d", dir, k.TS, k.Seq, 0)
}

func parseToken(tok string) (dir byte, k logstore.Key, err error) {
	bad := errs.E(errs.Invalid, "The specified nextToken is invalid.")
	if len(tok) != 58 || (tok[0] != 'f' && tok[0] != 'b') || tok[1] != '/' {
		return 0, k, bad
	}
	digits := tok[2:]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, k, bad
		}
	}
	ts, err1 := strconv.ParseInt(digits[:20], 10, 64)
	seq, err2 := strconv.ParseUint(digits[20:40], 10, 64)
	if err1 != nil || err2 != nil || strings.Trim(digits[40:], "0") != "" {
		return 0, k, bad
	}
	return tok[0], logstore.Key{TS: ts, Seq: seq}, nil
}

// timeRange turns startTime/endTime into the store's [start, end).
// endInclusive is FilterLogEvents' reading of endTime.
func timeRange(start, end *int64, endInclusive bool) (int64, int64) {
	lo := deref(start)
	if end == nil {
		return lo, math.MaxInt64
	}
	hi := *end
	if endInclusive && hi < math.MaxInt64 {
		hi++
	}
	if hi <= 0 {
		hi = -1 // nothing (0 means "no bound" to the store)
	}
	return lo, hi
}

// GetLogEvents reads one stream, by time, a page at a time.
func (s *Service) GetLogEvents(ctx context.Context, in *logsapi.GetLogEventsRequest) (*logsapi.GetLogEventsResponse, error) {
	group, err := s.groupName(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	stream := deref(in.LogStreamName)
	if _, err := s.st.Stream(group, stream); err != nil {
		return nil, err
	}
	start, end := timeRange(in.StartTime, in.EndTime, false)
	limit := int(deref(in.Limit))
	if limit == 0 {
		limit = MaxReadEvents
	}
	q := logstore.Query{Group: group, Streams: []string{stream}, Start: start, End: end,
		Limit: limit, MaxBytes: MaxReadBytes, Now: s.nowMs()}
	var dir byte
	var pos logstore.Key
	if in.NextToken != nil {
		if dir, pos, err = parseToken(*in.NextToken); err != nil {
			return nil, err
		}
		if dir == 'f' {
			q.After = &pos
		} else {
			q.Before, q.FromEnd = &pos, true
		}
	} else {
		q.FromEnd = !deref(in.StartFromHead)
	}
	res, err := s.st.Query(q)
	if err != nil {
		return nil, err
	}
	out := &logsapi.GetLogEventsResponse{Events: make([]logsapi.OutputLogEvent, 0, len(res.Events))}
	for _, e := range res.Events {
		out.Events = append(out.Events, logsapi.OutputLogEvent{
			Timestamp: ptr(e.TS), IngestionTime: ptr(e.Ingestion), Message: ptr(e.Message)})
	}
	switch {
	case len(res.Events) > 0:
		out.NextForwardToken = ptr(formatToken('f', res.Events[len(res.Events)-1].Key))
		out.NextBackwardToken = ptr(formatToken('b', res.Events[0].Key))
	case in.NextToken != nil:
		// At the end (or the start) of the stream: the same token again.
		other := byte('b')
		if dir == 'b' {
			other = 'f'
		}
		if dir == 'f' {
			out.NextForwardToken, out.NextBackwardToken = in.NextToken, ptr(formatToken(other, pos))
		} else {
			out.NextBackwardToken, out.NextForwardToken = in.NextToken, ptr(formatToken(other, pos))
		}
	default:
		k := logstore.Key{TS: max(start, 0)}
		out.NextForwardToken = ptr(formatToken('f', k))
		out.NextBackwardToken = ptr(formatToken('b', k))
	}
	return out, nil
}

// filterPos is FilterLogEvents' paging position: the last event returned.
type filterPos struct {
	TS  int64  `json:"t"`
	Seq uint64 `json:"s"`
}

// FilterLogEvents searches a group's streams with a filter pattern, by
// time. The last page carries no nextToken (aws logs tail relies on it).
func (s *Service) FilterLogEvents(ctx context.Context, in *logsapi.FilterLogEventsRequest) (*logsapi.FilterLogEventsResponse, error) {
	group, err := s.groupName(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	if len(in.LogStreamNames) > 0 && in.LogStreamNamePrefix != nil {
		return nil, errs.E(errs.Invalid, "You cannot specify both LogStreamNames and LogStreamNamePrefix")
	}
	pat, err := logfilter.Parse(deref(in.FilterPattern))
	if err != nil {
		return nil, err
	}
	start, end := timeRange(in.StartTime, in.EndTime, true)
	limit := int(deref(in.Limit))
	if limit == 0 {
		limit = MaxReadEvents
	}
	q := logstore.Query{Group: group, Streams: in.LogStreamNames, Prefix: deref(in.LogStreamNamePrefix),
		Start: start, End: end, Limit: limit, MaxBytes: MaxReadBytes, Now: s.nowMs()}
	if strings.TrimSpace(deref(in.FilterPattern)) != "" {
		q.Match = pat.Match
	}
	if in.NextToken != nil {
		var p filterPos
		if err := awsproto.DecodeToken(*in.NextToken, &p); err != nil {
			return nil, errs.E(errs.Invalid, "The specified nextToken is invalid.")
		}
		q.After = &logstore.Key{TS: p.TS, Seq: p.Seq}
	}
	res, err := s.st.Query(q)
	if err != nil {
		return nil, err
	}
	out := &logsapi.FilterLogEventsResponse{
		Events: make([]logsapi.FilteredLogEvent, 0, len(res.Events)),
		// AWS stopped filling searchedLogStreams in 2020: always empty.
		SearchedLogStreams: []logsapi.SearchedLogStream{},
	}
	for _, e := range res.Events {
		out.Events = append(out.Events, logsapi.FilteredLogEvent{
			EventId:       ptr(eventID(e.Key)),
			Timestamp:     ptr(e.TS),
			IngestionTime: ptr(e.Ingestion),
			LogStreamName: ptr(e.Stream),
			Message:       ptr(e.Message),
		})
	}
	if res.More && len(res.Events) > 0 {
		last := res.Events[len(res.Events)-1].Key
		out.NextToken = ptr(awsproto.EncodeToken(filterPos{TS: last.TS, Seq: last.Seq}))
	}
	return out, nil
}

// eventID is a 56-digit id, unique within a group, as AWS's are.
func eventID(k logstore.Key) string { return fmt.Sprintf("%020d%020d%016d", k.TS, k.Seq, 0) }
