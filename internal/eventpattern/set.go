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
	vals []string   // the values (or prefixes, suffixes) it is indexed under
	mode mode
}

// mode says how an index bucket's key relates to the event's value.
type mode uint8

const (
	exactly mode = iota
	byPrefix
	bySuffix
)

// pathIndex holds the patterns indexed by one field: under each exact
// value, each prefix and each suffix (prefixes and suffixes are looked up
// by cutting the event's value to each length one has).
type pathIndex struct {
	path    []string
	buckets [3]map[string][]*entry // by mode
	lenN    [3]map[int]int         // by mode: key length -> keys that long
	lens    [3][]int               // by mode: the lengths, sorted
	n       int                    // entries indexed here
}

func (pi *pathIndex) bucket(m mode) map[string][]*entry { return pi.buckets[m] }

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

// Put adds the pattern under id, replacing any pattern with that id. A
// nil pattern removes id.
func (s *Set) Put(id string, p *Pattern) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(id)
	if p == nil {
		return
	}
	e := &entry{id: id, p: p}
	s.entries[id] = e
	// Index by the required field where the pattern adds the least
	// expected work: a bucket is visited by the events having its value,
	// estimated as one in the number of values seen at that field. So
	// patterns sharing "source": ["aws.ecs"] spread over their more
	// selective fields (cluster ARNs, statuses).
	var best *requirement
	bestCost := 0.0
	for _, r := range p.requirements() {
		cost := s.cost(r)
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
	e.idx, e.vals, e.mode = pi, slices.Compact(slices.Sorted(slices.Values(best.vals))), best.mode
	b := pi.bucket(e.mode)
	for _, v := range e.vals {
		b[v] = append(b[v], e)
		pi.countLen(e.mode, len(v), 1)
	}
	pi.n++
}

func (pi *pathIndex) countLen(m mode, n, delta int) {
	if m == exactly {
		return
	}
	c := pi.lenN[m]
	c[n] += delta
	if c[n] == 0 {
		delete(c, n)
	}
	pi.lens[m] = slices.Sorted(func(yield func(int) bool) {
		for l := range c {
			if !yield(l) {
				return
			}
		}
	})
}

// cost estimates how many patterns an event visits in the buckets r
// would join, with the pattern in them.
func (s *Set) cost(r requirement) float64 {
	pi := s.pathIndex(r.path, false)
	if pi == nil {
		return 1
	}
	b := pi.bucket(r.mode)
	entries, distinct := 0, len(b)
	for _, v := range r.vals {
		entries += len(b[v]) + 1
		if _, ok := b[v]; !ok {
			distinct++
		}
	}
	return float64(entries) / float64(distinct)
}

// better breaks a tie between two equally crowded requirements: a deeper
// field ("detail.clusterArn") is likelier to be selective than a
// top-level one ("source"), and fewer values mean fewer index entries.
func better(a, b requirement) bool {
	if a.mode != b.mode {
		return a.mode < b.mode // an exact value is one lookup
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
	b := pi.bucket(e.mode)
	for _, v := range e.vals {
		l := slices.DeleteFunc(b[v], func(x *entry) bool { return x == e })
		if len(l) == 0 {
			delete(b, v)
		} else {
			b[v] = l
		}
		pi.countLen(e.mode, len(v), -1)
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
	pi := &pathIndex{path: path}
	for m := range pi.buckets {
		pi.buckets[m], pi.lenN[m] = map[string][]*entry{}, map[int]int{}
	}
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
			for _, e := range pi.buckets[exactly][v] {
				if e.p.root.matchObject(&ev) {
					ids = append(ids, e.id)
				}
			}
			for _, n := range pi.lens[byPrefix] {
				if n > len(v) {
					break
				}
				for _, e := range pi.buckets[byPrefix][v[:n]] {
					if e.p.root.matchObject(&ev) {
						ids = append(ids, e.id)
					}
				}
			}
			for _, n := range pi.lens[bySuffix] {
				if n > len(v) {
					break
				}
				for _, e := range pi.buckets[bySuffix][v[len(v)-n:]] {
					if e.p.root.matchObject(&ev) {
						ids = append(ids, e.id)
					}
				}
			}
		}
	}
	// A pattern indexed under several values or affixes is reached once
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
// vals as a string at path (or a string starting or ending with one).
type requirement struct {
	path []string
	vals []string
	mode mode
}

// requirements lists the pattern's fields outside "$or" whose matchers
// are all exact strings, all (case-sensitive, non-empty) prefixes, or all
// suffixes; a wildcard counts as its literal text before the first star,
// or else after the last.
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
			// Every matcher of the leaf must give a key of one mode.
			var vals []string
			var md mode
			ok := true
			for i, m := range f.leaf {
				k, km, indexable := indexKey(&m)
				if !indexable || i > 0 && km != md {
					ok = false
					break
				}
				vals, md = append(vals, k), km
			}
			if ok {
				out = append(out, requirement{path: fp, vals: vals, mode: md})
			}
		}
	}
	walk(p.root, nil)
	return out
}

// indexKey returns the key a matcher can be indexed under, if any.
func indexKey(m *matcher) (string, mode, bool) {
	switch m.op {
	case opExactString:
		return m.s, exactly, !m.ip.IsValid() // an address has many spellings
	case opPrefix:
		return m.s, byPrefix, m.s != ""
	case opSuffix:
		return m.s, bySuffix, m.s != ""
	case opWildcard:
		segs := m.wild[0].segs
		switch {
		case len(segs) == 1:
			return segs[0], exactly, true
		case segs[0] != "":
			return segs[0], byPrefix, true
		case segs[len(segs)-1] != "":
			return segs[len(segs)-1], bySuffix, true
		}
	}
	return "", 0, false
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
			for v := range pi.buckets[exactly] {
				if !yield(v) {
					return
				}
			}
			for v := range pi.buckets[byPrefix] {
				if !yield(v + "*") {
					return
				}
			}
			for v := range pi.buckets[bySuffix] {
				if !yield("*" + v) {
					return
				}
			}
		}), ","))
		b.WriteString("\n")
	}
	return b.String()
}
