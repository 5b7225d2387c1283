// Package seal encrypts the few secrets Berth must keep in the store but
// needs back in clear (an agent's SigV4 secret: SigV4 verification needs
// the secret itself, not a hash of it) with a key that is never in the
// store: it lives in the server's data directory (0600). A dump or backup
// of the store, or a local user reading etcd, then sees only ciphertext
// (docs/security.md).
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthdev/berth/internal/durable"
	"github.com/berthdev/berth/internal/errs"
)

// KeyFile is the key's file name in the data directory.
const KeyFile = "secret.key"

const prefix = "seal1:"

// Box seals and opens values with AES-256-GCM.
type Box struct{ aead cipher.AEAD }

// LoadOrCreate reads dir/KeyFile, or makes it (32 random bytes, mode
// 0600, written durably).
func LoadOrCreate(dir string) (*Box, error) {
	path := filepath.Join(dir, KeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "create %s", dir)
		}
		if err := durable.WriteFile(path, key, 0o600); err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "write %s", path)
		}
	} else if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "read %s", path)
	}
	return New(key)
}

// New makes a box from a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, errs.E(errs.Invalid, "the secret key must be 32 bytes, it is %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plain, bound to context (a value sealed for one key of
// the store does not open as another's).
func (b *Box) Seal(plain, context string) string {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return prefix + base64.RawStdEncoding.EncodeToString(b.aead.Seal(nonce, nonce, []byte(plain), []byte(context)))
}

// Open decrypts what Seal made with the same context.
func (b *Box) Open(sealed, context string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", errs.E(errs.Internal, "not a sealed value")
	}
	ct, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(ct) < b.aead.NonceSize() {
		return "", errs.E(errs.Internal, "a sealed value is corrupt")
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, ct[:n], ct[n:], []byte(context))
	if err != nil {
		return "", errs.E(errs.Internal, "a sealed value does not open with this server's %s: another server's key, or corrupt", KeyFile)
	}
	return string(plain), nil
}

// IsSealed says whether v is a sealed value.
func IsSealed(v string) bool { return strings.HasPrefix(v, prefix) }
