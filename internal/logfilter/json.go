package logfilter

import (
	"encoding/json"
	"strings"
	"unsafe"
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
	// json.Valid only reads the bytes; the string's memory is not copied.
	return json.Valid(unsafe.Slice(unsafe.StringData(msg), len(msg)))
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
