package metricmath

import (
	"fmt"
	"strconv"
	"strings"
)

// Expr is a parsed expression.
type Expr interface{ String() string }

// Num is a number literal.
type Num struct{ V float64 }

// Ref names another query by its Id.
type Ref struct{ ID string }

// Str is a string literal (only as a function argument).
type Str struct{ S string }

// Neg is unary minus.
type Neg struct{ X Expr }

// Binary is X Op Y with Op one of + - * /.
type Binary struct {
	Op   byte
	X, Y Expr
}

// Call is a function call; Name is upper-case.
type Call struct {
	Name string
	Args []Expr
}

func (n Num) String() string { return strconv.FormatFloat(n.V, 'g', -1, 64) }
func (r Ref) String() string { return r.ID }
func (s Str) String() string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s.S) + `"`
}
func (n Neg) String() string { return "-(" + n.X.String() + ")" }
func (b Binary) String() string {
	return "(" + b.X.String() + " " + string(b.Op) + " " + b.Y.String() + ")"
}
func (c Call) String() string {
	if c.Name == arrayFunc {
		args := make([]string, len(c.Args))
		for i, a := range c.Args {
			args[i] = a.String()
		}
		return "[" + strings.Join(args, ", ") + "]"
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = a.String()
	}
	return c.Name + "(" + strings.Join(args, ", ") + ")"
}

// MaxLength is the longest expression accepted (CloudWatch's limit).
const MaxLength = 2048

// maxDepth bounds nesting so a hostile expression cannot exhaust the stack.
const maxDepth = 100

// Error is a syntax or evaluation error; Pos is the byte offset (0-based)
// where it was found, or -1.
type Error struct {
	Pos int
	Msg string
}

func (e *Error) Error() string {
	if e.Pos < 0 {
		return e.Msg
	}
	return fmt.Sprintf("%s at position %d", e.Msg, e.Pos+1)
}

type tokKind int

const (
	tEOF tokKind = iota
	tNum
	tIdent
	tStr
	tOp // + - * / ( ) ,
)

type token struct {
	kind tokKind
	text string
	num  float64
	pos  int
}

func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.IndexByte("+-*/(),[]", c) >= 0:
			out = append(out, token{kind: tOp, text: string(c), pos: i})
			i++
		case c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
				j++
			}
			if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
				k := j + 1
				if k < len(s) && (s[k] == '+' || s[k] == '-') {
					k++
				}
				if k < len(s) && s[k] >= '0' && s[k] <= '9' {
					for k < len(s) && s[k] >= '0' && s[k] <= '9' {
						k++
					}
					j = k
				}
			}
			v, err := strconv.ParseFloat(s[i:j], 64)
			if err != nil {
				return nil, &Error{i, fmt.Sprintf("invalid number %q", s[i:j])}
			}
			out = append(out, token{kind: tNum, text: s[i:j], num: v, pos: i})
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			out = append(out, token{kind: tIdent, text: s[i:j], pos: i})
			i = j
		case c == '"' || c == '\'':
			j := i + 1
			var b strings.Builder
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, &Error{i, "unterminated string"}
			}
			out = append(out, token{kind: tStr, text: b.String(), pos: i})
			i = j + 1
		default:
			return nil, &Error{i, fmt.Sprintf("unexpected character %q", rune(c))}
		}
	}
	return append(out, token{kind: tEOF, pos: len(s)}), nil
}

type parser struct {
	toks  []token
	i     int
	depth int
}

// Parse parses an expression.
func Parse(s string) (Expr, error) {
	if strings.TrimSpace(s) == "" {
		return nil, &Error{-1, "empty expression"}
	}
	if len(s) > MaxLength {
		return nil, &Error{-1, fmt.Sprintf("expression longer than %d characters", MaxLength)}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	e, err := p.sum()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, &Error{t.pos, fmt.Sprintf("unexpected %q", t.text)}
	}
	return e, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

func (p *parser) isOp(s string) bool { t := p.peek(); return t.kind == tOp && t.text == s }

func (p *parser) sum() (Expr, error) {
	x, err := p.product()
	if err != nil {
		return nil, err
	}
	for p.isOp("+") || p.isOp("-") {
		op := p.next().text[0]
		y, err := p.product()
		if err != nil {
			return nil, err
		}
		x = Binary{Op: op, X: x, Y: y}
	}
	return x, nil
}

func (p *parser) product() (Expr, error) {
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.isOp("*") || p.isOp("/") {
		op := p.next().text[0]
		y, err := p.unary()
		if err != nil {
			return nil, err
		}
		x = Binary{Op: op, X: x, Y: y}
	}
	return x, nil
}

func (p *parser) unary() (Expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, &Error{p.peek().pos, "expression nested too deeply"}
	}
	if p.isOp("-") {
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return Neg{x}, nil
	}
	if p.isOp("+") {
		p.next()
		return p.unary()
	}
	return p.primary()
}

func (p *parser) primary() (Expr, error) {
	t := p.next()
	switch t.kind {
	case tNum:
		return Num{t.num}, nil
	case tStr:
		return Str{t.text}, nil
	case tIdent:
		if p.isOp("(") {
			p.next()
			name := strings.ToUpper(t.text)
			if !knownFunc(name) {
				return nil, &Error{t.pos, fmt.Sprintf("unknown function %s", t.text)}
			}
			var args []Expr
			if !p.isOp(")") {
				for {
					a, err := p.sum()
					if err != nil {
						return nil, err
					}
					args = append(args, a)
					if !p.isOp(",") {
						break
					}
					p.next()
				}
			}
			if !p.isOp(")") {
				return nil, &Error{p.peek().pos, "expected )"}
			}
			p.next()
			return Call{Name: name, Args: args}, nil
		}
		if t.text[0] < 'a' || t.text[0] > 'z' {
			return nil, &Error{t.pos, fmt.Sprintf("unknown identifier %s", t.text)}
		}
		return Ref{t.text}, nil
	case tOp:
		if t.text == "[" {
			var args []Expr
			for {
				a, err := p.sum()
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			if !p.isOp("]") {
				return nil, &Error{p.peek().pos, "expected ]"}
			}
			p.next()
			return Call{Name: arrayFunc, Args: args}, nil
		}
		if t.text == "(" {
			x, err := p.sum()
			if err != nil {
				return nil, err
			}
			if !p.isOp(")") {
				return nil, &Error{p.peek().pos, "expected )"}
			}
			p.next()
			return x, nil
		}
		return nil, &Error{t.pos, fmt.Sprintf("unexpected %q", t.text)}
	}
	return nil, &Error{t.pos, "unexpected end of expression"}
}

// Refs returns the Ids an expression refers to directly (not through
// METRICS()), in order of appearance, without duplicates.
func Refs(e Expr) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(Expr)
	walk = func(e Expr) {
		switch e := e.(type) {
		case Ref:
			if !seen[e.ID] {
				seen[e.ID] = true
				out = append(out, e.ID)
			}
		case Neg:
			walk(e.X)
		case Binary:
			walk(e.X)
			walk(e.Y)
		case Call:
			for _, a := range e.Args {
				walk(a)
			}
		}
	}
	walk(e)
	return out
}

// UsesMetrics reports whether e calls METRICS().
func UsesMetrics(e Expr) bool {
	switch e := e.(type) {
	case Neg:
		return UsesMetrics(e.X)
	case Binary:
		return UsesMetrics(e.X) || UsesMetrics(e.Y)
	case Call:
		if e.Name == "METRICS" {
			return true
		}
		for _, a := range e.Args {
			if UsesMetrics(a) {
				return true
			}
		}
	}
	return false
}
