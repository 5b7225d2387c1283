package eventpattern

import (
	"slices"
	"strings"
	"sync"
)

// Set matches an event against many patterns. Each pattern is indexed by
// one field it requires to be one of a few exact strings (source,
// detail-type, a detail field, ...): a Match parses the event once, looks
// up the event's values of the indexed fields, and evaluates only the
// patterns found there, plus those with no such field. A Set is safe for
// concurrent use.
type Set struct {
	mu      sync.RWMutex
	entries map[string]*entry
	paths   []*pathIndex // the fields patterns are indexed by
	always  []*entry     // patterns with no required exact string
}

type entry struct {
	id   string
	p    *Pattern
	idx  *pathIndex // nil: in always
	vals []string
}

type pathIndex struct {
	path    []string
	byValue map[string][]*entry
	n       int // entries indexed here
}

// NewSet returns an empty Set.
func NewSet() *Set {
	return &Set{entries: map[string]*entry{}}
}

// Len returns the number of patterns in the set.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}

// Put adds the pattern under id, replacing any pattern with that id.
func (s *Set) Put(id string, p *Pattern) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(id)
	e := &entry{id: id, p: p}
	s.entries[id] = e
	// Index by the required field whose values are the least crowded, so
	// that patterns sharing "source": ["aws.ecs"] spread over their more
	// selective fields.
	var best *requirement
	bestCost := 0
	for _, r := range p.requirements() {
		cost := 0
		if pi := s.pathIndex(r.path, false); pi != nil {
			for _, v := range r.vals {
				cost += len(pi.byValue[v])
			}
		}
		if best == nil || cost < bestCost || cost == bestCost && better(r, *best) {
			r := r
			best, bestCost = &r, cost
		}
	}
	if best == nil {
		s.always = append(s.always, e)
		return
	}
	pi := s.pathIndex(best.path, true)
	e.idx, e.vals = pi, slices.Compact(slices.Sorted(slices.Values(best.vals)))
	for _, v := range e.vals {
		pi.byValue[v] = append(pi.byValue[v], e)
	}
	pi.n++
}

// better breaks a tie between two equally crowded requirements: a deeper
// field ("detail.clusterArn") is likelier to be selective than a
// top-level one ("source"), and fewer values mean fewer index entries.
func better(a, b requirement) bool {
	if len(a.path) != len(b.path) {
		return len(a.path) > len(b.path)
	}
	return len(a.vals) < len(b.vals)
}

// Delete removes the pattern with that id, if any.
func (s *Set) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(id)
}

func (s *Set) remove(id string) {
	e, ok := s.entries[id]
	if !ok {
		return
	}
	delete(s.entries, id)
	if e.idx == nil {
		s.always = slices.DeleteFunc(s.always, func(x *entry) bool { return x == e })
		return
	}
	pi := e.idx
	for _, v := range e.vals {
		l := slices.DeleteFunc(pi.byValue[v], func(x *entry) bool { return x == e })
		if len(l) == 0 {
			delete(pi.byValue, v)
		} else {
			pi.byValue[v] = l
		}
	}
	if pi.n--; pi.n == 0 {
		s.paths = slices.DeleteFunc(s.paths, func(x *pathIndex) bool { return x == pi })
	}
}

func (s *Set) pathIndex(path []string, create bool) *pathIndex {
	for _, pi := range s.paths {
		if slices.Equal(pi.path, path) {
			return pi
		}
	}
	if !create {
		return nil
	}
	pi := &pathIndex{path: path, byValue: map[string][]*entry{}}
	s.paths = append(s.paths, pi)
	return pi
}

// Match returns the ids of the patterns the event matches, sorted.
func (s *Set) Match(event []byte) ([]string, error) {
	jp := parsers.Get().(*jsonParser)
	defer parsers.Put(jp)
	ev, err := parseEvent(jp, event)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var ids []string
	for _, e := range s.always {
		if e.p.root.matchObject(&ev) {
			ids = append(ids, e.id)
		}
	}
	var vals []string
	for _, pi := range s.paths {
		vals = stringsAt(&ev, pi.path, vals[:0])
		for i, v := range vals {
			if slices.Contains(vals[:i], v) {
				continue // an array holding the same value twice
			}
			for _, e := range pi.byValue[v] {
				// A pattern indexed under several values can be reached
				// twice when the event has several of them.
				if len(vals) > 1 && len(e.vals) > 1 && reachedBefore(e, vals[:i]) {
					continue
				}
				if e.p.root.matchObject(&ev) {
					ids = append(ids, e.id)
				}
			}
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func reachedBefore(e *entry, earlier []string) bool {
	for _, v := range earlier {
		if _, ok := slices.BinarySearch(e.vals, v); ok {
			return true
		}
	}
	return false
}

// stringsAt appends the string values found at path in v, looking
// through arrays at every level.
func stringsAt(v *value, path []string, out []string) []string {
	switch v.kind {
	case kArray:
		for i := range v.elems {
			out = stringsAt(&v.elems[i], path, out)
		}
		return out
	case kString:
		if len(path) == 0 {
			return append(out, v.str)
		}
		return out
	case kObject:
		if len(path) == 0 {
			return out
		}
		if c := v.get(path[0]); c != nil {
			return stringsAt(c, path[1:], out)
		}
	}
	return out
}

// requirement is a field every match needs: the event must have one of
// vals as a string at path.
type requirement struct {
	path []string
	vals []string
}

// requirements lists the pattern's fields outside "$or" whose matchers
// are all exact strings.
func (p *Pattern) requirements() []requirement {
	var out []requirement
	var walk func(n *node, path []string)
	walk = func(n *node, path []string) {
		for _, f := range n.fields {
			fp := append(slices.Clip(path), f.key)
			if f.child != nil {
				walk(f.child, fp)
				continue
			}
			var vals []string
			for _, m := range f.leaf {
				if m.op != opExactString || m.ip.IsValid() { // an address has many spellings
					vals = nil
					break
				}
				vals = append(vals, m.s)
			}
			if vals != nil {
				out = append(out, requirement{path: fp, vals: vals})
			}
		}
	}
	walk(p.root, nil)
	return out
}

// String describes the index, for tests and debugging.
func (s *Set) String() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var b strings.Builder
	for _, pi := range s.paths {
		b.WriteString(strings.Join(pi.path, "."))
		b.WriteString(": ")
		b.WriteString(strings.Join(slices.Sorted(func(yield func(string) bool) {
			for v := range pi.byValue {
				if !yield(v) {
					return
				}
			}
		}), ","))
		b.WriteString("\n")
	}
	return b.String()
}
