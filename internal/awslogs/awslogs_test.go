package awslogs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

func TestDatetimePattern(t *testing.T) {
	for _, c := range []struct {
		format string
		match  []string
		miss   []string
	}{
		{`\[%b %d, %Y %H:%M:%S\]`, []string{"[May 01, 2017 19:00:01] A message"}, []string{"Some random message", "[May 32, 2017 19:00:01] x", "[Foo 01, 2017 19:00:01]"}},
		{`^%Y-%m-%dT%H:%M:%S%z`, []string{"2024-02-29T23:59:59+0100 x"}, []string{" 2024-02-29T23:59:59+0100", "2024-13-01T00:00:00+0000"}},
		{`^%a %A %w %B %y %I:%M %p`, []string{"Mon Monday 1 February 08 07:57 PM"}, []string{"Mon Monday 7 February 08 07:57 PM"}},
		{`^%H:%M:%S%L`, []string{"19:00:01.123 x"}, []string{"19:00:01,123"}},
		{`^%H:%M:%S\.%f %Z`, []string{"19:00:01.000345 PST"}, []string{"19:00:01.345 PST"}},
		{`^day %j`, []string{"day 363", "day 001", "day 366"}, []string{"day 367", "day 000"}},
		{`^%Q%Y`, []string{"2017"}, nil}, // unknown codes are dropped, as Docker does
	} {
		re := regexp.MustCompile(DatetimePattern(c.format))
		for _, m := range c.match {
			if !re.MatchString(m) {
				t.Errorf("%q (%s) does not match %q", c.format, re, m)
			}
		}
		for _, m := range c.miss {
			if re.MatchString(m) {
				t.Errorf("%q (%s) matches %q", c.format, re, m)
			}
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions(map[string]string{"awslogs-group": "g", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web",
		"awslogs-create-group": "true", "awslogs-multiline-pattern": "^INFO", "awslogs-datetime-format": `^%Y`, "mode": "non-blocking", "max-buffer-size": "4m"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.CreateGroup || o.Group != "g" || o.Multiline.String() != `^\d{4}` {
		t.Fatalf("options %+v (datetime format must win over the pattern)", o)
	}
	if got := o.StreamName("app", "abc", "dockerid"); got != "web/app/abc" {
		t.Fatalf("stream %q", got)
	}
	want := map[string]string{"mode": "non-blocking", "max-buffer-size": "4m", "max-size": "20m", "max-file": "5"}
	if got := o.DockerLogOptions(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("docker options %v", got)
	}
	o, _ = ParseOptions(map[string]string{"awslogs-group": "g"})
	if o.StreamName("app", "abc", "0123abcd") != "0123abcd" || o.CreateGroup || o.Multiline != nil {
		t.Fatalf("defaults %+v", o)
	}
	o, _ = ParseOptions(map[string]string{"awslogs-group": "g", "awslogs-stream": "mine"})
	if o.StreamName("app", "abc", "0123abcd") != "mine" {
		t.Fatal("awslogs-stream not honoured")
	}
	for name, bad := range map[string]map[string]string{
		"no group":            {"awslogs-region": "r"},
		"create not a bool":   {"awslogs-group": "g", "awslogs-create-group": "yes please"},
		"bad pattern":         {"awslogs-group": "g", "awslogs-multiline-pattern": "(["},
		"bad mode":            {"awslogs-group": "g", "mode": "fast"},
		"buffer when blocked": {"awslogs-group": "g", "max-buffer-size": "4m"},
	} {
		if _, err := ParseOptions(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

func line(text string, i int) Line {
	ts := t0.Add(time.Duration(i) * time.Millisecond)
	return Line{TS: ts, Text: []byte(text), End: Position{TS: ts, N: 1}}
}

func TestGrouperMultiline(t *testing.T) {
	g := Grouper{Pattern: regexp.MustCompile("^INFO")}
	var evs []Event
	for i, l := range []string{"cont before any start", "INFO one", "INFO two", "   at a", "   at b", "INFO three"} {
		evs = append(evs, g.Add(line(l, i), t0)...)
	}
	evs = append(evs, g.Flush()...)
	var msgs []string
	for _, e := range evs {
		msgs = append(msgs, e.Message)
	}
	want := []string{"cont before any start\n", "INFO one\n", "INFO two\n   at a\n   at b\n", "INFO three\n"}
	if fmt.Sprintf("%q", msgs) != fmt.Sprintf("%q", want) {
		t.Fatalf("events %q, want %q", msgs, want)
	}
	if evs[2].Timestamp != t0.Add(2*time.Millisecond).UnixMilli() || !evs[2].End.TS.Equal(t0.Add(4*time.Millisecond)) {
		t.Fatalf("event time %d end %v: the first line's time, the last line's position", evs[2].Timestamp, evs[2].End)
	}
	if _, pending := g.Pending(); pending {
		t.Fatal("pending after flush")
	}
	// Without a pattern: a line is an event, empty lines are dropped.
	g = Grouper{}
	if evs := g.Add(line("", 0), t0); len(evs) != 0 {
		t.Fatalf("empty line made %v", evs)
	}
	if evs := g.Add(line("plain", 0), t0); len(evs) != 1 || evs[0].Message != "plain" {
		t.Fatalf("plain line made %v", evs)
	}
}

func TestGrouperDatetimeFormat(t *testing.T) {
	o, err := ParseOptions(map[string]string{"awslogs-group": "g", "awslogs-datetime-format": `\[%b %d, %Y %H:%M:%S\]`})
	if err != nil {
		t.Fatal(err)
	}
	g := Grouper{Pattern: o.Multiline}
	var msgs []string
	for i, l := range []string{"[May 01, 2017 19:00:01] A message was logged", "[May 01, 2017 19:00:04] Another multi-line message was logged",
		"Some random message", "with some random words", "[May 01, 2017 19:01:32] Another message was logged"} {
		for _, e := range g.Add(line(l, i), t0) {
			msgs = append(msgs, e.Message)
		}
	}
	for _, e := range g.Flush() {
		msgs = append(msgs, e.Message)
	}
	if len(msgs) != 3 || msgs[1] != "[May 01, 2017 19:00:04] Another multi-line message was logged\nSome random message\nwith some random words\n" {
		t.Fatalf("events %q", msgs)
	}
}

func TestLongLinesAreSplit(t *testing.T) {
	// A line Docker split into 16 KiB records is joined again ...
	var l Lines
	var got []Line
	part := strings.Repeat("x", 16*1024)
	for i := 0; i < 3; i++ {
		if out, ok := l.Add(Record{Pos: Position{TS: t0, N: i + 1}, Data: []byte(part)}); ok {
			got = append(got, out)
		}
	}
	out, ok := l.Add(Record{Pos: Position{TS: t0, N: 4}, Data: []byte("end\n")})
	if len(got) != 0 || !ok || len(out.Text) != 3*16*1024+3 || out.End.N != 4 {
		t.Fatalf("joined %d lines, last %d bytes end %v", len(got), len(out.Text), out.End)
	}
	// ... and a line longer than an event becomes several events, cut on
	// rune boundaries.
	long := strings.Repeat("é", MaxEventBytes) // 2 bytes each
	evs := split(long, t0, Position{TS: t0, N: 1})
	total := 0
	for _, e := range evs {
		if len(e.Message) > MaxEventBytes || !strings.HasPrefix(e.Message, "é") {
			t.Fatalf("event of %d bytes", len(e.Message))
		}
		total += len(e.Message)
	}
	if total != len(long) || len(evs) != 2 {
		t.Fatalf("%d events, %d bytes of %d", len(evs), total, len(long))
	}
	// Invalid UTF-8 is replaced (CloudWatch takes only UTF-8).
	if evs := split("a\xffb", t0, Position{}); evs[0].Message != "a\uFFFDb" {
		t.Fatalf("%q", evs[0].Message)
	}
}

func TestBatchLimits(t *testing.T) {
	var b Batch
	e := Event{Timestamp: t0.UnixMilli(), Message: "x"}
	for i := 0; i < MaxBatchEvents; i++ {
		if !b.Fits(e) {
			t.Fatalf("event %d does not fit", i)
		}
		b.Add(e, t0)
	}
	if b.Fits(e) || !b.Full() {
		t.Fatal("10,001st event fits")
	}
	b.Reset()
	big := Event{Timestamp: t0.UnixMilli(), Message: strings.Repeat("y", MaxEventBytes)}
	n := 0
	for b.Fits(big) {
		b.Add(big, t0)
		n++
	}
	if n != 4 || b.Bytes > MaxBatchBytes { // 4 x 256 KiB is 1 MiB exactly
		t.Fatalf("%d big events, %d bytes", n, b.Bytes)
	}
	b.Reset()
	b.Add(e, t0)
	late := Event{Timestamp: t0.Add(MaxBatchSpan).UnixMilli(), Message: "z"}
	if b.Fits(late) {
		t.Fatal("a batch spans 24 hours")
	}
	if !b.Fits(Event{Timestamp: t0.Add(MaxBatchSpan - time.Millisecond).UnixMilli(), Message: "z"}) {
		t.Fatal("a batch under 24 hours refused")
	}
}

// frame encodes one message of Docker's multiplexed log stream.
func frame(stream byte, ts time.Time, msg string) []byte {
	payload := ts.Format(time.RFC3339Nano) + " " + msg
	var hdr [8]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(payload)))
	return append(hdr[:], payload...)
}

func TestStreamReader(t *testing.T) {
	var buf bytes.Buffer
	buf.Write(frame(1, t0, "one\n"))
	buf.Write(frame(2, t0, "two\n")) // same timestamp: second rank
	buf.Write(frame(1, t0.Add(time.Nanosecond), "three\n"))
	sr := NewStreamReader(&buf, false)
	var got []string
	for {
		r, err := sr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %d %v %q", r.Pos.TS.Format(time.RFC3339Nano), r.Pos.N, r.Stderr, r.Data))
	}
	want := []string{
		`2026-12-02T03:00:00Z 1 false "one\n"`, `2026-12-02T03:00:00Z 2 true "two\n"`,
		`2026-12-02T03:00:00.000000001Z 1 false "three\n"`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records\n%q\nwant\n%q", got, want)
	}
	// A TTY's stream is raw lines.
	sr = NewStreamReader(strings.NewReader(t0.Format(time.RFC3339Nano)+" tty line\r\n"), true)
	if r, err := sr.Next(); err != nil || string(r.Data) != "tty line\r\n" || !r.Pos.TS.Equal(t0) {
		t.Fatalf("tty record %+v %v", r, err)
	}
}

func TestResumeSkipsWhatWasShipped(t *testing.T) {
	at := Position{TS: t0, N: 2}
	r := NewResume(at)
	if !r.Since().Equal(t0.Add(-ResumeWindow)) {
		t.Fatalf("since %v", r.Since())
	}
	steps := []struct {
		p    Position
		skip bool
	}{
		{Position{TS: t0.Add(-time.Millisecond), N: 1}, true},
		{Position{TS: t0.Add(time.Microsecond), N: 1}, true}, // before the checkpoint in the output's order
		{Position{TS: t0, N: 1}, true},
		{Position{TS: t0, N: 2}, true}, // the checkpoint
		{Position{TS: t0, N: 3}, false},
		{Position{TS: t0.Add(-time.Millisecond), N: 1}, false}, // after it in the output: new
	}
	for i, s := range steps {
		if got := r.Skip(s.p); got != s.skip {
			t.Fatalf("step %d %v: skip %v", i, s.p, got)
		}
	}
	// The checkpoint's record rotated away: skipping ends past the window.
	r = NewResume(at)
	if !r.Skip(Position{TS: t0.Add(time.Millisecond), N: 1}) || r.Skip(Position{TS: t0.Add(ResumeWindow + time.Millisecond), N: 1}) {
		t.Fatal("window")
	}
	if NewResume(Position{}).Skip(Position{TS: t0, N: 1}) {
		t.Fatal("nothing to skip from the start")
	}
}

func TestCheckpoints(t *testing.T) {
	c, err := NewCheckpoints(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := c.Load("abc"); err != nil || !cp.At.IsZero() {
		t.Fatalf("fresh %v %v", cp, err)
	}
	want := Checkpoint{At: Position{TS: t0.Add(123), N: 2}}
	if err := c.Save("abc", want); err != nil {
		t.Fatal(err)
	}
	got, err := c.Load("abc")
	if err != nil || !got.At.Equal(want.At) || got.Done {
		t.Fatalf("loaded %+v %v", got, err)
	}
	if err := c.Remove("abc"); err != nil {
		t.Fatal(err)
	}
	if cp, _ := c.Load("abc"); !cp.At.IsZero() {
		t.Fatal("not removed")
	}
}

func TestSplitRequestKeepsJSONUnderTheGatewayCap(t *testing.T) {
	ctl := strings.Repeat("\x01", MaxEventBytes) // 6 bytes each in JSON
	var evs []agentapi.LogEvent
	for i := 0; i < 4; i++ {
		evs = append(evs, agentapi.LogEvent{Timestamp: int64(i), Message: ctl})
	}
	parts := splitRequest(evs)
	n := 0
	for _, p := range parts {
		b, _ := json.Marshal(agentapi.LogsRequest{Events: p})
		if len(b) > MaxRequestBytes+1024 {
			t.Fatalf("part of %d bytes", len(b))
		}
		n += len(p)
	}
	if n != 4 || len(parts) < 2 {
		t.Fatalf("%d parts, %d events", len(parts), n)
	}
	if got := splitRequest(evs[:1]); len(got) != 1 {
		t.Fatal("small batch split")
	}
}
