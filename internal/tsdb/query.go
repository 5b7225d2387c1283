package tsdb

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

type acc struct {
	min, max, sum, count float64
	n                    int
	vals                 []ValueCount
}

func (a *acc) add(s Sample, wantValues bool) {
	if a.n == 0 {
		a.min, a.max = s.Min, s.Max
	} else {
		a.min = math.Min(a.min, s.Min)
		a.max = math.Max(a.max, s.Max)
	}
	a.sum += s.Sum
	a.count += s.Count
	a.n++
	if wantValues && s.isValue() {
		a.vals = append(a.vals, ValueCount{V: s.Min, C: s.Count})
	}
}

// denseBuckets is the most buckets a query aggregates in a slice; wider
// queries use a map of the non-empty ones.
const denseBuckets = 1 << 14

// Query returns the non-empty buckets of key in [from, to), period-aligned
// to the epoch, ascending. unit "" means any unit; else only samples stored
// with that unit. Values (sorted by V, equal values merged) are filled only
// when wantValues.
func (db *DB) Query(key SeriesKey, from, to time.Time, period time.Duration, unit string, wantValues bool) ([]Bucket, error) {
	if period < time.Millisecond || period%time.Millisecond != 0 {
		return nil, errs.E(errs.Invalid, "tsdb: period %s is not a positive whole number of milliseconds", period)
	}
	pm := period.Milliseconds()
	f, t := from.UnixMilli(), to.UnixMilli()
	if t <= f {
		return nil, nil
	}
	if !slices.IsSortedFunc(key.Dims, func(a, b Dim) int { return strings.Compare(a.Name, b.Name) }) {
		key = NewKey(key.Namespace, key.MetricName, key.Dims)
	}
	start := floorDiv(f, pm) * pm
	nb := (t-start-1)/pm + 1
	var dense []acc
	var sparse map[int64]*acc
	if nb <= denseBuckets {
		dense = make([]acc, nb)
	} else {
		sparse = map[int64]*acc{}
	}
	bucket := func(ts int64) *acc {
		i := (ts - start) / pm
		if dense != nil {
			return &dense[i]
		}
		a := sparse[i]
		if a == nil {
			a = &acc{}
			sparse[i] = a
		}
		return a
	}

	db.mu.RLock()
	defer db.mu.RUnlock()
	s := db.series[key.String()]
	if s == nil {
		return nil, nil
	}
	wantUnit := -1
	if unit != "" {
		if wantUnit = s.unitIndex(unit); wantUnit < 0 {
			return nil, nil
		}
	}
	var it chunkIter
	scan := func() error {
		for it.next() {
			if it.t < f || it.t >= t || (wantUnit >= 0 && int(it.unit) != wantUnit) {
				continue
			}
			bucket(it.t).add(it.s, wantValues)
		}
		return it.err
	}
	overlaps := func(minT, maxT int64) bool { return maxT >= f && minT < t }
	for _, parts := range [][]*headPart{s.flushing, s.head} {
		for _, hp := range parts {
			if !overlaps(hp.part, hp.part+db.blockMs-1) {
				continue
			}
			for _, c := range hp.sealed {
				if overlaps(c.minT, c.maxT) {
					it.reset(c.b)
					if err := scan(); err != nil {
						return nil, errs.Wrap(errs.Internal, err, "tsdb: head chunk of %s", s.ks)
					}
				}
			}
			if c := hp.cur; c != nil && c.n > 0 && overlaps(c.minT, c.maxT) {
				it.resetStream(c.w.b, c.n)
				if err := scan(); err != nil {
					return nil, errs.Wrap(errs.Internal, err, "tsdb: head chunk of %s", s.ks)
				}
			}
		}
	}
	var buf []byte
	for i := range s.disk {
		c := &s.disk[i]
		if !overlaps(c.minT, c.maxT) {
			continue
		}
		var err error
		if buf, err = c.read(buf); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "tsdb: query %s", s.ks)
		}
		it.reset(buf)
		if err := scan(); err != nil {
			return nil, errs.Wrap(errs.Internal, fmt.Errorf("%s: %w", c.file.path, err), "tsdb: query %s", s.ks)
		}
	}

	var out []Bucket
	emit := func(i int64, a *acc) {
		b := Bucket{T: time.UnixMilli(start + i*pm).UTC(), Min: a.min, Max: a.max, Sum: a.sum, Count: a.count}
		if wantValues {
			b.Values = mergeValues(a.vals)
		}
		out = append(out, b)
	}
	if dense != nil {
		for i := range dense {
			if dense[i].n > 0 {
				emit(int64(i), &dense[i])
			}
		}
	} else {
		idx := make([]int64, 0, len(sparse))
		for i := range sparse {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		for _, i := range idx {
			emit(i, sparse[i])
		}
	}
	return out, nil
}

// mergeValues sorts values by V and merges equal ones.
func mergeValues(vs []ValueCount) []ValueCount {
	slices.SortFunc(vs, func(a, b ValueCount) int { return cmp.Compare(a.V, b.V) })
	out := vs[:0]
	for _, v := range vs {
		if len(out) > 0 && out[len(out)-1].V == v.V {
			out[len(out)-1].C += v.C
			continue
		}
		out = append(out, v)
	}
	return out
}
