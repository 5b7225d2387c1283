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
	id     string
	p      *Pattern
	idx    *pathIndex // nil: in always
	vals   []string   // the values (or prefixes) it is indexed under
	prefix bool
}

// pathIndex holds the patterns indexed by one field: under each exact
// value, and under each prefix (looked up by cutting the event's value to
// each length some prefix has).
type pathIndex struct {
	path       []string
	byValue    map[string][]*entry
	byPrefix   map[string][]*entry
	prefixLens map[int]int // prefix length -> number of prefixes that long
	lens       []int       // the keys of prefixLens, sorted
	n          int         // entries indexed here
}

func (pi *pathIndex) bucket(prefix bool) map[string][]*entry {
	if prefix {
		return pi.byPrefix
	}
	return pi.byValue
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
				cost += len(pi.bucket(r.prefix)[v])
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
	e.idx, e.vals, e.prefix = pi, slices.Compact(slices.Sorted(slices.Values(best.vals))), best.prefix
	b := pi.bucket(e.prefix)
	for _, v := range e.vals {
		b[v] = append(b[v], e)
		if e.prefix {
			pi.countLen(len(v), 1)
		}
	}
	pi.n++
}

func (pi *pathIndex) countLen(n, delta int) {
	pi.prefixLens[n] += delta
	if pi.prefixLens[n] == 0 {
		delete(pi.prefixLens, n)
	}
	pi.lens = slices.Sorted(func(yield func(int) bool) {
		for l := range pi.prefixLens {
			if !yield(l) {
				return
			}
		}
	})
}

// better breaks a tie between two equally crowded requirements: a deeper
// field ("detail.clusterArn") is likelier to be selective than a
// top-level one ("source"), and fewer values mean fewer index entries.
func better(a, b requirement) bool {
	if a.prefix != b.prefix {
		return !a.prefix // an exact value is one lookup
	}
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
	b := pi.bucket(e.prefix)
	for _, v := range e.vals {
		l := slices.DeleteFunc(b[v], func(x *entry) bool { return x == e })
		if len(l) == 0 {
			delete(b, v)
		} else {
			b[v] = l
		}
		if e.prefix {
			pi.countLen(len(v), -1)
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
	pi := &pathIndex{path: path, byValue: map[string][]*entry{}, byPrefix: map[string][]*entry{}, prefixLens: map[int]int{}}
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
				if e.p.root.matchObject(&ev) {
					ids = append(ids, e.id)
				}
			}
			for _, n := range pi.lens {
				if n > len(v) {
					break
				}
				for _, e := range pi.byPrefix[v[:n]] {
					if e.p.root.matchObject(&ev) {
						ids = append(ids, e.id)
					}
				}
			}
		}
	}
	// A pattern indexed under several values or prefixes is reached once
	// for each the event has.
	slices.Sort(ids)
	return slices.Compact(ids), nil
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
// vals as a string at path (or a string starting with one of them).
type requirement struct {
	path   []string
	vals   []string
	prefix bool
}

// requirements lists the pattern's fields outside "$or" whose matchers
// are all exact strings, or all (case-sensitive, non-empty) prefixes.
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
			var exact, prefixes []string
			for _, m := range f.leaf {
				switch {
				case m.op == opExactString && !m.ip.IsValid(): // an address has many spellings
					exact = append(exact, m.s)
				case m.op == opPrefix && m.s != "":
					prefixes = append(prefixes, m.s)
				default:
					exact, prefixes = nil, nil
				}
				if exact == nil && prefixes == nil {
					break
				}
			}
			switch {
			case exact != nil && prefixes == nil:
				out = append(out, requirement{path: fp, vals: exact})
			case prefixes != nil && exact == nil:
				out = append(out, requirement{path: fp, vals: prefixes, prefix: true})
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
			for v := range pi.byPrefix {
				if !yield(v + "*") {
					return
				}
			}
		}), ","))
		b.WriteString("\n")
	}
	return b.String()
}
