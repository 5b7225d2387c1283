package logs

import (
	"math"
	"testing"

	"github.com/berthdev/berth/internal/logstore"
)

// FuzzParseToken: any string either parses to a position that formats
// back to the same token, or is refused; nothing panics.
func FuzzParseToken(f *testing.F) {
	f.Add("f/00000000000000000000000000000000000000000000000000000000")
	f.Add(formatToken('b', logstore.Key{TS: math.MaxInt64, Seq: math.MaxUint64}))
	f.Add("f/1")
	f.Add("b/99999999999999999999999999999999999999999999999999999999")
	f.Fuzz(func(t *testing.T, tok string) {
		dir, k, err := parseToken(tok)
		if err != nil {
			return
		}
		if again := formatToken(dir, k); again != tok {
			t.Fatalf("%q parsed to %c %v, formats as %q", tok, dir, k, again)
		}
	})
}
