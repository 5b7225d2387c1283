package logfilter

import "testing"

func TestSmoke(t *testing.T) {
	for _, c := range []struct{ p, m string; want bool }{
		{"ERROR", "[ERROR 400] BAD", true},
		{"ERROR -ARGUMENTS", "[ERROR 419] MISSING ARGUMENTS", false},
		{`{ $.a[1].id = 2 }`, `{"a":[{"id":1},{"id":2}]}`, true},
		{`[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes > 1000]`, `127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534`, true},
		{`[..., status_code = 4*, bytes > 2000]`, `127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534`, false},
	} {
		p, err := Parse(c.p)
		if err != nil { t.Fatal(err) }
		if got := p.Match(c.m); got != c.want { t.Errorf("%q %q = %v", c.p, c.m, got) }
	}
}
