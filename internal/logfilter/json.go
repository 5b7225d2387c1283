package logfilter

import (
	"encoding/json"
	"strings"
)

// step is one step of a property selector: a property name, or an array
// index (index >= 0, key "").
type step struct {
	key   string
	index int
}

// jsonCond is a condition of a JSON pattern.
type jsonCond struct {
	path []step
	op   op
	arg  operand
}

// jkind is the kind of JSON value a selector reaches.
type jkind uint8

const (
	jMissing jkind = iota
	jString
	jNumber
	jTrue
	jFalse
	jNull
	jObject
	jArray
)

// eval applies the condition to a message already known to be a JSON
// object.
//
// NOT EXISTS holds when the selector reaches nothing; IS TRUE, IS FALSE
// and IS NULL when it reaches that literal. The comparisons hold only on
// a value node (a string, number or boolean): never on a missing
// property, null, an object or an array, whatever the operator (so both
// $.users = 1 and $.users != 1 are false when users is an array). = and
// != compare two numbers as numbers and anything else as text (a
// string's decoded value, a number or boolean as written) with the
// operand's wildcards or regular expression; <, <=, >, >= need a number.
func (c *jsonCond) eval(msg string) bool {
	k, raw := lookup(msg, c.path)
	switch c.op {
	case opNotExists:
		return k == jMissing
	case opIsTrue:
		return k == jTrue
	case opIsFalse:
		return k == jFalse
	case opIsNull:
		return k == jNull
	}
	var num float64
	isNum := false
	switch k {
	case jString:
		if strings.IndexByte(raw, '\\') >= 0 {
			var s string
			if json.Unmarshal([]byte(`"`+raw+`"`), &s) == nil {
				raw = s
			}
		}
	case jNumber:
		num, isNum = parseNumber(raw)
	case jTrue, jFalse:
	default:
		return false
	}
	switch c.op {
	case opEq:
		return c.arg.equal(raw, num, isNum)
	case opNe:
		return !c.arg.equal(raw, num, isNum)
	}
	return isNum && compare(c.op, num, c.arg.num)
}

// isJSONObject reports whether msg is one well-formed JSON object.
func isJSONObject(msg string) bool {
	i := skipWS(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return false
	}
	end, ok := validValue(msg, i, 0)
	return ok && skipWS(msg, end) == len(msg)
}

// maxDepth is how deeply arrays and objects may nest, as in
// encoding/json.
const maxDepth = 10000

// validValue checks the JSON value that starts at s[i], which is not
// white space, and returns the index just past it. It accepts what
// json.Valid accepts (FuzzMatch checks that) several times faster, since
// Match checks every event of a JSON pattern.
func validValue(s string, i, depth int) (int, bool) {
	if i >= len(s) {
		return i, false
	}
	switch s[i] {
	case '"':
		return validString(s, i)
	case '{', '[':
		if depth >= maxDepth {
			return i, false
		}
		closer := byte('}')
		if s[i] == '[' {
			closer = ']'
		}
		i = skipWS(s, i+1)
		if i < len(s) && s[i] == closer {
			return i + 1, true
		}
		for {
			var ok bool
			if closer == '}' {
				if i >= len(s) || s[i] != '"' {
					return i, false
				}
				if i, ok = validString(s, i); !ok {
					return i, false
				}
				i = skipWS(s, i)
				if i >= len(s) || s[i] != ':' {
					return i, false
				}
				i = skipWS(s, i+1)
			}
			if i, ok = validValue(s, i, depth+1); !ok {
				return i, false
			}
			i = skipWS(s, i)
			switch {
			case i >= len(s):
				return i, false
			case s[i] == ',':
				i = skipWS(s, i+1)
			case s[i] == closer:
				return i + 1, true
			default:
				return i, false
			}
		}
	case 't':
		return i + 4, strings.HasPrefix(s[i:], "true")
	case 'f':
		return i + 5, strings.HasPrefix(s[i:], "false")
	case 'n':
		return i + 4, strings.HasPrefix(s[i:], "null")
	}
	return validNumber(s, i)
}

// validString checks the string that starts at s[i].
func validString(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return j, false
		case c == '\\':
			j++
			if j >= len(s) {
				return j, false
			}
			switch s[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s) {
					return j, false
				}
				for _, h := range []byte(s[j+1 : j+5]) {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return j, false
					}
				}
				j += 4
			default:
				return j, false
			}
		}
	}
	return len(s), false
}

// validNumber checks the number that starts at s[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(s string, i int) (int, bool) {
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i >= len(s):
		return i, false
	case s[i] == '0':
		i++
	case '1' <= s[i] && s[i] <= '9':
		i = skipDigits(s, i)
	default:
		return i, false
	}
	if i < len(s) && s[i] == '.' {
		j := skipDigits(s, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := skipDigits(s, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func skipDigits(s string, i int) int {
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i
}

// lookup follows path from the root of msg, a valid JSON object, and
// returns the kind of value it reaches and its text: a string's contents
// between the quotes (still escaped), or a literal or number as written.
// When a property appears more than once, the first one counts.
func lookup(s string, path []step) (jkind, string) {
	i := skipWS(s, 0)
	for _, st := range path {
		if st.key == "" {
			if s[i] != '[' {
				return jMissing, ""
			}
			i = skipWS(s, i+1)
			if s[i] == ']' {
				return jMissing, ""
			}
			for n := 0; n < st.index; n++ {
				i = skipWS(s, skipValue(s, i))
				if s[i] == ']' {
					return jMissing, ""
				}
				i = skipWS(s, i+1) // the comma
			}
			continue
		}
		if s[i] != '{' {
			return jMissing, ""
		}
		i = skipWS(s, i+1)
		if s[i] == '}' {
			return jMissing, ""
		}
		for {
			end := stringEnd(s, i)
			key := s[i+1 : end-1]
			i = skipWS(s, skipWS(s, end)+1) // past the colon
			if keyIs(key, st.key) {
				break
			}
			i = skipWS(s, skipValue(s, i))
			if s[i] == '}' {
				return jMissing, ""
			}
			i = skipWS(s, i+1) // the comma
		}
	}
	switch s[i] {
	case '"':
		return jString, s[i+1 : stringEnd(s, i)-1]
	case '{':
		return jObject, ""
	case '[':
		return jArray, ""
	case 't':
		return jTrue, "true"
	case 'f':
		return jFalse, "false"
	case 'n':
		return jNull, "null"
	}
	return jNumber, s[i:skipValue(s, i)]
}

// keyIs reports whether a property name as written in the message (still
// escaped) is want.
func keyIs(key, want string) bool {
	if strings.IndexByte(key, '\\') < 0 {
		return key == want
	}
	var s string
	return json.Unmarshal([]byte(`"`+key+`"`), &s) == nil && s == want
}

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that starts at s[i].
func stringEnd(s string, i int) int {
	j := i + 1
	for {
		q := strings.IndexByte(s[j:], '"')
		if q < 0 {
			return len(s)
		}
		if strings.IndexByte(s[j:j+q], '\\') < 0 {
			return j + q + 1
		}
		// Walk this stretch escape by escape.
		for j < len(s) {
			switch s[j] {
			case '\\':
				j += 2
				continue
			case '"':
				return j + 1
			}
			j++
		}
		return len(s)
	}
}

// skipValue returns the index just past the value that starts at s[i].
func skipValue(s string, i int) int {
	switch s[i] {
	case '"':
		return stringEnd(s, i)
	case '{', '[':
		depth := 0
		for i < len(s) {
			switch s[i] {
			case '"':
				i = stringEnd(s, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(s)
	}
	for i < len(s) && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
		i++
	}
	return i
}
