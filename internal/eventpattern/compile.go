package eventpattern

import (
	"cmp"
	"math"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Pattern is a compiled event pattern. It is immutable and safe for
// concurrent use.
type Pattern struct {
	root *node
	src  string
}

// node is an object pattern: every field must match, and in every "$or"
// group at least one alternative must match the same object.
type node struct {
	fields   []field
	ors      [][]*node
	absentOK bool // the node matches where its object is missing
}

// field is one member of an object pattern: a nested object pattern
// (child) or a list of matchers of which one must match (leaf).
type field struct {
	key   string
	child *node
	leaf  []matcher
}

type op uint8

const (
	opExactString op = iota
	opExactNumber
	opExactLiteral // true, false or null
	opPrefix
	opPrefixFold
	opSuffix
	opSuffixFold
	opEqualsFold
	opWildcard
	opNumeric
	opCIDR
	opExists
	opNotExists
	opButStrings
	opButNumbers
	opButPrefix
	opButSuffix
	opButFold
	opButWildcard
)

// matcher is one element of a leaf's list.
type matcher struct {
	op     op
	s      string    // exact string, prefix, suffix, folded value, number text
	lit    kind      // opExactLiteral
	num    float64   // opExactNumber; valid when numOK
	numOK  bool      // the number compares by value (it is an exact double)
	strs   []string  // anything-but strings, prefixes, suffixes, folded values
	nums   []float64 // anything-but numbers
	wild   []wildcard
	lo, hi float64 // opNumeric bounds (±Inf when open-ended)
	loInc  bool
	hiInc  bool
	prefix netip.Prefix
	ip     netip.Addr // opExactString: the value is an IP address, matched in any spelling
}

// Compile parses and checks an event pattern.
func Compile(pattern []byte) (*Pattern, error) {
	src := string(pattern)
	v, serr := parseJSON(src)
	if serr != nil {
		return nil, newError(src, serr.off, "%s", serr.msg)
	}
	c := compiler{src: src}
	if v.kind != kObject {
		return nil, c.fail(&v, "Filter is not an object")
	}
	root, err := c.object(&v, false)
	if err != nil {
		return nil, err
	}
	return &Pattern{root: root, src: src}, nil
}

// String returns the pattern as it was given to Compile.
func (p *Pattern) String() string { return p.src }

type compiler struct{ src string }

// The positions in messages follow Jackson's, which Event Ruler parses
// with: the parser stands after the token it was looking at. fail blames
// a value's token (the opening bracket of a container), failEnd the end
// of a container (its closing bracket), failKey a member's name.
func (c *compiler) fail(at *value, format string, args ...any) error {
	off := c.end(at.off)
	if at.kind == kObject || at.kind == kArray {
		off = at.off + 1
	}
	return newError(c.src, off, format, args...)
}

func (c *compiler) failEnd(at *value, format string, args ...any) error {
	return newError(c.src, c.end(at.off), format, args...)
}

func (c *compiler) failKey(member *value, format string, args ...any) error {
	i := member.off - 1
	for i >= 0 && strings.IndexByte(" \t\r\n:", c.src[i]) >= 0 {
		i--
	}
	return newError(c.src, i+1, format, args...)
}

// end returns the offset just after the JSON value starting at off.
func (c *compiler) end(off int) int {
	p := jsonParser{s: c.src, i: off}
	p.value()
	if p.err != nil {
		return off
	}
	return p.i
}

// reservedInOr are the names Event Ruler refuses as field names inside
// "$or", so that a misplaced operator is not taken for a field.
var reservedInOr = map[string]bool{
	"exactly": true, "equals-ignore-case": true, "prefix": true, "suffix": true, "anything-but": true,
	"exists": true, "wildcard": true, "numeric": true, "cidr": true,
	"=": true, "<": true, "<=": true, ">": true, ">=": true,
	"regex": true, "not-wildcard": true, "not-equals-ignore-case": true,
	"date-after": true, "date-on-or-after": true, "date-before": true, "date-on-or-before": true, "in-date-range": true,
	"ip-address-in-range": true, "ip-address-not-in-range": true,
}

func (c *compiler) object(v *value, inOr bool) (*node, error) {
	if len(v.elems) == 0 {
		return nil, c.failEnd(v, "Empty objects are not allowed")
	}
	n := &node{}
	for i := range v.elems {
		e := &v.elems[i]
		k := e.key
		if k == "$or" {
			group, err := c.or(e)
			if err != nil {
				return nil, err
			}
			n.ors = append(n.ors, group)
			continue
		}
		if inOr && reservedInOr[k] {
			return nil, c.failKey(e, "%s is Ruler reserved fieldName which cannot be used inside $or.", k)
		}
		f := field{key: k}
		switch e.kind {
		case kObject:
			child, err := c.object(e, inOr)
			if err != nil {
				return nil, err
			}
			f.child = child
		case kArray:
			leaf, err := c.leaf(e)
			if err != nil {
				return nil, err
			}
			f.leaf = leaf
		default:
			return nil, c.fail(e, "%q must be an object or an array", k)
		}
		// A repeated name replaces the earlier one, as in Event Ruler.
		replaced := false
		for j := range n.fields {
			if n.fields[j].key == k {
				n.fields[j], replaced = f, true
			}
		}
		if !replaced {
			n.fields = append(n.fields, f)
		}
	}
	// Nested objects first: fields like source and detail-type are
	// shared by most of a bus's rules and events, the detail is where
	// rules differ, so checking it first fails sooner. AND does not care.
	nested := func(f field) int {
		if f.child != nil && !f.child.absentOK {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(n.fields, func(a, b field) int { return cmp.Compare(nested(a), nested(b)) })
	n.absentOK = n.matchAbsent()
	return n, nil
}

func (c *compiler) or(e *value) ([]*node, error) {
	if e.kind != kArray {
		return nil, c.fail(e, "It must be an Array followed with $or.")
	}
	var group []*node
	for i := range e.elems {
		alt := &e.elems[i]
		if alt.kind != kObject {
			return nil, c.fail(alt, "Only JSON object is allowed in array of $or relationship.")
		}
		n, err := c.object(alt, true)
		if err != nil {
			return nil, err
		}
		group = append(group, n)
	}
	if len(group) < 2 {
		return nil, c.failEnd(e, "There must have at least 2 Objects in $or relationship.")
	}
	return group, nil
}

func (c *compiler) leaf(a *value) ([]matcher, error) {
	if len(a.elems) == 0 {
		return nil, c.failEnd(a, "Empty arrays are not allowed")
	}
	ms := make([]matcher, 0, len(a.elems))
	for i := range a.elems {
		e := &a.elems[i]
		switch e.kind {
		case kObject:
			m, err := c.match(e)
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		case kString:
			m := matcher{op: opExactString, s: e.str}
			// Like Event Ruler, a value that is an IP address matches the
			// same address however the event spells it (2001:db8::1 and
			// 2001:0db8:0:0:0:0:0:1).
			if ip, err := netip.ParseAddr(e.str); err == nil && ip.Zone() == "" {
				m.ip = ip.Unmap()
			}
			ms = append(ms, m)
		case kNumber:
			m := matcher{op: opExactNumber, s: e.str}
			m.num, m.numOK = e.num, exactDouble(e.str, e.num)
			ms = append(ms, m)
		case kTrue, kFalse, kNull:
			ms = append(ms, matcher{op: opExactLiteral, lit: e.kind})
		default:
			return nil, c.fail(e, "Match value must be String, number, true, false, or null")
		}
	}
	return ms, nil
}

// match compiles one {"operator": operand} object.
func (c *compiler) match(o *value) (matcher, error) {
	if len(o.elems) == 0 {
		return matcher{}, c.failEnd(o, "Match expression name not found")
	}
	name, v := o.elems[0].key, &o.elems[0]
	oneKey := func(m matcher, msg string) (matcher, error) {
		if len(o.elems) > 1 {
			return matcher{}, c.failKey(&o.elems[1], "%s", msg)
		}
		return m, nil
	}
	const onlyOne = "Only one key allowed in match expression"
	const tooMany = "Too many elements in numeric expression"
	switch name {
	case "exactly":
		if v.kind != kString {
			return matcher{}, c.fail(v, "exact match pattern must be a string")
		}
		return oneKey(matcher{op: opExactString, s: v.str}, onlyOne)
	case "prefix", "suffix":
		plain, fold := opPrefix, opPrefixFold
		word := "Prefix"
		if name == "suffix" {
			plain, fold, word = opSuffix, opSuffixFold, "Suffix"
		}
		switch v.kind {
		case kString:
			return oneKey(matcher{op: plain, s: v.str}, onlyOne)
		case kObject:
			s, err := c.ignoreCaseOperand(v, word)
			if err != nil {
				return matcher{}, err
			}
			return oneKey(matcher{op: fold, s: s}, onlyOne)
		}
		return matcher{}, c.fail(v, "%s match pattern must be a string", name)
	case "equals-ignore-case":
		if v.kind != kString {
			return matcher{}, c.fail(v, "equals-ignore-case match pattern must be a string")
		}
		return oneKey(matcher{op: opEqualsFold, s: v.str}, onlyOne)
	case "wildcard":
		if v.kind != kString {
			return matcher{}, c.fail(v, "wildcard match pattern must be a string")
		}
		w, err := c.wildcard(v)
		if err != nil {
			return matcher{}, err
		}
		return oneKey(matcher{op: opWildcard, wild: []wildcard{w}}, onlyOne)
	case "numeric":
		if v.kind != kArray {
			return matcher{}, c.fail(v, "Value of numeric must be an array.")
		}
		m, err := c.numeric(v)
		if err != nil {
			return matcher{}, err
		}
		return oneKey(m, tooMany)
	case "anything-but":
		m, err := c.anythingBut(v)
		if err != nil {
			return matcher{}, err
		}
		return oneKey(m, tooMany)
	case "exists":
		var m matcher
		switch v.kind {
		case kTrue:
			m.op = opExists
		case kFalse:
			m.op = opNotExists
		default:
			return matcher{}, c.fail(v, "exists match pattern must be either true or false.")
		}
		return oneKey(m, onlyOne)
	case "cidr":
		if v.kind != kString {
			return matcher{}, c.fail(v, "prefix match pattern must be a string") // Event Ruler's wording
		}
		p, err := c.cidr(v)
		if err != nil {
			return matcher{}, err
		}
		return oneKey(matcher{op: opCIDR, prefix: p}, onlyOne)
	}
	return matcher{}, c.failKey(v, "Unrecognized match type %s", name)
}

// ignoreCaseOperand reads {"equals-ignore-case": "text"} under prefix or
// suffix.
func (c *compiler) ignoreCaseOperand(v *value, word string) (string, error) {
	if len(v.elems) == 0 {
		return "", c.failEnd(v, "%s expression name not found", word)
	}
	if v.elems[0].key != "equals-ignore-case" {
		return "", c.failKey(&v.elems[0], "Unsupported %s pattern: %s", strings.ToLower(word), v.elems[0].key)
	}
	if v.elems[0].kind != kString {
		return "", c.fail(&v.elems[0], "equals-ignore-case match pattern must be a string")
	}
	if len(v.elems) > 1 {
		return "", c.failKey(&v.elems[1], "Only one key allowed in match expression")
	}
	return v.elems[0].str, nil
}

func (c *compiler) anythingBut(v *value) (matcher, error) {
	const badValue = "Value of anything-but must be an array or single string/number value."
	if v.kind == kObject {
		if len(v.elems) == 0 {
			return matcher{}, c.failEnd(v, "Anything-But expression name not found")
		}
		opName, inner := v.elems[0].key, &v.elems[0]
		var m matcher
		switch opName {
		case "equals-ignore-case":
			m.op = opButFold
		case "prefix":
			m.op = opButPrefix
		case "suffix":
			m.op = opButSuffix
		case "wildcard":
			m.op = opButWildcard
		default:
			return matcher{}, c.failKey(inner, "Unsupported anything-but pattern: %s", opName)
		}
		var items []*value
		switch inner.kind {
		case kArray:
			for i := range inner.elems {
				items = append(items, &inner.elems[i])
			}
		case kString, kNumber:
			items = []*value{inner}
		default:
			return matcher{}, c.fail(inner, badValue)
		}
		for _, it := range items {
			if it.kind != kString {
				switch m.op {
				case opButFold:
					return matcher{}, c.fail(it, "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.")
				case opButWildcard:
					return matcher{}, c.fail(it, "wildcard match pattern must be a string")
				}
				return matcher{}, c.fail(it, "prefix/suffix match pattern must be a string")
			}
			if (m.op == opButPrefix || m.op == opButSuffix) && it.str == "" {
				return matcher{}, c.fail(it, "Null prefix/suffix not allowed")
			}
			if m.op == opButWildcard {
				w, err := c.wildcard(it)
				if err != nil {
					return matcher{}, err
				}
				m.wild = append(m.wild, w)
				continue
			}
			m.strs = append(m.strs, it.str)
		}
		if len(v.elems) > 1 {
			return matcher{}, c.failKey(&v.elems[1], "Too many elements in numeric expression")
		}
		return m, nil
	}
	var items []*value
	switch v.kind {
	case kArray:
		for i := range v.elems {
			items = append(items, &v.elems[i])
		}
	case kString, kNumber:
		items = []*value{v}
	default:
		return matcher{}, c.fail(v, badValue)
	}
	var m matcher
	strs, nums := 0, 0
	for _, it := range items {
		switch it.kind {
		case kString:
			m.strs = append(m.strs, it.str)
			strs++
		case kNumber:
			n, err := c.number(it)
			if err != nil {
				return matcher{}, err
			}
			m.nums = append(m.nums, n)
			nums++
		default:
			return matcher{}, c.fail(it, "Inside anything but list, start|null|boolean is not supported.")
		}
	}
	if strs > 0 && nums > 0 || strs == 0 && nums == 0 {
		return matcher{}, c.failEnd(v, "Inside anything but list, either all values are number or string, mixed type is not supported")
	}
	m.op = opButStrings
	if nums > 0 {
		m.op = opButNumbers
	}
	return m, nil
}

// number checks that a pattern number compares by value: finite and
// exactly the double it rounds to (its shortest form is the same number).
func (c *compiler) number(v *value) (float64, error) {
	if !exactDouble(v.str, v.num) {
		return 0, c.fail(v, "Cannot compare number : %s", v.str)
	}
	return v.num, nil
}

// exactDouble reports whether the decimal text is the same number as the
// shortest decimal form of f: Event Ruler's rule for a number that can be
// compared by value.
func exactDouble(text string, f float64) bool {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return false
	}
	short := strconv.FormatFloat(f, 'g', -1, 64)
	if short == text {
		return true
	}
	var a, b big.Rat
	if _, ok := a.SetString(text); !ok {
		return false
	}
	if _, ok := b.SetString(short); !ok {
		return false
	}
	return a.Cmp(&b) == 0
}

func (c *compiler) numeric(a *value) (matcher, error) {
	m := matcher{op: opNumeric, lo: math.Inf(-1), hi: math.Inf(1), loInc: true, hiInc: true}
	el := a.elems
	text := func(v *value) string { // Jackson's getText of the token
		switch v.kind {
		case kString, kNumber:
			return v.str
		case kTrue:
			return "true"
		case kFalse:
			return "false"
		case kNull:
			return "null"
		}
		return c.src[v.off : v.off+1] // [ or {
	}
	if len(el) == 0 {
		return matcher{}, c.failEnd(a, "Invalid member in numeric match: ]")
	}
	if el[0].kind != kString {
		return matcher{}, c.fail(&el[0], "Invalid member in numeric match: %s", text(&el[0]))
	}
	opr := el[0].str
	val := func(i int, what string) (float64, error) {
		if i >= len(el) {
			return 0, c.failEnd(a, "Value of %s must be numeric", what)
		}
		if el[i].kind != kNumber {
			return 0, c.fail(&el[i], "Value of %s must be numeric", what)
		}
		return c.number(&el[i])
	}
	switch opr {
	case "=":
		n, err := val(1, "equals")
		if err != nil {
			return matcher{}, err
		}
		if len(el) > 2 {
			return matcher{}, c.fail(&el[2], "Too many elements in numeric expression")
		}
		m.lo, m.hi = n, n
		return m, nil
	case "<", "<=":
		n, err := val(1, opr)
		if err != nil {
			return matcher{}, err
		}
		if len(el) > 2 {
			return matcher{}, c.fail(&el[2], "Too many elements in numeric expression")
		}
		m.hi, m.hiInc = n, opr == "<="
		return m, nil
	case ">", ">=":
		n, err := val(1, opr)
		if err != nil {
			return matcher{}, err
		}
		m.lo, m.loInc = n, opr == ">="
		if len(el) == 2 {
			return m, nil
		}
		if el[2].kind != kString {
			return matcher{}, c.fail(&el[2], "Bad value in numeric range: %s", text(&el[2]))
		}
		top := el[2].str
		if top != "<" && top != "<=" {
			return matcher{}, c.fail(&el[2], "Bad numeric range operator: %s", top)
		}
		n, err = val(3, top)
		if err != nil {
			return matcher{}, err
		}
		if len(el) > 4 {
			return matcher{}, c.fail(&el[4], "Too many terms in numeric range expression")
		}
		m.hi, m.hiInc = n, top == "<="
		if m.lo >= m.hi {
			return matcher{}, c.failEnd(a, "Bottom must be less than top")
		}
		return m, nil
	}
	return matcher{}, c.fail(&el[0], "Unrecognized numeric range operator: %s", opr)
}

func (c *compiler) cidr(v *value) (netip.Prefix, error) {
	addr, bitsText, ok := strings.Cut(v.str, "/")
	if !ok || strings.Contains(bitsText, "/") {
		return netip.Prefix{}, c.fail(v, "Malformed CIDR, one '/' required")
	}
	bits, err := strconv.Atoi(bitsText)
	if err != nil {
		return netip.Prefix{}, c.fail(v, "Malformed CIDR, mask bits must be an integer")
	}
	if bits < 0 {
		return netip.Prefix{}, c.fail(v, "Malformed CIDR, mask bits must not be negative")
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Zone() != "" {
		return netip.Prefix{}, c.fail(v, "Invalid IP address: %s", addr)
	}
	ip = ip.Unmap()
	if ip.Is4() && bits > 31 {
		return netip.Prefix{}, c.fail(v, "IPv4 mask bits must be < 32")
	}
	if ip.Is6() && bits > 127 {
		return netip.Prefix{}, c.fail(v, "IPv6 mask bits must be < 128")
	}
	p, _ := ip.Prefix(bits)
	return p, nil
}

// wildcard is a compiled wildcard pattern: literal segments separated by
// '*'.
type wildcard struct {
	segs []string // len(segs) = number of stars + 1
}

func (c *compiler) wildcard(v *value) (wildcard, error) {
	s := v.str
	var w wildcard
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*':
			if i+1 < len(s) && s[i+1] == '*' {
				return wildcard{}, c.fail(v, "Consecutive wildcard characters at pos %d", i+1)
			}
			w.segs = append(w.segs, cur.String())
			cur.Reset()
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '\\') {
				cur.WriteByte(s[i+1])
				i++
				continue
			}
			return wildcard{}, c.fail(v, "Invalid escape character at pos %d", i+1)
		default:
			cur.WriteByte(s[i])
		}
	}
	w.segs = append(w.segs, cur.String())
	return w, nil
}
