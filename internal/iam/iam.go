// Package iam owns Berth's identities: who a caller is once their request
// is authenticated, and the access keys that prove it.
//
// Today there is one principal per installation, the account's root user,
// whose access key pair is created on first start and kept in the data
// directory (mode 0600), or given by environment variables. Later issues
// add agent credentials and IAM-style policies here.
package iam

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/berthdev/berth/internal/durable"
	"github.com/berthdev/berth/internal/errs"
)

// Identity is an authenticated caller.
type Identity struct {
	AccessKey string // the access key id the request was signed with
	Account   string // 12-digit account id
	ARN       string // principal ARN, e.g. arn:aws:iam::000000000000:root
	UserID    string // STS UserId
	Type      string // CloudTrail userIdentity.type: "Root", "IAMUser", ...
	UserName  string // CloudTrail Username ("root" for the root user)
}

// Credentials is an access key pair.
type Credentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// Keyring maps access key ids to their secrets and identities.
// It is safe for concurrent use.
type Keyring struct {
	mu   sync.RWMutex
	keys map[string]keyEntry
}

type keyEntry struct {
	secret string
	id     Identity
}

// NewKeyring returns an empty keyring.
func NewKeyring() *Keyring { return &Keyring{keys: map[string]keyEntry{}} }

// Add registers a key pair for an identity.
func (k *Keyring) Add(c Credentials, id Identity) {
	id.AccessKey = c.AccessKeyID
	k.mu.Lock()
	k.keys[c.AccessKeyID] = keyEntry{secret: c.SecretAccessKey, id: id}
	k.mu.Unlock()
}

// Secret returns the secret of an access key id.
func (k *Keyring) Secret(accessKey string) (string, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	e, ok := k.keys[accessKey]
	return e.secret, ok
}

// Identity returns the identity behind an access key id.
func (k *Keyring) Identity(accessKey string) (Identity, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	e, ok := k.keys[accessKey]
	return e.id, ok
}

// RootIdentity is the identity of an account's root user.
func RootIdentity(account string) Identity {
	return Identity{
		Account:  account,
		ARN:      fmt.Sprintf("arn:aws:iam::%s:root", account),
		UserID:   account,
		Type:     "Root",
		UserName: "root",
	}
}

// RootKeyFile is the name of the root credentials file in the data directory.
const RootKeyFile = "root-credentials.json"

// LoadOrCreateRoot returns the root key pair. When fromEnv has both parts
// set it wins and nothing is written. Otherwise the pair is read from
// dataDir/root-credentials.json, or made and written there (mode 0600) on
// first start, in which case created is true so the caller can print it once.
func LoadOrCreateRoot(dataDir string, fromEnv Credentials) (c Credentials, created bool, err error) {
	if fromEnv.AccessKeyID != "" || fromEnv.SecretAccessKey != "" {
		if fromEnv.AccessKeyID == "" || fromEnv.SecretAccessKey == "" {
			return Credentials{}, false, errs.E(errs.Invalid, "both the access key id and the secret access key must be set")
		}
		return fromEnv, false, nil
	}
	c, err = LoadRoot(dataDir)
	if err == nil || !errs.Is(err, errs.NotFound) {
		return c, false, err
	}
	path := filepath.Join(dataDir, RootKeyFile)
	c = Credentials{AccessKeyID: "AKIA" + randomString(16, upperAlnum), SecretAccessKey: randomString(40, secretAlphabet)}
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return Credentials{}, false, errs.Wrap(errs.Unavailable, err, "create data directory")
	}
	if err := durable.WriteFile(path, b, 0o600); err != nil {
		return Credentials{}, false, errs.Wrap(errs.Unavailable, err, "write root credentials")
	}
	return c, true, nil
}

// LoadRoot reads the root key pair from dataDir. NotFound when absent.
func LoadRoot(dataDir string) (Credentials, error) {
	path := filepath.Join(dataDir, RootKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Credentials{}, errs.E(errs.NotFound, "no root credentials in %s", dataDir)
	}
	if err != nil {
		return Credentials{}, errs.Wrap(errs.Unavailable, err, "read root credentials")
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return Credentials{}, errs.E(errs.Internal, "%s is corrupt; delete it to make a new key pair", path)
	}
	return c, nil
}

const (
	upperAlnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
