package logs

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/logsapi"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/logstore"
)

var ctx = context.Background()

const now = int64(1_800_000_000_000)

func newService(t *testing.T) *Service {
	t.Helper()
	st, err := logstore.Open(logstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := New(st, Config{Region: "us-east-1", Account: "000000000000"}, nil)
	s.SetClock(func() time.Time { return time.UnixMilli(now) })
	return s
}

func put(t *testing.T, s *Service, group, stream string, ts ...int64) *logsapi.PutLogEventsResponse {
	t.Helper()
	in := &logsapi.PutLogEventsRequest{LogGroupName: &group, LogStreamName: &stream}
	for _, x := range ts {
		in.LogEvents = append(in.LogEvents, logsapi.InputLogEvent{Timestamp: ptr(x), Message: ptr(fmt.Sprintf("m%d", x))})
	}
	out, err := s.PutLogEvents(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func setup(t *testing.T, s *Service, group string, streams ...string) {
	t.Helper()
	if _, err := s.CreateLogGroup(ctx, &logsapi.CreateLogGroupRequest{LogGroupName: &group}); err != nil {
		t.Fatal(err)
	}
	for _, st := range streams {
		if _, err := s.CreateLogStream(ctx, &logsapi.CreateLogStreamRequest{LogGroupName: &group, LogStreamName: ptr(st)}); err != nil {
			t.Fatal(err)
		}
	}
}

func msgs[E logsapi.OutputLogEvent | logsapi.FilteredLogEvent](evs []E) string {
	var out []string
	for _, e := range evs {
		switch e := any(e).(type) {
		case logsapi.OutputLogEvent:
			out = append(out, *e.Message)
		case logsapi.FilteredLogEvent:
			out = append(out, *e.Message)
		}
	}
	return strings.Join(out, " ")
}

func TestClassify(t *testing.T) {
	day := int64(86_400_000)
	cases := []struct {
		name string
		ts   []int64
		ret  int32
		want window
	}{
		{"all fine", []int64{now - 1000, now}, 0, window{0, 0, 2}},
		{"too old prefix", []int64{now - 15*day, now - 15*day, now}, 0, window{2, 2, 3}},
		{"too new suffix", []int64{now, now + TooNewMs + 1, now + TooNewMs + 2}, 0, window{0, 0, 1}},
		{"exactly 2 h ahead is fine", []int64{now + TooNewMs}, 0, window{0, 0, 1}},
		{"expired by retention", []int64{now - 4*day, now - 2*day, now}, 3, window{0, 1, 3}},
		{"too old and expired", []int64{now - 20*day, now - 5*day, now}, 3, window{1, 2, 3}},
		{"everything rejected", []int64{now - 20*day}, 0, window{1, 1, 1}},
	}
	for _, c := range cases {
		if got := classify(c.ts, now, c.ret); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestPutLogEventsRules(t *testing.T) {
	s := newService(t)
	setup(t, s, "g", "s")
	bad := func(name string, events []logsapi.InputLogEvent, wantMsg string) {
		t.Helper()
		_, err := s.PutLogEvents(ctx, &logsapi.PutLogEventsRequest{LogGroupName: ptr("g"), LogStreamName: ptr("s"), LogEvents: events})
		if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("%s: %v", name, err)
		}
		if MapError(err).Code != logsapi.ErrInvalidParameterException {
			t.Errorf("%s: code %s", name, MapError(err).Code)
		}
	}
	ev := func(ts int64, msg string) logsapi.InputLogEvent {
		return logsapi.InputLogEvent{Timestamp: &ts, Message: &msg}
	}
	bad("unsorted", []logsapi.InputLogEvent{ev(now, "a"), ev(now-1, "b")}, "chronological order")
	bad("span", []logsapi.InputLogEvent{ev(now-MaxBatchSpanMs-1, "a"), ev(now, "b")}, "cannot span more than 24 hours")
	big := strings.Repeat("x", MaxEventBytes-logstore.EventOverhead+1)
	bad("event too large", []logsapi.InputLogEvent{ev(now, big)}, "Log event too large")
	half := strings.Repeat("x", MaxBatchBytes/2)
	bad("batch too large", []logsapi.InputLogEvent{ev(now, half), ev(now, half)}, "Upload too large")
	if out, _ := s.GetLogEvents(ctx, &logsapi.GetLogEventsRequest{LogGroupName: ptr("g"), LogStreamName: ptr("s")}); len(out.Events) != 0 {
		t.Fatalf("a rejected batch changed something: %v", msgs(out.Events))
	}

	day := int64(86_400_000)
	out := put(t, s, "g", "s", now-15*day-2, now-15*day)
	info := out.RejectedLogEventsInfo
	if info == nil || deref(info.TooOldLogEventEndIndex) != 2 || info.TooNewLogEventStartIndex != nil || info.ExpiredLogEventEndIndex != nil {
		t.Fatalf("rejected info: %+v", info)
	}
	out = put(t, s, "g", "s", now-1, now, now+TooNewMs+1)
	info = out.RejectedLogEventsInfo
	if info == nil || deref(info.TooNewLogEventStartIndex) != 2 || info.TooOldLogEventEndIndex != nil || info.ExpiredLogEventEndIndex != nil {
		t.Fatalf("rejected info: %+v", info)
	}
	if out.NextSequenceToken == nil || len(*out.NextSequenceToken) != 56 {
		t.Fatalf("sequence token: %v", out.NextSequenceToken)
	}
	// Sequence tokens are ignored, however wrong.
	if _, err := s.PutLogEvents(ctx, &logsapi.PutLogEventsRequest{LogGroupName: ptr("g"), LogStreamName: ptr("s"),
		SequenceToken: ptr("bogus"), LogEvents: []logsapi.InputLogEvent{ev(now, "again")}}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetLogEvents(ctx, &logsapi.GetLogEventsRequest{LogGroupName: ptr("g"), LogStreamName: ptr("s"), StartFromHead: ptr(true)})
	if msgs(got.Events) != fmt.Sprintf("m%d m%d again", now-1, now) {
		t.Fatalf("stored: %s", msgs(got.Events))
	}
	s.PutRetentionPolicy(ctx, &logsapi.PutRetentionPolicyRequest{LogGroupName: ptr("g"), RetentionInDays: ptr(int32(1))})
	out = put(t, s, "g", "s", now-day-1, now-day+1000)
	if info := out.RejectedLogEventsInfo; info == nil || deref(info.ExpiredLogEventEndIndex) != 1 {
		t.Fatalf("expired: %+v", info)
	}

	_, err := s.PutLogEvents(ctx, &logsapi.PutLogEventsRequest{LogGroupName: ptr("nope"), LogStreamName: ptr("s"), LogEvents: []logsapi.InputLogEvent{ev(now, "a")}})
	if e := MapError(err); e == nil || e.Code != logsapi.ErrResourceNotFoundException || e.Message != "The specified log group does not exist." {
		t.Fatalf("missing group: %v", err)
	}
	_, err = s.PutLogEvents(ctx, &logsapi.PutLogEventsRequest{LogGroupName: ptr("g"), LogStreamName: ptr("nope"), LogEvents: []logsapi.InputLogEvent{ev(now, "a")}})
	if e := MapError(err); e == nil || e.Code != logsapi.ErrResourceNotFoundException || e.Message != "The specified log stream does not exist." {
		t.Fatalf("missing stream: %v", err)
	}
}

func TestGetLogEventsTokens(t *testing.T) {
	s := newService(t)
	setup(t, s, "g", "s")
	var ts []int64
	for i := range 25 {
		ts = append(ts, now-100+int64(i))
	}
	put(t, s, "g", "s", ts...)
	get := func(in logsapi.GetLogEventsRequest) *logsapi.GetLogEventsResponse {
		t.Helper()
		in.LogGroupName, in.LogStreamName = ptr("g"), ptr("s")
		out, err := s.GetLogEvents(ctx, &in)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []*string{out.NextForwardToken, out.NextBackwardToken} {
			if tok == nil || len(*tok) != 58 {
				t.Fatalf("token shape: %v", tok)
			}
		}
		return out
	}
	// Default: the newest page.
	out := get(logsapi.GetLogEventsRequest{Limit: ptr(int32(10))})
	if len(out.Events) != 10 || *out.Events[0].Timestamp != now-85 {
		t.Fatalf("default page: %s", msgs(out.Events))
	}
	// Walk backward to the start.
	n := len(out.Events)
	tok := out.NextBackwardToken
	for range 5 {
		out = get(logsapi.GetLogEventsRequest{Limit: ptr(int32(10)), NextToken: tok})
		if len(out.Events) == 0 {
			break
		}
		n += len(out.Events)
		tok = out.NextBackwardToken
	}
	if n != 25 || *out.NextBackwardToken != *tok {
		t.Fatalf("backward walk: %d events, end token %s vs %s", n, *out.NextBackwardToken, *tok)
	}
	// From the head, forward to the end: the end returns the token it got.
	out = get(logsapi.GetLogEventsRequest{Limit: ptr(int32(10)), StartFromHead: ptr(true)})
	n = len(out.Events)
	tok = out.NextForwardToken
	for range 5 {
		out = get(logsapi.GetLogEventsRequest{Limit: ptr(int32(10)), NextToken: tok})
		if len(out.Events) == 0 {
			break
		}
		n += len(out.Events)
		tok = out.NextForwardToken
	}
	if n != 25 || *out.NextForwardToken != *tok {
		t.Fatalf("forward walk: %d events", n)
	}
	// New events show up behind the end token.
	put(t, s, "g", "s", now)
	out = get(logsapi.GetLogEventsRequest{NextToken: tok})
	if msgs(out.Events) != fmt.Sprintf("m%d", now) {
		t.Fatalf("follow: %s", msgs(out.Events))
	}
	// Time range: startTime inclusive, endTime exclusive.
	out = get(logsapi.GetLogEventsRequest{StartTime: ptr(now - 90), EndTime: ptr(now - 88), StartFromHead: ptr(true)})
	if msgs(out.Events) != fmt.Sprintf("m%d m%d", now-90, now-89) {
		t.Fatalf("range: %s", msgs(out.Events))
	}
	for _, bad := range []string{"f/123", "x/" + strings.Repeat("0", 56), "f/" + strings.Repeat("a", 56)} {
		_, err := s.GetLogEvents(ctx, &logsapi.GetLogEventsRequest{LogGroupName: ptr("g"), LogStreamName: ptr("s"), NextToken: &bad})
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("token %q: %v", bad, err)
		}
	}
	// An empty stream still answers both tokens.
	s.CreateLogStream(ctx, &logsapi.CreateLogStreamRequest{LogGroupName: ptr("g"), LogStreamName: ptr("empty")})
	e, err := s.GetLogEvents(ctx, &logsapi.GetLogEventsRequest{LogGroupName: ptr("g"), LogStreamName: ptr("empty")})
	if err != nil || len(e.Events) != 0 || e.NextForwardToken == nil {
		t.Fatalf("empty stream: %v %v", e, err)
	}
	put(t, s, "g", "empty", now)
	e, _ = s.GetLogEvents(ctx, &logsapi.GetLogEventsRequest{LogGroupName: ptr("g"), LogStreamName: ptr("empty"), NextToken: e.NextForwardToken})
	if len(e.Events) != 1 {
		t.Fatalf("follow an empty stream: %v", msgs(e.Events))
	}
}

func TestFilterLogEventsLastPageHasNoToken(t *testing.T) {
	s := newService(t)
	setup(t, s, "g", "a", "b")
	for i := range 30 {
		st := "a"
		if i%2 == 1 {
			st = "b"
		}
		put(t, s, "g", st, now-1000+int64(i))
	}
	filter := func(in logsapi.FilterLogEventsRequest) *logsapi.FilterLogEventsResponse {
		t.Helper()
		in.LogGroupName = ptr("g")
		out, err := s.FilterLogEvents(ctx, &in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Pages of 7: 30 events in 5 pages, only the last without a token.
	var seen int
	var tok *string
	ids := map[string]bool{}
	for page := 1; ; page++ {
		out := filter(logsapi.FilterLogEventsRequest{Limit: ptr(int32(7)), NextToken: tok, Interleaved: ptr(true)})
		seen += len(out.Events)
		for _, e := range out.Events {
			if len(*e.EventId) != 56 || ids[*e.EventId] || e.LogStreamName == nil || e.IngestionTime == nil {
				t.Fatalf("event: %+v", e)
			}
			ids[*e.EventId] = true
		}
		if out.SearchedLogStreams == nil {
			t.Fatal("searchedLogStreams must be present")
		}
		if out.NextToken == nil {
			if page != 5 || len(out.Events) != 2 {
				t.Fatalf("last page %d with %d events", page, len(out.Events))
			}
			break
		}
		tok = out.NextToken
	}
	if seen != 30 {
		t.Fatalf("saw %d", seen)
	}
	// An exactly full last page has no token either.
	if out := filter(logsapi.FilterLogEventsRequest{Limit: ptr(int32(30))}); out.NextToken != nil || len(out.Events) != 30 {
		t.Fatalf("exact page: %d, token %v", len(out.Events), out.NextToken)
	}
	// Streams, time range (endTime inclusive) and patterns.
	out := filter(logsapi.FilterLogEventsRequest{LogStreamNames: []string{"b"}, StartTime: ptr(now - 1000), EndTime: ptr(now - 995)})
	if msgs(out.Events) != fmt.Sprintf("m%d m%d m%d", now-999, now-997, now-995) {
		t.Fatalf("stream and range: %s", msgs(out.Events))
	}
	out = filter(logsapi.FilterLogEventsRequest{FilterPattern: ptr(fmt.Sprintf("m%d", now-990))})
	if len(out.Events) != 1 {
		t.Fatalf("pattern: %s", msgs(out.Events))
	}
	_, err := s.FilterLogEvents(ctx, &logsapi.FilterLogEventsRequest{LogGroupName: ptr("g"), FilterPattern: ptr(`{ $.x = `)})
	if e := MapError(err); e == nil || e.Code != logsapi.ErrInvalidParameterException {
		t.Fatalf("bad pattern: %v", err)
	}
	_, err = s.FilterLogEvents(ctx, &logsapi.FilterLogEventsRequest{LogGroupName: ptr("nope")})
	if e := MapError(err); e == nil || e.Code != logsapi.ErrResourceNotFoundException {
		t.Fatalf("missing group: %v", err)
	}
}

func TestIngest(t *testing.T) {
	s := newService(t)
	day := int64(86_400_000)
	err := s.Ingest(ctx, "/ecs/web", "ecs/app/1", false, []InputEvent{{now, "x"}})
	if !errs.Is(err, errs.NotFound) || err.Error() != "The specified log group does not exist." {
		t.Fatalf("missing group: %v", err)
	}
	events := []InputEvent{{now, "second"}, {now - 1, "first"}, {now - 20*day, "too old"}, {now + 3*3600_000, "too new"}}
	if err := s.Ingest(ctx, "/ecs/web", "ecs/app/1", true, events); err != nil {
		t.Fatal(err)
	}
	if err := s.Ingest(ctx, "/ecs/web", "ecs/app/2", true, []InputEvent{{now, "other"}}); err != nil {
		t.Fatal(err)
	}
	out, err := s.FilterLogEvents(ctx, &logsapi.FilterLogEventsRequest{LogGroupName: ptr("/ecs/web"), LogStreamNames: []string{"ecs/app/1"}})
	if err != nil || msgs(out.Events) != "first second" {
		t.Fatalf("ingested: %v %v", msgs(out.Events), err)
	}
	if err := s.Ingest(ctx, "bad:name", "s", true, nil); !errs.Is(err, errs.Invalid) {
		t.Fatalf("bad name: %v", err)
	}
}

func TestDescribePaging(t *testing.T) {
	s := newService(t)
	for i := range 7 {
		setup(t, s, fmt.Sprintf("/app/g%d", i))
	}
	setup(t, s, "other")
	var names []string
	var tok *string
	for {
		out, err := s.DescribeLogGroups(ctx, &logsapi.DescribeLogGroupsRequest{LogGroupNamePrefix: ptr("/app/"), Limit: ptr(int32(3)), NextToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.LogGroups {
			names = append(names, *g.LogGroupName)
			if *g.Arn != "arn:aws:logs:us-east-1:000000000000:log-group:"+*g.LogGroupName+":*" || *g.MetricFilterCount != 0 {
				t.Fatalf("group: %+v", g)
			}
		}
		if tok = out.NextToken; tok == nil {
			break
		}
	}
	if len(names) != 7 {
		t.Fatalf("groups: %v", names)
	}
	out, _ := s.DescribeLogGroups(ctx, &logsapi.DescribeLogGroupsRequest{LogGroupNamePattern: ptr("G3")})
	if len(out.LogGroups) != 1 {
		t.Fatalf("pattern: %v", out.LogGroups)
	}

	setup(t, s, "st", "c", "a", "b")
	put(t, s, "st", "c", now-30)
	put(t, s, "st", "a", now-10)
	put(t, s, "st", "b", now-20)
	order := func(in logsapi.DescribeLogStreamsRequest) string {
		in.LogGroupName = ptr("st")
		in.Limit = ptr(int32(2))
		var got []string
		for {
			out, err := s.DescribeLogStreams(ctx, &in)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range out.LogStreams {
				got = append(got, *st.LogStreamName)
			}
			if out.NextToken == nil {
				return strings.Join(got, ",")
			}
			in.NextToken = out.NextToken
		}
	}
	if g := order(logsapi.DescribeLogStreamsRequest{}); g != "a,b,c" {
		t.Fatalf("by name: %s", g)
	}
	by := logsapi.OrderByLastEventTime
	if g := order(logsapi.DescribeLogStreamsRequest{OrderBy: &by, Descending: ptr(true)}); g != "a,b,c" {
		t.Fatalf("by last event, descending: %s", g)
	}
	if g := order(logsapi.DescribeLogStreamsRequest{OrderBy: &by}); g != "c,b,a" {
		t.Fatalf("by last event: %s", g)
	}
	if _, err := s.DescribeLogStreams(ctx, &logsapi.DescribeLogStreamsRequest{LogGroupName: ptr("st"), OrderBy: &by, LogStreamNamePrefix: ptr("a")}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("orderBy LastEventTime with a prefix: %v", err)
	}
	if _, err := s.PutRetentionPolicy(ctx, &logsapi.PutRetentionPolicyRequest{LogGroupName: ptr("st"), RetentionInDays: ptr(int32(2))}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("retention 2: %v", err)
	}
}

func TestLimitsAnswerLimitExceeded(t *testing.T) {
	st, err := logstore.Open(logstore.Config{Dir: t.TempDir(), MaxGroups: 2, MaxStreamsPerGroup: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := New(st, Config{Region: "us-east-1", Account: "000000000000"}, nil)
	s.SetClock(func() time.Time { return time.UnixMilli(now) })
	setup(t, s, "a", "1", "2")
	setup(t, s, "b")
	_, err = s.CreateLogGroup(ctx, &logsapi.CreateLogGroupRequest{LogGroupName: ptr("c")})
	if e := MapError(err); e == nil || e.Code != logsapi.ErrLimitExceededException || e.Message != "Resource limit exceeded." {
		t.Fatalf("group limit: %v", err)
	}
	if err := s.Ingest(ctx, "c", "x", true, []InputEvent{{now, "x"}}); !errs.Is(err, errs.LimitExceeded) {
		t.Fatalf("group limit through Ingest: %v", err)
	}
	// A storm of new stream names from one task stops at the bound.
	var last error
	for i := range 10 {
		last = s.Ingest(ctx, "a", fmt.Sprint("storm-", i), false, []InputEvent{{now, "x"}})
	}
	if e := MapError(last); e == nil || e.Code != logsapi.ErrLimitExceededException {
		t.Fatalf("stream limit: %v", last)
	}
	ds, _ := s.DescribeLogStreams(ctx, &logsapi.DescribeLogStreamsRequest{LogGroupName: ptr("a")})
	if len(ds.LogStreams) != 3 {
		t.Fatalf("streams: %d", len(ds.LogStreams))
	}
}
