package schedule

import (
	"errors"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, that it fails only with an
// *Error, and that an accepted expression's Next is zero or strictly later
// and keeps the expression.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"cron(0 10 * * ? *)", "cron(0/15 * * * ? *)", "cron(0/5 8-17 ? * MON-FRI *)",
		"cron(0 9 ? * 2#1 *)", "cron(0 0 L * ? *)", "cron(0 0 LW * ? *)", "cron(0 0 3W * ? *)",
		"cron(0 0 ? * 5L *)", "cron(0 0 ? * L 2027-2030)", "cron(*/7 22-2 1,15 JAN-MAR ? */3)",
		"rate(1 minute)", "rate(5 minutes)", "rate(2 days)", "at(2026-12-24T18:30:00)",
		"cron(0 0 30 2 ? *)", "cron(0 0 ? * 3#1,6#3 *)", "rate(1 minutes)", "cron()",
	} {
		f.Add(s)
	}
	ny, _ := time.LoadLocation("America/New_York")
	after := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		for _, loc := range []*time.Location{time.UTC, ny} {
			s, err := Parse(expr, loc)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Msg == "" {
					t.Fatalf("Parse(%q): %v is not a *schedule.Error", expr, err)
				}
				continue
			}
			if s.String() != expr {
				t.Fatalf("String() = %q, want %q", s.String(), expr)
			}
			if n := s.Next(after); !n.IsZero() && !n.After(after) {
				t.Fatalf("%q: Next(%s) = %s", expr, after, n)
			}
		}
	})
}
