package tsdb

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

type acc struct {
	min, max, sum, count float64
	n                    int
}

// bucketValue is a value of bucket i, collected for all buckets in one slice.
type bucketValue struct {
	i    int64
	v, c float64
}

func (a *acc) add(s Sample) {
	if a.n == 0 {
		a.min, a.max = s.Min, s.Max
	} else {
		a.min = math.Min(a.min, s.Min)
		a.max = math.Max(a.max, s.Max)
	}
	a.sum += s.Sum
	a.count += s.Count
	a.n++
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
	sc := scratchPool.Get().(*queryScratch)
	defer scratchPool.Put(sc)
	start := floorDiv(f, pm) * pm
	nb := (t-start-1)/pm + 1
	var dense []acc
	var sparse map[int64]*acc
	if nb <= denseBuckets {
		if cap(sc.dense) >= int(nb) {
			dense = sc.dense[:nb]
			clear(dense)
		} else {
			dense = make([]acc, nb)
		}
	} else {
		sparse = map[int64]*acc{}
	}
	vals := sc.vals[:0]
	add := func(ts int64, s Sample) {
		i := (ts - start) / pm
		var a *acc
		if dense != nil {
			a = &dense[i]
		} else if a = sparse[i]; a == nil {
			a = &acc{}
			sparse[i] = a
		}
		a.add(s)
		if wantValues && s.isValue() {
			vals = append(vals, bucketValue{i, s.Min, s.Count})
		}
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
			add(it.t, it.s)
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
	buf := sc.buf
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

	// Values: sorted by bucket then value, equal values merged, one backing
	// array cut per bucket (capacity-limited so appending cannot spill over).
	type segment struct {
		i    int64
		vals []ValueCount
	}
	var segs []segment // ascending by bucket, as buckets are emitted
	if wantValues && len(vals) > 0 {
		// Samples mostly arrive in time order: sort by bucket only if needed,
		// then each bucket's few values.
		byBucket := func(a, b bucketValue) int { return cmp.Compare(a.i, b.i) }
		if !slices.IsSortedFunc(vals, byBucket) {
			slices.SortStableFunc(vals, byBucket)
		}
		for lo := 0; lo < len(vals); {
			hi := lo + 1
			for hi < len(vals) && vals[hi].i == vals[lo].i {
				hi++
			}
			if hi-lo > 1 {
				slices.SortFunc(vals[lo:hi], func(a, b bucketValue) int { return cmp.Compare(a.v, b.v) })
			}
			lo = hi
		}
		all := make([]ValueCount, 0, len(vals))
		from := 0
		for j, bv := range vals {
			if j > 0 && bv.i == vals[j-1].i && bv.v == vals[j-1].v {
				all[len(all)-1].C += bv.c
			} else {
				if j > 0 && bv.i != vals[j-1].i {
					segs = append(segs, segment{vals[j-1].i, all[from:len(all):len(all)]})
					from = len(all)
				}
				all = append(all, ValueCount{V: bv.v, C: bv.c})
			}
		}
		segs = append(segs, segment{vals[len(vals)-1].i, all[from:len(all):len(all)]})
	}
	var out []Bucket
	emit := func(i int64, a *acc) {
		b := Bucket{T: time.UnixMilli(start + i*pm).UTC(), Min: a.min, Max: a.max, Sum: a.sum, Count: a.count}
		for len(segs) > 0 && segs[0].i < i {
			segs = segs[1:]
		}
		if len(segs) > 0 && segs[0].i == i {
			b.Values = segs[0].vals
		}
		out = append(out, b)
	}
	if dense != nil {
		n := 0
		for i := range dense {
			if dense[i].n > 0 {
				n++
			}
		}
		out = make([]Bucket, 0, n)
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
	sc.dense, sc.vals, sc.buf = dense, vals, buf
	return out, nil
}

// queryScratch is what a query needs only while it runs, pooled: the
// bucket accumulators, the collected values and the chunk read buffer.
type queryScratch struct {
	dense []acc
	vals  []bucketValue
	buf   []byte
}

var scratchPool = sync.Pool{New: func() any { return new(queryScratch) }}

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
