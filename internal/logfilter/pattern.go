package logfilter

import "regexp"

// kind is the kind of a pattern, decided by its first non-space character.
type kind uint8

const (
	kindAll    kind = iota // the empty pattern, or only spaces: every event
	kindTerms              // words, phrases, regular expressions
	kindWord               // one word or phrase, in word
	kindJSON               // { ... }
	kindFields             // [ ... ]
)

// Pattern is a compiled filter pattern. The zero value is not usable; get
// one from Parse. A Pattern is immutable and safe for concurrent use.
type Pattern struct {
	src  string
	kind kind

	// kindWord: the word or phrase; the most common pattern gets the
	// shortest path.
	word string

	// kindTerms: the event matches when any group matches. Without ?
	// there is one group.
	groups []group

	// kindJSON: the condition.
	json expr

	// kindFields: the positions, how many of them are "...", and the
	// index of the first one.
	fields   []position
	ellipses int
	ellipsis int
}

// String returns the pattern as it was given to Parse.
func (p *Pattern) String() string { return p.src }

// group is a conjunction of terms: every include term appears in the
// message and no exclude term does.
type group struct {
	include []term
	exclude []term
}

// term is one word, phrase or regular expression of a terms pattern.
type term struct {
	text   string         // the literal to look for
	re     *regexp.Regexp // set for %regex%; then text is the source
	always bool           // a phrase of only spaces: in every message
}

// position is one comma-separated element of a space-delimited pattern.
type position struct {
	name     string // the field's name ("" for an empty position or ...)
	ellipsis bool   // "...": any number of fields, none included
	cond     expr   // nil: any field
}

// op is a comparison operator.
type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opIsTrue
	opIsFalse
	opIsNull
	opNotExists
)

var opNames = [...]string{"=", "!=", "<", "<=", ">", ">=", "IS TRUE", "IS FALSE", "IS NULL", "NOT EXISTS"}

func (o op) String() string { return opNames[o] }

// numeric reports whether o compares numbers only.
func (o op) numeric() bool { return o >= opLt && o <= opGe }

// operand is the right-hand side of a comparison, compiled.
type operand struct {
	raw   string         // as written (unquoted, unescaped)
	glob  glob           // for string (in)equality
	num   float64        // the value as a number, when isNum
	isNum bool           // raw is a number
	re    *regexp.Regexp // %regex%
}

// glob is a string with optional * wildcards at its start and end; a *
// anywhere else is an ordinary character.
type glob struct {
	lit      string
	anyStart bool // a leading *: anything may come before lit
	anyEnd   bool // a trailing *: anything may come after lit
}

// match reports whether s matches g as a whole.
func (g glob) match(s string) bool {
	switch {
	case g.anyStart && g.anyEnd:
		return containsString(s, g.lit)
	case g.anyStart:
		return len(s) >= len(g.lit) && s[len(s)-len(g.lit):] == g.lit
	case g.anyEnd:
		return len(s) >= len(g.lit) && s[:len(g.lit)] == g.lit
	}
	return s == g.lit
}

// expr is a boolean expression of a JSON pattern, or of one position of a
// space-delimited pattern. eval gets the whole message (JSON) or the
// field's text (space-delimited).
type expr interface {
	eval(s string) bool
}

type andExpr struct{ l, r expr }

func (e *andExpr) eval(s string) bool { return e.l.eval(s) && e.r.eval(s) }

type orExpr struct{ l, r expr }

func (e *orExpr) eval(s string) bool { return e.l.eval(s) || e.r.eval(s) }

// trueExpr is a bare field name in a space-delimited condition.
type trueExpr struct{}

func (trueExpr) eval(string) bool { return true }
