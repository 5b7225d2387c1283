package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/berthdev/berth/internal/errs"
)

// Digest is a content digest, "sha256:<64 lowercase hex>". Only sha256 is
// accepted: it is what Docker, ECR and the OCI image spec use by default.
type Digest string

// ParseDigest validates s.
func ParseDigest(s string) (Digest, error) {
	alg, hexPart, ok := strings.Cut(s, ":")
	if !ok || alg == "" || hexPart == "" {
		return "", errs.R(errs.Invalid, ReasonDigestInvalid, "invalid digest %q", s)
	}
	if alg != "sha256" {
		return "", errs.R(errs.Invalid, ReasonDigestInvalid, "unsupported digest algorithm %q: only sha256 is supported", alg)
	}
	if len(hexPart) != 64 {
		return "", errs.R(errs.Invalid, ReasonDigestInvalid, "invalid sha256 digest %q", s)
	}
	for _, c := range hexPart {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", errs.R(errs.Invalid, ReasonDigestInvalid, "invalid sha256 digest %q", s)
		}
	}
	return Digest(s), nil
}

// DigestOf returns the sha256 digest of b.
func DigestOf(b []byte) Digest {
	sum := sha256.Sum256(b)
	return Digest("sha256:" + hex.EncodeToString(sum[:]))
}

// Hex returns the digest's hex part.
func (d Digest) Hex() string {
	_, h, _ := strings.Cut(string(d), ":")
	return h
}

func (d Digest) String() string { return string(d) }

// isDigest reports whether a manifest reference is a digest (not a tag).
func isDigest(ref string) bool { return strings.Contains(ref, ":") }
