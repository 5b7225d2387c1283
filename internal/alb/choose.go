package alb

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
)

// This file is the pure target-choice core: weighted target groups, round robin with slow start,
// and least outstanding requests. Randomness and the rotation counter are passed in.

// candidate is what the choice needs to know of one target.
type candidate struct {
	Outstanding int64
	Weight      float64 // 1, or less while in slow start
	Skip        bool    // already tried for this request
}

// chooseTarget returns the index of the target to use, or -1 when every candidate is skipped.
// tick is a per-group counter that rotates round robin and breaks ties; r is uniform in [0,1).
func chooseTarget(algorithm string, cands []candidate, tick uint64, r float64) int {
	n := len(cands)
	if n == 0 {
		return -1
	}
	start := int(tick % uint64(n))
	if algorithm == "least_outstanding_requests" {
		best := -1
		for k := 0; k < n; k++ {
			i := (start + k) % n
			if cands[i].Skip {
				continue
			}
			if best < 0 || cands[i].Outstanding < cands[best].Outstanding {
				best = i
			}
		}
		return best
	}
	// Round robin; while any target is in slow start, a weighted draw instead.
	total, ramp := 0.0, false
	for i := range cands {
		if cands[i].Skip {
			continue
		}
		total += cands[i].Weight
		if cands[i].Weight < 1 {
			ramp = true
		}
	}
	if total == 0 {
		return -1
	}
	if ramp {
		x := r * total
		last := -1
		for i := range cands {
			if cands[i].Skip {
				continue
			}
			last = i
			if x < cands[i].Weight {
				return i
			}
			x -= cands[i].Weight
		}
		return last
	}
	for k := 0; k < n; k++ {
		i := (start + k) % n
		if !cands[i].Skip {
			return i
		}
	}
	return -1
}

// chooseGroup returns the index of the weighted target group to forward to, or -1 when every
// weight is zero. One group takes everything whatever its weight, as on ALB.
func chooseGroup(groups []WeightedTargetGroup, r float64) int {
	if len(groups) == 1 {
		return 0
	}
	total := 0
	for _, g := range groups {
		total += max(g.Weight, 0)
	}
	if total == 0 {
		return -1
	}
	x := int(r * float64(total))
	for i, g := range groups {
		w := max(g.Weight, 0)
		if x < w {
			return i
		}
		x -= w
	}
	return len(groups) - 1
}

// targetCookie is the AWSALB value naming a target of a group: opaque, stable across restarts,
// and honoured only while it names a routable target of that group.
func targetCookie(groupARN string, k tkey) string {
	return cookieHash(groupARN + "|" + k.ID + ":" + strconv.Itoa(k.Port))
}

// groupCookie is the AWSALBTG value naming a target group of a forward action.
func groupCookie(groupARN string) string { return cookieHash(groupARN) }

func cookieHash(s string) string {
	sum := sha256.Sum256([]byte("berth-alb\x00" + s))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}
