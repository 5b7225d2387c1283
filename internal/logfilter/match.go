package logfilter

import "strings"

// Match reports whether the event message matches the pattern.
//
// Terms are matched case-sensitively anywhere in the message (ERROR
// matches "ERRORCODE: -1"). A JSON pattern matches only a message that is
// a JSON object. A space-delimited pattern matches only a message with as
// many fields as the pattern has positions (any number for "...").
func (p *Pattern) Match(message string) bool {
	if p.kind == kindWord { // the most common pattern first
		return strings.Contains(message, p.word)
	}
	return p.match(message)
}

func (p *Pattern) match(message string) bool {
	switch p.kind {
	case kindAll:
		return true
	case kindTerms:
		for i := range p.groups {
			if p.groups[i].match(message) {
				return true
			}
		}
		return false
	case kindJSON:
		return isJSONObject(message) && p.json.eval(message)
	case kindFields:
		return p.matchFields(message)
	}
	return false
}

func (g *group) match(msg string) bool {
	for i := range g.include {
		if !g.include[i].in(msg) {
			return false
		}
	}
	for i := range g.exclude {
		if g.exclude[i].in(msg) {
			return false
		}
	}
	return true
}

// in reports whether the term occurs in msg.
func (t *term) in(msg string) bool {
	switch {
	case t.always:
		return true
	case t.re != nil:
		return t.re.MatchString(msg)
	}
	return strings.Contains(msg, t.text)
}

func containsString(s, sub string) bool { return strings.Contains(s, sub) }

// equal reports whether a value equals the operand: the regular
// expression matches somewhere in text; or, when both are numbers, they
// are equal as numbers; or else text matches the operand's glob.
func (a *operand) equal(text string, num float64, isNum bool) bool {
	switch {
	case a.re != nil:
		return a.re.MatchString(text)
	case a.isNum && isNum:
		return num == a.num
	}
	return a.glob.match(text)
}

// compare applies a numeric operator.
func compare(o op, x, y float64) bool {
	switch o {
	case opEq:
		return x == y
	case opNe:
		return x != y
	case opLt:
		return x < y
	case opLe:
		return x <= y
	case opGt:
		return x > y
	case opGe:
		return x >= y
	}
	return false
}

// fieldCond is a condition on one field of a space-delimited event.
type fieldCond struct {
	op  op
	arg operand
}

// eval applies the condition to a field. = and != compare numbers as
// numbers when both sides are numbers and text otherwise (with the
// operand's wildcards or regular expression); <, <=, >, >= need a field
// that is a number and are false otherwise.
func (c *fieldCond) eval(field string) bool {
	var num float64
	var isNum bool
	if c.arg.isNum {
		num, isNum = parseNumber(field)
	}
	switch c.op {
	case opEq:
		return c.arg.equal(field, num, isNum)
	case opNe:
		return !c.arg.equal(field, num, isNum)
	}
	return isNum && compare(c.op, num, c.arg.num)
}

// maxStackFields is how many fields matchFields splits into without
// allocating.
const maxStackFields = 32

// matchFields matches a space-delimited pattern: the message is split
// into fields, and the positions are matched against them in order, each
// "..." taking any number of fields (backtracking as a * does in a glob).
func (p *Pattern) matchFields(msg string) bool {
	var buf [maxStackFields]string
	fs := splitFields(msg, buf[:0])
	ps := p.fields
	switch p.ellipses {
	case 0:
		if len(fs) != len(ps) {
			return false
		}
		return matchInOrder(ps, fs)
	case 1:
		// The positions before the "..." take the first fields and
		// those after it the last ones: nothing to search.
		e := p.ellipsis
		after := len(ps) - e - 1
		if len(fs) < e+after {
			return false
		}
		return matchInOrder(ps[:e], fs[:e]) && matchInOrder(ps[e+1:], fs[len(fs)-after:])
	}
	pi, fi := 0, 0
	star, starField := -1, 0
	for fi < len(fs) {
		if pi < len(ps) {
			if ps[pi].ellipsis {
				star, starField = pi, fi
				pi++
				continue
			}
			if ps[pi].cond == nil || ps[pi].cond.eval(fs[fi]) {
				pi++
				fi++
				continue
			}
		}
		if star < 0 {
			return false
		}
		// Let the last "..." take one more field and retry from there.
		starField++
		pi, fi = star+1, starField
	}
	for pi < len(ps) && ps[pi].ellipsis {
		pi++
	}
	return pi == len(ps)
}

// matchInOrder matches positions without "..." to as many fields.
func matchInOrder(ps []position, fs []string) bool {
	for i := range ps {
		if ps[i].cond != nil && !ps[i].cond.eval(fs[i]) {
			return false
		}
	}
	return true
}

// splitFields splits a space-delimited event into fields, appending them
// to fs. Fields are separated by runs of white space; a field that starts
// with " runs to the next " and one that starts with [ to the next ],
// spaces included, and is given without those delimiters. An unclosed "
// or [ runs to the end of the message.
func splitFields(msg string, fs []string) []string {
	i := 0
	for {
		for i < len(msg) && isSpace(msg[i]) {
			i++
		}
		if i >= len(msg) {
			return fs
		}
		var closer byte
		switch msg[i] {
		case '"':
			closer = '"'
		case '[':
			closer = ']'
		}
		if closer != 0 {
			j := strings.IndexByte(msg[i+1:], closer)
			if j < 0 {
				return append(fs, msg[i+1:])
			}
			fs = append(fs, msg[i+1:i+1+j])
			i += j + 2
			continue
		}
		j := i
		for j < len(msg) && !isSpace(msg[j]) {
			j++
		}
		fs = append(fs, msg[i:j])
		i = j
	}
}
