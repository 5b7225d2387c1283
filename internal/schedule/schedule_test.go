package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York and Australia/Lord_Howe on any machine
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The examples of the EventBridge and Application Auto Scaling user
// guides, each with the firings its description implies.
func TestDocumentedExamples(t *testing.T) {
	cases := []struct {
		name, expr, after string
		want              []string // successive firings
	}{
		{"10:00 every day", "cron(0 10 * * ? *)", "2026-12-02T10:00:00Z",
			[]string{"2026-12-03T10:00:00Z", "2026-12-04T10:00:00Z"}},
		{"12:15 every day", "cron(15 12 * * ? *)", "2026-12-02T05:00:00Z",
			[]string{"2026-12-02T12:15:00Z", "2026-12-03T12:15:00Z"}},
		{"18:00 Monday to Friday", "cron(0 18 ? * MON-FRI *)", "2026-12-04T18:00:00Z", // a Friday
			[]string{"2026-12-07T18:00:00Z", "2026-12-08T18:00:00Z"}},
		{"8:00 on the first day of every month", "cron(0 8 1 * ? *)", "2026-12-02T00:00:00Z",
			[]string{"2027-01-01T08:00:00Z", "2027-02-01T08:00:00Z"}},
		{"every 15 minutes", "cron(0/15 * * * ? *)", "2026-12-02T23:40:00Z",
			[]string{"2026-12-02T23:45:00Z", "2026-12-03T00:00:00Z", "2026-12-03T00:15:00Z"}},
		{"every 10 minutes Monday to Friday", "cron(0/10 * ? * MON-FRI *)", "2026-12-04T23:55:00Z",
			[]string{"2026-12-07T00:00:00Z", "2026-12-07T00:10:00Z"}},
		{"every 5 minutes 8:00-17:55 Monday to Friday", "cron(0/5 8-17 ? * MON-FRI *)", "2026-12-02T17:52:00Z",
			[]string{"2026-12-02T17:55:00Z", "2026-12-03T08:00:00Z", "2026-12-03T08:05:00Z"}},
		{"9:00 on the first Monday of each month", "cron(0 9 ? * 2#1 *)", "2026-12-02T00:00:00Z",
			[]string{"2026-12-07T09:00:00Z", "2027-01-04T09:00:00Z", "2027-02-01T09:00:00Z"}},
		{"1/10 is the 1st, 11th, 21st minute", "cron(1/10 * * * ? *)", "2026-12-02T10:05:00Z",
			[]string{"2026-12-02T10:11:00Z", "2026-12-02T10:21:00Z"}},
		{"JAN,FEB,MAR", "cron(0 0 1 JAN,FEB,MAR ? *)", "2026-12-02T00:00:00Z",
			[]string{"2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
		{"days 1-15", "cron(0 0 1-15 * ? *)", "2026-12-14T12:00:00Z",
			[]string{"2026-12-15T00:00:00Z", "2027-01-01T00:00:00Z"}},
		{"7th, any weekday", "cron(0 0 7 * ? *)", "2026-12-02T00:00:00Z",
			[]string{"2026-12-07T00:00:00Z", "2027-01-07T00:00:00Z"}},
		{"L: last day of the month", "cron(0 0 L * ? *)", "2027-01-31T00:00:00Z",
			[]string{"2027-02-28T00:00:00Z", "2027-03-31T00:00:00Z"}},
		{"L in February of a leap year", "cron(0 0 L 2 ? *)", "2027-03-01T00:00:00Z",
			[]string{"2028-02-29T00:00:00Z"}},
		{"L in day-of-week: Saturday", "cron(0 0 ? * L *)", "2026-12-02T00:00:00Z",
			[]string{"2026-12-05T00:00:00Z", "2026-12-12T00:00:00Z"}},
		{"5L: the last Thursday", "cron(0 0 ? * 5L *)", "2026-12-02T00:00:00Z",
			[]string{"2026-12-31T00:00:00Z", "2027-01-28T00:00:00Z"}},
		{"3W: the weekday nearest the 3rd", "cron(0 0 3W * ? *)", "2026-12-02T00:00:00Z",
			// 2026-12-03 is a Thursday; 2027-01-03 a Sunday; 2027-04-03 a Saturday
			[]string{"2026-12-03T00:00:00Z", "2027-01-04T00:00:00Z", "2027-02-03T00:00:00Z", "2027-03-03T00:00:00Z", "2027-04-02T00:00:00Z"}},
		{"1W on a Saturday stays in the month", "cron(0 0 1W 5 ? 2027)", "2027-01-01T00:00:00Z",
			[]string{"2027-05-03T00:00:00Z"}}, // 2027-05-01 is a Saturday
		{"LW: the last weekday", "cron(0 0 LW * ? *)", "2027-01-01T00:00:00Z",
			[]string{"2027-01-29T00:00:00Z", "2027-02-26T00:00:00Z"}}, // Jan 31 2027 is a Sunday
		{"3#2: the second Tuesday", "cron(0 0 ? * 3#2 *)", "2026-12-01T00:00:00Z",
			[]string{"2026-12-08T00:00:00Z", "2027-01-12T00:00:00Z"}},
		{"#5 skips months without a fifth", "cron(0 0 ? * FRI#5 2027)", "2027-01-01T00:00:00Z",
			[]string{"2027-01-29T00:00:00Z", "2027-04-30T00:00:00Z"}},
		{"a year list ends", "cron(0 0 1 1 ? 2027,2029)", "2027-01-01T00:00:00Z",
			[]string{"2029-01-01T00:00:00Z", "0001-01-01T00:00:00Z"}},
		{"Feb 30 never comes", "cron(0 0 30 2 ? *)", "2026-12-02T00:00:00Z",
			[]string{"0001-01-01T00:00:00Z"}},
		{"wrapping range FRI-MON", "cron(0 12 ? * FRI-MON *)", "2026-12-03T12:00:00Z", // Thursday
			[]string{"2026-12-04T12:00:00Z", "2026-12-05T12:00:00Z", "2026-12-06T12:00:00Z", "2026-12-07T12:00:00Z", "2026-12-11T12:00:00Z"}},
		{"lower-case names", "cron(0 12 ? dec wed *)", "2026-12-01T00:00:00Z",
			[]string{"2026-12-02T12:00:00Z"}},
		{"Application Auto Scaling: every Monday 6:30", "cron(30 6 ? * MON *)", "2026-12-02T00:00:00Z",
			[]string{"2026-12-07T06:30:00Z", "2026-12-14T06:30:00Z"}},
		{"rate(5 minutes)", "rate(5 minutes)", "2026-12-02T00:00:00Z",
			[]string{"2026-12-02T00:05:00Z", "2026-12-02T00:10:00Z"}},
		{"rate(1 hour)", "rate(1 hour)", "2026-12-02T00:00:00Z",
			[]string{"2026-12-02T01:00:00Z"}},
		{"rate(7 days)", "rate(7 days)", "2026-12-02T00:00:00Z",
			[]string{"2026-12-09T00:00:00Z"}},
		{"at in the future", "at(2026-12-24T18:30:00)", "2026-12-02T00:00:00Z",
			[]string{"2026-12-24T18:30:00Z", "0001-01-01T00:00:00Z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.expr, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			at := utc(tc.after)
			for i, w := range tc.want {
				got := s.Next(at)
				if !got.Equal(utc(w)) {
					t.Fatalf("firing %d after %s: got %s, want %s", i+1, at, got, w)
				}
				at = got
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ expr, want string }{
		{"", "expected at(...), rate(...) or cron(...)"},
		{"every(5 minutes)", "expected at(...), rate(...) or cron(...)"},
		{"rate(5 minutes", "expected at(...), rate(...) or cron(...)"},
		{"rate(1 minutes)", "a rate of 1 takes a singular unit (minute)"},
		{"rate(5 minute)", "a rate other than 1 takes a plural unit (minutes)"},
		{"rate(2 hour)", "a rate other than 1 takes a plural unit (hours)"},
		{"rate(0 minutes)", "rate value must be a positive integer"},
		{"rate(-1 minutes)", "rate value must be a positive integer"},
		{"rate(1.5 hours)", "rate value must be a positive integer"},
		{"rate(5 seconds)", "rate unit must be minute, minutes, hour, hours, day or days"},
		{"rate(5)", "rate expression must be rate(value unit)"},
		{"rate(99999999999 days)", "rate value 99999999999 is too large"},
		{"at(2026-12-02 10:00:00)", "at expression must be at(yyyy-mm-ddThh:mm:ss)"},
		{"at(2200-01-01T00:00:00)", "year 2200 is outside 1970-2199"},
		{"cron(0 10 * * *)", "cron expression must have six fields (minutes hours day-of-month month day-of-week year), got 5"},
		{"cron(0 10 * * * *)", "day-of-month and day-of-week cannot both be specified; use ? in one of them"},
		{"cron(0 10 ? * ? *)", "day-of-month and day-of-week cannot both be ?; use ? in exactly one of them"},
		{"cron(60 10 * * ? *)", `minutes value 60 is outside 0-59`},
		{"cron(0 24 * * ? *)", `hours value 24 is outside 0-23`},
		{"cron(0 0 32 * ? *)", `day-of-month value 32 is outside 1-31`},
		{"cron(0 0 0 * ? *)", `day-of-month value 0 is outside 1-31`},
		{"cron(0 0 * 13 ? *)", `month value 13 is outside 1-12`},
		{"cron(0 0 * FOO ? *)", `month value "FOO" is not a number from 1 to 12 or a name JAN-DEC`},
		{"cron(0 0 ? * 8 *)", `day-of-week value 8 is outside 1-7`},
		{"cron(0 0 ? * 0 *)", `day-of-week value 0 is outside 1-7`},
		{"cron(0 0 * * ? 1969)", `year value 1969 is outside 1970-2199`},
		{"cron(0 0 * * ? 2200)", `year value 2200 is outside 1970-2199`},
		{"cron(0/0 * * * ? *)", "minutes 0/0: the increment after / must be a number from 1 to 60"},
		{"cron(0,,5 * * * ? *)", "minutes has an empty list item"},
		{"cron(L * * * ? *)", `minutes value "L" is not a number from 0 to 59`},
		{"cron(0 0 ? * 3#1,6#3 *)", "day-of-week with # takes exactly one expression, not a list"},
		{"cron(0 0 ? * 3#6 *)", "day-of-week 3#6: the number after # must be 1-5"},
		{"cron(0 0 ? * */2 *)", "day-of-week does not take the / increment"},
		{"cron(0 0 5# * ? *)", `day-of-month value "5#" is not a number from 1 to 31`},
		{"cron(? 0 * * ? *)", `minutes value "?" is not a number from 0 to 59`},
		{"cron(0 0 32W * ? *)", `day-of-month value 32 is outside 1-31`},
	}
	for _, tc := range cases {
		_, err := Parse(tc.expr, time.UTC)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q): err %v, want *Error", tc.expr, err)
			continue
		}
		if e.Msg != tc.want || e.Expr != tc.expr {
			t.Errorf("Parse(%q): %q, want %q", tc.expr, e.Msg, tc.want)
		}
		if !strings.Contains(err.Error(), tc.expr) {
			t.Errorf("Error() %q does not name the expression", err)
		}
	}
}

// In New York, 2026's spring change skips 02:00-02:59 on March 8 and the
// autumn change repeats 01:00-01:59 on November 1.
func TestDaylightSavingTime(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, expr, after string
		want              []string
	}{
		{"a skipped time does not fire that day", "cron(30 2 * * ? *)", "2026-03-07T08:00:00Z",
			[]string{"2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"}},
		{"a repeated time fires once, the first time", "cron(30 1 * * ? *)", "2026-10-31T12:00:00Z",
			[]string{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		{"every 30 minutes across the autumn change", "cron(0/30 * * * ? *)", "2026-11-01T04:45:00Z",
			[]string{"2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T07:00:00Z", "2026-11-01T07:30:00Z"}},
		{"every hour across the spring change", "cron(0 * * * ? *)", "2026-03-08T05:30:00Z",
			[]string{"2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"}},
		{"local 9:00 moves in UTC", "cron(0 9 * * ? *)", "2026-03-07T15:00:00Z",
			[]string{"2026-03-08T13:00:00Z"}},
		{"at is local time", "at(2026-07-04T12:00:00)", "2026-07-01T00:00:00Z",
			[]string{"2026-07-04T16:00:00Z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.expr, ny)
			if err != nil {
				t.Fatal(err)
			}
			at := utc(tc.after)
			for i, w := range tc.want {
				got := s.Next(at)
				if !got.Equal(utc(w)) {
					t.Fatalf("firing %d after %s: got %s, want %s", i+1, at.UTC(), got.UTC(), w)
				}
				at = got
			}
		})
	}
	// Lord Howe Island moves by 30 minutes: 01:45 repeats on 2026-04-05.
	lh, err := time.LoadLocation("Australia/Lord_Howe")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Parse("cron(45 1 * * ? *)", lh)
	got := s.Next(utc("2026-04-04T12:00:00Z"))
	if want := utc("2026-04-04T14:45:00Z"); !got.Equal(want) { // 01:45 +11:00
		t.Errorf("Lord Howe: got %s, want %s", got.UTC(), want)
	}
}

func TestRateNextAligned(t *testing.T) {
	s, _ := Parse("rate(10 minutes)", nil)
	r := s.(*Rate)
	anchor := utc("2026-12-02T10:03:00Z")
	for _, c := range []struct{ after, want string }{
		{"2026-12-02T09:00:00Z", "2026-12-02T10:13:00Z"},
		{"2026-12-02T10:03:00Z", "2026-12-02T10:13:00Z"},
		{"2026-12-02T10:12:59Z", "2026-12-02T10:13:00Z"},
		{"2026-12-02T10:13:00Z", "2026-12-02T10:23:00Z"},
		{"2026-12-03T00:00:00Z", "2026-12-03T00:03:00Z"},
	} {
		if got := r.NextAligned(anchor, utc(c.after)); !got.Equal(utc(c.want)) {
			t.Errorf("NextAligned(%s): %s, want %s", c.after, got, c.want)
		}
	}
	if r.Value != 10 || r.Unit != "minutes" || r.Period != 10*time.Minute || r.String() != "rate(10 minutes)" {
		t.Errorf("rate fields: %+v", r)
	}
}

func TestBeforeAndAfterTheYearRange(t *testing.T) {
	s, _ := Parse("cron(0 0 1 1 ? *)", time.UTC)
	if got := s.Next(utc("1900-05-05T00:00:00Z")); !got.Equal(utc("1970-01-01T00:00:00Z")) {
		t.Errorf("before 1970: %s", got)
	}
	if got := s.Next(utc("2199-01-01T00:00:00Z")); !got.IsZero() {
		t.Errorf("after the last firing: %s", got)
	}
}
