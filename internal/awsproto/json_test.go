package awsproto

import (
	"testing"
	"time"
)

func TestTimeRoundTripsExactly(t *testing.T) {
	for _, ms := range []int64{1795316348983, 1709242525051, 1709242525000, 1, 0, 999, -1, -1236, -1000, -86400001} {
		in := Time{time.UnixMilli(ms).UTC()}
		b, err := in.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var out Time
		if err := out.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		if !out.Equal(in.Time) {
			t.Errorf("%d: %s came back as %v", ms, b, out.UnixMilli())
		}
	}
}

func TestTimeAcceptsAWSForms(t *testing.T) {
	cases := map[string]int64{
		`1709242525.051`:             1709242525051,
		`1709242525`:                 1709242525000,
		`"2024-02-29T21:35:25.051Z"`: 1709242525051,
		`1.709242525051e9`:           1709242525051,
	}
	for in, want := range cases {
		var tm Time
		if err := tm.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if tm.UnixMilli() != want {
			t.Errorf("%s: got %d want %d", in, tm.UnixMilli(), want)
		}
	}
	for _, bad := range []string{`"yesterday"`, `1.2.3`, `true`, `1.x`} {
		var tm Time
		if err := tm.UnmarshalJSON([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
