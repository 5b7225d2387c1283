package placement

import (
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berthdev/berth/internal/errs"
)

// Reasons carried by the errs.Invalid errors of this package. All of them
// are InvalidParameterException on the ECS wire.
const (
	InvalidExpression = "placement.expression" // a memberOf expression does not parse
	InvalidConstraint = "placement.constraint" // a constraint's type or expression is wrong
	InvalidStrategy   = "placement.strategy"   // a strategy's type or field is wrong
)

// SyntaxError is the cause wrapped by Parse's errors: what is wrong and
// where. Offset is the byte offset in the expression; Column is the
// 1-based character position shown in the message.
type SyntaxError struct {
	Offset int
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("Invalid placement constraint expression: at character %d: %s.", e.Column, e.Msg)
}

// Parse parses a cluster query language expression. Errors are of kind
// errs.Invalid with reason InvalidExpression, and wrap a *SyntaxError
// that gives the position.
//
// Besides the syntax, Parse checks what ECS's documentation allows: the
// operators each subject takes, the values agentConnected (true, false),
// agentVersion (1.14.5), registeredAt (the four date forms) and
// runningTasksCount (a count) compare with, attribute names, regular
// expressions (Go's RE2 syntax, close to the Java syntax ECS documents),
// and the length limit of MaxExpressionLength characters.
func Parse(expr string) (Expr, error) {
	if n := utf8.RuneCountInString(expr); n > MaxExpressionLength {
		return nil, invalidExpr(expr, 0, fmt.Sprintf("the expression is %d characters long; the limit is %d", n, MaxExpressionLength))
	}
	return parse(expr)
}

// parse is Parse without the length limit. The canonical form of an
// expression can be longer than the expression, so round trips use it.
func parse(expr string) (Expr, error) {
	p := &parser{src: expr}
	p.skipSpace()
	if p.eof() {
		return nil, invalidExpr(expr, 0, "the expression is empty")
	}
	e := p.or()
	if p.err == nil {
		p.skipSpace()
		if !p.eof() {
			p.fail(p.pos, "unexpected %s; expected and, or, or the end of the expression", p.describe())
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	return e, nil
}

// MustParse is Parse for expressions known to be valid; it panics on an
// error. For tests and package-level values.
func MustParse(expr string) Expr {
	e, err := Parse(expr)
	if err != nil {
		panic(err)
	}
	return e
}

func invalidExpr(src string, off int, msg string) error {
	se := &SyntaxError{Offset: off, Column: utf8.RuneCountInString(src[:off]) + 1, Msg: msg}
	return &errs.Error{Kind: errs.Invalid, Reason: InvalidExpression, Err: se}
}

// parser is a recursive-descent parser; the lexing is done on demand
// because what a character means depends on where it is (a '!' starts a
// negation, an operator, or is part of a value).
type parser struct {
	src string
	pos int
	err error
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) peek() rune {
	if p.eof() {
		return 0
	}
	r, _ := utf8.DecodeRuneInString(p.src[p.pos:])
	return r
}

func (p *parser) skipSpace() {
	for !p.eof() {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		if !isSpace(r) {
			return
		}
		p.pos += n
	}
}

// fail records the first error; parsing stops at it.
func (p *parser) fail(off int, format string, args ...any) {
	if p.err == nil {
		p.err = invalidExpr(p.src, off, fmt.Sprintf(format, args...))
	}
}

// describe names what is at the current position, for messages.
func (p *parser) describe() string {
	if p.eof() {
		return "end of expression"
	}
	if w := p.src[p.pos:]; isWordByte(w[0]) {
		end := 0
		for end < len(w) && end < 20 && isWordByte(w[end]) {
			end++
		}
		return fmt.Sprintf("%q", w[:end])
	}
	return fmt.Sprintf("%q", p.peek())
}

// keyword reports whether the input at the current position is one of the
// given words (in any case) followed by something that cannot continue a
// word, and consumes it if so.
func (p *parser) keyword(words ...string) bool {
	end := p.pos
	for end < len(p.src) && isWordByte(p.src[end]) {
		end++
	}
	if end == p.pos || end < len(p.src) && isSubjectByte(p.src[end]) ||
		!slices.Contains(words, strings.ToLower(p.src[p.pos:end])) {
		return false
	}
	p.pos = end
	return true
}

// symbol consumes s if the input continues with it.
func (p *parser) symbol(s string) bool {
	if strings.HasPrefix(p.src[p.pos:], s) {
		p.pos += len(s)
		return true
	}
	return false
}

// isWordByte reports whether c can be part of a keyword or word operator.
func isWordByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// or = and { ("or" | "||") and }
func (p *parser) or() Expr {
	e := p.and()
	for p.err == nil {
		p.skipSpace()
		if !p.symbol("||") && !p.keyword("or") {
			return e
		}
		e = &Or{L: e, R: p.and()}
	}
	return e
}

// and = unary { ("and" | "&&") unary }
func (p *parser) and() Expr {
	e := p.unary()
	for p.err == nil {
		p.skipSpace()
		if !p.symbol("&&") && !p.keyword("and") {
			return e
		}
		e = &And{L: e, R: p.unary()}
	}
	return e
}

// unary = ("not" | "!") unary | "(" or ")" | condition
func (p *parser) unary() Expr {
	p.skipSpace()
	if p.err != nil {
		return nil
	}
	switch {
	case p.eof():
		p.fail(p.pos, "unexpected end of expression; expected a condition")
		return nil
	case p.symbol("!") || p.keyword("not"):
		return &Not{X: p.unary()}
	case p.peek() == '(':
		open := p.pos
		p.pos++
		e := p.or()
		if p.err != nil {
			return nil
		}
		p.skipSpace()
		if !p.symbol(")") {
			if p.eof() {
				p.fail(open, "unclosed parenthesis")
			} else {
				p.fail(p.pos, "unexpected %s; expected and, or, or )", p.describe())
			}
			return nil
		}
		return e
	}
	return p.condition()
}

// condition = subject operator [argument]
func (p *parser) condition() Expr {
	start := p.pos
	subj, ok := p.subject()
	if !ok {
		return nil
	}
	p.skipSpace()
	opAt := p.pos
	op, ok := p.operator()
	if !ok {
		return nil
	}
	if !slices.Contains(validOps[subj.Kind], op) {
		p.fail(opAt, "operator %s cannot be used with %s", op, subj)
		return nil
	}
	c := &Cond{Subject: subj, Op: op}
	var argAt []int // offset of each argument, for messages
	switch op {
	case OpExists, OpNotExists:
	case OpIn, OpNotIn:
		c.Args, argAt = p.list(op)
	default:
		p.skipSpace()
		at := p.pos
		if p.peek() == '[' {
			p.fail(at, "operator %s takes one value, not a list", op)
			return nil
		}
		v, ok := p.value(op, false)
		if !ok {
			return nil
		}
		c.Args, argAt = []string{v}, []int{at}
	}
	if p.err != nil {
		return nil
	}
	prep, i, msg := prepare(c)
	if msg != "" {
		at := start
		if i >= 0 && i < len(argAt) {
			at = argAt[i]
		}
		p.fail(at, "%s", msg)
		return nil
	}
	c.prep = prep
	return c
}

// subject reads a subject: one of the built-in names or attribute:<name>.
func (p *parser) subject() (Subject, bool) {
	start := p.pos
	for !p.eof() && isSubjectByte(p.src[p.pos]) {
		p.pos++
	}
	word := p.src[start:p.pos]
	if word == "" {
		p.fail(start, "unexpected %s; expected a subject such as attribute:<name> or runningTasksCount", p.describe())
		return Subject{}, false
	}
	if !p.eof() {
		if r := p.peek(); !isSpace(r) && !strings.ContainsRune("=!<>", r) {
			p.fail(p.pos, "unexpected %q after %q", r, word)
			return Subject{}, false
		}
	}
	if name, ok := strings.CutPrefix(word, attributePrefix); ok {
		if msg := checkAttributeName(name); msg != "" {
			p.fail(start, "%s", msg)
			return Subject{}, false
		}
		return Subject{Kind: SubjectAttribute, Attribute: name}, true
	}
	for k, n := range subjectNames {
		if n == word {
			return Subject{Kind: k}, true
		}
	}
	p.fail(start, "unknown subject %q; the subjects are agentConnected, agentVersion, attribute:<name>, ec2InstanceId, registeredAt, runningTasksCount and task:group", word)
	return Subject{}, false
}

// isSubjectByte reports whether c can be part of a subject.
func isSubjectByte(c byte) bool {
	return isAttributeNameByte(c) || c == ':'
}

// isAttributeNameByte reports whether c may appear in an attribute name:
// letters, digits, hyphens, underscores, slashes, back slashes, periods.
func isAttributeNameByte(c byte) bool {
	return isWordByte(c) || '0' <= c && c <= '9' || c == '-' || c == '/' || c == '\\' || c == '.'
}

// checkAttributeName applies ECS's rule for attribute names.
func checkAttributeName(name string) string {
	switch {
	case name == "":
		return "attribute: needs a name, as in attribute:ecs.instance-type"
	case len(name) > 128:
		return "an attribute name is at most 128 characters"
	}
	for i := 0; i < len(name); i++ {
		if !isAttributeNameByte(name[i]) {
			return fmt.Sprintf("attribute name %q may contain only letters, digits, hyphens, underscores, slashes, back slashes and periods", name)
		}
	}
	return ""
}

// operator reads a comparison operator in symbolic or word form.
func (p *parser) operator() (Op, bool) {
	start := p.pos
	if p.eof() {
		p.fail(start, "unexpected end of expression; expected an operator")
		return 0, false
	}
	for _, s := range []struct {
		sym string
		op  Op
		end bool // must not be followed by a word character
	}{
		{"==", OpEq, false}, {"=~", OpMatches, false},
		{"!=", OpNe, false}, {"!~", OpNotMatches, false},
		{"!exists", OpNotExists, true}, {"!in", OpNotIn, true},
		{">=", OpGe, false}, {">", OpGt, false},
		{"<=", OpLe, false}, {"<", OpLt, false},
	} {
		if !strings.HasPrefix(p.src[p.pos:], s.sym) {
			continue
		}
		if rest := p.src[p.pos+len(s.sym):]; s.end && rest != "" && isWordByte(rest[0]) {
			continue
		}
		p.pos += len(s.sym)
		return s.op, true
	}
	end := p.pos
	for end < len(p.src) && isWordByte(p.src[end]) {
		end++
	}
	op, ok := opWords[strings.ToLower(p.src[p.pos:end])]
	if !ok {
		p.fail(start, "unexpected %s; expected an operator such as ==, !=, >, exists, in or =~", p.describe())
		return 0, false
	}
	p.pos = end
	if !p.eof() {
		if r := p.peek(); !isSpace(r) && !strings.ContainsRune("['\")&|", r) {
			p.fail(p.pos, "unexpected %q after operator %s", r, strings.ToLower(p.src[start:end]))
			return 0, false
		}
	}
	return op, true
}

// list = "[" value { "," value } "]"
func (p *parser) list(op Op) ([]string, []int) {
	p.skipSpace()
	if !p.symbol("[") {
		p.fail(p.pos, "operator %s takes a list such as [a, b]; found %s", op, p.describe())
		return nil, nil
	}
	var vals []string
	var offs []int
	for {
		p.skipSpace()
		if len(vals) == 0 && p.peek() == ']' {
			p.fail(p.pos, "the list is empty")
			return nil, nil
		}
		at := p.pos
		v, ok := p.value(op, true)
		if !ok {
			return nil, nil
		}
		vals, offs = append(vals, v), append(offs, at)
		p.skipSpace()
		switch {
		case p.symbol(","):
		case p.symbol("]"):
			return vals, offs
		case p.eof():
			p.fail(p.pos, "unexpected end of expression; expected , or ]")
			return nil, nil
		default:
			p.fail(p.pos, "unexpected %s in the list; expected , or ]", p.describe())
			return nil, nil
		}
	}
}

// value = word | quoted. A word is a run of characters other than white
// space and ( ) ' ", and in a list other than [ ] , too. A quoted value is
// in single or double quotes; inside, a backslash escapes a backslash or
// either quote and is kept before any other character.
func (p *parser) value(op Op, inList bool) (string, bool) {
	start := p.pos
	if p.eof() {
		p.fail(start, "unexpected end of expression; expected a value after %s", op)
		return "", false
	}
	if q := p.src[p.pos]; q == '\'' || q == '"' {
		var b strings.Builder
		for i := p.pos + 1; i < len(p.src); i++ {
			c := p.src[i]
			switch {
			case c == q:
				p.pos = i + 1
				return b.String(), true
			case c == '\\' && i+1 < len(p.src) && (p.src[i+1] == '\\' || p.src[i+1] == '\'' || p.src[i+1] == '"'):
				i++
				b.WriteByte(p.src[i])
			default:
				b.WriteByte(c)
			}
		}
		p.fail(start, "unterminated quoted value")
		return "", false
	}
	for !p.eof() {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		if isDelimiter(r, inList) {
			break
		}
		p.pos += n
	}
	if p.pos == start {
		p.fail(start, "unexpected %s; expected a value after %s", p.describe(), op)
		return "", false
	}
	return p.src[start:p.pos], true
}

// prepare checks c's arguments against its subject and compiles them. On
// failure it returns the index of the bad argument (or -1) and a message.
func prepare(c *Cond) (*prepared, int, string) {
	if !slices.Contains(validOps[c.Subject.Kind], c.Op) {
		return nil, -1, fmt.Sprintf("operator %s cannot be used with %s", c.Op, c.Subject)
	}
	switch c.Op {
	case OpExists, OpNotExists:
		if len(c.Args) != 0 {
			return nil, -1, fmt.Sprintf("operator %s takes no value", c.Op)
		}
		return &prepared{}, -1, ""
	case OpIn, OpNotIn:
		if len(c.Args) == 0 {
			return nil, -1, "the list is empty"
		}
	default:
		if len(c.Args) != 1 {
			return nil, -1, fmt.Sprintf("operator %s takes one value", c.Op)
		}
	}
	if c.Op == OpMatches || c.Op == OpNotMatches {
		_, err := regexp.Compile(c.Args[0])
		var re *regexp.Regexp
		if err == nil {
			// The pattern must match the whole value, as Java's matches
			// does; it compiled alone, so the group keeps its meaning.
			re, err = regexp.Compile(`^(?:` + c.Args[0] + `)$`)
		}
		if err != nil {
			msg := err.Error()
			if e, ok := err.(*syntax.Error); ok {
				msg = string(e.Code)
			}
			return nil, 0, fmt.Sprintf("invalid regular expression %q: %s", c.Args[0], msg)
		}
		return &prepared{re: re}, -1, ""
	}
	prep := &prepared{args: make([]arg, len(c.Args))}
	for i, raw := range c.Args {
		a := arg{raw: raw, star: strings.Contains(raw, "*")}
		switch c.Subject.Kind {
		case SubjectAgentConnected:
			if !strings.EqualFold(raw, "true") && !strings.EqualFold(raw, "false") {
				return nil, i, fmt.Sprintf("agentConnected compares with true or false, not %q", raw)
			}
		case SubjectAgentVersion:
			v, ok := parseVersion(raw, true)
			if !ok {
				return nil, i, fmt.Sprintf("agentVersion compares with a version such as 1.14.5, not %q", raw)
			}
			a.version = v
		case SubjectRegisteredAt:
			t, day, ok := parseDate(raw)
			if !ok {
				return nil, i, fmt.Sprintf("registeredAt compares with a date such as 2018-06-18 or 2018-06-18T22:28:28Z, not %q", raw)
			}
			a.at, a.day = t, day
		case SubjectRunningTasksCount:
			n, err := strconv.ParseUint(raw, 10, 31)
			if err != nil {
				return nil, i, fmt.Sprintf("runningTasksCount compares with a whole number, not %q", raw)
			}
			a.count = int64(n)
		case SubjectAttribute:
			if f, err := strconv.ParseFloat(raw, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				a.num, a.isNum = f, true
			}
		}
		prep.args[i] = a
	}
	return prep, -1, ""
}

// parseVersion reads a dotted version such as 1.14.5. With strict, the
// whole string must be one (an optional leading v, then numbers separated
// by dots); without, trailing text after the numbers (1.51.0-1, 1.2.3
// (abc)) is ignored, as in an agent's reported version.
func parseVersion(s string, strict bool) ([]int, bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	var v []int
	for {
		i := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 {
			return nil, false
		}
		n, _ := strconv.Atoi(s[:i])
		v = append(v, n)
		s = s[i:]
		if len(s) > 1 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
			s = s[1:]
			continue
		}
		return v, s == "" || !strict
	}
}

// compareVersions compares dotted versions; missing parts count as 0.
func compareVersions(a, b []int) int {
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// dateLayouts are the registeredAt forms ECS documents. A time without a
// zone is UTC.
var dateLayouts = []string{"2006-01-02T15:04:05-07:00", "2006-01-02T15:04:05Z", "2006-01-02T15:04:05"}

// parseDate parses a registeredAt argument; day reports a date without a
// time of day.
func parseDate(s string) (t time.Time, day bool, ok bool) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, true, true
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), false, true
		}
	}
	return time.Time{}, false, false
}
