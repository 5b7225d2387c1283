package eventpattern

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzPatterns = []string{
	`{"source":["aws.ec2"],"detail":{"state":["running","initializing"]}}`,
	`{"time":[{"prefix":"2017-10-02"}],"detail":{"c-count":[{"numeric":[">",0,"<=",5]}]}}`,
	`{"detail":{"state":[{"anything-but":{"prefix":["init","err"]}}],"x":[{"exists":false}]}}`,
	`{"$or":[{"a":[1,null,true]},{"b":{"c":[{"wildcard":"x*y\\*z"}]}}]}`,
	`{"ip":[{"cidr":"10.0.0.0/8"},{"cidr":"2001:db8::/32"}],"n":[{"anything-but":[1,2.5]}]}`,
	`{"s":[{"suffix":{"equals-ignore-case":".PNG"}},{"equals-ignore-case":"straße"}]}`,
	`{"employees":{"firstName":["Anna"],"lastName":[{"anything-but":{"wildcard":"J*s"}}]}}`,
}

var fuzzEvents = []string{
	`{"source":"aws.ec2","time":"2017-10-02T00:00:00Z","detail":{"state":"running","c-count":5}}`,
	`{"a":[1,[2,[null]]],"b":[{"c":"xAAy*z"},{"c":"q"}],"ip":"10.1.2.3","n":2.50}`,
	`{"s":"Cat.png","employees":[{"firstName":"Anna","lastName":"Jones"},{"firstName":"Anna","lastName":"Smith"}]}`,
	`{"ip":"2001:db8::1","s":"STRASSE","detail":{"state":["init","run"],"x":{}}}`,
	`{"a":"\u0041\ud83d\ude00\n","b":{"c":["x\\y"]}}`,
}

// FuzzCompile checks that Compile never panics, fails only with *Error at
// an offset inside the pattern, and that an accepted pattern matches the
// seed events without panicking and the same way alone and in a Set.
func FuzzCompile(f *testing.F) {
	for _, p := range fuzzPatterns {
		f.Add(p)
	}
	for _, p := range []string{`{}`, `{"a":[{"numeric":["<",1,">",0]}]}`, `{"a":[{"wildcard":"**"}]}`, `[`, `{"$or":[{},{}]}`} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pattern string) {
		p, err := Compile([]byte(pattern))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if e.Offset < 0 || e.Offset > len(pattern) || e.Line < 1 || e.Column < 1 || e.Reason == "" {
				t.Fatalf("bad error position or reason: %+v", e)
			}
			if !strings.HasPrefix(e.Error(), "Event pattern is not valid. Reason: ") {
				t.Fatalf("message %q", e.Error())
			}
			return
		}
		if !json.Valid([]byte(pattern)) {
			t.Fatalf("Compile accepted invalid JSON %q", pattern)
		}
		s := NewSet()
		s.Put("p", p)
		for _, ev := range fuzzEvents {
			alone, err := p.Match([]byte(ev))
			if err != nil {
				t.Fatal(err)
			}
			ids, err := s.Match([]byte(ev))
			if err != nil {
				t.Fatal(err)
			}
			if alone != (len(ids) == 1) {
				t.Fatalf("pattern %s on %s: Match %v, Set.Match %v", pattern, ev, alone, ids)
			}
		}
	})
}

// FuzzMatch checks that matching never panics, that events are accepted
// exactly when they are JSON objects (compared with encoding/json), and
// that a Set answers what the patterns answer one by one.
func FuzzMatch(f *testing.F) {
	for _, ev := range fuzzEvents {
		f.Add(ev)
	}
	for _, ev := range []string{`[]`, `{"a":01}`, `{"a":"\u12"}`, `{"a":1e999}`, `{"a" : [ ] }`, ` {"a":-0.0e+1} `, `{"a":"\ud800\u0041\udc00\ud83d\ude00"}`} {
		f.Add(ev)
	}
	var pats []*Pattern
	s := NewSet()
	for i, src := range fuzzPatterns {
		p, err := Compile([]byte(src))
		if err != nil {
			f.Fatal(err)
		}
		pats = append(pats, p)
		s.Put(string(rune('a'+i)), p)
	}
	f.Fuzz(func(t *testing.T, ev string) {
		ids, err := s.Match([]byte(ev))
		var obj map[string]json.RawMessage
		isObject := json.Unmarshal([]byte(ev), &obj) == nil && strings.HasPrefix(strings.TrimLeft(ev, " \t\r\n"), "{")
		if err != nil {
			var e *EventError
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *EventError", err)
			}
			if isObject && !strings.Contains(e.Reason, "nesting too deep") {
				t.Fatalf("refused a JSON object %q: %v", ev, err)
			}
			return
		}
		if !isObject {
			t.Fatalf("accepted %q, which is not a JSON object", ev)
		}
		// The parsed tree is what encoding/json decodes (for valid UTF-8,
		// which encoding/json would otherwise rewrite).
		if utf8.ValidString(ev) {
			var want any
			d := json.NewDecoder(strings.NewReader(ev))
			d.UseNumber()
			if err := d.Decode(&want); err != nil {
				t.Fatal(err)
			}
			v, perr := parseJSON(ev)
			if perr != nil {
				t.Fatal(perr.msg)
			}
			if got := toAny(&v); !reflect.DeepEqual(got, want) {
				t.Fatalf("parsed %q as %#v, encoding/json says %#v", ev, got, want)
			}
		}
		var want []string
		for i, p := range pats {
			ok, err := p.Match([]byte(ev))
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				want = append(want, string(rune('a'+i)))
			}
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("Set.Match %v, patterns %v on %q", ids, want, ev)
		}
	})
}

// toAny converts a parsed value to what encoding/json decodes with
// UseNumber (the last of repeated names wins in both).
func toAny(v *value) any {
	switch v.kind {
	case kNull:
		return nil
	case kTrue:
		return true
	case kFalse:
		return false
	case kNumber:
		return json.Number(v.str)
	case kString:
		return v.str
	case kArray:
		out := []any{}
		for i := range v.elems {
			out = append(out, toAny(&v.elems[i]))
		}
		return out
	}
	out := map[string]any{}
	for i := range v.elems {
		out[v.elems[i].key] = toAny(&v.elems[i])
	}
	return out
}
