package seal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	dir := t.TempDir()
	b, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v", err)
	}
	v := b.Seal("s3cret", "/k/1")
	if strings.Contains(v, "s3cret") || !IsSealed(v) {
		t.Fatalf("sealed value %q", v)
	}
	if got, err := b.Open(v, "/k/1"); err != nil || got != "s3cret" {
		t.Fatalf("Open: %q %v", got, err)
	}
	if _, err := b.Open(v, "/k/2"); err == nil {
		t.Fatal("a value opened under another key name")
	}
	again, _ := LoadOrCreate(dir)
	if got, err := again.Open(v, "/k/1"); err != nil || got != "s3cret" {
		t.Fatalf("reloaded key: %q %v", got, err)
	}
	other, _ := LoadOrCreate(t.TempDir())
	if _, err := other.Open(v, "/k/1"); err == nil {
		t.Fatal("another server's key opened the value")
	}
	if _, err := b.Open(v[:len(v)-4], "/k/1"); err == nil {
		t.Fatal("a truncated value opened")
	}
}
