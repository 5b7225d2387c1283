package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed schedule expression.
type Schedule interface {
	// Next returns the first firing strictly after after, or the zero
	// time when there is none (an at() in the past, a cron whose years
	// are over).
	Next(after time.Time) time.Time
	// String returns the expression as it was parsed.
	String() string
}

// Error is a schedule expression that does not parse. Msg says what is
// wrong in words meant for the API caller; callers wrap it in their
// service's own error (EventBridge's ValidationException "Parameter
// ScheduleExpression is not valid.", Application Auto Scaling's
// ValidationException).
type Error struct {
	Expr string // the expression as given
	Msg  string // what is wrong, e.g. "rate value must be a positive integer"
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid schedule expression %q: %s", e.Expr, e.Msg)
}

func errorf(expr, format string, args ...any) error {
	return &Error{Expr: expr, Msg: fmt.Sprintf(format, args...)}
}

// Years AWS accepts in cron and at expressions.
const (
	MinYear = 1970
	MaxYear = 2199
)

// Parse parses an at(), rate() or cron() expression. loc is the time zone
// the expression's wall-clock times are in; nil means UTC.
func Parse(expr string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	open := strings.IndexByte(expr, '(')
	if open < 0 || !strings.HasSuffix(expr, ")") {
		return nil, errorf(expr, "expected at(...), rate(...) or cron(...)")
	}
	body := expr[open+1 : len(expr)-1]
	switch expr[:open] {
	case "at":
		return parseAt(expr, body, loc)
	case "rate":
		return parseRate(expr, body)
	case "cron":
		return parseCron(expr, body, loc)
	}
	return nil, errorf(expr, "expected at(...), rate(...) or cron(...)")
}

// At fires once, at Time.
type At struct {
	Time time.Time
	expr string
}

func parseAt(expr, body string, loc *time.Location) (Schedule, error) {
	t, err := time.ParseInLocation("2006-01-02T15:04:05", body, loc)
	if err != nil {
		return nil, errorf(expr, "at expression must be at(yyyy-mm-ddThh:mm:ss)")
	}
	if y := t.Year(); y < MinYear || y > MaxYear {
		return nil, errorf(expr, "year %d is outside %d-%d", y, MinYear, MaxYear)
	}
	return &At{Time: t, expr: expr}, nil
}

// Next returns a.Time if it is after after, else the zero time.
func (a *At) Next(after time.Time) time.Time {
	if a.Time.After(after) {
		return a.Time
	}
	return time.Time{}
}

func (a *At) String() string { return a.expr }

// Rate fires every Period.
type Rate struct {
	Value  int64
	Unit   string // minute, minutes, hour, hours, day, days
	Period time.Duration
	expr   string
}

// maxRateValue keeps Period inside time.Duration (about 292 years) for
// every unit.
const maxRateValue = int64((1<<63 - 1) / int64(24*time.Hour))

func parseRate(expr, body string) (Schedule, error) {
	f := strings.Fields(body)
	if len(f) != 2 {
		return nil, errorf(expr, "rate expression must be rate(value unit)")
	}
	v, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || v <= 0 || f[0][0] == '+' {
		return nil, errorf(expr, "rate value must be a positive integer")
	}
	if v > maxRateValue {
		return nil, errorf(expr, "rate value %d is too large", v)
	}
	var unit time.Duration
	switch f[1] {
	case "minute", "minutes":
		unit = time.Minute
	case "hour", "hours":
		unit = time.Hour
	case "day", "days":
		unit = 24 * time.Hour
	default:
		return nil, errorf(expr, "rate unit must be minute, minutes, hour, hours, day or days")
	}
	plural := strings.HasSuffix(f[1], "s")
	if v == 1 && plural {
		return nil, errorf(expr, "a rate of 1 takes a singular unit (%s)", strings.TrimSuffix(f[1], "s"))
	}
	if v != 1 && !plural {
		return nil, errorf(expr, "a rate other than 1 takes a plural unit (%ss)", f[1])
	}
	return &Rate{Value: v, Unit: f[1], Period: time.Duration(v) * unit, expr: expr}, nil
}

// Next returns after plus the period: pass the previous firing.
func (r *Rate) Next(after time.Time) time.Time { return after.Add(r.Period) }

// NextAligned returns the first anchor + k*Period (k >= 1) strictly after
// after: the firings of a rate started at anchor.
func (r *Rate) NextAligned(anchor, after time.Time) time.Time {
	if after.Before(anchor) {
		return anchor.Add(r.Period)
	}
	k := after.Sub(anchor)/r.Period + 1
	return anchor.Add(k * r.Period)
}

func (r *Rate) String() string { return r.expr }
