package alarm

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var base = time.Date(2026, 2, 12, 10, 0, 0, 0, time.UTC)

// pattern builds datapoints from a string, oldest first, one char per
// minute: 'X' breaching (10), '0' not breaching (1), '-' missing. now is
// just after the last period ended.
func pattern(s string) ([]Datapoint, time.Time) {
	var pts []Datapoint
	for i, c := range s {
		t := base.Add(time.Duration(i) * time.Minute)
		switch c {
		case 'X':
			pts = append(pts, Datapoint{t, 10})
		case '0':
			pts = append(pts, Datapoint{t, 1})
		}
	}
	return pts, base.Add(time.Duration(len(s))*time.Minute + 2*time.Second)
}

func rule(n, m int, treat string) Rule {
	return Rule{Period: time.Minute, EvaluationPeriods: n, DatapointsToAlarm: m, Threshold: 5, Comparison: Greater, TreatMissingData: treat, Statistic: "Average"}
}

// The table of CloudWatch's documentation on missing data (3 of 5).
func TestMissingDataTable(t *testing.T) {
	const retain = "retain"
	for _, c := range []struct {
		pts                                      string
		missing, ignore, breaching, notBreaching string
	}{
		{"0-X-X", "OK", "OK", "OK", "OK"},
		{"0----", "OK", "OK", "OK", "OK"},
		{"-----", "INSUFFICIENT_DATA", retain, "ALARM", "OK"},
		{"0XX-X", "ALARM", "ALARM", "ALARM", "ALARM"},
		{"--X--", "ALARM", retain, "ALARM", "OK"},
	} {
		pts, now := pattern(c.pts)
		for treat, want := range map[string]string{Missing: c.missing, Ignore: c.ignore, Breaching: c.breaching, NotBreaching: c.notBreaching} {
			got := Evaluate(rule(5, 3, treat), pts, now)
			gs := string(got.State)
			if got.Retain {
				gs = retain
			}
			if gs != want {
				t.Errorf("%s with %s: got %s (%s), want %s", c.pts, treat, gs, got.Reason, want)
			}
		}
	}
}

func TestComparisons(t *testing.T) {
	for _, c := range []struct {
		op    string
		v     float64
		alarm bool
	}{
		{GreaterOrEqual, 5, true}, {GreaterOrEqual, 4.9, false},
		{Greater, 5, false}, {Greater, 5.1, true},
		{Less, 5, false}, {Less, 4.9, true},
		{LessOrEqual, 5, true}, {LessOrEqual, 5.1, false},
	} {
		r := Rule{Period: time.Minute, EvaluationPeriods: 1, Threshold: 5, Comparison: c.op}
		got := Evaluate(r, []Datapoint{{base, c.v}}, base.Add(61*time.Second))
		if (got.State == Alarm) != c.alarm || got.Retain {
			t.Errorf("%s %v: %s", c.op, c.v, got.State)
		}
	}
}

func TestReasons(t *testing.T) {
	r := Rule{Period: time.Minute, EvaluationPeriods: 1, Threshold: 3, Comparison: Greater, Statistic: "Average"}
	got := Evaluate(r, []Datapoint{{base, 5}}, base.Add(61*time.Second))
	if want := "Threshold Crossed: 1 datapoint [5.0 (12/02/26 10:00:00)] was greater than the threshold (3.0)."; got.Reason != want {
		t.Errorf("reason %q\nwant   %q", got.Reason, want)
	}
	got = Evaluate(r, []Datapoint{{base, 1.5}}, base.Add(61*time.Second))
	if want := "Threshold Crossed: 1 datapoint [1.5 (12/02/26 10:00:00)] was not greater than the threshold (3.0)."; got.Reason != want {
		t.Errorf("reason %q", got.Reason)
	}
	got = Evaluate(rule(3, 2, Missing), []Datapoint{{base, 1}, {base.Add(time.Minute), 10}, {base.Add(2 * time.Minute), 10}}, base.Add(3*time.Minute+time.Second))
	if want := "Threshold Crossed: 2 out of the last 3 datapoints [10.0 (12/02/26 10:02:00), 10.0 (12/02/26 10:01:00), 1.0 (12/02/26 10:00:00)] were greater than the threshold (5.0) (minimum 2 datapoints for OK -> ALARM transition)."; got.Reason != want {
		t.Errorf("reason %q", got.Reason)
	}
	got = Evaluate(rule(3, 3, Missing), nil, base)
	if want := "Insufficient Data: 3 datapoints were unknown."; got.State != InsufficientData || got.Reason != want {
		t.Errorf("%s %q", got.State, got.Reason)
	}
	var data map[string]any
	got = Evaluate(r, []Datapoint{{base, 5}}, base.Add(61*time.Second))
	if err := json.Unmarshal([]byte(got.ReasonData), &data); err != nil {
		t.Fatal(err)
	}
	if data["statistic"] != "Average" || data["period"] != 60.0 || data["threshold"] != 3.0 || data["startDate"] != "2026-02-12T10:00:00.000+0000" {
		t.Errorf("reason data %s", got.ReasonData)
	}
}

func TestCurrentPeriodCountsOnceItHasData(t *testing.T) {
	r := Rule{Period: time.Minute, EvaluationPeriods: 1, Threshold: 3, Comparison: Greater}
	// 10:00:20, the period 10:00-10:01 is in progress and has a breaching point.
	if got := Evaluate(r, []Datapoint{{base.Add(-time.Minute), 1}, {base, 9}}, base.Add(20*time.Second)); got.State != Alarm {
		t.Errorf("breaching point in the current period: %s", got.State)
	}
	// No point yet in the current period: the last complete one decides.
	if got := Evaluate(r, []Datapoint{{base.Add(-time.Minute), 1}}, base.Add(20*time.Second)); got.State != OK {
		t.Errorf("previous period OK: %s", got.State)
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{5: "5.0", 0.25: "0.25", -3: "-3.0", 1e7: "1.0E7", 12345678.5: "1.23456785E7", 1e-4: "1.0E-4", 0: "0.0"} {
		if got := FormatValue(v); got != want {
			t.Errorf("FormatValue(%v) = %s, want %s", v, got, want)
		}
	}
}

// Properties over random rules and datapoints.
func TestEvaluateProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	treats := []string{Missing, NotBreaching, Breaching, Ignore}
	ops := []string{GreaterOrEqual, Greater, Less, LessOrEqual}
	for i := 0; i < 5000; i++ {
		n := 1 + r.IntN(6)
		m := 1 + r.IntN(n)
		ru := Rule{Period: time.Duration(1+r.IntN(5)) * time.Minute, EvaluationPeriods: n, DatapointsToAlarm: m,
			Threshold: float64(r.IntN(10)), Comparison: ops[r.IntN(4)], TreatMissingData: treats[r.IntN(4)]}
		now := base.Add(time.Duration(r.IntN(3600)) * time.Second)
		var pts []Datapoint
		start := PeriodEnd(ru.Period, now).Add(-time.Duration(n+2) * ru.Period)
		for k := 0; k < n+3; k++ {
			if r.IntN(3) > 0 {
				pts = append(pts, Datapoint{start.Add(time.Duration(k) * ru.Period), float64(r.IntN(10))})
			}
		}
		res := Evaluate(ru, pts, now)
		b := 0
		for _, d := range res.Evaluated {
			if Breaches(ru.Comparison, d.Value, ru.Threshold) {
				b++
			}
		}
		switch {
		case len(res.Evaluated) > n:
			t.Fatalf("%d datapoints evaluated for %d periods", len(res.Evaluated), n)
		case b >= m && res.State != Alarm:
			t.Fatalf("%d of %d breaching but %s (%+v)", b, m, res.State, ru)
		case res.State == Alarm && b == 0 && ru.TreatMissingData != Breaching:
			t.Fatalf("ALARM with no breaching datapoint (%+v)", ru)
		case ru.TreatMissingData == NotBreaching && res.State == Alarm && b < m:
			t.Fatalf("notBreaching alarmed on %d < %d", b, m)
		case res.State == InsufficientData && (len(res.Evaluated) > 0 || ru.TreatMissingData != Missing):
			t.Fatalf("INSUFFICIENT_DATA with %d datapoints, %s", len(res.Evaluated), ru.TreatMissingData)
		case res.Retain != (res.State == ""):
			t.Fatalf("retain %v state %q", res.Retain, res.State)
		case !strings.HasPrefix(res.Reason, "Threshold Crossed") && !strings.HasPrefix(res.Reason, "Insufficient Data"):
			t.Fatalf("reason %q", res.Reason)
		}
		for k := 1; k < len(res.Evaluated); k++ {
			if !res.Evaluated[k].T.Before(res.Evaluated[k-1].T) {
				t.Fatal("evaluated datapoints not newest first")
			}
		}
	}
}
