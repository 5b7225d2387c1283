package eventpattern

import (
	"fmt"
	"math/rand"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time. On a machine shared with
// other work, wall-clock rates depend on the neighbours; CPU time per
// event does not, so the benchmarks report both.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportRates(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

func benchSet(b *testing.B, rules int) (*Set, []*Pattern, [][]byte) {
	r := rand.New(rand.NewSource(1))
	s := NewSet()
	var pats []*Pattern
	for i := 0; i < rules; i++ {
		p, err := Compile([]byte(ecsRule(r)))
		if err != nil {
			b.Fatal(err)
		}
		s.Put(fmt.Sprint("rule-", i), p)
		pats = append(pats, p)
	}
	events := make([][]byte, 1000)
	size := 0
	for i := range events {
		events[i] = ecsTaskEvent(r)
		size += len(events[i])
	}
	b.SetBytes(int64(size / len(events)))
	return s, pats, events
}

// BenchmarkSetMatch matches ECS task state change events against 1,000
// ECS rules in a Set (the goal is 10,000 events/s on one core).
func BenchmarkSetMatch(b *testing.B) {
	s, _, events := benchSet(b, 1000)
	matches := 0
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		ids, err := s.Match(events[i%len(events)])
		if err != nil {
			b.Fatal(err)
		}
		matches += len(ids)
	}
	reportRates(b, cpu0)
	b.ReportMetric(float64(matches)/float64(b.N), "matches/event")
}

// BenchmarkSetMatchNoIndex is the baseline: every pattern's Match on the
// same events and rules, parsing the event once per pattern, as a naive
// loop over rules would.
func BenchmarkSetMatchNoIndex(b *testing.B) {
	_, pats, events := benchSet(b, 1000)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		ev := events[i%len(events)]
		for _, p := range pats {
			if _, err := p.Match(ev); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportRates(b, cpu0)
}

// BenchmarkParseEvent is the cost of parsing one ECS event, which every
// Set.Match pays once.
func BenchmarkParseEvent(b *testing.B) {
	_, _, events := benchSet(b, 0)
	jp := new(jsonParser)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := parseEvent(jp, events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, cpu0)
}

// BenchmarkSetMatchParseOnce separates the two savings: the event parsed
// once, but every pattern evaluated (no index).
func BenchmarkSetMatchParseOnce(b *testing.B) {
	_, pats, events := benchSet(b, 1000)
	jp := new(jsonParser)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		ev, err := parseEvent(jp, events[i%len(events)])
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range pats {
			p.root.matchObject(&ev)
		}
	}
	reportRates(b, cpu0)
}
