package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errs"
)

// A sign-in token is minted by whoever holds an access key's secret (berth
// up, berth console with the data dir's root credentials or with the root
// key pair given) and verified by the server with the same secret, so no
// server call is needed to make one:
//
//	<access key id>.<expiry, unix seconds>.<nonce, 32 hex>.<HMAC-SHA256, 64 hex>
//
// The MAC is over "berth-console-signin\n<key>\n<expiry>\n<nonce>" with a
// key derived from the secret (never the secret itself). The server takes
// a token once: its nonce is recorded in the store until the token expires.

// TokenTTL is how long a sign-in token can be exchanged for a session.
const TokenTTL = 10 * time.Minute

const tokenDomain = "berth-console-signin"

// MintToken makes a sign-in token for an access key valid until now+ttl.
func MintToken(accessKey, secret string, now time.Time, ttl time.Duration) string {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic(err)
	}
	exp := strconv.FormatInt(now.Add(ttl).Unix(), 10)
	n := hex.EncodeToString(nonce[:])
	return accessKey + "." + exp + "." + n + "." + tokenMAC(secret, accessKey, exp, n)
}

func tokenMAC(secret, key, exp, nonce string) string {
	k := hmac.New(sha256.New, []byte(secret))
	k.Write([]byte(tokenDomain))
	m := hmac.New(sha256.New, k.Sum(nil))
	fmt.Fprintf(m, "%s\n%s\n%s\n%s", tokenDomain, key, exp, nonce)
	return hex.EncodeToString(m.Sum(nil))
}

// parsedToken is a token whose MAC checked out.
type parsedToken struct {
	AccessKey string
	Expires   time.Time
	Nonce     string
}

// verifyToken checks a token's form, MAC and expiry. secret looks up an
// access key's secret. Every failure is the same Unauthenticated error, so
// a caller learns nothing about which part was wrong.
func verifyToken(tok string, secret func(string) (string, bool), now time.Time) (parsedToken, error) {
	bad := errs.E(errs.Unauthenticated, "The sign-in link is not valid or has expired: run `berth console` for a new one.")
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || len(parts[2]) != 32 || len(parts[3]) != 64 {
		return parsedToken{}, bad
	}
	key, exp, nonce, mac := parts[0], parts[1], parts[2], parts[3]
	sec, ok := secret(key)
	if !ok {
		return parsedToken{}, bad
	}
	if !hmac.Equal([]byte(mac), []byte(tokenMAC(sec, key, exp, nonce))) {
		return parsedToken{}, bad
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !now.Before(time.Unix(e, 0)) {
		return parsedToken{}, bad
	}
	return parsedToken{AccessKey: key, Expires: time.Unix(e, 0), Nonce: nonce}, nil
}

// randomID returns n random bytes as unpadded base64url.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
