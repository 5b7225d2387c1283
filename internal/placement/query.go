package placement

import (
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxExpressionLength is the longest expression ECS accepts, in characters.
const MaxExpressionLength = 2000

// Expr is a parsed cluster query language expression: a *Cond, or a
// combination of them with *And, *Or and *Not. Build expressions with
// Parse; a hand-built *Cond works too but is checked and compiled again on
// every Match.
type Expr interface {
	// Match reports whether inst satisfies the expression.
	Match(inst *Instance) bool
	// String prints the expression in canonical form: word operators
	// between expressions (and, or, not), symbolic comparison operators,
	// parentheses only where precedence needs them, and values quoted
	// only where the lexer needs it. Parse(e.String()) gives e back.
	String() string
}

// And is true when both sides are.
type And struct{ L, R Expr }

// Or is true when either side is.
type Or struct{ L, R Expr }

// Not is true when X is false.
type Not struct{ X Expr }

// Cond is one comparison: subject operator [argument].
type Cond struct {
	Subject Subject
	Op      Op
	// Args holds the argument: none for exists and !exists, one or more
	// for in and !in (the list), exactly one for every other operator.
	Args []string

	prep *prepared // compiled arguments, set by Parse
}

// SubjectKind names what a condition looks at.
type SubjectKind int

// The subjects of the cluster query language.
const (
	SubjectAgentConnected    SubjectKind = iota + 1 // agentConnected
	SubjectAgentVersion                             // agentVersion
	SubjectAttribute                                // attribute:<name>
	SubjectEC2InstanceID                            // ec2InstanceId
	SubjectRegisteredAt                             // registeredAt
	SubjectRunningTasksCount                        // runningTasksCount
	SubjectTaskGroup                                // task:group
)

var subjectNames = map[SubjectKind]string{
	SubjectAgentConnected:    "agentConnected",
	SubjectAgentVersion:      "agentVersion",
	SubjectEC2InstanceID:     "ec2InstanceId",
	SubjectRegisteredAt:      "registeredAt",
	SubjectRunningTasksCount: "runningTasksCount",
	SubjectTaskGroup:         "task:group",
}

// attributePrefix starts an attribute subject.
const attributePrefix = "attribute:"

// Subject is the left side of a condition. Attribute is the attribute's
// name when Kind is SubjectAttribute, and empty otherwise.
type Subject struct {
	Kind      SubjectKind
	Attribute string
}

func (s Subject) String() string {
	if s.Kind == SubjectAttribute {
		return attributePrefix + s.Attribute
	}
	return subjectNames[s.Kind]
}

// Op is a comparison operator.
type Op int

// The comparison operators. Each has a symbolic and a word spelling
// ("==" and "equals"); String gives the symbolic one.
const (
	OpEq         Op = iota + 1 // ==, equals
	OpNe                       // !=, not_equals
	OpGt                       // >, greater_than
	OpGe                       // >=, greater_than_equal
	OpLt                       // <, less_than
	OpLe                       // <=, less_than_equal
	OpExists                   // exists
	OpNotExists                // !exists, not_exists
	OpIn                       // in
	OpNotIn                    // !in, not_in
	OpMatches                  // =~, matches
	OpNotMatches               // !~, not_matches
)

var opSymbols = map[Op]string{
	OpEq: "==", OpNe: "!=", OpGt: ">", OpGe: ">=", OpLt: "<", OpLe: "<=",
	OpExists: "exists", OpNotExists: "!exists", OpIn: "in", OpNotIn: "!in",
	OpMatches: "=~", OpNotMatches: "!~",
}

// opWords maps the word spellings, in lower case, to operators.
var opWords = map[string]Op{
	"equals": OpEq, "not_equals": OpNe,
	"greater_than": OpGt, "greater_than_equal": OpGe,
	"less_than": OpLt, "less_than_equal": OpLe,
	"exists": OpExists, "not_exists": OpNotExists,
	"in": OpIn, "not_in": OpNotIn,
	"matches": OpMatches, "not_matches": OpNotMatches,
}

func (o Op) String() string {
	if s, ok := opSymbols[o]; ok {
		return s
	}
	return "?"
}

// negated reports whether o is one of the negative operators (!=, !in,
// !~) and returns its positive counterpart.
func (o Op) negated() (Op, bool) {
	switch o {
	case OpNe:
		return OpEq, true
	case OpNotIn:
		return OpIn, true
	case OpNotMatches:
		return OpMatches, true
	}
	return o, false
}

// validOps lists the operators each subject accepts. The lists for
// agentConnected, agentVersion, ec2InstanceId, registeredAt and
// runningTasksCount are ECS's documented ones; ECS documents none for
// attributes and task groups (see docs/placement.md).
var validOps = map[SubjectKind][]Op{
	SubjectAgentConnected:    {OpEq, OpNe, OpIn, OpNotIn, OpMatches, OpNotMatches},
	SubjectAgentVersion:      {OpEq, OpNe, OpGt, OpGe, OpLt, OpLe},
	SubjectAttribute:         {OpEq, OpNe, OpGt, OpGe, OpLt, OpLe, OpExists, OpNotExists, OpIn, OpNotIn, OpMatches, OpNotMatches},
	SubjectEC2InstanceID:     {OpEq, OpNe, OpIn, OpNotIn, OpMatches, OpNotMatches},
	SubjectRegisteredAt:      {OpEq, OpNe, OpGt, OpGe, OpLt, OpLe},
	SubjectRunningTasksCount: {OpEq, OpNe, OpGt, OpGe, OpLt, OpLe},
	SubjectTaskGroup:         {OpEq, OpNe, OpExists, OpNotExists, OpIn, OpNotIn, OpMatches, OpNotMatches},
}

// prepared holds a condition's arguments in the form evaluation needs.
type prepared struct {
	re   *regexp.Regexp // =~ and !~
	args []arg          // every other operator with arguments
}

// arg is one argument, parsed for the condition's subject.
type arg struct {
	raw     string
	star    bool      // raw contains the wildcard '*'
	num     float64   // attribute: raw as a number, when isNum
	isNum   bool      //
	version []int     // agentVersion
	at      time.Time // registeredAt
	day     bool      // registeredAt: a date without a time
	count   int64     // runningTasksCount
}

func (e *And) String() string {
	return wrap(e.L, isOr) + " and " + wrap(e.R, isBinary)
}

func (e *Or) String() string {
	return e.L.String() + " or " + wrap(e.R, isOr)
}

func (e *Not) String() string {
	return "not " + wrap(e.X, isBinary)
}

func (c *Cond) String() string {
	var b strings.Builder
	b.WriteString(c.Subject.String())
	b.WriteByte(' ')
	b.WriteString(c.Op.String())
	switch c.Op {
	case OpExists, OpNotExists:
	case OpIn, OpNotIn:
		b.WriteString(" [")
		for i, a := range c.Args {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(a, true))
		}
		b.WriteByte(']')
	default:
		b.WriteByte(' ')
		if len(c.Args) > 0 {
			b.WriteString(quote(c.Args[0], false))
		}
	}
	return b.String()
}

func isOr(e Expr) bool { _, ok := e.(*Or); return ok }

func isBinary(e Expr) bool {
	switch e.(type) {
	case *And, *Or:
		return true
	}
	return false
}

// wrap prints e, in parentheses when paren(e).
func wrap(e Expr, paren func(Expr) bool) string {
	if paren(e) {
		return "(" + e.String() + ")"
	}
	return e.String()
}

// isSpace is the lexer's notion of white space.
func isSpace(r rune) bool { return unicode.IsSpace(r) }

// isDelimiter reports whether r ends an unquoted value: white space,
// parentheses and quotes do, and in a list brackets and commas too.
func isDelimiter(r rune, inList bool) bool {
	switch r {
	case '(', ')', '\'', '"':
		return true
	case '[', ']', ',':
		return inList
	}
	return isSpace(r)
}

// quote returns v as the lexer reads it back: bare when it is a non-empty
// run of non-delimiters (not starting with [ outside a list, which would
// start one), else in single quotes with \ and ' escaped.
func quote(v string, inList bool) string {
	bare := v != "" && v[0] != '['
	for i := 0; bare && i < len(v); {
		r, n := utf8.DecodeRuneInString(v[i:])
		bare = !isDelimiter(r, inList)
		i += n
	}
	if bare {
		return v
	}
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' || v[i] == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('\'')
	return b.String()
}
