package autoscaling

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/schedule"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func TestPickStepBoundsRelativeToThreshold(t *testing.T) {
	nan := math.NaN()
	out := []Step{{Lower: 0, Upper: 10, Adjustment: 1}, {Lower: 10, Upper: 20, Adjustment: 2}, {Lower: 20, Upper: nan, Adjustment: 3}}
	in := []Step{{Lower: nan, Upper: -10, Adjustment: -2}, {Lower: -10, Upper: 0, Adjustment: -1}}
	for _, c := range []struct {
		steps []Step
		diff  float64
		want  int32
		ok    bool
	}{
		{out, 0, 1, true},    // at the threshold: lower bound inclusive
		{out, 9.99, 1, true}, // upper exclusive above the threshold
		{out, 10, 2, true},   // next step
		{out, 1000, 3, true}, // unbounded above
		{out, -1, 0, false},  // below: nothing
		{in, -10, -2, true},  // below the threshold: upper inclusive, lower exclusive
		{in, -9.99, -1, true},
		{in, -10.01, -2, true}, // next step down
		{in, math.Nextafter(0, -1), -1, true},
	} {
		s, ok := PickStep(c.steps, c.diff)
		if ok != c.ok || ok && s.Adjustment != c.want {
			t.Errorf("diff %v: got %v %v, want %v %v", c.diff, s.Adjustment, ok, c.want, c.ok)
		}
	}
}

func TestPercentChangeRounding(t *testing.T) {
	for _, c := range []struct{ cur, pct, minMag, want int32 }{
		{4, 10, 0, 1},    // 0.4 -> 1
		{127, 10, 0, 12}, // 12.7 -> 12
		{4, -10, 0, -1},  // -0.4 -> -1
		{67, -10, 0, -6}, // -6.7 -> -6
		{10, 10, 3, 3},   // MinAdjustmentMagnitude raises 1 to 3
		{10, -10, 3, -3},
		{100, 50, 3, 50},
	} {
		if got := PercentChange(c.cur, c.pct, c.minMag); got != c.want {
			t.Errorf("PercentChange(%d, %d, %d) = %d, want %d", c.cur, c.pct, c.minMag, got, c.want)
		}
	}
}

func TestDecideStep(t *testing.T) {
	nan := math.NaN()
	out := StepScaling{AdjustmentType: "ChangeInCapacity", Cooldown: time.Minute,
		Steps: []Step{{Lower: 0, Upper: 20, Adjustment: 1}, {Lower: 20, Upper: nan, Adjustment: 3}}}
	b := Bounds{1, 10}
	for _, c := range []struct {
		name    string
		p       StepScaling
		diff    float64
		current int32
		cd      Cooldown
		want    int32
	}{
		{"small breach adds one", out, 5, 2, Cooldown{}, 3},
		{"large breach adds three", out, 25, 2, Cooldown{}, 5},
		{"clamped to max", out, 25, 9, Cooldown{}, 10},
		{"at max nothing", out, 25, 10, Cooldown{}, 10},
		{"in cooldown, not larger: nothing", out, 5, 3, Cooldown{LastOut: t0.Add(-10 * time.Second), LastOutFrom: 2}, 3},
		{"in cooldown, larger: scales", out, 25, 3, Cooldown{LastOut: t0.Add(-10 * time.Second), LastOutFrom: 2}, 5},
		{"after cooldown", out, 5, 3, Cooldown{LastOut: t0.Add(-2 * time.Minute), LastOutFrom: 2}, 4},
		{"exact", StepScaling{AdjustmentType: "ExactCapacity", Steps: []Step{{Lower: 0, Upper: nan, Adjustment: 7}}}, 1, 2, Cooldown{}, 7},
		{"percent", StepScaling{AdjustmentType: "PercentChangeInCapacity", Steps: []Step{{Lower: 0, Upper: nan, Adjustment: 50}}}, 1, 4, Cooldown{}, 6},
		{"scale in", StepScaling{AdjustmentType: "ChangeInCapacity", Cooldown: time.Minute, Steps: []Step{{Lower: nan, Upper: 0, Adjustment: -2}}}, -1, 5, Cooldown{}, 3},
		{"scale in cooldown", StepScaling{AdjustmentType: "ChangeInCapacity", Cooldown: time.Minute, Steps: []Step{{Lower: nan, Upper: 0, Adjustment: -2}}}, -1, 5, Cooldown{LastIn: t0.Add(-time.Second)}, 5},
		{"scale-out ends scale-in cooldown", StepScaling{AdjustmentType: "ChangeInCapacity", Cooldown: time.Minute, Steps: []Step{{Lower: nan, Upper: 0, Adjustment: -2}}}, -1, 5, Cooldown{LastIn: t0.Add(-2 * time.Second), LastOut: t0.Add(-time.Second), LastOutFrom: 4}, 3},
		{"scale in clamped to min", StepScaling{AdjustmentType: "ChangeInCapacity", Steps: []Step{{Lower: nan, Upper: 0, Adjustment: -5}}}, -1, 3, Cooldown{}, 1},
	} {
		if got := DecideStep(c.p, c.diff, c.current, b, c.cd, t0); got.Desired != c.want {
			t.Errorf("%s: got %d (%s), want %d", c.name, got.Desired, got.Reason, c.want)
		}
	}
}

func TestDecideTargetTracking(t *testing.T) {
	p := TargetTracking{Target: 50, ScaleOutCooldown: time.Minute, ScaleInCooldown: time.Minute}
	b := Bounds{1, 20}
	for _, c := range []struct {
		name    string
		p       TargetTracking
		high    bool
		metric  float64
		current int32
		cd      Cooldown
		want    int32
	}{
		{"proportional out", p, true, 100, 2, Cooldown{}, 4},
		{"rounded up", p, true, 60, 2, Cooldown{}, 3},
		{"clamped", p, true, 1000, 5, Cooldown{}, 20},
		{"cooldown: from the capacity before the last scale-out", p, true, 100, 4, Cooldown{LastOut: t0.Add(-time.Second), LastOutFrom: 2}, 4},
		{"cooldown: larger still scales", p, true, 200, 4, Cooldown{LastOut: t0.Add(-time.Second), LastOutFrom: 2}, 8},
		{"from zero", p, true, 100, 0, Cooldown{}, 2},
		{"conservative in: 10% at most", p, false, 10, 20, Cooldown{}, 18},
		{"in: at least one", p, false, 10, 4, Cooldown{}, 3},
		{"in: proportional when closer", p, false, 44, 20, Cooldown{}, 18},
		{"in: not below min", p, false, 1, 1, Cooldown{}, 1},
		{"in disabled", TargetTracking{Target: 50, DisableScaleIn: true}, false, 1, 4, Cooldown{}, 4},
		{"in cooldown", p, false, 1, 4, Cooldown{LastIn: t0.Add(-time.Second)}, 4},
		{"no metric", p, true, math.NaN(), 4, Cooldown{}, 4},
	} {
		if got := DecideTargetTracking(c.p, c.high, c.metric, c.current, b, c.cd, t0); got.Desired != c.want {
			t.Errorf("%s: got %d (%s), want %d", c.name, got.Desired, got.Reason, c.want)
		}
	}
}

// TestDecisionsStayWithinBounds: whatever the input, a decision is within
// the target's limits or leaves the capacity unchanged, and target
// tracking never moves against its alarm.
func TestDecisionsStayWithinBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		lo := r.Int32N(5)
		b := Bounds{lo, lo + r.Int32N(20)}
		cur := r.Int32N(30)
		cd := Cooldown{LastOut: t0.Add(-time.Duration(r.IntN(120)) * time.Second), LastOutFrom: r.Int32N(30), LastIn: t0.Add(-time.Duration(r.IntN(120)) * time.Second)}
		p := TargetTracking{Target: 1 + r.Float64()*99, ScaleOutCooldown: time.Minute, ScaleInCooldown: time.Minute, DisableScaleIn: r.IntN(2) == 0}
		high := r.IntN(2) == 0
		m := r.Float64() * 200
		d := DecideTargetTracking(p, high, m, cur, b, cd, t0)
		if d.Desired != cur && (d.Desired < b.Min || d.Desired > b.Max) {
			t.Fatalf("target tracking left the bounds: %+v cur %d -> %d", b, cur, d.Desired)
		}
		if high && d.Desired < cur || !high && d.Desired > cur {
			t.Fatalf("target tracking moved against its alarm: high %v cur %d -> %d", high, cur, d.Desired)
		}
		if !high && p.DisableScaleIn && d.Desired != cur {
			t.Fatal("scaled in with scale-in disabled")
		}
		sp := StepScaling{AdjustmentType: []string{"ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity"}[r.IntN(3)],
			Steps: []Step{{Lower: math.NaN(), Upper: 0, Adjustment: -r.Int32N(5)}, {Lower: 0, Upper: math.NaN(), Adjustment: r.Int32N(5)}}, Cooldown: time.Minute}
		d = DecideStep(sp, r.Float64()*20-10, cur, b, cd, t0)
		if d.Desired != cur && (d.Desired < b.Min || d.Desired > b.Max) {
			t.Fatalf("step left the bounds: %+v cur %d -> %d", b, cur, d.Desired)
		}
	}
}

func TestDueCollapsesMissedFirings(t *testing.T) {
	cron, err := schedule.Parse("cron(0 * * * ? *)", nil) // every hour
	if err != nil {
		t.Fatal(err)
	}
	at, _ := schedule.Parse("at(2026-12-02T10:30:00)", nil)
	rate, _ := schedule.Parse("rate(5 minutes)", nil)
	for _, c := range []struct {
		name                  string
		sc                    schedule.Schedule
		last, start, end, now time.Time
		want                  time.Time
		ok                    bool
	}{
		{"not yet", cron, t0, time.Time{}, time.Time{}, t0.Add(59 * time.Minute), time.Time{}, false},
		{"on time", cron, t0, time.Time{}, time.Time{}, t0.Add(time.Hour), t0.Add(time.Hour), true},
		{"missed three: the latest once", cron, t0, time.Time{}, time.Time{}, t0.Add(3*time.Hour + time.Minute), t0.Add(3 * time.Hour), true},
		{"before start", cron, t0, t0.Add(2 * time.Hour), time.Time{}, t0.Add(time.Hour), time.Time{}, false},
		{"start inclusive", cron, t0, t0.Add(2 * time.Hour), time.Time{}, t0.Add(2 * time.Hour), t0.Add(2 * time.Hour), true},
		{"after end", cron, t0, time.Time{}, t0.Add(30 * time.Minute), t0.Add(2 * time.Hour), time.Time{}, false},
		{"missed, end cuts the latest", cron, t0, time.Time{}, t0.Add(150 * time.Minute), t0.Add(5 * time.Hour), t0.Add(2 * time.Hour), true},
		{"at", at, t0, time.Time{}, time.Time{}, t0.Add(31 * time.Minute), t0.Add(30 * time.Minute), true},
		{"at already fired", at, t0.Add(30 * time.Minute), time.Time{}, time.Time{}, t0.Add(31 * time.Minute), time.Time{}, false},
		{"rate missed many", rate, t0, time.Time{}, time.Time{}, t0.Add(time.Hour + 2*time.Minute), t0.Add(time.Hour), true},
	} {
		got, ok := Due(c.sc, c.last, c.start, c.end, c.now)
		if ok != c.ok || !got.Equal(c.want) {
			t.Errorf("%s: got %v %v, want %v %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
