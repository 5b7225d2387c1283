package eventpattern

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// kind is a JSON value's type.
type kind uint8

const (
	kNull kind = iota
	kTrue
	kFalse
	kNumber
	kString
	kArray
	kObject
)

// value is a parsed JSON value. Events and patterns are parsed into this
// small tree rather than into interface{} values: strings are substrings
// of the input (no copy unless escaped), numbers keep their text, object
// members keep their order, and all values live in one arena that a Set
// reuses from event to event.
type value struct {
	kind  kind
	key   string  // the member name, for a value inside an object
	str   string  // a string's contents, or a number's literal text
	num   float64 // a number's value (±Inf when out of range)
	elems []value // array elements or object members (a window of the arena)
	off   int     // offset of the value's first byte in the input
}

// get returns the object member named key, or nil. With duplicate names
// the last one wins, as in encoding/json.
func (v *value) get(key string) *value {
	for i := len(v.elems) - 1; i >= 0; i-- {
		if v.elems[i].key == key {
			return &v.elems[i]
		}
	}
	return nil
}

// maxDepth bounds nesting so a hostile input cannot exhaust the stack.
const maxDepth = 256

type syntaxError struct {
	off int
	msg string
}

type jsonParser struct {
	s     string
	i     int
	depth int
	err   *syntaxError
	arena []value // finished children, in windows that values' elems point to
	stack []value // children of the containers being parsed
}

// parseJSON parses one JSON value that makes up the whole of s.
func parseJSON(s string) (value, *syntaxError) {
	var p jsonParser
	return p.parse(s)
}

// parse parses s, reusing the parser's memory: values returned by an
// earlier parse must no longer be in use.
func (p *jsonParser) parse(s string) (value, *syntaxError) {
	p.s, p.i, p.depth, p.err = s, 0, 0, nil
	p.arena, p.stack = p.arena[:0], p.stack[:0]
	p.ws()
	v := p.value()
	if p.err == nil {
		p.ws()
		if p.i < len(p.s) {
			p.fail("unexpected data after the JSON value")
		}
	}
	return v, p.err
}

// close moves the children pushed since mark into the arena and returns
// their window.
func (p *jsonParser) close(mark int) []value {
	n := len(p.stack) - mark
	if n == 0 {
		return nil
	}
	if cap(p.arena)-len(p.arena) < n {
		// A fresh block: windows already handed out keep the old one.
		p.arena = make([]value, 0, max(2*cap(p.arena), n, 64))
	}
	start := len(p.arena)
	p.arena = append(p.arena, p.stack[mark:]...)
	p.stack = p.stack[:mark]
	return p.arena[start : start+n : start+n]
}

func (p *jsonParser) fail(msg string) {
	if p.err == nil {
		p.err = &syntaxError{off: p.i, msg: msg}
	}
	p.i = len(p.s)
}

func (p *jsonParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value() value {
	if p.i >= len(p.s) {
		p.fail("unexpected end of input")
		return value{}
	}
	start := p.i
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s := p.str()
		return value{kind: kString, str: s, off: start}
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += 4
		return value{kind: kTrue, off: start}
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += 5
		return value{kind: kFalse, off: start}
	case strings.HasPrefix(p.s[p.i:], "null"):
		p.i += 4
		return value{kind: kNull, off: start}
	}
	p.fail("unexpected character " + quoteChar(p.s[p.i:]))
	return value{}
}

func quoteChar(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	return strconv.QuoteRune(r)
}

func (p *jsonParser) object() value {
	v := value{kind: kObject, off: p.i}
	p.i++ // {
	if p.depth++; p.depth > maxDepth {
		p.fail("nesting too deep")
		return v
	}
	mark := len(p.stack)
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		p.depth--
		return v
	}
	for p.err == nil {
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			p.fail("expected a member name in double quotes")
			break
		}
		k := p.str()
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			p.fail("expected ':' after a member name")
			break
		}
		p.i++
		p.ws()
		e := p.value()
		e.key = k
		p.stack = append(p.stack, e)
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			break
		}
		p.fail("expected ',' or '}' in an object")
	}
	v.elems = p.close(mark)
	p.depth--
	return v
}

func (p *jsonParser) array() value {
	v := value{kind: kArray, off: p.i}
	p.i++ // [
	if p.depth++; p.depth > maxDepth {
		p.fail("nesting too deep")
		return v
	}
	mark := len(p.stack)
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		p.depth--
		return v
	}
	for p.err == nil {
		p.ws()
		e := p.value() // before reading p.stack: value pushes and pops
		p.stack = append(p.stack, e)
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			break
		}
		p.fail("expected ',' or ']' in an array")
	}
	v.elems = p.close(mark)
	p.depth--
	return v
}

func (p *jsonParser) number() value {
	start := p.i
	s := p.s
	i := p.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		p.i = i
		p.fail("invalid number")
		return value{}
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			p.i = i
			p.fail("invalid number")
			return value{}
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			p.i = i
			p.fail("invalid number")
			return value{}
		}
	}
	p.i = i
	text := s[start:i]
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !math.IsInf(f, 0) { // out of range gives ±Inf, kept
		p.fail("invalid number")
	}
	return value{kind: kNumber, str: text, num: f, off: start}
}

// str parses a string starting at the opening quote and returns its
// contents. Without escapes the result shares the input's memory.
func (p *jsonParser) str() string {
	p.i++ // "
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			s := p.s[start:p.i]
			p.i++
			return s
		}
		if c == '\\' {
			return p.strEscaped(start)
		}
		if c < 0x20 {
			p.fail("control character in a string")
			return ""
		}
		p.i++
	}
	p.fail("unterminated string")
	return ""
}

func (p *jsonParser) strEscaped(start int) string {
	var b strings.Builder
	b.WriteString(p.s[start:p.i])
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String()
		case c < 0x20:
			p.fail("control character in a string")
			return ""
		case c != '\\':
			b.WriteByte(c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.s) {
			break
		}
		p.i += 2
		switch p.s[p.i-1] {
		case '"', '\\', '/':
			b.WriteByte(p.s[p.i-1])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				p.fail("invalid \\u escape")
				return ""
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate followed by a low one is one rune;
				// anything else is U+FFFD, as in encoding/json.
				save := p.i
				if strings.HasPrefix(p.s[p.i:], "\\u") {
					p.i += 2
					if r2, ok := p.hex4(); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							b.WriteRune(d)
							continue
						}
					}
				}
				p.i = save
				r = utf8.RuneError
			}
			b.WriteRune(r)
		default:
			p.i--
			p.fail("invalid escape character")
			return ""
		}
	}
	p.fail("unterminated string")
	return ""
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.s[p.i : p.i+4]) {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}
