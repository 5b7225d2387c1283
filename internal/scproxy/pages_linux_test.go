package scproxy

import (
	"os"
	"strings"
	"testing"
)

// TestReleaseStartupPages: the executable's read-only pages leave the resident set and the
// process goes on running code and reading its tables afterwards.
func TestReleaseStartupPages(t *testing.T) {
	before := rssFile(t)
	n := ReleaseStartupPages()
	if n <= 0 {
		t.Fatalf("advised %d bytes", n)
	}
	after := rssFile(t)
	if after >= before {
		t.Errorf("RssFile %d kB before, %d kB after", before, after)
	}
	// Code and read-only data fault back in.
	if s := strings.Repeat("ab", 3); s != "ababab" {
		t.Fatal(s)
	}
}

func rssFile(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssFile:" {
			var n int
			for _, c := range f[1] {
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	t.Skip("no RssFile")
	return 0
}
