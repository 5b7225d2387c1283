package capacityprovider

import (
	"math/rand/v2"
	"testing"
)

func TestSplitExamples(t *testing.T) {
	fs := []Item{{"FARGATE", 1, 1}, {"FARGATE_SPOT", 0, 3}}
	for _, c := range []struct {
		n          int
		want0, wnt int
	}{{1, 1, 0}, {2, 1, 1}, {5, 2, 3}, {9, 3, 6}, {13, 4, 9}} {
		got := Split(fs, nil, c.n)
		n0 := 0
		for _, i := range got {
			if i == 0 {
				n0++
			}
		}
		if n0 != c.want0 || len(got)-n0 != c.wnt {
			t.Errorf("%d tasks: FARGATE %d FARGATE_SPOT %d, want %d %d", c.n, n0, len(got)-n0, c.want0, c.wnt)
		}
	}
	// The first task goes to the base.
	if got := Split(fs, nil, 1); got[0] != 0 {
		t.Errorf("first task on %d", got[0])
	}
	// Only bases, no weight: the bases are filled and then nothing.
	if got := Split([]Item{{"A", 2, 0}}, nil, 5); len(got) != 2 {
		t.Errorf("base only: %v", got)
	}
	// Existing tasks count: a service with 4 on SPOT and none on FARGATE
	// gets its next on FARGATE (base).
	if got := Split(fs, []int{0, 4}, 1); got[0] != 0 {
		t.Errorf("existing: %v", got)
	}
}

// TestSplitProperties: over random strategies and task counts, every task
// is placed while a weight is positive; bases are met first, in strategy
// order; beyond the bases each provider is within one task of its exact
// share, after every task.
func TestSplitProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 3000 {
		k := 1 + rng.IntN(5)
		items := make([]Item, k)
		W := 0
		baseAt := rng.IntN(k + 1) // at most one provider has a base
		for i := range items {
			items[i].Weight = rng.IntN(5)
			if rng.IntN(4) == 0 {
				items[i].Weight = rng.IntN(1001)
			}
			if i == baseAt {
				items[i].Base = rng.IntN(6)
			}
			W += items[i].Weight
		}
		n := rng.IntN(60)
		got := Split(items, nil, n)
		B := 0
		for _, it := range items {
			B += it.Base
		}
		if W > 0 && len(got) != n {
			t.Fatalf("iter %d: %d of %d placed with weights %v", iter, len(got), n, items)
		}
		counts := make([]int, k)
		for step, i := range got {
			if step < B && items[i].Base == 0 {
				t.Fatalf("iter %d: task %d went to %d before the bases were met (%v)", iter, step, i, items)
			}
			counts[i]++
			E := step + 1 - min(step+1, B)
			if E == 0 || W == 0 {
				continue
			}
			for j, it := range items {
				extra := counts[j] - min(counts[j], it.Base)
				share := float64(it.Weight) * float64(E) / float64(W)
				if d := float64(extra) - share; d >= 1 || d <= -1 {
					t.Fatalf("iter %d step %d: provider %d has %d beyond its base, share %.2f (%v)", iter, step, j, extra, share, items)
				}
			}
		}
	}
}
