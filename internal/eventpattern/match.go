package eventpattern

import (
	"math"
	"net/netip"
	"strings"
	"sync"
	"unicode/utf8"
)

// Match reports whether the event (a JSON object) matches the pattern.
func (p *Pattern) Match(event []byte) (bool, error) {
	jp := parsers.Get().(*jsonParser)
	defer parsers.Put(jp)
	ev, err := parseEvent(jp, event)
	if err != nil {
		return false, err
	}
	return p.root.matchObject(&ev), nil
}

// parsers keeps event parsers, and their arenas, from one Match to the
// next.
var parsers = sync.Pool{New: func() any { return new(jsonParser) }}

func parseEvent(jp *jsonParser, event []byte) (value, error) {
	v, serr := jp.parse(string(event))
	if serr != nil {
		return value{}, &EventError{Reason: serr.msg, Offset: serr.off}
	}
	if v.kind != kObject {
		return value{}, &EventError{Reason: "the event is not a JSON object", Offset: v.off}
	}
	return v, nil
}

// matchValue matches an object pattern against whatever the event has at
// its place: an object; an array, any of whose objects may match (all of
// the pattern's fields by the same element); or nothing usable.
func (n *node) matchValue(v *value) bool {
	if v == nil {
		return n.absentOK
	}
	switch v.kind {
	case kObject:
		return n.matchObject(v)
	case kArray:
		sawObject := false
		if n.matchArray(v, &sawObject) {
			return true
		}
		return !sawObject && n.absentOK
	}
	return n.absentOK
}

func (n *node) matchArray(a *value, sawObject *bool) bool {
	for i := range a.elems {
		e := &a.elems[i]
		switch e.kind {
		case kObject:
			*sawObject = true
			if n.matchObject(e) {
				return true
			}
		case kArray:
			if n.matchArray(e, sawObject) {
				return true
			}
		}
	}
	return false
}

func (n *node) matchObject(o *value) bool {
	for i := range n.fields {
		f := &n.fields[i]
		c := o.get(f.key)
		if f.child != nil {
			if !f.child.matchValue(c) {
				return false
			}
		} else if !matchLeaf(f.leaf, c) {
			return false
		}
	}
	for _, group := range n.ors {
		ok := false
		for _, alt := range group {
			if alt.matchObject(o) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// matchAbsent reports whether the node matches where its object is
// missing: only exists-false leaves can.
func (n *node) matchAbsent() bool {
	for i := range n.fields {
		f := &n.fields[i]
		if f.child != nil {
			if !f.child.absentOK {
				return false
			}
		} else if !matchLeaf(f.leaf, nil) {
			return false
		}
	}
	for _, group := range n.ors {
		ok := false
		for _, alt := range group {
			if alt.absentOK {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// matchLeaf reports whether any of the matchers matches the field's
// value. The field's values are its scalars: the value itself, or the
// scalars anywhere in it when it is an array. An object is not a value
// (exists matches leaves only).
func matchLeaf(ms []matcher, v *value) bool {
	for i := range ms {
		m := &ms[i]
		switch m.op {
		case opExists:
			if hasScalar(v) {
				return true
			}
		case opNotExists:
			if !hasScalar(v) {
				return true
			}
		default:
			if anyScalar(v, m) {
				return true
			}
		}
	}
	return false
}

func hasScalar(v *value) bool {
	if v == nil || v.kind == kObject {
		return false
	}
	if v.kind != kArray {
		return true
	}
	for i := range v.elems {
		if hasScalar(&v.elems[i]) {
			return true
		}
	}
	return false
}

func anyScalar(v *value, m *matcher) bool {
	if v == nil {
		return false
	}
	switch v.kind {
	case kObject:
		return false
	case kArray:
		for i := range v.elems {
			if anyScalar(&v.elems[i], m) {
				return true
			}
		}
		return false
	}
	return m.matchScalar(v)
}

func (m *matcher) matchScalar(v *value) bool {
	switch m.op {
	case opExactString:
		if v.kind != kString {
			return false
		}
		if v.str == m.s {
			return true
		}
		if m.ip.IsValid() {
			ip, err := netip.ParseAddr(v.str)
			return err == nil && ip.Zone() == "" && ip.Unmap() == m.ip
		}
		return false
	case opExactNumber:
		return v.kind == kNumber && (v.str == m.s || m.numOK && v.num == m.num && exactDouble(v.str, v.num))
	case opExactLiteral:
		return v.kind == m.lit
	case opPrefix:
		return v.kind == kString && strings.HasPrefix(v.str, m.s)
	case opSuffix:
		return v.kind == kString && strings.HasSuffix(v.str, m.s)
	case opPrefixFold:
		return v.kind == kString && hasPrefixFold(v.str, m.s)
	case opSuffixFold:
		return v.kind == kString && hasSuffixFold(v.str, m.s)
	case opEqualsFold:
		return v.kind == kString && strings.EqualFold(v.str, m.s)
	case opWildcard:
		return v.kind == kString && m.wild[0].match(v.str)
	case opNumeric:
		if v.kind != kNumber || math.IsInf(v.num, 0) {
			return false
		}
		x := v.num
		return (x > m.lo || m.loInc && x == m.lo) && (x < m.hi || m.hiInc && x == m.hi)
	case opCIDR:
		if v.kind != kString {
			return false
		}
		ip, err := netip.ParseAddr(v.str)
		return err == nil && m.prefix.Contains(ip.Unmap())
	case opButStrings:
		if v.kind != kString {
			return true
		}
		for _, s := range m.strs {
			if v.str == s {
				return false
			}
		}
		return true
	case opButNumbers:
		if v.kind != kNumber {
			return true
		}
		for _, n := range m.nums {
			if v.num == n {
				return false
			}
		}
		return true
	case opButPrefix, opButSuffix, opButFold:
		if v.kind != kString {
			return true
		}
		for _, s := range m.strs {
			if m.op == opButPrefix && strings.HasPrefix(v.str, s) ||
				m.op == opButSuffix && strings.HasSuffix(v.str, s) ||
				m.op == opButFold && strings.EqualFold(v.str, s) {
				return false
			}
		}
		return true
	case opButWildcard:
		if v.kind != kString {
			return true
		}
		for i := range m.wild {
			if m.wild[i].match(v.str) {
				return false
			}
		}
		return true
	}
	return false
}

// hasPrefixFold is strings.HasPrefix under Unicode simple case folding.
func hasPrefixFold(s, prefix string) bool {
	for prefix != "" {
		if s == "" {
			return false
		}
		r1, n1 := utf8.DecodeRuneInString(s)
		r2, n2 := utf8.DecodeRuneInString(prefix)
		if r1 != r2 && !strings.EqualFold(s[:n1], prefix[:n2]) {
			return false
		}
		s, prefix = s[n1:], prefix[n2:]
	}
	return true
}

// hasSuffixFold is strings.HasSuffix under Unicode simple case folding.
func hasSuffixFold(s, suffix string) bool {
	for suffix != "" {
		if s == "" {
			return false
		}
		r1, n1 := utf8.DecodeLastRuneInString(s)
		r2, n2 := utf8.DecodeLastRuneInString(suffix)
		if r1 != r2 && !strings.EqualFold(s[len(s)-n1:], suffix[len(suffix)-n2:]) {
			return false
		}
		s, suffix = s[:len(s)-n1], suffix[:len(suffix)-n2]
	}
	return true
}

// match reports whether s matches: the first segment is a prefix, the
// last a suffix, and the ones between occur in order between them. The
// leftmost occurrence of each middle segment is always the best choice,
// so this is linear and never backtracks.
func (w *wildcard) match(s string) bool {
	segs := w.segs
	if len(segs) == 1 {
		return s == segs[0]
	}
	first, last := segs[0], segs[len(segs)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	mid := s[len(first) : len(s)-len(last)]
	for _, seg := range segs[1 : len(segs)-1] {
		i := strings.Index(mid, seg)
		if i < 0 {
			return false
		}
		mid = mid[i+len(seg):]
	}
	return true
}
