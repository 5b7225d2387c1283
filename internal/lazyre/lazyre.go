// Package lazyre holds regular expressions compiled on their first use instead of at package
// initialisation. The API model packages declare a few hundred patterns; compiled at start they
// cost every berth process (the CLI, each Service Connect proxy) a couple of megabytes of heap and
// milliseconds of start-up for validations most processes never run.
package lazyre

import (
	"regexp"
	"sync"
)

// Regexp is a regular expression compiled when first matched.
type Regexp struct {
	src  string
	once sync.Once
	re   *regexp.Regexp
}

var (
	mu  sync.Mutex
	all []*Regexp
)

// New returns the expression src, to be compiled at its first use; src must compile (the code
// generator checks it, and CompileAll lets a test check every one).
func New(src string) *Regexp {
	r := &Regexp{src: src}
	mu.Lock()
	all = append(all, r)
	mu.Unlock()
	return r
}

func (r *Regexp) get() *regexp.Regexp {
	r.once.Do(func() { r.re = regexp.MustCompile(r.src) })
	return r.re
}

// MatchString reports whether s contains a match of the expression.
func (r *Regexp) MatchString(s string) bool { return r.get().MatchString(s) }

// String is the expression's source.
func (r *Regexp) String() string { return r.src }

// CompileAll compiles every expression made so far and returns the first that does not compile.
func CompileAll() error {
	mu.Lock()
	list := append([]*Regexp(nil), all...)
	mu.Unlock()
	for _, r := range list {
		if _, err := regexp.Compile(r.src); err != nil {
			return err
		}
	}
	return nil
}
