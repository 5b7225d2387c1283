package logfilter

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// seedPatterns are every pattern of the tests, for the fuzzers' corpus.
func seedPatterns() []string {
	var ps []string
	for _, c := range awsExamples {
		ps = append(ps, c.pattern)
	}
	for _, c := range edgeCases {
		ps = append(ps, c.pattern)
	}
	for _, c := range parseErrors {
		if len(c.pattern) <= MaxPatternLength {
			ps = append(ps, c.pattern)
		}
	}
	return ps
}

// FuzzParse checks that Parse never panics and is deterministic: the same
// pattern gives the same error, or two patterns that match the same
// messages.
func FuzzParse(f *testing.F) {
	for _, s := range seedPatterns() {
		f.Add(s)
	}
	msgs := []string{"", "ERROR WARN message", evJSON, evUsers, evApache404, `{"a": [1, {"b": null}], "c": "x"}`, "[a b] \"c d\" e"}
	f.Fuzz(func(t *testing.T, s string) {
		p1, err1 := Parse(s)
		p2, err2 := Parse(s)
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
			t.Fatalf("Parse(%q) not deterministic: %v / %v", s, err1, err2)
		}
		if err1 != nil {
			return
		}
		for _, m := range msgs {
			if a, b := p1.Match(m), p2.Match(m); a != b {
				t.Fatalf("Parse(%q): two parses disagree on %q: %v, %v", s, m, a, b)
			}
		}
	})
}

// FuzzMatch checks that Match never panics and is deterministic, and
// checks its two hand-written parts against slow references: the JSON
// scanner against encoding/json's tokenizer, and the matching of fields
// and ellipses against an exhaustive search.
func FuzzMatch(f *testing.F) {
	for _, c := range append(append([]matchCase{}, awsExamples...), edgeCases...) {
		f.Add(c.pattern, c.message)
	}
	f.Fuzz(func(t *testing.T, pattern, msg string) {
		p, err := Parse(pattern)
		if err != nil {
			return
		}
		got := p.Match(msg)
		if again := p.Match(msg); again != got {
			t.Fatalf("Match(%q, %q) not deterministic", pattern, msg)
		}
		if mine, std := isJSONObject(msg), json.Valid([]byte(msg)) && strings.HasPrefix(strings.TrimLeft(msg, " \t\r\n"), "{"); mine != std {
			t.Fatalf("isJSONObject(%q) = %v, json.Valid says %v", msg, mine, std)
		}
		switch p.kind {
		case kindWord:
			if want := p.groups[0].match(msg); want != got {
				t.Fatalf("Match(%q, %q) = %v on the one-word path, %v on the general one", pattern, msg, got, want)
			}
		case kindJSON:
			checkJSONLookups(t, p.json, msg)
		case kindFields:
			if want := slowMatchFields(p.fields, splitFields(msg, nil)); want != got {
				t.Fatalf("Match(%q, %q) = %v; the exhaustive search says %v", pattern, msg, got, want)
			}
		}
	})
}

// checkJSONLookups compares lookup with refLookup for every selector of e.
func checkJSONLookups(t *testing.T, e expr, msg string) {
	switch e := e.(type) {
	case *andExpr:
		checkJSONLookups(t, e.l, msg)
		checkJSONLookups(t, e.r, msg)
	case *orExpr:
		checkJSONLookups(t, e.l, msg)
		checkJSONLookups(t, e.r, msg)
	case *jsonCond:
		if !isJSONObject(msg) {
			return
		}
		root, ok := refParse(msg)
		if !ok {
			t.Fatalf("isJSONObject(%q) but encoding/json cannot read it", msg)
		}
		k, raw := lookup(msg, e.path)
		wk, wraw := refLookup(root, e.path)
		if k == jString {
			var s string
			if err := json.Unmarshal([]byte(`"`+raw+`"`), &s); err != nil {
				t.Fatalf("lookup(%q, %v) gave string %q, which does not decode: %v", msg, e.path, raw, err)
			}
			raw = s
		}
		if k != wk || (k == jString || k == jNumber) && raw != wraw {
			t.Fatalf("lookup(%q, %v) = %v %q; encoding/json says %v %q", msg, e.path, k, raw, wk, wraw)
		}
	}
}

// refValue is a JSON value read by encoding/json, objects kept in order.
type refValue struct {
	kind jkind
	text string // decoded string, or number as written
	keys []string
	vals []*refValue
}

func refParse(msg string) (*refValue, bool) {
	d := json.NewDecoder(bytes.NewReader([]byte(msg)))
	d.UseNumber()
	v, err := refRead(d)
	if err != nil {
		return nil, false
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

func refRead(d *json.Decoder) (*refValue, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		v := &refValue{kind: jArray}
		if tok == '{' {
			v.kind = jObject
		}
		for d.More() {
			if v.kind == jObject {
				k, err := d.Token()
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, k.(string))
			}
			e, err := refRead(d)
			if err != nil {
				return nil, err
			}
			v.vals = append(v.vals, e)
		}
		_, err := d.Token() // the closing delimiter
		return v, err
	case string:
		return &refValue{kind: jString, text: tok}, nil
	case json.Number:
		return &refValue{kind: jNumber, text: string(tok)}, nil
	case bool:
		if tok {
			return &refValue{kind: jTrue}, nil
		}
		return &refValue{kind: jFalse}, nil
	}
	return &refValue{kind: jNull}, nil
}

func refLookup(v *refValue, path []step) (jkind, string) {
	for _, st := range path {
		var next *refValue
		switch {
		case st.key == "" && v.kind == jArray && st.index < len(v.vals):
			next = v.vals[st.index]
		case st.key != "" && v.kind == jObject:
			for i, k := range v.keys {
				if k == st.key {
					next = v.vals[i]
					break
				}
			}
		}
		if next == nil {
			return jMissing, ""
		}
		v = next
	}
	return v.kind, v.text
}

// slowMatchFields matches positions to fields by trying every number of
// fields for every "..." (remembering what failed, so that many "..."
// stay polynomial).
func slowMatchFields(ps []position, fs []string) bool {
	failed := map[[2]int]bool{}
	var match func(ps []position, fs []string) bool
	match = func(ps []position, fs []string) bool {
		key := [2]int{len(ps), len(fs)}
		if failed[key] {
			return false
		}
		ok := false
		switch {
		case len(ps) == 0:
			ok = len(fs) == 0
		case ps[0].ellipsis:
			for n := 0; n <= len(fs) && !ok; n++ {
				ok = match(ps[1:], fs[n:])
			}
		default:
			ok = len(fs) > 0 && (ps[0].cond == nil || ps[0].cond.eval(fs[0])) && match(ps[1:], fs[1:])
		}
		if !ok {
			failed[key] = true
		}
		return ok
	}
	return match(ps, fs)
}

// TestJSONValidity compares isJSONObject with json.Valid on inputs that
// probe each rule of the grammar.
func TestJSONValidity(t *testing.T) {
	for _, s := range []string{
		`{}`, ` {} `, `{`, `}`, `{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{"a":}`, `{a:1}`, `{"a":1}{}`, `{"a":1} x`,
		`{"a":[]}`, `{"a":[1,]}`, `{"a":[1 2]}`, `{"a":[[[]]]}`, `{"a":tru}`, `{"a":true}`, `{"a":nul}`, `{"a":falsey}`,
		`{"a":-}`, `{"a":-0}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":1e+}`, `{"a":1E-7}`, `{"a":-1.5e+10}`,
		`{"a":"\u00e9"}`, `{"a":"\u00g9"}`, `{"a":"\u00e"}`, `{"a":"\x"}`, `{"a":"\/\b\f\n\r\t\"\\"}`, "{\"a\":\"\x01\"}",
		"{\"a\":\"\xff\"}", `{"a":"unterminated}`, `{"a":"b\"}`, "{\"a\":1}\n", "\t{\"a\"\n:\r1 }", `[]`, `"x"`, `1`,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		`{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
		`{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	} {
		want := json.Valid([]byte(s)) && strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), "{")
		if got := isJSONObject(s); got != want {
			t.Errorf("isJSONObject(%.40q) = %v, json.Valid says %v", s, got, want)
		}
	}
}
