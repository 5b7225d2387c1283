package iam

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berthdev/berth/internal/errs"
)

func TestRootKeyPairIsCreatedOncePrivatelyAndReread(t *testing.T) {
	dir := t.TempDir()
	c, created, err := LoadOrCreateRoot(dir, Credentials{})
	if err != nil || !created {
		t.Fatalf("first start: %v created=%v", err, created)
	}
	if len(c.AccessKeyID) != 20 || c.AccessKeyID[:4] != "AKIA" || len(c.SecretAccessKey) != 40 {
		t.Fatalf("key pair shape: %+v", c)
	}
	fi, err := os.Stat(filepath.Join(dir, RootKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	again, created, err := LoadOrCreateRoot(dir, Credentials{})
	if err != nil || created || again != c {
		t.Fatalf("second start: %v created=%v same=%v", err, created, again == c)
	}
}

func TestEnvironmentCredentialsWin(t *testing.T) {
	dir := t.TempDir()
	env := Credentials{AccessKeyID: "AKIAENV", SecretAccessKey: "s"}
	c, created, err := LoadOrCreateRoot(dir, env)
	if err != nil || created || c != env {
		t.Fatalf("%v %v %+v", err, created, c)
	}
	if _, err := os.Stat(filepath.Join(dir, RootKeyFile)); !os.IsNotExist(err) {
		t.Fatal("environment credentials were written to disk")
	}
	if _, _, err := LoadOrCreateRoot(dir, Credentials{AccessKeyID: "only-id"}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("half a key pair: %v", err)
	}
}

func TestCorruptFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, RootKeyFile), []byte("{"), 0o600)
	if _, _, err := LoadOrCreateRoot(dir, Credentials{}); err == nil {
		t.Fatal("corrupt file accepted")
	}
	if _, err := LoadRoot(t.TempDir()); !errs.Is(err, errs.NotFound) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestKeyring(t *testing.T) {
	k := NewKeyring()
	k.Add(Credentials{AccessKeyID: "A", SecretAccessKey: "S"}, RootIdentity("123456789012"))
	if s, ok := k.Secret("A"); !ok || s != "S" {
		t.Fatal("secret")
	}
	id, ok := k.Identity("A")
	if !ok || id.ARN != "arn:aws:iam::123456789012:root" || id.AccessKey != "A" {
		t.Fatalf("identity %+v", id)
	}
	if _, ok := k.Secret("B"); ok {
		t.Fatal("unknown key found")
	}
}
