package alb

import (
	"math/rand/v2"
	"testing"
)

func TestRoundRobinRotates(t *testing.T) {
	cands := make([]candidate, 3)
	for i := range cands {
		cands[i].Weight = 1
	}
	seen := map[int]int{}
	for tick := uint64(0); tick < 300; tick++ {
		seen[chooseTarget("round_robin", cands, tick, 0.5)]++
	}
	if seen[0] != 100 || seen[1] != 100 || seen[2] != 100 {
		t.Fatalf("uneven: %v", seen)
	}
}

func TestLeastOutstandingPicksFewest(t *testing.T) {
	cands := []candidate{{Outstanding: 5, Weight: 1}, {Outstanding: 1, Weight: 1}, {Outstanding: 1, Weight: 1}, {Outstanding: 9, Weight: 1}}
	seen := map[int]bool{}
	for tick := uint64(0); tick < 8; tick++ {
		i := chooseTarget("least_outstanding_requests", cands, tick, 0)
		if i != 1 && i != 2 {
			t.Fatalf("picked %d", i)
		}
		seen[i] = true
	}
	if !seen[1] || !seen[2] {
		t.Fatal("ties are not rotated")
	}
}

// Properties over random inputs: a skipped target is never chosen; -1 only when all are skipped;
// least outstanding never picks a target with more outstanding than another eligible one.
func TestChooseTargetProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 5000; iter++ {
		n := rng.IntN(8)
		cands := make([]candidate, n)
		eligible := 0
		for i := range cands {
			cands[i] = candidate{Outstanding: int64(rng.IntN(5)), Weight: 1, Skip: rng.IntN(3) == 0}
			if rng.IntN(4) == 0 {
				cands[i].Weight = 0.01 + rng.Float64()*0.99
			}
			if !cands[i].Skip {
				eligible++
			}
		}
		for _, alg := range []string{"round_robin", "least_outstanding_requests"} {
			i := chooseTarget(alg, cands, rng.Uint64(), rng.Float64())
			if eligible == 0 {
				if i != -1 {
					t.Fatalf("%s chose %d with nothing eligible", alg, i)
				}
				continue
			}
			if i < 0 || cands[i].Skip {
				t.Fatalf("%s chose %d of %+v", alg, i, cands)
			}
			if alg == "least_outstanding_requests" {
				for _, c := range cands {
					if !c.Skip && c.Outstanding < cands[i].Outstanding {
						t.Fatalf("chose %d outstanding over %d", cands[i].Outstanding, c.Outstanding)
					}
				}
			}
		}
	}
}

func TestSlowStartShare(t *testing.T) {
	cands := []candidate{{Weight: 1}, {Weight: 0.25}}
	rng := rand.New(rand.NewPCG(5, 6))
	var n [2]int
	for i := 0; i < 20000; i++ {
		n[chooseTarget("round_robin", cands, uint64(i), rng.Float64())]++
	}
	share := float64(n[1]) / 20000
	if share < 0.17 || share > 0.23 { // 0.25/1.25 = 0.2
		t.Fatalf("target in slow start got %.3f of requests, want about 0.2", share)
	}
}

func TestChooseGroupWeights(t *testing.T) {
	groups := []WeightedTargetGroup{{ARN: "a", Weight: 1}, {ARN: "b", Weight: 3}, {ARN: "c", Weight: 0}}
	rng := rand.New(rand.NewPCG(7, 8))
	var n [3]int
	for i := 0; i < 40000; i++ {
		n[chooseGroup(groups, rng.Float64())]++
	}
	if n[2] != 0 {
		t.Fatal("a group of weight 0 got requests")
	}
	if share := float64(n[1]) / 40000; share < 0.73 || share > 0.77 {
		t.Fatalf("weight 3 of 4 got %.3f", share)
	}
	if chooseGroup([]WeightedTargetGroup{{ARN: "x", Weight: 0}}, 0.3) != 0 {
		t.Fatal("a single group takes everything")
	}
	if chooseGroup([]WeightedTargetGroup{{ARN: "x"}, {ARN: "y"}}, 0.3) != -1 {
		t.Fatal("all weights zero")
	}
}
