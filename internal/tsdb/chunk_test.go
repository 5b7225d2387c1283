package tsdb

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randFloat(r *rand.Rand) float64 {
	switch r.IntN(10) {
	case 0:
		return math.MaxFloat64 * (r.Float64()*2 - 1)
	case 1:
		return math.SmallestNonzeroFloat64 * float64(r.IntN(100)-50)
	case 2:
		return 0
	case 3:
		return math.Copysign(0, -1)
	case 4:
		return math.Inf(1 - 2*r.IntN(2))
	case 5:
		return float64(r.IntN(100)) // repeats
	case 6:
		return 1e300 * r.NormFloat64()
	default:
		return r.NormFloat64() * 1000
	}
}

func randTime(r *rand.Rand, prev int64) int64 {
	switch r.IntN(8) {
	case 0:
		return prev // duplicate
	case 1:
		return prev - r.Int64N(3_600_000) // out of order
	case 2:
		return r.Int64() - r.Int64() // anything
	case 3:
		return prev + r.Int64N(1<<40)
	default:
		return prev + 60_000
	}
}

func randSamples(r *rand.Rand, n int) []rawSample {
	out := make([]rawSample, n)
	t := r.Int64N(1<<42) + 1_700_000_000_000
	for i := range out {
		t = randTime(r, t)
		var s Sample
		switch r.IntN(3) {
		case 0:
			s = ValueSample(randFloat(r), 1)
		case 1:
			s = ValueSample(randFloat(r), float64(1+r.IntN(5)))
		default:
			s = Sample{Min: randFloat(r), Max: randFloat(r), Sum: randFloat(r), Count: randFloat(r)}
		}
		u := uint8(0)
		if r.IntN(5) == 0 {
			u = uint8(r.IntN(MaxUnitsPerSeries))
		}
		out[i] = rawSample{t, s, u}
	}
	return out
}

func same(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

func sameSample(a, b Sample) bool {
	return same(a.Min, b.Min) && same(a.Max, b.Max) && same(a.Sum, b.Sum) && same(a.Count, b.Count)
}

// TestChunkRoundTripProperty encodes random series (extreme, repeated and
// signed-zero floats, value and statistic-set samples, duplicate and
// out-of-order timestamps, unit changes) and decodes them back exactly.
func TestChunkRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		in := randSamples(r, 1+r.IntN(maxChunkSamples))
		e := newChunkEncoder()
		for _, x := range in {
			e.append(x.t, x.s, x.unit)
		}
		check := func(it *chunkIter, what string) {
			i := 0
			for it.next() {
				x := in[i]
				if it.t != x.t || !sameSample(it.s, x.s) || it.unit != x.unit {
					t.Fatalf("iter %d %s sample %d: got %d %+v %d, want %d %+v %d", iter, what, i, it.t, it.s, it.unit, x.t, x.s, x.unit)
				}
				i++
			}
			if it.err != nil || i != len(in) {
				t.Fatalf("iter %d %s: decoded %d of %d, err %v", iter, what, i, len(in), it.err)
			}
		}
		check(newChunkIter(e.bytes()), "chunk")
		var it chunkIter
		it.resetStream(e.w.b, e.n)
		check(&it, "stream")
	}
}

func TestChunkCompressesRegularSeries(t *testing.T) {
	e := newChunkEncoder()
	for i := 0; i < maxChunkSamples; i++ {
		e.append(1_700_000_000_000+int64(i)*60_000, ValueSample(float64(i%7), 1), 0)
	}
	if b := e.bytes(); len(b) > maxChunkSamples*3 {
		t.Fatalf("%d samples took %d bytes", maxChunkSamples, len(b))
	}
}

func TestChunkTruncatedIsAnError(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	in := randSamples(r, 100)
	e := newChunkEncoder()
	for _, x := range in {
		e.append(x.t, x.s, x.unit)
	}
	b := e.bytes()
	for cut := 0; cut < len(b); cut++ {
		it := newChunkIter(b[:cut])
		n := 0
		for it.next() {
			n++
		}
		if it.err == nil {
			t.Fatalf("cut at %d of %d: no error after %d samples", cut, len(b), n)
		}
	}
}

func FuzzChunkDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 8; i++ {
		e := newChunkEncoder()
		for _, x := range randSamples(r, 1+r.IntN(50)) {
			e.append(x.t, x.s, x.unit)
		}
		f.Add(e.bytes())
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		it := newChunkIter(b)
		n := 0
		for it.next() {
			n++
		}
		if n > maxChunkSamples {
			t.Fatalf("decoded %d samples", n)
		}
	})
}
