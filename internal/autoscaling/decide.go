package autoscaling

import (
	"math"
	"time"
)

// Decisions: pure functions of the policy, the target's capacity, the
// metric and now. They do no I/O; the shell (scale.go) reads the state,
// calls them and applies the answer.

// Bounds are a scalable target's capacity limits.
type Bounds struct{ Min, Max int32 }

// Clamp keeps n within the bounds.
func (b Bounds) Clamp(n int32) int32 { return max(b.Min, min(b.Max, n)) }

// Cooldown is a policy's memory of its last scaling, kept in the store.
type Cooldown struct {
	// LastOut is when the policy last scaled out, LastOutFrom the
	// capacity it scaled out from.
	LastOut     time.Time `json:",omitzero"`
	LastOutFrom int32     `json:",omitempty"`
	// LastIn is when the policy last scaled in.
	LastIn time.Time `json:",omitzero"`
}

// Decision is what a policy wants done.
type Decision struct {
	Desired int32  // the new desired capacity; equal to current: nothing to do
	Reason  string // why nothing is done (empty when scaling)
}

// scaleOutBase is the capacity a scale-out is computed from: the current
// one after the cooldown; during it, the capacity before the last
// scale-out, so that a further scale-out runs only when it is larger than
// the last one (the capacity the last scale-out added counts toward the
// next one, as Application Auto Scaling treats scale-out cooldowns).
func scaleOutBase(c Cooldown, cooldown time.Duration, current int32, now time.Time) int32 {
	if !c.LastOut.IsZero() && now.Sub(c.LastOut) < cooldown && c.LastOutFrom > 0 && c.LastOutFrom < current {
		return c.LastOutFrom
	}
	return current
}

// inScaleInCooldown says whether a scale-in must wait. A scale-out since
// the last scale-in ends the scale-in cooldown.
func inScaleInCooldown(c Cooldown, cooldown time.Duration, now time.Time) bool {
	if c.LastIn.IsZero() || now.Sub(c.LastIn) >= cooldown {
		return false
	}
	return !c.LastOut.After(c.LastIn)
}

// TargetTracking is a target tracking policy's input.
type TargetTracking struct {
	Target           float64
	DisableScaleIn   bool
	ScaleOutCooldown time.Duration
	ScaleInCooldown  time.Duration
}

// DecideTargetTracking answers a target tracking policy's alarm: high is
// true for the AlarmHigh alarm (metric above the target), false for
// AlarmLow. Scale-out is proportional: ceil(capacity × metric / target).
// Scale-in is conservative: the proportional capacity, but at most 10 %
// of the current capacity (at least one task) at a time.
func DecideTargetTracking(p TargetTracking, high bool, metric float64, current int32, b Bounds, c Cooldown, now time.Time) Decision {
	if p.Target <= 0 || math.IsNaN(metric) {
		return Decision{Desired: current, Reason: "no metric value"}
	}
	if high {
		base := scaleOutBase(c, p.ScaleOutCooldown, current, now)
		if base == 0 {
			base = 1 // a service at 0 tasks with a breach gets one
		}
		want := int32(math.Ceil(float64(base) * metric / p.Target))
		want = b.Clamp(want)
		if want <= current {
			if current >= b.Max {
				return Decision{Desired: current, Reason: "already at max capacity"}
			}
			return Decision{Desired: current, Reason: "scale-out cooldown in progress or no change needed"}
		}
		return Decision{Desired: want}
	}
	if p.DisableScaleIn {
		return Decision{Desired: current, Reason: "scale-in is disabled"}
	}
	if inScaleInCooldown(c, p.ScaleInCooldown, now) {
		return Decision{Desired: current, Reason: "scale-in cooldown in progress"}
	}
	want := int32(math.Ceil(float64(current) * metric / p.Target))
	step := max(1, current/10)
	want = max(want, current-step)
	want = b.Clamp(want)
	if want >= current {
		if current <= b.Min {
			return Decision{Desired: current, Reason: "already at min capacity"}
		}
		return Decision{Desired: current, Reason: "no change needed"}
	}
	return Decision{Desired: want}
}

// Step is one step adjustment; the bounds are relative to the alarm
// threshold; NaN means unbounded.
type Step struct {
	Lower, Upper float64
	Adjustment   int32
}

// StepScaling is a step scaling policy's input.
type StepScaling struct {
	AdjustmentType         string // ChangeInCapacity, ExactCapacity, PercentChangeInCapacity
	Steps                  []Step
	MinAdjustmentMagnitude int32
	Cooldown               time.Duration
}

// PickStep returns the step whose interval holds metric - threshold. For
// a metric at or above the threshold the lower bound is inclusive and
// the upper exclusive; below it, the reverse (as AWS documents).
func PickStep(steps []Step, diff float64) (Step, bool) {
	for _, s := range steps {
		lo, hi := s.Lower, s.Upper
		var ok bool
		if diff >= 0 {
			ok = (math.IsNaN(lo) || diff >= lo) && (math.IsNaN(hi) || diff < hi)
		} else {
			ok = (math.IsNaN(lo) || diff > lo) && (math.IsNaN(hi) || diff <= hi)
		}
		if ok {
			return s, true
		}
	}
	return Step{}, false
}

// PercentChange is the capacity change of a PercentChangeInCapacity step:
// a change between 0 and 1 (or 0 and -1) becomes 1 (-1), larger ones are
// rounded toward zero; MinAdjustmentMagnitude raises a smaller change.
func PercentChange(current, percent, minMagnitude int32) int32 {
	f := float64(current) * float64(percent) / 100
	var d int32
	switch {
	case f > 0 && f < 1:
		d = 1
	case f < 0 && f > -1:
		d = -1
	default:
		d = int32(math.Trunc(f))
	}
	if minMagnitude > 0 {
		if d > 0 && d < minMagnitude {
			d = minMagnitude
		} else if d < 0 && -d < minMagnitude {
			d = -minMagnitude
		}
	}
	return d
}

// DecideStep answers a step scaling policy triggered with the metric at
// diff from the alarm threshold.
func DecideStep(p StepScaling, diff float64, current int32, b Bounds, c Cooldown, now time.Time) Decision {
	s, ok := PickStep(p.Steps, diff)
	if !ok {
		return Decision{Desired: current, Reason: "no step adjustment matches the metric value"}
	}
	want := func(base int32) int32 {
		switch p.AdjustmentType {
		case "ExactCapacity":
			return s.Adjustment
		case "PercentChangeInCapacity":
			return base + PercentChange(base, s.Adjustment, p.MinAdjustmentMagnitude)
		default:
			return base + s.Adjustment
		}
	}
	w := b.Clamp(want(current))
	switch {
	case w > current:
		base := scaleOutBase(c, p.Cooldown, current, now)
		if base != current {
			w = b.Clamp(want(base))
			if w <= current {
				return Decision{Desired: current, Reason: "cooldown in progress: the scale-out is not larger than the last one"}
			}
		}
		return Decision{Desired: w}
	case w < current:
		if inScaleInCooldown(c, p.Cooldown, now) {
			return Decision{Desired: current, Reason: "scale-in cooldown in progress"}
		}
		return Decision{Desired: w}
	}
	if current >= b.Max && want(current) > current {
		return Decision{Desired: current, Reason: "already at max capacity"}
	}
	if current <= b.Min && want(current) < current {
		return Decision{Desired: current, Reason: "already at min capacity"}
	}
	return Decision{Desired: current, Reason: "no change needed"}
}

// Record updates a cooldown after a scaling from current to desired.
func (c Cooldown) Record(current, desired int32, now time.Time) Cooldown {
	switch {
	case desired > current:
		c.LastOut, c.LastOutFrom = now, current
	case desired < current:
		c.LastIn = now
	}
	return c
}

// Aggregate reduces datapoints by a step policy's MetricAggregationType
// (Average by default); NaN when there are none.
func Aggregate(kind string, vals []float64) float64 {
	if len(vals) == 0 {
		return math.NaN()
	}
	r := vals[0]
	sum := 0.0
	for _, v := range vals {
		sum += v
		switch kind {
		case "Minimum":
			r = min(r, v)
		case "Maximum":
			r = max(r, v)
		}
	}
	if kind == "Minimum" || kind == "Maximum" {
		return r
	}
	return sum / float64(len(vals))
}
