package metricmath

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 2, 12, 10, 0, 0, 0, time.UTC)

func ser(id string, start int, vals ...float64) Series {
	s := Series{ID: id, Label: id}
	for i, v := range vals {
		s.Times = append(s.Times, t0.Add(time.Duration(start+i)*time.Minute))
		s.Values = append(s.Values, v)
	}
	return s
}

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"m1+m2*2":                   "(m1 + (m2 * 2))",
		"(m1 + m2) / 2":             "((m1 + m2) / 2)",
		"-m1 - -3":                  "(-(m1) - -(3))",
		"sum(METRICS())":            "SUM(METRICS())",
		`AVG(METRICS("errors"))`:    `AVG(METRICS("errors"))`,
		"SUM([m1, m2 * 100]) / 1e3": "(SUM([m1, (m2 * 100)]) / 1000)",
		"m1 / m2 - 1.5 + ABS(m_3)":  "(((m1 / m2) - 1.5) + ABS(m_3))",
	} {
		e, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if e.String() != want {
			t.Errorf("Parse(%q) = %s, want %s", in, e, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":            "empty expression",
		"m1 +":        "unexpected end of expression at position 5",
		"m1 m2":       `unexpected "m2" at position 4`,
		"FOO(m1)":     "unknown function FOO at position 1",
		"M1 + 1":      "unknown identifier M1 at position 1",
		"(m1 + 2":     "expected ) at position 8",
		"m1 # 2":      "unexpected character '#' at position 4",
		`METRICS("x`:  "unterminated string at position 9",
		"SUM([m1, m2": "expected ] at position 12",
	} {
		_, err := Parse(in)
		if err == nil || err.Error() != want {
			t.Errorf("Parse(%q) error = %v, want %q", in, err, want)
		}
	}
	if _, err := Parse(strings.Repeat("(", 500) + "m1" + strings.Repeat(")", 500)); err == nil {
		t.Error("deep nesting accepted")
	}
	if _, err := Parse(strings.Repeat("m1+", 700) + "m1"); err == nil {
		t.Error("over-long expression accepted")
	}
}

func eval(t *testing.T, expr string, env Env) Value {
	t.Helper()
	e, err := Parse(expr)
	if err != nil {
		t.Fatalf("Parse(%q): %v", expr, err)
	}
	v, err := Eval(e, env)
	if err != nil {
		t.Fatalf("Eval(%q): %v", expr, err)
	}
	return v
}

func TestEval(t *testing.T) {
	m1 := ser("m1", 0, 1, 2, 3, 4)
	m2 := ser("m2", 1, 10, 20, 0) // minutes 1..3
	errs := ser("errors_a", 0, 5, 5)
	env := Env{
		Results: map[string]Value{"m1": SeriesValue(m1), "m2": SeriesValue(m2), "errors_a": SeriesValue(errs)},
		Metrics: []Series{m1, m2, errs},
	}
	check := func(expr string, wantStart int, want ...float64) {
		t.Helper()
		v := eval(t, expr, env)
		if v.IsScalar || len(v.Series) != 1 {
			t.Fatalf("%s: got %+v, want one series", expr, v)
		}
		s := v.Series[0]
		if !slices.Equal(s.Values, want) {
			t.Errorf("%s = %v, want %v", expr, s.Values, want)
		}
		if len(s.Times) > 0 && !s.Times[0].Equal(t0.Add(time.Duration(wantStart)*time.Minute)) {
			t.Errorf("%s starts at %v", expr, s.Times[0])
		}
	}
	check("m1 * 2 + 1", 0, 3, 5, 7, 9)
	check("m1 + m2", 1, 12, 23, 4)           // joined on common timestamps
	check("m2 / m1", 1, 5, 20.0/3, 0)        // 0/4 is 0
	check("m1 / (m2 - 20)", 1, -0.2, -0.2)   // 2/-10, 3/0 dropped, 4/-20
	check("SUM(METRICS())", 0, 6, 17, 23, 4) // per timestamp
	check(`MAX(METRICS("m"))`, 0, 1, 10, 20, 4)
	check("MIN([m1, m2])", 0, 1, 2, 3, 0)
	check("AVG([m1, m2])", 0, 1, 6, 11.5, 2)
	check("m1 - AVG(m1)", 0, -1.5, -0.5, 0.5, 1.5) // AVG of one series is a scalar
	check("ABS(m1 - 3)", 0, 2, 1, 0, 1)
	check("-m1", 0, -1, -2, -3, -4)

	if v := eval(t, "SUM(m1) / 2", env); !v.IsScalar || v.Scalar != 5 {
		t.Errorf("SUM(m1)/2 = %+v, want scalar 5", v)
	}
	if v := eval(t, `METRICS("errors")`, env); len(v.Series) != 1 || v.Series[0].ID != "errors_a" {
		t.Errorf(`METRICS("errors") = %+v`, v)
	}
	if v := eval(t, "METRICS() * 10", env); !v.Array || len(v.Series) != 3 || v.Series[2].Values[0] != 50 {
		t.Errorf("METRICS()*10 = %+v", v)
	}
	if v := eval(t, "m1 / 0", env); len(v.Series[0].Values) != 0 {
		t.Errorf("division by zero kept points: %v", v.Series[0].Values)
	}
	if v := eval(t, "MAX(m2)", env); v.Scalar != 20 {
		t.Errorf("MAX(m2) = %v", v.Scalar)
	}
	if v := eval(t, "MIN(METRICS(\"nothing\"))", env); len(v.Series[0].Values) != 0 {
		t.Errorf("MIN of empty array = %+v", v)
	}
	if v := eval(t, "AVG(m1 / 0)", env); !math.IsNaN(v.Scalar) {
		t.Errorf("AVG of empty series = %v, want NaN", v.Scalar)
	}
}

func TestEvalErrors(t *testing.T) {
	env := Env{Results: map[string]Value{"m1": SeriesValue(ser("m1", 0, 1))}, Metrics: []Series{ser("m1", 0, 1), ser("m2", 0, 1)}}
	for in, want := range map[string]string{
		"m9 + 1":                "unknown metric or expression id m9",
		"SUM(3)":                "SUM needs a time series or an array of time series",
		"METRICS() + METRICS()": "cannot apply + to two arrays of time series",
		"METRICS(m1)":           "the argument of METRICS must be a string",
		`"x" + m1`:              `string "x" is only allowed as an argument of METRICS`,
		"SUM(m1, m1)":           "SUM takes exactly one argument",
		"[m1, 2]":               "an array may hold only time series",
	} {
		e, err := Parse(in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if _, err := Eval(e, env); err == nil || err.Error() != want {
			t.Errorf("Eval(%q) error = %v, want %q", in, err, want)
		}
	}
}

func TestRefs(t *testing.T) {
	e, _ := Parse("m1 + SUM([m2, m1]) * e3 / METRICS()")
	if got := Refs(e); !slices.Equal(got, []string{"m1", "m2", "e3"}) {
		t.Errorf("Refs = %v", got)
	}
	if !UsesMetrics(e) {
		t.Error("UsesMetrics false")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"m1+m2", "SUM(METRICS())", `AVG(METRICS("a"))`, "-(m1*2)/3e2", "[m1, m2]", "MAX([m1,ABS(m2)])"} {
		f.Add(s)
	}
	env := Env{Results: map[string]Value{"m1": SeriesValue(ser("m1", 0, 1, 2)), "m2": SeriesValue(ser("m2", 1, 3))}, Metrics: []Series{ser("m1", 0, 1, 2)}}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		// The printed form parses to the same tree.
		e2, err := Parse(e.String())
		if err != nil || e2.String() != e.String() {
			t.Fatalf("%q printed as %q which reparses as %v (%v)", s, e, e2, err)
		}
		v, err := Eval(e, env)
		if err != nil {
			return
		}
		for _, sr := range v.Series {
			if len(sr.Times) != len(sr.Values) {
				t.Fatalf("%q: %d times, %d values", s, len(sr.Times), len(sr.Values))
			}
			for _, x := range sr.Values {
				if !finite(x) {
					t.Fatalf("%q: non-finite value %v", s, x)
				}
			}
		}
	})
}
