package schedule

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// genField builds a random list for a numeric field and, independently of
// the parser, the set of values it means.
func genField(r *rand.Rand, lo, hi int, names []string) (string, map[int]bool) {
	if r.Intn(4) == 0 {
		set := map[int]bool{}
		for v := lo; v <= hi; v++ {
			set[v] = true
		}
		return "*", set
	}
	set := map[int]bool{}
	name := func(v int) string {
		if names != nil && r.Intn(2) == 0 {
			return names[v-lo]
		}
		return fmt.Sprint(v)
	}
	var items []string
	for n := 1 + r.Intn(3); n > 0; n-- {
		a := lo + r.Intn(hi-lo+1)
		switch r.Intn(4) {
		case 0:
			items = append(items, name(a))
			set[a] = true
		case 1:
			b := a + r.Intn(hi-a+1)
			items = append(items, name(a)+"-"+name(b))
			for v := a; v <= b; v++ {
				set[v] = true
			}
		case 2:
			step := 1 + r.Intn(hi-lo+1)
			items = append(items, fmt.Sprintf("%d/%d", a, step))
			for v := a; v <= hi; v += step {
				set[v] = true
			}
		case 3:
			step := 1 + r.Intn(hi-lo+1)
			items = append(items, fmt.Sprintf("*/%d", step))
			for v := lo; v <= hi; v += step {
				set[v] = true
			}
		}
	}
	return strings.Join(items, ","), set
}

func lastDay(y int, m time.Month) int { return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day() }

// nearestWeekdayBrute is the Monday-Friday day of the month at the least
// distance from n (clamped to the month), the earlier one on a tie.
func nearestWeekdayBrute(y int, m time.Month, n int) int {
	if l := lastDay(y, m); n > l {
		n = l
	}
	best, bestDist := 0, 100
	for d := 1; d <= lastDay(y, m); d++ {
		wd := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday()
		if wd == time.Saturday || wd == time.Sunday {
			continue
		}
		dist := d - n
		if dist < 0 {
			dist = -dist
		}
		if dist < bestDist {
			best, bestDist = d, dist
		}
	}
	return best
}

type genCron struct {
	expr                        string
	min, hour, month, year, dom map[int]bool
	dayOK                       func(y int, m time.Month, d int) bool
}

func genExpr(r *rand.Rand) genCron {
	var g genCron
	var fMin, fHour, fMon, fYear, fDom, fDow string
	fMin, g.min = genField(r, 0, 59, nil)
	fHour, g.hour = genField(r, 0, 23, nil)
	fMon, g.month = genField(r, 1, 12, fMonth.names)
	if r.Intn(3) == 0 {
		for fYear = "*"; strings.ContainsAny(fYear, "*/"); { // * and a/n reach 2199, not 2030
			fYear, g.year = genField(r, 2026, 2030, nil)
		}
	} else {
		fYear, g.year = "*", nil
	}
	switch r.Intn(6) {
	case 0, 1: // day-of-month list
		var set map[int]bool
		fDom, set = genField(r, 1, 31, nil)
		fDow = "?"
		g.dayOK = func(y int, m time.Month, d int) bool { return set[d] }
	case 2: // L, LW or nW
		fDow = "?"
		switch k := r.Intn(3); k {
		case 0:
			fDom = "L"
			g.dayOK = func(y int, m time.Month, d int) bool { return d == lastDay(y, m) }
		case 1:
			fDom = "LW"
			g.dayOK = func(y int, m time.Month, d int) bool { return d == nearestWeekdayBrute(y, m, lastDay(y, m)) }
		default:
			n := 1 + r.Intn(31)
			fDom = fmt.Sprintf("%dW", n)
			g.dayOK = func(y int, m time.Month, d int) bool { return d == nearestWeekdayBrute(y, m, n) }
		}
	case 3, 4: // day-of-week list
		var set map[int]bool
		fDom = "?"
		for fDow = "/"; strings.Contains(fDow, "/"); { // no / in day-of-week
			fDow, set = genField(r, 1, 7, fDOW.names)
		}
		g.dayOK = func(y int, m time.Month, d int) bool {
			return set[int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday())+1]
		}
	default: // wL or w#n
		fDom = "?"
		w := 1 + r.Intn(7)
		if r.Intn(2) == 0 {
			fDow = fmt.Sprintf("%dL", w)
			g.dayOK = func(y int, m time.Month, d int) bool {
				wd := int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday()) + 1
				return wd == w && time.Date(y, m, d+7, 0, 0, 0, 0, time.UTC).Month() != m
			}
		} else {
			n := 1 + r.Intn(5)
			fDow = fmt.Sprintf("%s#%d", fDOW.names[w-1], n)
			g.dayOK = func(y int, m time.Month, d int) bool {
				count := 0
				for i := 1; i <= d; i++ {
					if time.Date(y, m, i, 0, 0, 0, 0, time.UTC).Weekday() == time.Weekday(w-1) {
						count++
					}
				}
				return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday())+1 == w && count == n
			}
		}
	}
	g.expr = fmt.Sprintf("cron(%s %s %s %s %s %s)", fMin, fHour, fDom, fMon, fDow, fYear)
	return g
}

func (g genCron) matches(t time.Time) bool {
	y, m, d := t.Date()
	return g.min[t.Minute()] && g.hour[t.Hour()] && g.month[int(m)] &&
		(g.year == nil || g.year[y]) && g.dayOK(y, m, d) && t.Second() == 0 && t.Nanosecond() == 0
}

// TestCronProperties checks random expressions in zones without daylight
// saving time: Next is strictly after its argument, its wall clock
// matches the expression, and no minute in between matches.
func TestCronProperties(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	zones := []*time.Location{time.UTC, time.FixedZone("IST", 5*3600+1800), time.FixedZone("minus7", -7*3600)}
	n := 150
	if testing.Short() {
		n = 60
	}
	for i := 0; i < n; i++ {
		g := genExpr(r)
		loc := zones[r.Intn(len(zones))]
		s, err := Parse(g.expr, loc)
		if err != nil {
			t.Fatalf("%s: %v", g.expr, err)
		}
		after := time.Date(2026, time.Month(1+r.Intn(12)), 1+r.Intn(28), r.Intn(24), r.Intn(60), r.Intn(60), 0, time.UTC)
		for k := 0; k < 3; k++ {
			next := s.Next(after)
			if next.IsZero() {
				// Only an expression with no firing left in its years may end.
				if g.year == nil {
					t.Fatalf("%s in %s: no firing after %s", g.expr, loc, after)
				}
				break
			}
			if !next.After(after) {
				t.Fatalf("%s: Next(%s) = %s, not after", g.expr, after, next)
			}
			if !g.matches(next.In(loc)) {
				t.Fatalf("%s in %s: Next(%s) = %s does not match", g.expr, loc, after, next.In(loc))
			}
			// No earlier minute matches (checked over up to 20 days).
			lim := next
			if lim.Sub(after) > 20*24*time.Hour {
				lim = after.Add(20 * 24 * time.Hour)
			}
			for m := after.Truncate(time.Minute).Add(time.Minute); m.Before(lim); m = m.Add(time.Minute) {
				if g.matches(m.In(loc)) {
					t.Fatalf("%s in %s: Next(%s) = %s skips %s", g.expr, loc, after, next.In(loc), m.In(loc))
				}
			}
			after = next
		}
	}
}

// TestCronPropertiesDST checks, in a zone with daylight saving time, that
// Next is strictly after its argument and its wall clock matches.
func TestCronPropertiesDST(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 200; i++ {
		g := genExpr(r)
		s, err := Parse(g.expr, loc)
		if err != nil {
			t.Fatalf("%s: %v", g.expr, err)
		}
		// Around the 2026 changes (March 29, October 25).
		base := []time.Time{time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 24, 0, 0, 0, 0, time.UTC)}[r.Intn(2)]
		after := base.Add(time.Duration(r.Intn(72*60)) * time.Minute)
		for k := 0; k < 5; k++ {
			next := s.Next(after)
			if next.IsZero() {
				break
			}
			if !next.After(after) || !g.matches(next.In(loc)) {
				t.Fatalf("%s: Next(%s) = %s", g.expr, after.In(loc), next.In(loc))
			}
			after = next
		}
	}
}
