package lazyre

import "testing"

func TestLazyMatch(t *testing.T) {
	r := New(`^a+b$`)
	if r.re != nil {
		t.Fatal("compiled before its first use")
	}
	if !r.MatchString("aab") || r.MatchString("ab ") {
		t.Fatal("wrong matches")
	}
	if r.String() != `^a+b$` {
		t.Fatal(r.String())
	}
}

func TestCompileAllFindsABadPattern(t *testing.T) {
	if err := CompileAll(); err != nil {
		t.Fatal(err)
	}
	New(`(`)
	if err := CompileAll(); err == nil {
		t.Fatal("a pattern that does not compile passed")
	}
	mu.Lock()
	all = all[:len(all)-1]
	mu.Unlock()
}
