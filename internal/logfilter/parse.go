package logfilter

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/berthdev/berth/internal/errs"
)

// InvalidPattern is the reason carried by Parse's errs.Invalid errors; it
// is InvalidParameterException on the CloudWatch Logs wire.
const InvalidPattern = "logfilter.pattern"

// MaxPatternLength is the longest pattern CloudWatch Logs accepts, in
// characters (the filterPattern member's limit in the API model).
const MaxPatternLength = 1024

// MaxRegexps is the most %regular expressions% a JSON or space-delimited
// pattern may hold, as CloudWatch Logs documents.
const MaxRegexps = 2

// SyntaxError is the cause wrapped by Parse's errors: what is wrong and
// where. Offset is the byte offset in the pattern; Column is the 1-based
// character position shown in the message.
type SyntaxError struct {
	Offset int
	Column int
	Msg    string
	// Char is set when the error is a character that is not allowed
	// where it is; the message then starts as CloudWatch Logs' does:
	// "Invalid character(s) in term 'Char'".
	Char string
}

func (e *SyntaxError) Error() string {
	if e.Char != "" {
		return fmt.Sprintf("Invalid character(s) in term '%s': at character %d: %s.", e.Char, e.Column, e.Msg)
	}
	return fmt.Sprintf("Invalid filter pattern: at character %d: %s.", e.Column, e.Msg)
}

// Parse compiles a CloudWatch Logs filter pattern. An empty pattern, or
// one of only white space, matches every event. Errors are of kind
// errs.Invalid with reason InvalidPattern and wrap a *SyntaxError; their
// message starts with "Invalid filter pattern" and says what is wrong and
// at which character.
func Parse(pattern string) (*Pattern, error) {
	if n := utf8.RuneCountInString(pattern); n > MaxPatternLength {
		return nil, invalid(pattern, 0, fmt.Sprintf("the pattern is %d characters long; the limit is %d", n, MaxPatternLength))
	}
	p := &parser{src: pattern}
	pat := &Pattern{src: pattern}
	p.skipSpace()
	switch {
	case p.eof():
		pat.kind = kindAll
	case p.src[p.pos] == '{':
		pat.kind = kindJSON
		pat.json = p.jsonPattern()
	case p.src[p.pos] == '[':
		pat.kind = kindFields
		p.fieldsPattern(pat)
	default:
		pat.kind = kindTerms
		pat.groups = p.terms()
		if g := pat.groups; len(g) == 1 && len(g[0].include) == 1 && len(g[0].exclude) == 0 &&
			g[0].include[0].re == nil && !g[0].include[0].always {
			pat.kind, pat.word = kindWord, g[0].include[0].text
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return pat, nil
}

// MustParse is Parse for patterns known to be valid; it panics on an
// error. For tests and package-level values.
func MustParse(pattern string) *Pattern {
	p, err := Parse(pattern)
	if err != nil {
		panic(err)
	}
	return p
}

func invalid(src string, off int, msg string) error {
	se := &SyntaxError{Offset: off, Column: utf8.RuneCountInString(src[:off]) + 1, Msg: msg}
	return &errs.Error{Kind: errs.Invalid, Reason: InvalidPattern, Err: se}
}

// badChar records an error for the character at off, which is not
// allowed there.
func (p *parser) badChar(off int, format string, args ...any) {
	if p.err != nil {
		return
	}
	r, _ := utf8.DecodeRuneInString(p.src[off:])
	p.fail(off, format, args...)
	p.err.(*errs.Error).Err.(*SyntaxError).Char = string(r)
}

// parser is a recursive-descent parser that lexes on demand: what a
// character means depends on the kind of pattern and where it is.
type parser struct {
	src    string
	pos    int
	err    error
	nregex int    // regular expressions seen
	name   string // the first field name of the current position
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.src[p.pos]
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) skipSpace() {
	for !p.eof() && isSpace(p.src[p.pos]) {
		p.pos++
	}
}

// fail records the first error; parsing stops at it.
func (p *parser) fail(off int, format string, args ...any) {
	if p.err == nil {
		p.err = invalid(p.src, off, fmt.Sprintf(format, args...))
	}
}

// describe names what is at the current position, for messages.
func (p *parser) describe() string {
	if p.eof() {
		return "end of pattern"
	}
	w := p.src[p.pos:]
	end := 0
	for end < len(w) && end < 20 && isNameByte(w[end]) {
		end++
	}
	if end > 0 {
		return strconv.Quote(w[:end])
	}
	r, _ := utf8.DecodeRuneInString(w)
	return strconv.QuoteRune(r)
}

// symbol consumes s if the input continues with it.
func (p *parser) symbol(s string) bool {
	if strings.HasPrefix(p.src[p.pos:], s) {
		p.pos += len(s)
		return true
	}
	return false
}

// keyword consumes word (in any case) if it is next and is followed by
// something that cannot continue a word.
func (p *parser) keyword(word string) bool {
	rest := p.src[p.pos:]
	if len(rest) < len(word) || !strings.EqualFold(rest[:len(word)], word) {
		return false
	}
	if len(rest) > len(word) && isNameByte(rest[len(word)]) {
		return false
	}
	p.pos += len(word)
	return true
}

// isNameByte reports whether c may be part of a JSON property selector or
// a space-delimited field name: letters, digits, - and _.
func isNameByte(c byte) bool {
	return c == '_' || c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// terms parses a terms pattern: terms separated by white space, each
// optionally preceded by ? (starts an alternative) or - (excluded).
//
// Without ?, the pattern is one group: every term appears and no excluded
// term does. Each ? starts a new group with the term after it; the terms
// that follow without ? belong to that group; terms before the first ?
// form a group of their own. The event matches when any group matches.
func (p *parser) terms() []group {
	var groups []group
	for p.err == nil {
		p.skipSpace()
		if p.eof() {
			break
		}
		exclude := false
		opAt := -1
		switch p.src[p.pos] {
		case '?':
			opAt = p.pos
			p.pos++
			groups = append(groups, group{})
		case '-':
			opAt = p.pos
			p.pos++
			p.skipSpace() // "ERROR" - "Exiting" is in AWS's documentation
			exclude = true
		}
		if len(groups) == 0 {
			groups = append(groups, group{})
		}
		t, ok := p.term(opAt)
		if !ok {
			return nil
		}
		if !p.eof() && !isSpace(p.src[p.pos]) {
			p.badChar(p.pos, "unexpected %s after a term; separate terms with spaces", p.describe())
			return nil
		}
		g := &groups[len(groups)-1]
		if exclude {
			g.exclude = append(g.exclude, t)
		} else {
			g.include = append(g.include, t)
		}
	}
	return groups
}

// term reads one term: a "quoted phrase", a %regular expression%, or a
// word of letters, digits and underscores. opAt is the offset of the ?
// or - before it, or -1.
func (p *parser) term(opAt int) (term, bool) {
	start := p.pos
	switch {
	case p.eof() || isSpace(p.src[p.pos]):
		p.fail(opAt, "expected a term after %q", p.src[opAt])
		return term{}, false
	case p.src[p.pos] == '"':
		s, ok := p.quoted()
		if !ok {
			return term{}, false
		}
		return term{text: s, always: strings.TrimSpace(s) == ""}, true
	case p.src[p.pos] == '%':
		re, src, ok := p.regex()
		if !ok {
			return term{}, false
		}
		return term{text: src, re: re}, true
	}
	for !p.eof() && !isSpace(p.src[p.pos]) {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			end := p.pos
			for end < len(p.src) && !isSpace(p.src[end]) {
				end++
			}
			p.badChar(p.pos, "a term with characters other than letters, digits and _ must be enclosed in double quotes, as in %s", strconv.Quote(p.src[start:end]))
			return term{}, false
		}
		p.pos += n
	}
	return term{text: p.src[start:p.pos]}, true
}

// quoted reads a double-quoted string. Inside, \" stands for " and \\ for
// \; a backslash before any other character is kept as it is.
func (p *parser) quoted() (string, bool) {
	start := p.pos
	var b strings.Builder
	plain := true
	for i := p.pos + 1; i < len(p.src); i++ {
		c := p.src[i]
		switch {
		case c == '"':
			p.pos = i + 1
			if plain {
				return p.src[start+1 : i], true
			}
			return b.String(), true
		case c == '\\' && i+1 < len(p.src) && (p.src[i+1] == '"' || p.src[i+1] == '\\'):
			if plain {
				b.WriteString(p.src[start+1 : i])
				plain = false
			}
			i++
			b.WriteByte(p.src[i])
		case !plain:
			b.WriteByte(c)
		}
	}
	p.fail(start, "unterminated quoted string")
	return "", false
}

// regex reads a %regular expression%. CloudWatch Logs accepts a subset:
// letters, digits, symbols such as _ # = @ / ; , - : and space, and the
// operators ^ $ ? [ ] { } | \ * + . ; not ( ) (no groups), not !, not
// multi-byte characters. A backslash escapes the character after it.
func (p *parser) regex() (*regexp.Regexp, string, bool) {
	start := p.pos
	end := strings.IndexByte(p.src[start+1:], '%')
	if end < 0 {
		p.fail(start, "unterminated regular expression: a regular expression is enclosed in %%")
		return nil, "", false
	}
	end += start + 1
	src := p.src[start+1 : end]
	if src == "" {
		p.fail(start, "empty regular expression %%%%")
		return nil, "", false
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		at := start + 1 + i
		switch {
		case c >= utf8.RuneSelf:
			p.badChar(at, "multi-byte characters are not supported in regular expressions")
			return nil, "", false
		case c <= ' ' || c == 0x7f:
			p.badChar(at, "white space and control characters are not supported in regular expressions; use \\s for white space")
			return nil, "", false
		case c == '\\':
			if i+1 == len(src) {
				p.fail(at, "regular expression ends with an unfinished escape \\")
				return nil, "", false
			}
			i++
		case c == '(' || c == ')':
			p.badChar(at, "( and ) are not supported in regular expressions; subpatterns cannot be grouped")
			return nil, "", false
		case c == '!':
			p.badChar(at, "! is not supported in regular expressions")
			return nil, "", false
		}
	}
	re, err := regexp.Compile(src)
	if err == nil {
		if n := regexpSize(src); n > MaxRegexpSize {
			p.fail(start, "regular expression %%%s%% is too large: it compiles to %d instructions; the limit is %d", src, n, MaxRegexpSize)
			return nil, "", false
		}
	}
	if err != nil {
		msg := err.Error()
		if e, ok := err.(*syntax.Error); ok {
			msg = string(e.Code)
		}
		p.fail(start, "invalid regular expression %%%s%%: %s", src, msg)
		return nil, "", false
	}
	p.pos = end + 1
	p.nregex++
	return re, src, true
}

// MaxRegexpSize bounds the compiled size of a regular expression (in
// RE2 instructions), so that one pattern cannot make every Match slow:
// a{1000} is about 1,000 instructions, an IP address
// (\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}) about 30.
const MaxRegexpSize = 5000

// regexpSize returns the number of instructions src compiles to.
func regexpSize(src string) int {
	re, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		return 0
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0
	}
	return len(prog.Inst)
}

// jsonPattern = "{" or "}" ; the leaves are JSON conditions.
func (p *parser) jsonPattern() expr {
	open := p.pos
	p.pos++
	p.skipSpace()
	if p.peek() == '}' {
		p.fail(p.pos, "the JSON pattern is empty; expected a condition such as $.field = value")
		return nil
	}
	e := p.or(p.jsonCond)
	if p.err != nil {
		return nil
	}
	p.skipSpace()
	if !p.symbol("}") {
		if p.eof() {
			p.fail(open, "unclosed {")
		} else {
			p.badChar(p.pos, "unexpected %s; expected &&, || or }", p.describe())
		}
		return nil
	}
	p.skipSpace()
	if !p.eof() {
		p.fail(p.pos, "unexpected %s after the closing }", p.describe())
		return nil
	}
	if p.nregex > MaxRegexps {
		p.fail(open, "a JSON pattern can hold at most %d regular expressions; this one has %d", MaxRegexps, p.nregex)
		return nil
	}
	return e
}

// or = and { "||" and }
func (p *parser) or(leaf func() expr) expr {
	e := p.and(leaf)
	for p.err == nil {
		p.skipSpace()
		if !p.symbol("||") {
			return e
		}
		r := p.and(leaf)
		e = &orExpr{l: e, r: r}
	}
	return e
}

// and = unary { "&&" unary }
func (p *parser) and(leaf func() expr) expr {
	e := p.unary(leaf)
	for p.err == nil {
		p.skipSpace()
		if !p.symbol("&&") {
			return e
		}
		r := p.unary(leaf)
		e = &andExpr{l: e, r: r}
	}
	return e
}

// unary = "(" or ")" | leaf
func (p *parser) unary(leaf func() expr) expr {
	p.skipSpace()
	if p.err != nil {
		return nil
	}
	if p.peek() != '(' {
		return leaf()
	}
	open := p.pos
	p.pos++
	e := p.or(leaf)
	if p.err != nil {
		return nil
	}
	p.skipSpace()
	if !p.symbol(")") {
		if p.eof() {
			p.fail(open, "unclosed (")
		} else {
			p.fail(p.pos, "unexpected %s; expected &&, || or )", p.describe())
		}
		return nil
	}
	return e
}

// jsonCond = selector ( op value | "IS" ("TRUE"|"FALSE"|"NULL") | "NOT" "EXISTS" )
func (p *parser) jsonCond() expr {
	path, ok := p.selector()
	if !ok {
		return nil
	}
	c := &jsonCond{path: path}
	p.skipSpace()
	switch at := p.pos; {
	case p.keyword("IS"):
		p.skipSpace()
		switch {
		case p.keyword("TRUE"):
			c.op = opIsTrue
		case p.keyword("FALSE"):
			c.op = opIsFalse
		case p.keyword("NULL"):
			c.op = opIsNull
		case p.keyword("NOT"):
			p.fail(at, "IS NOT is not supported; use IS TRUE, IS FALSE, IS NULL or !=")
			return nil
		default:
			p.fail(p.pos, "unexpected %s; expected TRUE, FALSE or NULL after IS", p.describe())
			return nil
		}
	case p.keyword("NOT"):
		p.skipSpace()
		if !p.keyword("EXISTS") {
			p.fail(p.pos, "unexpected %s; expected EXISTS after NOT", p.describe())
			return nil
		}
		c.op = opNotExists
	case p.keyword("EXISTS"):
		p.fail(at, "EXISTS is not supported; use %s = * to match a field that exists", strings.TrimSpace(p.src[selectorStart(p.src, at):at]))
		return nil
	default:
		o, ok := p.compareOp()
		if !ok {
			return nil
		}
		c.op = o
		c.arg, ok = p.operand(o, "}")
		if !ok {
			return nil
		}
	}
	return c
}

// selectorStart finds where the selector that ends before at begins, for
// messages.
func selectorStart(src string, at int) int {
	i := strings.LastIndexByte(src[:at], '$')
	if i < 0 {
		return at
	}
	return i
}

// selector = "$" ( "." name | "[" index "]" )+ ; the first step is a name.
func (p *parser) selector() ([]step, bool) {
	if !p.symbol("$") {
		p.fail(p.pos, "unexpected %s; expected a property selector such as $.field", p.describe())
		return nil, false
	}
	var path []step
	for {
		switch p.peek() {
		case '.':
			p.pos++
			start := p.pos
			for !p.eof() && isNameByte(p.src[p.pos]) {
				p.pos++
			}
			if p.pos == start {
				if p.peek() == '*' {
					p.fail(p.pos, "$.* is not supported; name the property")
				} else {
					p.fail(p.pos, "unexpected %s; expected a property name after .", p.describe())
				}
				return nil, false
			}
			path = append(path, step{key: p.src[start:p.pos], index: -1})
		case '[':
			if len(path) == 0 {
				p.fail(p.pos, "an array index must follow a property, as in $.list[0]")
				return nil, false
			}
			p.pos++
			start := p.pos
			for !p.eof() && '0' <= p.src[p.pos] && p.src[p.pos] <= '9' {
				p.pos++
			}
			if p.pos == start {
				if p.peek() == '*' {
					p.fail(p.pos, "[*] is not supported; give an index such as [0]")
				} else {
					p.fail(p.pos, "unexpected %s; expected an array index such as [0]", p.describe())
				}
				return nil, false
			}
			n, err := strconv.Atoi(p.src[start:p.pos])
			if err != nil || n > 1<<20 {
				p.fail(start, "array index %s is too large", p.src[start:p.pos])
				return nil, false
			}
			if !p.symbol("]") {
				p.fail(p.pos, "unexpected %s; expected ] after the array index", p.describe())
				return nil, false
			}
			path = append(path, step{index: n})
		default:
			if len(path) == 0 {
				p.fail(p.pos, "unexpected %s; a selector starts with $. as in $.field", p.describe())
				return nil, false
			}
			if !p.eof() && !isSpace(p.src[p.pos]) && !strings.ContainsRune("=!<>)}&|", rune(p.src[p.pos])) {
				p.badChar(p.pos, "unexpected %s in the selector; property names have letters, digits, - and _", p.describe())
				return nil, false
			}
			return path, true
		}
	}
}

// compareOp reads = != < <= > >=.
func (p *parser) compareOp() (op, bool) {
	at := p.pos
	switch {
	case p.symbol("=="):
		p.fail(at, "unexpected ==; the equality operator is =")
		return 0, false
	case p.symbol("!="):
		return opNe, true
	case p.symbol("<="):
		return opLe, true
	case p.symbol(">="):
		return opGe, true
	case p.symbol("="):
		return opEq, true
	case p.symbol("<"):
		return opLt, true
	case p.symbol(">"):
		return opGt, true
	}
	p.fail(at, "unexpected %s; expected an operator: =, !=, <, <=, >, >=, IS or NOT EXISTS", p.describe())
	return 0, false
}

// operand reads the value after an operator: a "quoted string", a
// %regular expression% or a bare value, which ends at white space, at
// && or ||, at ( or ), or at one of the characters in stops.
func (p *parser) operand(o op, stops string) (operand, bool) {
	p.skipSpace()
	at := p.pos
	if p.eof() {
		p.fail(at, "unexpected end of pattern; expected a value after %s", o)
		return operand{}, false
	}
	var a operand
	quoted := false
	switch p.src[p.pos] {
	case '"':
		s, ok := p.quoted()
		if !ok {
			return operand{}, false
		}
		a.raw, quoted = s, true
	case '%':
		re, src, ok := p.regex()
		if !ok {
			return operand{}, false
		}
		if o != opEq && o != opNe {
			p.fail(at, "a regular expression compares only with = or !=, not %s", o)
			return operand{}, false
		}
		a.raw, a.re = src, re
		return a, true
	default:
		for !p.eof() {
			c := p.src[p.pos]
			if isSpace(c) || c == '(' || c == ')' || c == '"' || strings.IndexByte(stops, c) >= 0 ||
				strings.HasPrefix(p.src[p.pos:], "&&") || strings.HasPrefix(p.src[p.pos:], "||") {
				break
			}
			p.pos++
		}
		if p.pos == at {
			p.fail(at, "unexpected %s; expected a value after %s", p.describe(), o)
			return operand{}, false
		}
		a.raw = p.src[at:p.pos]
		if stops == "}" {
			for i := 0; i < len(a.raw); i++ {
				if c := a.raw[i]; !isNameByte(c) && c != '.' && c != '*' && c != '+' {
					p.badChar(at+i, "a value with characters other than letters, digits, _, -, +, . and * must be enclosed in double quotes, as in %s", strconv.Quote(a.raw))
					return operand{}, false
				}
			}
		}
	}
	if !quoted {
		a.num, a.isNum = parseNumber(a.raw)
	}
	if o.numeric() && !a.isNum {
		p.fail(at, "%s compares numbers; %q is not a number", o, a.raw)
		return operand{}, false
	}
	a.glob = makeGlob(a.raw)
	return a, true
}

// makeGlob reads the wildcards of a string value: a * at the start or the
// end matches any text there.
func makeGlob(s string) glob {
	var g glob
	if strings.HasPrefix(s, "*") {
		g.anyStart, s = true, s[1:]
	}
	if strings.HasSuffix(s, "*") {
		g.anyEnd, s = true, s[:len(s)-1]
	}
	g.lit = s
	return g
}

// parseNumber parses a number as CloudWatch Logs writes one: an optional
// sign, digits with an optional decimal part, and an optional exponent
// (1, -2.5, +1000, 10e3, 1e-3). Nothing else (no hex, inf or nan).
func parseNumber(s string) (float64, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == exp {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	// The syntax is checked, so the only error left is a number out of
	// range, given as ±Inf or ±0: still ordered as it should be.
	f, _ := strconv.ParseFloat(s, 64)
	return f, true
}

// fieldsPattern = "[" position { "," position } "]" ; a position is
// "...", nothing (one field of any value), or a condition on the field.
func (p *parser) fieldsPattern(pat *Pattern) {
	open := p.pos
	p.pos++
	for p.err == nil {
		p.skipSpace()
		var ps position
		switch {
		case p.symbol("..."):
			ps.ellipsis = true
			if pat.ellipses == 0 {
				pat.ellipsis = len(pat.fields)
			}
			pat.ellipses++
		case p.peek() == ',' || p.peek() == ']':
		case p.eof():
			p.fail(open, "unclosed [")
			return
		default:
			p.name = ""
			ps.cond = p.or(p.fieldCond)
			ps.name = p.name
			if _, ok := ps.cond.(trueExpr); ok {
				ps.cond = nil
			}
		}
		if p.err != nil {
			return
		}
		pat.fields = append(pat.fields, ps)
		p.skipSpace()
		switch {
		case p.symbol(","):
			continue
		case p.symbol("]"):
		case p.eof():
			p.fail(open, "unclosed [")
			return
		default:
			p.badChar(p.pos, "unexpected %s; expected , or ]", p.describe())
			return
		}
		break
	}
	if p.err != nil {
		return
	}
	p.skipSpace()
	if !p.eof() {
		p.fail(p.pos, "unexpected %s after the closing ]", p.describe())
		return
	}
	if len(pat.fields) == 1 && pat.fields[0].name == "" && !pat.fields[0].ellipsis {
		p.fail(open, "the space-delimited pattern names no field; expected [name, ...]")
		return
	}
	if p.nregex > MaxRegexps {
		p.fail(open, "a space-delimited pattern can hold at most %d regular expressions; this one has %d", MaxRegexps, p.nregex)
	}
}

// fieldCond = name [ op value ]. Every name in a position's condition
// refers to the field at that position; the first one names it.
func (p *parser) fieldCond() expr {
	start := p.pos
	for !p.eof() && isNameByte(p.src[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		p.fail(start, "unexpected %s; expected a field name", p.describe())
		return nil
	}
	if p.name == "" {
		p.name = p.src[start:p.pos]
	}
	p.skipSpace()
	if p.eof() || !strings.ContainsRune("=!<>", rune(p.src[p.pos])) {
		return trueExpr{}
	}
	o, ok := p.compareOp()
	if !ok {
		return nil
	}
	a, ok := p.operand(o, ",]")
	if !ok {
		return nil
	}
	return &fieldCond{op: o, arg: a}
}
