package registry

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/store"
)

// TokenTTL is how long a registry token is valid, as in ECR.
const TokenTTL = 12 * time.Hour

// Registry tokens (the password of `docker login -u AWS`) are
//
//	"brt1." + accessKeyID + "." + expiryUnixSeconds + "." + base64url(mac)
//	mac = HMAC-SHA256(tokenKey, "berth-registry-token/v1\n" + accessKeyID + "\n" + expiry)
//
// tokenKey is 32 random bytes made once and kept in the store
// (/registry/config/token-key), so every server sharing the store verifies
// every token and nothing per token is stored. A token grants what its
// access key grants, until it expires or the key is removed from the
// keyring; rotating tokenKey (deleting the key) revokes every token.
const tokenPrefix = "brt1."

// Sealer encrypts a secret with a key kept outside the store (package
// seal).
type Sealer interface {
	Seal(plain, context string) string
	Open(sealed, context string) (string, error)
}

// SetSecretSealer makes the registry keep its token key sealed in the
// store: a dump of the store then cannot mint tokens. A key stored in
// clear before is sealed at its next read. Call it before serving.
func (r *Registry) SetSecretSealer(s Sealer) { r.sealer = s }

// tokenSecret returns the signing key, creating it on first use.
func (r *Registry) tokenSecret(ctx context.Context) ([]byte, error) {
	r.tokenOnce.Lock()
	defer r.tokenOnce.Unlock()
	if r.tokenKey != nil {
		return r.tokenKey, nil
	}
	for {
		kv, err := r.st.Get(ctx, keyTokenKey)
		if err == nil {
			text := string(kv.Value)
			sealed := strings.HasPrefix(text, "seal")
			if sealed {
				if r.sealer == nil {
					return nil, errs.E(errs.Internal, "the registry token key in the store is sealed and this server has no secret key")
				}
				if text, err = r.sealer.Open(text, keyTokenKey); err != nil {
					return nil, errs.Wrap(errs.Internal, err, "the registry token key")
				}
			}
			k, err := base64.StdEncoding.DecodeString(text)
			if err != nil || len(k) < 32 {
				return nil, errs.E(errs.Internal, "the registry token key in the store is corrupt")
			}
			if !sealed && r.sealer != nil {
				// Seal a key stored in clear; tokens made with it stay valid.
				if _, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(keyTokenKey, kv.ModRevision)},
					store.Put(keyTokenKey, []byte(r.sealer.Seal(text, keyTokenKey)))); err != nil {
					return nil, err
				}
			}
			r.tokenKey = k
			return k, nil
		}
		if !errs.Is(err, errs.NotFound) {
			return nil, err
		}
		k := make([]byte, 32)
		rand.Read(k)
		v := base64.StdEncoding.EncodeToString(k)
		if r.sealer != nil {
			v = r.sealer.Seal(v, keyTokenKey)
		}
		if _, err := r.st.Txn(ctx, []store.Cmp{store.Absent(keyTokenKey)}, store.Put(keyTokenKey, []byte(v))); err != nil {
			return nil, err
		}
	}
}

func tokenMAC(key []byte, accessKey string, exp int64) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("berth-registry-token/v1\n" + accessKey + "\n" + strconv.FormatInt(exp, 10)))
	return m.Sum(nil)
}

// Pull tokens, handed to agents with their assignments, are
//
//	"brp1." + subject + "." + expiryUnixSeconds + "." + base64url(mac)
//	mac = HMAC-SHA256(tokenKey, "berth-registry-pull-token/v1\n" + subject + "\n" + expiry)
//
// valid PullTokenTTL. They stand for the account (its root identity, for
// repository policies) but allow pulling only: the version check, manifest
// and blob GET and HEAD; nothing that lists, pushes or deletes. subject
// (the agent's instance id) is for the record.
const (
	pullTokenPrefix = "brp1."
	PullTokenTTL    = time.Hour
)

// IssuePullToken makes a pull-only registry password for subject.
func (r *Registry) IssuePullToken(ctx context.Context, subject string) (string, time.Time, error) {
	if subject == "" || strings.Contains(subject, ".") {
		return "", time.Time{}, errs.E(errs.Invalid, "a pull token's subject must be non-empty and without dots")
	}
	key, err := r.tokenSecret(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := r.now().Add(PullTokenTTL).Unix()
	tok := pullTokenPrefix + subject + "." + strconv.FormatInt(exp, 10) + "." + base64.RawURLEncoding.EncodeToString(pullTokenMAC(key, subject, exp))
	return tok, time.Unix(exp, 0).UTC(), nil
}

func pullTokenMAC(key []byte, subject string, exp int64) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("berth-registry-pull-token/v1\n" + subject + "\n" + strconv.FormatInt(exp, 10)))
	return m.Sum(nil)
}

// verifyPullToken checks a pull token (ok false: tok is not one).
func (r *Registry) verifyPullToken(ctx context.Context, tok string) (iam.Identity, bool, error) {
	rest, ok := strings.CutPrefix(tok, pullTokenPrefix)
	if !ok {
		return iam.Identity{}, false, nil
	}
	bad := errs.R(errs.Unauthenticated, ReasonUnauthorized, "the registry token is not valid")
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return iam.Identity{}, true, bad
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return iam.Identity{}, true, bad
	}
	mac, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return iam.Identity{}, true, bad
	}
	key, err := r.tokenSecret(ctx)
	if err != nil {
		return iam.Identity{}, true, err
	}
	if !hmac.Equal(mac, pullTokenMAC(key, parts[0], exp)) {
		return iam.Identity{}, true, bad
	}
	if r.now().Unix() >= exp {
		return iam.Identity{}, true, errs.R(errs.Unauthenticated, ReasonUnauthorized, "the registry pull token expired at %s", time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return iam.RootIdentity(r.account), true, nil
}

// IssueToken makes a registry password for an access key, valid TokenTTL.
func (r *Registry) IssueToken(ctx context.Context, accessKey string) (string, time.Time, error) {
	key, err := r.tokenSecret(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := r.now().Add(TokenTTL).Unix()
	tok := tokenPrefix + accessKey + "." + strconv.FormatInt(exp, 10) + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(key, accessKey, exp))
	return tok, time.Unix(exp, 0).UTC(), nil
}

// Identities resolves access keys to identities (iam.Keyring).
type Identities interface {
	Identity(accessKey string) (iam.Identity, bool)
}

// VerifyToken checks a registry password and returns whose it is.
func (r *Registry) VerifyToken(ctx context.Context, ids Identities, tok string) (iam.Identity, error) {
	bad := errs.R(errs.Unauthenticated, ReasonUnauthorized, "the registry token is not valid")
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok {
		return iam.Identity{}, bad
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return iam.Identity{}, bad
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return iam.Identity{}, bad
	}
	mac, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return iam.Identity{}, bad
	}
	key, err := r.tokenSecret(ctx)
	if err != nil {
		return iam.Identity{}, err
	}
	if !hmac.Equal(mac, tokenMAC(key, parts[0], exp)) {
		return iam.Identity{}, bad
	}
	if r.now().Unix() >= exp {
		return iam.Identity{}, errs.R(errs.Unauthenticated, ReasonUnauthorized, "the registry token expired at %s; run aws ecr get-login-password again", time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	id, ok := ids.Identity(parts[0])
	if !ok {
		return iam.Identity{}, errs.R(errs.Unauthenticated, ReasonUnauthorized, "the access key of this registry token no longer exists")
	}
	return id, nil
}
