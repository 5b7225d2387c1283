package awslogs

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// PutLogEvents' limits (CloudWatch Logs quotas).
const (
	// EventOverhead is what CloudWatch adds to every event's size.
	EventOverhead = 26
	// MaxEventBytes is the largest message of one event (256 KiB with the
	// overhead); longer lines are split into several events.
	MaxEventBytes = 256*1024 - EventOverhead
	// MaxBatchBytes bounds a batch: the messages' UTF-8 bytes plus
	// EventOverhead per event.
	MaxBatchBytes = 1048576
	// MaxBatchEvents bounds the events of one batch.
	MaxBatchEvents = 10000
	// MaxBatchSpan is the widest time span of one batch.
	MaxBatchSpan = 24 * time.Hour
)

// Event is one log event, with the position of its last record (where a
// reader resumes once the event was acknowledged).
type Event struct {
	Timestamp int64 // epoch ms
	Message   string
	End       Position
}

// Line is a whole line of output: its records joined (Docker splits long
// lines), without the newline.
type Line struct {
	TS   time.Time // of its first record
	Text []byte
	End  Position // of its last record
}

// Lines joins records into lines, each of stdout and stderr on its own.
type Lines struct {
	part [2]*Line
}

// Add takes a record and returns the line it completes, if any.
func (l *Lines) Add(r Record) (Line, bool) {
	i := 0
	if r.Stderr {
		i = 1
	}
	data, whole := r.Data, false
	if n := len(data); n > 0 && data[n-1] == '\n' {
		data, whole = data[:n-1], true
	}
	p := l.part[i]
	if p == nil {
		p = &Line{TS: r.Pos.TS}
		l.part[i] = p
	}
	p.Text = append(p.Text, data...)
	p.End = r.Pos
	if !whole && len(p.Text) < MaxEventBytes {
		return Line{}, false
	}
	l.part[i] = nil
	return *p, true
}

// Flush returns the unfinished lines (the stream ended inside them).
func (l *Lines) Flush() []Line {
	var out []Line
	for i, p := range l.part {
		if p != nil {
			out = append(out, *p)
			l.part[i] = nil
		}
	}
	return out
}

// Grouper makes events of lines: one event per line, or, with a multiline
// start pattern, a line that matches starts a new event and the lines that
// follow join it (each line ends with "\n" in the event, as Docker's
// awslogs driver makes them). Empty events are dropped (CloudWatch takes
// none; Docker's driver drops them too).
type Grouper struct {
	Pattern *regexp.Regexp
	pending []byte
	ts      time.Time
	end     Position
	last    time.Time // when the pending event last grew (wall clock)
	has     bool
}

// Add takes a line, received at now, and returns the events it completes.
func (g *Grouper) Add(l Line, now time.Time) []Event {
	if g.Pattern == nil {
		return split(string(l.Text), l.TS, l.End)
	}
	var out []Event
	if g.has && (g.Pattern.Match(l.Text) || len(g.pending)+len(l.Text)+1 > MaxEventBytes) {
		out = g.Flush()
	}
	if !g.has {
		g.ts, g.has = l.TS, true
	}
	g.pending = append(g.pending, l.Text...)
	g.pending = append(g.pending, '\n')
	g.end = l.End
	g.last = now
	return out
}

// Pending reports whether an event is waiting for more lines, and since
// when it last grew.
func (g *Grouper) Pending() (time.Time, bool) { return g.last, g.has }

// Flush returns the pending event.
func (g *Grouper) Flush() []Event {
	if !g.has {
		return nil
	}
	out := split(string(g.pending), g.ts, g.end)
	g.pending, g.has = g.pending[:0], false
	return out
}

// split makes the events of one message: invalid UTF-8 replaced,
// cut at MaxEventBytes on rune boundaries, empty ones dropped.
func split(msg string, ts time.Time, end Position) []Event {
	msg = strings.ToValidUTF8(msg, "\uFFFD")
	ms := ts.UnixMilli()
	var out []Event
	for len(msg) > 0 {
		n := len(msg)
		if n > MaxEventBytes {
			n = MaxEventBytes
			for n > 0 && !utf8.RuneStart(msg[n]) {
				n--
			}
		}
		out = append(out, Event{Timestamp: ms, Message: msg[:n], End: end})
		msg = msg[n:]
	}
	return out
}

// Batch is a PutLogEvents batch being filled.
type Batch struct {
	Events   []Event
	Bytes    int
	Opened   time.Time // wall clock of the first event
	min, max int64
}

// Fits reports whether e can join the batch within PutLogEvents' limits.
func (b *Batch) Fits(e Event) bool {
	if len(b.Events) == 0 {
		return true
	}
	if len(b.Events)+1 > MaxBatchEvents || b.Bytes+len(e.Message)+EventOverhead > MaxBatchBytes {
		return false
	}
	lo, hi := min(b.min, e.Timestamp), max(b.max, e.Timestamp)
	return time.Duration(hi-lo)*time.Millisecond < MaxBatchSpan
}

// Add appends e (the caller checked Fits).
func (b *Batch) Add(e Event, now time.Time) {
	if len(b.Events) == 0 {
		b.Opened, b.min, b.max = now, e.Timestamp, e.Timestamp
	}
	b.Events = append(b.Events, e)
	b.Bytes += len(e.Message) + EventOverhead
	b.min, b.max = min(b.min, e.Timestamp), max(b.max, e.Timestamp)
}

// Full reports whether no further event could join.
func (b *Batch) Full() bool {
	return len(b.Events) >= MaxBatchEvents || b.Bytes+1+EventOverhead > MaxBatchBytes
}

// End is where a reader resumes once the batch was acknowledged: the
// position of its last event in the output's order.
func (b *Batch) End() Position {
	if len(b.Events) == 0 {
		return Position{}
	}
	return b.Events[len(b.Events)-1].End
}

// Reset empties the batch.
func (b *Batch) Reset() { *b = Batch{Events: b.Events[:0]} }
