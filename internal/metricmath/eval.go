package metricmath

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// arrayFunc is the Call name of an array literal [a, b, ...].
const arrayFunc = "[]"

var funcs = map[string]bool{"SUM": true, "AVG": true, "MIN": true, "MAX": true, "ABS": true, "METRICS": true}

func knownFunc(name string) bool { return funcs[name] }

// Series is one time series: Times ascending and unique, Values beside
// them. ID and Label say where it came from (the query's Id and label).
type Series struct {
	ID     string
	Label  string
	Times  []time.Time
	Values []float64
}

// Value is the result of an expression: a scalar, one time series, or an
// array of time series (from METRICS() or [a, b]).
type Value struct {
	IsScalar bool
	Scalar   float64
	Series   []Series // one element unless Array
	Array    bool
}

// ScalarValue returns a scalar Value.
func ScalarValue(v float64) Value { return Value{IsScalar: true, Scalar: v} }

// SeriesValue returns a single-series Value.
func SeriesValue(s Series) Value { return Value{Series: []Series{s}} }

// Env is what an expression reads.
type Env struct {
	// Results holds the already computed results of other queries by Id.
	Results map[string]Value
	// Metrics are the MetricStat query results of the request, in request
	// order: what METRICS() returns.
	Metrics []Series
}

// Eval evaluates e in env. Points whose value is not finite (division by
// zero) are dropped, as CloudWatch returns no such datapoints.
func Eval(e Expr, env Env) (Value, error) {
	switch e := e.(type) {
	case Num:
		return ScalarValue(e.V), nil
	case Str:
		return Value{}, &Error{-1, fmt.Sprintf("string %s is only allowed as an argument of METRICS", e)}
	case Ref:
		v, ok := env.Results[e.ID]
		if !ok {
			return Value{}, &Error{-1, fmt.Sprintf("unknown metric or expression id %s", e.ID)}
		}
		return v, nil
	case Neg:
		x, err := Eval(e.X, env)
		if err != nil {
			return Value{}, err
		}
		return mapValue(x, func(v float64) float64 { return -v }), nil
	case Binary:
		x, err := Eval(e.X, env)
		if err != nil {
			return Value{}, err
		}
		y, err := Eval(e.Y, env)
		if err != nil {
			return Value{}, err
		}
		return binary(e.Op, x, y)
	case Call:
		return call(e, env)
	}
	return Value{}, &Error{-1, fmt.Sprintf("cannot evaluate %T", e)}
}

func apply(op byte, a, b float64) float64 {
	switch op {
	case '+':
		return a + b
	case '-':
		return a - b
	case '*':
		return a * b
	default:
		return a / b
	}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func mapSeries(s Series, f func(float64) float64) Series {
	out := Series{ID: s.ID, Label: s.Label, Times: make([]time.Time, 0, len(s.Times)), Values: make([]float64, 0, len(s.Values))}
	for i, v := range s.Values {
		if r := f(v); finite(r) {
			out.Times = append(out.Times, s.Times[i])
			out.Values = append(out.Values, r)
		}
	}
	return out
}

func mapValue(x Value, f func(float64) float64) Value {
	if x.IsScalar {
		return ScalarValue(f(x.Scalar))
	}
	out := Value{Array: x.Array, Series: make([]Series, len(x.Series))}
	for i, s := range x.Series {
		out.Series[i] = mapSeries(s, f)
	}
	return out
}

// join combines two series at the timestamps both have.
func join(op byte, a, b Series) Series {
	out := Series{ID: a.ID, Label: a.Label}
	i, j := 0, 0
	for i < len(a.Times) && j < len(b.Times) {
		switch c := a.Times[i].Compare(b.Times[j]); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			if r := apply(op, a.Values[i], b.Values[j]); finite(r) {
				out.Times = append(out.Times, a.Times[i])
				out.Values = append(out.Values, r)
			}
			i++
			j++
		}
	}
	return out
}

func binary(op byte, x, y Value) (Value, error) {
	switch {
	case x.IsScalar && y.IsScalar:
		return ScalarValue(apply(op, x.Scalar, y.Scalar)), nil
	case y.IsScalar:
		return mapValue(x, func(v float64) float64 { return apply(op, v, y.Scalar) }), nil
	case x.IsScalar:
		return mapValue(y, func(v float64) float64 { return apply(op, x.Scalar, v) }), nil
	}
	if len(x.Series) != 1 && len(y.Series) != 1 {
		return Value{}, &Error{-1, fmt.Sprintf("cannot apply %c to two arrays of time series", op)}
	}
	out := Value{Array: x.Array || y.Array}
	switch {
	case len(x.Series) == 1:
		for _, s := range y.Series {
			r := join(op, x.Series[0], s)
			if y.Array {
				r.ID, r.Label = s.ID, s.Label
			}
			out.Series = append(out.Series, r)
		}
	default:
		for _, s := range x.Series {
			out.Series = append(out.Series, join(op, s, y.Series[0]))
		}
	}
	return out, nil
}

func call(c Call, env Env) (Value, error) {
	if c.Name == "METRICS" {
		if len(c.Args) > 1 {
			return Value{}, &Error{-1, "METRICS takes at most one argument"}
		}
		filter := ""
		if len(c.Args) == 1 {
			s, ok := c.Args[0].(Str)
			if !ok {
				return Value{}, &Error{-1, "the argument of METRICS must be a string"}
			}
			filter = s.S
		}
		out := Value{Array: true, Series: []Series{}}
		for _, s := range env.Metrics {
			if strings.Contains(s.ID, filter) {
				out.Series = append(out.Series, s)
			}
		}
		return out, nil
	}
	args := make([]Value, len(c.Args))
	for i, a := range c.Args {
		v, err := Eval(a, env)
		if err != nil {
			return Value{}, err
		}
		args[i] = v
	}
	if c.Name == arrayFunc {
		out := Value{Array: true, Series: []Series{}}
		for _, a := range args {
			if a.IsScalar {
				return Value{}, &Error{-1, "an array may hold only time series"}
			}
			out.Series = append(out.Series, a.Series...)
		}
		return out, nil
	}
	if len(args) != 1 {
		return Value{}, &Error{-1, fmt.Sprintf("%s takes exactly one argument", c.Name)}
	}
	a := args[0]
	if c.Name == "ABS" {
		return mapValue(a, math.Abs), nil
	}
	if a.IsScalar {
		return Value{}, &Error{-1, fmt.Sprintf("%s needs a time series or an array of time series", c.Name)}
	}
	agg := aggregators[c.Name]
	if !a.Array {
		// One series: a scalar over all its points.
		s := a.Series[0]
		if len(s.Values) == 0 {
			return ScalarValue(math.NaN()), nil
		}
		return ScalarValue(agg(s.Values)), nil
	}
	// An array: one series, each timestamp aggregated over the series that
	// have a point there.
	byTime := map[int64][]float64{}
	var times []time.Time
	for _, s := range a.Series {
		for i, t := range s.Times {
			k := t.UnixNano()
			if _, ok := byTime[k]; !ok {
				times = append(times, t)
			}
			byTime[k] = append(byTime[k], s.Values[i])
		}
	}
	sortTimes(times)
	out := Series{Label: c.Name}
	for _, t := range times {
		if r := agg(byTime[t.UnixNano()]); finite(r) {
			out.Times = append(out.Times, t)
			out.Values = append(out.Values, r)
		}
	}
	return SeriesValue(out), nil
}

var aggregators = map[string]func([]float64) float64{
	"SUM": func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s
	},
	"AVG": func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	},
	"MIN": func(v []float64) float64 {
		m := v[0]
		for _, x := range v[1:] {
			m = math.Min(m, x)
		}
		return m
	},
	"MAX": func(v []float64) float64 {
		m := v[0]
		for _, x := range v[1:] {
			m = math.Max(m, x)
		}
		return m
	},
}

func sortTimes(ts []time.Time) { slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) }) }
