package daemon

import (
	"testing"

	"github.com/berthdev/berth/internal/lazyre"
)

// TestAllLazyPatternsCompile: every package the daemon wires declares its patterns with
// internal/lazyre, compiled at their first use; here all of them compile.
func TestAllLazyPatternsCompile(t *testing.T) {
	if err := lazyre.CompileAll(); err != nil {
		t.Fatal(err)
	}
}
