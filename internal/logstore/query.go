package logstore

import (
	"bufio"
	"container/heap"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"unsafe"

	"github.com/berthdev/berth/internal/errs"
)

// Key orders a group's events: by timestamp, then by the order in which
// they were appended (Seq is unique within a group, never reused, and
// starts at 1: Key{TS: t} with Seq 0 lies before every event at t).
type Key struct {
	TS  int64
	Seq uint64
}

// Event is a stored event.
type Event struct {
	Key
	Stream    string
	Ingestion int64 // epoch ms
	Message   string
}

// Query selects events of one group.
type Query struct {
	Group   string
	Streams []string // exact stream names; empty: every stream (narrowed by Prefix)
	Prefix  string   // stream name prefix
	Start   int64    // inclusive, epoch ms
	End     int64    // exclusive, epoch ms; 0: no bound
	After   *Key     // only events after this key
	Before  *Key     // only events before this key
	// AfterSeq keeps only events appended after the one with this
	// sequence number (see LastSeq): what arrived since, whatever its time.
	AfterSeq uint64
	// Match keeps an event when it returns true; nil keeps all. It must not
	// keep the string it is given (it aliases a read buffer).
	Match    func(message string) bool
	Limit    int  // events per page (required, > 0)
	MaxBytes int  // bound on sum(len(message)+26) per page; 0: none
	FromEnd  bool // take the last Limit events of the selection instead of the first
	Now      int64
}

// Result is one page of events, oldest first.
type Result struct {
	Events []Event
	// More is true when the selection holds events beyond this page in the
	// direction read (after the last for a forward read, before the first
	// for FromEnd).
	More bool
	// Searched lists the streams searched, sorted.
	Searched []string
}

// EventOverhead is what AWS counts per event besides its message.
const EventOverhead = 26

// Query reads one page of events.
func (s *Store) Query(q Query) (Result, error) {
	if q.Limit <= 0 {
		return Result{}, errs.E(errs.Invalid, "limit must be positive")
	}
	if q.End == 0 {
		q.End = math.MaxInt64
	}
	g, err := s.lookup(q.Group)
	if err != nil {
		return Result{}, err
	}
	// Snapshot what to read under the lock; read without it.
	g.mu.Lock()
	if days := g.info.RetentionDays; days > 0 {
		q.Start = max(q.Start, q.Now-int64(days)*86_400_000)
	}
	sel := map[uint64]string{}
	var searched []string
	if len(q.Streams) > 0 {
		for _, name := range q.Streams {
			if st := g.streams[name]; st != nil && strings.HasPrefix(name, q.Prefix) {
				sel[st.id] = name
			}
		}
	} else {
		for name, st := range g.streams {
			if strings.HasPrefix(name, q.Prefix) {
				sel[st.id] = name
			}
		}
	}
	for _, name := range sel {
		searched = append(searched, name)
	}
	type part struct {
		path string
		size int64
	}
	var parts []part
	for _, seg := range g.segs {
		if seg.count == 0 || seg.maxTs < q.Start || seg.minTs >= q.End || seg.maxSeq <= q.AfterSeq {
			continue
		}
		// A page after (before) a position skips segments wholly before (after) it.
		if q.After != nil && seg.maxTs < q.After.TS || q.Before != nil && seg.minTs > q.Before.TS {
			continue
		}
		hit := false
		if len(sel) < len(seg.streams) {
			for id := range sel {
				if ss := seg.streams[id]; ss != nil && ss.maxTs >= q.Start && ss.minTs < q.End {
					hit = true
					break
				}
			}
		} else {
			for id, ss := range seg.streams {
				if _, ok := sel[id]; ok && ss.maxTs >= q.Start && ss.minTs < q.End {
					hit = true
					break
				}
			}
		}
		if hit {
			parts = append(parts, part{seg.path, seg.size})
		}
	}
	g.mu.Unlock()
	slices.Sort(searched)

	h := &eventHeap{fromEnd: q.FromEnd, max: q.Limit + 1}
	for _, p := range parts {
		if err := scanPart(p.path, p.size, &q, sel, h); err != nil {
			return Result{}, err
		}
	}
	events := h.items
	slices.SortFunc(events, func(a, b Event) int { return cmpKey(a.Key, b.Key) })
	res := Result{Searched: searched}
	if len(events) > q.Limit {
		res.More = true
		if q.FromEnd {
			events = events[1:]
		} else {
			events = events[:q.Limit]
		}
	}
	if q.MaxBytes > 0 {
		total := 0
		if q.FromEnd {
			i := len(events)
			for i > 0 && total+len(events[i-1].Message)+EventOverhead <= q.MaxBytes {
				total += len(events[i-1].Message) + EventOverhead
				i--
			}
			if i > 0 {
				res.More = true
				events = events[i:]
			}
		} else {
			i := 0
			for i < len(events) && total+len(events[i].Message)+EventOverhead <= q.MaxBytes {
				total += len(events[i].Message) + EventOverhead
				i++
			}
			if i < len(events) {
				res.More = true
				events = events[:i]
			}
		}
	}
	res.Events = events
	return res, nil
}

func scanPart(path string, size int64, q *Query, sel map[uint64]string, h *eventHeap) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil // deleted by retention meanwhile
	}
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "read log segment")
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.LimitReader(f, size), 256<<10)
	var buf []byte
	for {
		p, err := readRecord(r, buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errs.Wrap(errs.Internal, err, "read log segment %s", path)
		}
		buf = p
		e, ok := decodeEvent(p)
		if !ok {
			return errs.E(errs.Internal, "bad event record in %s", path)
		}
		name, ok := sel[e.sid]
		if !ok || e.ts < q.Start || e.ts >= q.End {
			continue
		}
		if e.seq <= q.AfterSeq {
			continue
		}
		k := Key{e.ts, e.seq}
		if q.After != nil && cmpKey(k, *q.After) <= 0 {
			continue
		}
		if q.Before != nil && cmpKey(k, *q.Before) >= 0 {
			continue
		}
		if !h.wants(k) {
			continue
		}
		if q.Match != nil && !q.Match(unsafe.String(unsafe.SliceData(e.msg), len(e.msg))) {
			continue
		}
		h.add(Event{Key: k, Stream: name, Ingestion: e.ingest, Message: string(e.msg)})
	}
}

// eventHeap keeps the max best events: the smallest keys for a forward
// read (a max-heap, root = worst kept), the largest for FromEnd.
type eventHeap struct {
	items   []Event
	fromEnd bool
	max     int
}

func (h *eventHeap) Len() int { return len(h.items) }
func (h *eventHeap) Less(i, j int) bool {
	c := cmpKey(h.items[i].Key, h.items[j].Key)
	if h.fromEnd {
		return c < 0
	}
	return c > 0
}
func (h *eventHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *eventHeap) Push(x any)    { h.items = append(h.items, x.(Event)) }
func (h *eventHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

// wants reports whether an event with key k would be kept.
func (h *eventHeap) wants(k Key) bool {
	if len(h.items) < h.max {
		return true
	}
	c := cmpKey(k, h.items[0].Key)
	if h.fromEnd {
		return c > 0
	}
	return c < 0
}

func (h *eventHeap) add(e Event) {
	if len(h.items) < h.max {
		heap.Push(h, e)
		return
	}
	h.items[0] = e
	heap.Fix(h, 0)
}

// String is for debugging.
func (k Key) String() string { return fmt.Sprintf("%d/%d", k.TS, k.Seq) }
