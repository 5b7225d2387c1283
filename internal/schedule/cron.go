package schedule

import (
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Cron is a parsed six-field AWS cron expression.
type Cron struct {
	minutes uint64    // bit m set: minute m
	hours   uint32    // bit h set: hour h
	months  uint16    // bit m set: month m (1-12)
	years   [4]uint64 // bit y-MinYear set: year y
	dom     domSpec   // day-of-month; any when dow is used
	dow     dowSpec   // day-of-week; any when dom is used
	useDOW  bool      // day-of-month is ?, day-of-week decides
	loc     *time.Location
	expr    string
}

type domSpec struct {
	days        uint32 // bit d set: day d (1-31)
	last        bool   // L: the last day of the month
	lastWeekday bool   // LW: the last weekday (Mon-Fri) of the month
	nearest     []int  // nW: the weekday nearest day n, within the month
}

type dowSpec struct {
	days   uint8 // bit w set: weekday w (1=SUN ... 7=SAT)
	lastOf uint8 // bit w set (from wL): the last weekday w of the month
	nthDay int   // from w#n: weekday w ...
	nth    int   // ... the nth of the month (1-5); 0 when unused
}

type field struct {
	name     string
	min, max int
	names    []string // names[i] is value min+i
}

var (
	fMinute = field{name: "minutes", min: 0, max: 59}
	fHour   = field{name: "hours", min: 0, max: 23}
	fDOM    = field{name: "day-of-month", min: 1, max: 31}
	fMonth  = field{name: "month", min: 1, max: 12,
		names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}}
	fDOW = field{name: "day-of-week", min: 1, max: 7,
		names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}}
	fYear = field{name: "year", min: MinYear, max: MaxYear}
)

func parseCron(expr, body string, loc *time.Location) (Schedule, error) {
	f := strings.Fields(body)
	if len(f) != 6 {
		return nil, errorf(expr, "cron expression must have six fields (minutes hours day-of-month month day-of-week year), got %d", len(f))
	}
	c := &Cron{loc: loc, expr: expr}
	set := func(fl field, s string, apply func(v int)) error {
		return parseList(expr, fl, s, apply)
	}
	if err := set(fMinute, f[0], func(v int) { c.minutes |= 1 << v }); err != nil {
		return nil, err
	}
	if err := set(fHour, f[1], func(v int) { c.hours |= 1 << v }); err != nil {
		return nil, err
	}
	if err := set(fMonth, f[3], func(v int) { c.months |= 1 << v }); err != nil {
		return nil, err
	}
	if err := set(fYear, f[5], func(v int) { c.years[(v-MinYear)/64] |= 1 << ((v - MinYear) % 64) }); err != nil {
		return nil, err
	}
	domQ, dowQ := f[2] == "?", f[4] == "?"
	switch {
	case domQ && dowQ:
		return nil, errorf(expr, "day-of-month and day-of-week cannot both be ?; use ? in exactly one of them")
	case !domQ && !dowQ:
		return nil, errorf(expr, "day-of-month and day-of-week cannot both be specified; use ? in one of them")
	case dowQ:
		if err := c.parseDOM(expr, f[2]); err != nil {
			return nil, err
		}
	default:
		c.useDOW = true
		if err := c.parseDOW(expr, f[4]); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cron) parseDOM(expr, s string) error {
	for _, item := range strings.Split(s, ",") {
		switch {
		case item == "L":
			c.dom.last = true
		case item == "LW":
			c.dom.lastWeekday = true
		case len(item) > 1 && strings.HasSuffix(item, "W"):
			n, err := value(expr, fDOM, item[:len(item)-1])
			if err != nil {
				return err
			}
			c.dom.nearest = append(c.dom.nearest, n)
		default:
			if err := parseItem(expr, fDOM, item, func(v int) { c.dom.days |= 1 << v }); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Cron) parseDOW(expr, s string) error {
	if strings.Contains(s, "#") {
		if strings.Contains(s, ",") {
			return errorf(expr, "day-of-week with # takes exactly one expression, not a list")
		}
		w, n, _ := strings.Cut(s, "#")
		wd, err := value(expr, fDOW, w)
		if err != nil {
			return err
		}
		k, err := strconv.Atoi(n)
		if err != nil || k < 1 || k > 5 || n[0] == '+' {
			return errorf(expr, "day-of-week %s: the number after # must be 1-5", s)
		}
		c.dow.nthDay, c.dow.nth = wd, k
		return nil
	}
	if strings.Contains(s, "/") {
		return errorf(expr, "day-of-week does not take the / increment")
	}
	for _, item := range strings.Split(s, ",") {
		switch {
		case item == "L":
			c.dow.days |= 1 << 7 // the last day of the week: Saturday
		case len(item) > 1 && strings.HasSuffix(item, "L"):
			w, err := value(expr, fDOW, item[:len(item)-1])
			if err != nil {
				return err
			}
			c.dow.lastOf |= 1 << w
		default:
			if err := parseItem(expr, fDOW, item, func(v int) { c.dow.days |= 1 << v }); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseList parses a comma-separated list of items of field fl.
func parseList(expr string, fl field, s string, apply func(int)) error {
	for _, item := range strings.Split(s, ",") {
		if err := parseItem(expr, fl, item, apply); err != nil {
			return err
		}
	}
	return nil
}

// parseItem parses one of *, v, a-b, */n, v/n, a-b/n. A range whose end is
// before its start wraps around the field (FRI-MON, 22-2).
func parseItem(expr string, fl field, item string, apply func(int)) error {
	if item == "" {
		return errorf(expr, "%s has an empty list item", fl.name)
	}
	rng, stepStr, hasStep := strings.Cut(item, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepStr)
		if err != nil || n < 1 || n > fl.max-fl.min+1 || stepStr[0] == '+' {
			return errorf(expr, "%s %s: the increment after / must be a number from 1 to %d", fl.name, item, fl.max-fl.min+1)
		}
		step = n
	}
	var lo, hi int
	switch {
	case rng == "*":
		lo, hi = fl.min, fl.max
	case strings.Contains(rng, "-"):
		a, b, _ := strings.Cut(rng, "-")
		var err error
		if lo, err = value(expr, fl, a); err != nil {
			return err
		}
		if hi, err = value(expr, fl, b); err != nil {
			return err
		}
	default:
		v, err := value(expr, fl, rng)
		if err != nil {
			return err
		}
		lo, hi = v, v
		if hasStep {
			hi = fl.max
		}
	}
	span := hi - lo
	if span < 0 {
		span += fl.max - fl.min + 1
	}
	for i := 0; i <= span; i += step {
		v := lo + i
		if v > fl.max {
			v -= fl.max - fl.min + 1
		}
		apply(v)
	}
	return nil
}

// value parses a number or (month, day-of-week) a three-letter name.
func value(expr string, fl field, s string) (int, error) {
	for i, n := range fl.names {
		if strings.EqualFold(s, n) {
			return fl.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || s == "" || s[0] == '+' || s[0] == '-' {
		if fl.names != nil {
			return 0, errorf(expr, "%s value %q is not a number from %d to %d or a name %s-%s", fl.name, s, fl.min, fl.max, fl.names[0], fl.names[len(fl.names)-1])
		}
		return 0, errorf(expr, "%s value %q is not a number from %d to %d", fl.name, s, fl.min, fl.max)
	}
	if v < fl.min || v > fl.max {
		return 0, errorf(expr, "%s value %d is outside %d-%d", fl.name, v, fl.min, fl.max)
	}
	return v, nil
}

func (c *Cron) String() string { return c.expr }

// Location returns the time zone the expression is evaluated in.
func (c *Cron) Location() *time.Location { return c.loc }

func (c *Cron) hasYear(y int) bool {
	if y < MinYear || y > MaxYear {
		return false
	}
	i := y - MinYear
	return c.years[i/64]&(1<<(i%64)) != 0
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func weekday(y int, m time.Month, d int) time.Weekday {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday()
}

// nearestWeekday is the Monday-Friday day nearest day n of the month,
// never leaving the month (Quartz's nW). n past the month's end means the
// last day.
func nearestWeekday(y int, m time.Month, n int) int {
	last := daysIn(y, m)
	if n > last {
		n = last
	}
	switch weekday(y, m, n) {
	case time.Saturday:
		if n == 1 {
			return 3 // Monday the 3rd
		}
		return n - 1
	case time.Sunday:
		if n == last {
			return n - 2
		}
		return n + 1
	}
	return n
}

// dayMatches reports whether the date matches the day fields.
func (c *Cron) dayMatches(y int, m time.Month, d int) bool {
	if c.useDOW {
		w := int(weekday(y, m, d)) + 1
		if c.dow.days&(1<<w) != 0 {
			return true
		}
		if c.dow.lastOf&(1<<w) != 0 && d+7 > daysIn(y, m) {
			return true
		}
		return c.dow.nth > 0 && w == c.dow.nthDay && (d-1)/7+1 == c.dow.nth
	}
	if c.dom.days&(1<<d) != 0 {
		return true
	}
	if c.dom.last && d == daysIn(y, m) {
		return true
	}
	if c.dom.lastWeekday && d == nearestWeekday(y, m, daysIn(y, m)) {
		return true
	}
	for _, n := range c.dom.nearest {
		if d == nearestWeekday(y, m, n) {
			return true
		}
	}
	return false
}

// Next returns the first time strictly after after whose wall clock in the
// expression's location matches, or the zero time past year 2199.
func (c *Cron) Next(after time.Time) time.Time {
	a := after.In(c.loc)
	y0, m0, d0 := a.Date()
	h0, mi0 := a.Hour(), a.Minute()
	if y0 < MinYear {
		y0, m0, d0, h0, mi0 = MinYear, 1, 1, 0, 0
	}
	for y := y0; y <= MaxYear; y++ {
		if !c.hasYear(y) {
			continue
		}
		firstY := y == y0
		for m := time.January; m <= time.December; m++ {
			if c.months&(1<<m) == 0 || firstY && m < m0 {
				continue
			}
			firstM := firstY && m == m0
			for d, n := 1, daysIn(y, m); d <= n; d++ {
				if firstM && d < d0 || !c.dayMatches(y, m, d) {
					continue
				}
				firstD := firstM && d == d0
				if t, ok := c.nextInDay(y, m, d, firstD, h0, mi0, after); ok {
					return t
				}
			}
		}
	}
	return time.Time{}
}

// nextInDay finds the first matching hour and minute of the day that
// resolves to an instant after after. On the first day the search starts
// at wall clock h0:mi0.
func (c *Cron) nextInDay(y int, m time.Month, d int, first bool, h0, mi0 int, after time.Time) (time.Time, bool) {
	for hs := c.hours; hs != 0; hs &= hs - 1 {
		h := bits.TrailingZeros32(hs)
		if first && h < h0 {
			continue
		}
		for ms := c.minutes; ms != 0; ms &= ms - 1 {
			mi := bits.TrailingZeros64(ms)
			if first && h == h0 && mi < mi0 {
				continue
			}
			if t, ok := c.resolve(y, m, d, h, mi); ok && t.After(after) {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// resolve turns a wall-clock time into an instant: false when the time
// does not exist (skipped by a daylight saving change), the earlier
// instant when it exists twice.
func (c *Cron) resolve(y int, m time.Month, d, h, mi int) (time.Time, bool) {
	t := time.Date(y, m, d, h, mi, 0, 0, c.loc)
	if !sameWall(t, y, m, d, h, mi) {
		return time.Time{}, false
	}
	for _, back := range []time.Duration{2 * time.Hour, time.Hour, 30 * time.Minute} {
		if e := t.Add(-back); sameWall(e, y, m, d, h, mi) {
			return e, true
		}
	}
	return t, true
}

func sameWall(t time.Time, y int, m time.Month, d, h, mi int) bool {
	ty, tm, td := t.Date()
	return ty == y && tm == m && td == d && t.Hour() == h && t.Minute() == mi
}
