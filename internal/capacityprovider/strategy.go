// Package capacityprovider is ECS's capacity provider strategy
// arithmetic: which provider of a strategy the next task goes to, given
// how many tasks each already has, and which one the next scale-in takes
// from; and the rules of Auto Scaling group providers (asg.go), whose
// group is a pool of Berth agents. It is pure; internal/ecs applies it to
// RunTask (counting the call's own tasks) and to services (counting the
// service's live tasks), internal/deploy to scale-in; docs/fargate.md and
// docs/capacity-providers.md.
//
// ECS's rule: a provider's base is the number of tasks it gets before any
// weight counts (only one provider of a strategy may have a base); the
// tasks beyond the bases are divided in proportion to the weights. Berth
// hands them out one at a time to the provider furthest below its
// proportional share, the earlier provider of the strategy on a tie, so
// that after any number of tasks every provider's tasks beyond its base
// are within one of its exact share.
package capacityprovider

// Item is one provider of a strategy.
type Item struct {
	Provider string
	Base     int // 0-100000
	Weight   int // 0-1000
}

// Next returns the index in items of the provider the next task goes to,
// given counts[i] tasks already on items[i]; -1 when no provider can take
// one (every base met and every weight zero).
func Next(items []Item, counts []int) int {
	for i, it := range items {
		if counts[i] < it.Base {
			return i
		}
	}
	// Beyond the bases: E tasks so far; provider i's exact share of E+1 is
	// w_i*(E+1)/W. Pick the largest deficit share-minus-extra, compared in
	// integers: w_i*(E+1) - W*extra_i.
	W, E := 0, 0
	for i, it := range items {
		W += it.Weight
		E += counts[i] - min(counts[i], it.Base)
	}
	if W == 0 {
		return -1
	}
	best, bestDef := -1, 0
	for i, it := range items {
		if it.Weight == 0 {
			continue
		}
		extra := counts[i] - min(counts[i], it.Base)
		def := it.Weight*(E+1) - W*extra
		if best < 0 || def > bestDef {
			best, bestDef = i, def
		}
	}
	return best
}

// Split hands n new tasks out one at a time with Next, starting from
// counts (not modified), and returns the provider index of each.
func Split(items []Item, counts []int, n int) []int {
	c := append([]int(nil), counts...)
	for len(c) < len(items) {
		c = append(c, 0)
	}
	out := make([]int, 0, n)
	for range n {
		i := Next(items, c)
		if i < 0 {
			break
		}
		c[i]++
		out = append(out, i)
	}
	return out
}
