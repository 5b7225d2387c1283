package eventpattern

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// leafPath is a scalar in an event and the object names leading to it
// (arrays are looked through, as patterns do).
type leafPath struct {
	path []string
	val  any
}

func leaves(v any, path []string, out []leafPath) []leafPath {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			out = leaves(c, append(append([]string(nil), path...), k), out)
		}
	case []any:
		for _, c := range x {
			out = leaves(c, path, out)
		}
	default:
		out = append(out, leafPath{path, x})
	}
	return out
}

// patternAt nests leaf under the path's names.
func patternAt(path []string, leaf string) string {
	s := leaf
	for i := len(path) - 1; i >= 0; i-- {
		k, _ := json.Marshal(path[i])
		s = fmt.Sprintf("{%s:%s}", k, s)
	}
	return s
}

// TestPatternsFromEvents derives patterns from an event's own values and
// checks what each filter must say about them: the value, a prefix of it,
// exists, numeric = and case-folded equality match; exists false,
// anything-but the value (when the field has no other value) and a
// different value do not.
func TestPatternsFromEvents(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	checked := 0
	for i := 0; i < 200; i++ {
		raw := ecsTaskEvent(r)
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		all := leaves(ev, nil, nil)
		lp := all[r.Intn(len(all))]
		// How many scalars share the path (anything-but needs the field to
		// have no other value).
		same, greater := 0, false
		for _, o := range all {
			if strings.Join(o.path, "\x00") == strings.Join(lp.path, "\x00") {
				same++
				if f, ok := o.val.(float64); ok {
					if x, ok := lp.val.(float64); ok && f > x {
						greater = true
					}
				}
			}
		}
		lit, _ := json.Marshal(lp.val)
		expect := func(leaf string, want bool) {
			t.Helper()
			pat := patternAt(lp.path, leaf)
			p, err := Compile([]byte(pat))
			if err != nil {
				t.Fatalf("%s: %v", pat, err)
			}
			got, err := p.Match(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("%s on %s: %v, want %v", pat, raw, got, want)
			}
			checked++
		}
		expect("["+string(lit)+"]", true)
		expect(`[{"exists":true}]`, true)
		expect(`[{"exists":false}]`, false)
		switch x := lp.val.(type) {
		case string:
			expect(`["`+"\u2603"+`x"]`, false)
			n := r.Intn(len(x) + 1)
			pre, _ := json.Marshal(x[:n])
			suf, _ := json.Marshal(x[n:])
			if n > 0 {
				expect(`[{"prefix":`+string(pre)+`}]`, true)
			}
			expect(`[{"suffix":`+string(suf)+`}]`, true)
			expect(`[{"equals-ignore-case":`+strings.ToUpper(string(lit))+`}]`, true)
			expect(`[{"wildcard":`+strings.ReplaceAll(string(pre), "*", `\\*`)+`}]`, n == len(x))
			if same == 1 {
				expect(`[{"anything-but":`+string(lit)+`}]`, false)
				expect(`[{"anything-but":["`+"\u2603"+`"]}]`, true)
			}
		case float64:
			expect(fmt.Sprintf(`[{"numeric":["=",%s]}]`, lit), true)
			expect(fmt.Sprintf(`[{"numeric":[">",%s]}]`, lit), greater)
			expect(fmt.Sprintf(`[%v]`, x+0.5), false)
			expect(fmt.Sprintf(`[%se0]`, lit), true)
			if same == 1 {
				expect(`[{"anything-but":`+string(lit)+`}]`, false)
			}
		}
	}
	if checked < 1000 {
		t.Errorf("only %d checks", checked)
	}
}
