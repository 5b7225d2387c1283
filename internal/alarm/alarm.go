// Package alarm decides the state of a CloudWatch metric alarm from its
// datapoints: Evaluate is a pure function of the alarm's rule, the
// per-period datapoints and the current time, and returns the new state
// with CloudWatch's state reason and reason data. Package cloudwatch is
// the shell: it stores alarms, fetches the datapoints, runs Evaluate on a
// timer and records transitions. docs/metrics.md describes the rules.
package alarm

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// State is an alarm state.
type State string

// Alarm states.
const (
	OK               State = "OK"
	Alarm            State = "ALARM"
	InsufficientData State = "INSUFFICIENT_DATA"
)

// Comparison operators (the ones with a static threshold).
const (
	GreaterOrEqual = "GreaterThanOrEqualToThreshold"
	Greater        = "GreaterThanThreshold"
	Less           = "LessThanThreshold"
	LessOrEqual    = "LessThanOrEqualToThreshold"
)

// Treatments of missing data.
const (
	Missing      = "missing"
	NotBreaching = "notBreaching"
	Breaching    = "breaching"
	Ignore       = "ignore"
)

// Rule is what an alarm compares.
type Rule struct {
	Period            time.Duration
	EvaluationPeriods int // N
	DatapointsToAlarm int // M; 0 means N
	Threshold         float64
	Comparison        string
	TreatMissingData  string // "" means missing
	// Statistic names the statistic (for the reason data), e.g. "Average"
	// or "p99"; empty for metric-math alarms.
	Statistic string
}

// Datapoint is one period's value; T is the start of the period.
type Datapoint struct {
	T     time.Time
	Value float64
}

// Result is the outcome of one evaluation.
type Result struct {
	State State
	// Retain means "keep the current state" (treatMissingData ignore);
	// State is then empty.
	Retain     bool
	Reason     string
	ReasonData string // JSON, as CloudWatch's StateReasonData
	// Window is the start of the first period evaluated; Evaluated the
	// datapoints present in the window, newest first.
	Window    time.Time
	Evaluated []Datapoint
}

// Breaches reports whether v crosses threshold under op.
func Breaches(op string, v, threshold float64) bool {
	switch op {
	case GreaterOrEqual:
		return v >= threshold
	case Greater:
		return v > threshold
	case Less:
		return v < threshold
	case LessOrEqual:
		return v <= threshold
	}
	return false
}

var opWords = map[string]string{
	GreaterOrEqual: "greater than or equal to",
	Greater:        "greater than",
	Less:           "less than",
	LessOrEqual:    "less than or equal to",
}

// ValidComparison reports whether op is a static-threshold operator.
func ValidComparison(op string) bool { _, ok := opWords[op]; return ok }

// ValidTreatment reports whether t is a treatMissingData value.
func ValidTreatment(t string) bool {
	return t == Missing || t == NotBreaching || t == Breaching || t == Ignore
}

// PeriodEnd is the end of the period now falls in (periods are aligned
// to the epoch).
func PeriodEnd(period time.Duration, now time.Time) time.Time {
	p := period.Milliseconds()
	ms := now.UnixMilli()
	return time.UnixMilli(ms - ms%p + p).UTC()
}

// Evaluate decides the alarm's state at now from pts (one per period,
// any order; points outside the window are ignored). The window is the
// EvaluationPeriods periods ending with the newest period that is over,
// or with the period still in progress if it already has a datapoint:
// so a breaching datapoint counts as soon as it arrives, and a period
// that has only just begun is not yet "missing".
//
// With p datapoints present, b of them breaching, and M datapoints to
// alarm: when p >= M, ALARM if b >= M else OK, whatever the treatment of
// missing data. When p < M, the missing ones count by TreatMissingData:
// breaching (ALARM if b + (M-p) >= M), notBreaching (OK), missing
// (INSUFFICIENT_DATA when p = 0, else ALARM if every present datapoint
// breaches, else OK), ignore (keep the current state when p = 0 or every
// present datapoint breaches, else OK). This is the table in CloudWatch's
// documentation on missing data.
func Evaluate(r Rule, pts []Datapoint, now time.Time) Result {
	n := max(r.EvaluationPeriods, 1)
	m := r.DatapointsToAlarm
	if m <= 0 || m > n {
		m = n
	}
	end := PeriodEnd(r.Period, now)
	current := false
	for _, d := range pts {
		if !d.T.Before(end.Add(-r.Period)) && d.T.Before(end) && !math.IsNaN(d.Value) {
			current = true
		}
	}
	if !current {
		end = end.Add(-r.Period)
	}
	start := end.Add(-time.Duration(n) * r.Period)
	var in []Datapoint
	for _, d := range pts {
		if !d.T.Before(start) && d.T.Before(end) && !math.IsNaN(d.Value) {
			in = append(in, d)
		}
	}
	// newest first
	for i := 1; i < len(in); i++ {
		for j := i; j > 0 && in[j].T.After(in[j-1].T); j-- {
			in[j], in[j-1] = in[j-1], in[j]
		}
	}
	p, b := len(in), 0
	for _, d := range in {
		if Breaches(r.Comparison, d.Value, r.Threshold) {
			b++
		}
	}
	res := Result{Window: start, Evaluated: in}
	treat := r.TreatMissingData
	if treat == "" {
		treat = Missing
	}
	switch {
	case p >= m:
		res.State = pick(b >= m)
	case treat == Breaching:
		res.State = pick(b+(m-p) >= m)
	case treat == NotBreaching:
		res.State = OK
	case treat == Missing && p == 0:
		res.State = InsufficientData
	case treat == Missing:
		res.State = pick(b == p)
	default: // ignore
		if p == 0 || b == p {
			res.Retain = true
		} else {
			res.State = OK
		}
	}
	res.Reason = reason(r, res, n, m, b)
	res.ReasonData = reasonData(r, res, now)
	return res
}

func pick(alarm bool) State {
	if alarm {
		return Alarm
	}
	return OK
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func reason(r Rule, res Result, n, m, b int) string {
	p := len(res.Evaluated)
	if res.State == InsufficientData || (res.Retain && p == 0) {
		return fmt.Sprintf("Insufficient Data: %d %s %s unknown.", n, plural(n, "datapoint", "datapoints"), plural(n, "was", "were"))
	}
	words := opWords[r.Comparison]
	vals := make([]string, len(res.Evaluated))
	for i, d := range res.Evaluated {
		vals[i] = FormatValue(d.Value) + " (" + d.T.UTC().Format("02/01/06 15:04:05") + ")"
	}
	list := "[" + strings.Join(vals, ", ") + "]"
	thr := FormatValue(r.Threshold)
	breached := res.State == Alarm || res.Retain
	if !breached {
		words = "not " + words
	}
	count := p
	if breached {
		count = b
	}
	if n == 1 || (count == n && p == n) {
		return fmt.Sprintf("Threshold Crossed: %d %s %s %s %s the threshold (%s).",
			count, plural(count, "datapoint", "datapoints"), list, plural(count, "was", "were"), words, thr)
	}
	if breached {
		return fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints %s %s %s the threshold (%s) (minimum %d %s for OK -> ALARM transition).",
			count, n, list, plural(count, "was", "were"), words, thr, m, plural(m, "datapoint", "datapoints"))
	}
	return fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoints %s %s %s the threshold (%s) (minimum %d %s for ALARM -> OK transition).",
		p-b, n, list, plural(p-b, "was", "were"), words, thr, n-m+1, plural(n-m+1, "datapoint", "datapoints"))
}

const jsonTime = "2006-01-02T15:04:05.000-0700"

func reasonData(r Rule, res Result, now time.Time) string {
	type evaluated struct {
		Timestamp string  `json:"timestamp"`
		Value     float64 `json:"value"`
	}
	d := struct {
		Version             string      `json:"version"`
		QueryDate           string      `json:"queryDate"`
		StartDate           string      `json:"startDate"`
		Statistic           string      `json:"statistic,omitempty"`
		Period              int64       `json:"period"`
		RecentDatapoints    []float64   `json:"recentDatapoints"`
		Threshold           float64     `json:"threshold"`
		EvaluatedDatapoints []evaluated `json:"evaluatedDatapoints"`
	}{
		Version: "1.0", QueryDate: now.UTC().Format(jsonTime), StartDate: res.Window.UTC().Format(jsonTime),
		Statistic: r.Statistic, Period: int64(r.Period / time.Second), Threshold: r.Threshold,
		RecentDatapoints: []float64{}, EvaluatedDatapoints: []evaluated{},
	}
	for i := len(res.Evaluated) - 1; i >= 0; i-- {
		d.RecentDatapoints = append(d.RecentDatapoints, res.Evaluated[i].Value)
	}
	for _, e := range res.Evaluated {
		d.EvaluatedDatapoints = append(d.EvaluatedDatapoints, evaluated{e.T.UTC().Format(jsonTime), e.Value})
	}
	b, _ := json.Marshal(d)
	return string(b)
}

// FormatValue prints a number the way CloudWatch's reasons do (Java's
// Double.toString): 5.0, 0.25, 1.0E7.
func FormatValue(v float64) string {
	a := math.Abs(v)
	if a != 0 && (a < 1e-3 || a >= 1e7) {
		s := strconv.FormatFloat(v, 'E', -1, 64)
		mant, exp, _ := strings.Cut(s, "E")
		if !strings.Contains(mant, ".") {
			mant += ".0"
		}
		e, _ := strconv.Atoi(exp)
		return mant + "E" + strconv.Itoa(e)
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
