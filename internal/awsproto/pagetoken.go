package awsproto

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/berthdev/berth/internal/errs"
)

// Pagination tokens are opaque to clients: base64url of a small JSON
// document, with a version prefix so the format can change.
const tokenPrefix = "b1."

// EncodeToken makes a nextToken from a position value.
func EncodeToken(pos any) string {
	b, err := json.Marshal(pos)
	if err != nil {
		panic(err) // positions are plain data
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// DecodeToken reads a nextToken made by EncodeToken into pos. A token that
// is not one gives an errs.Invalid error.
func DecodeToken(tok string, pos any) error {
	bad := errs.R(errs.Invalid, "token.invalid", "Invalid nextToken: the token is not one this server issued")
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok {
		return bad
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return bad
	}
	if err := json.Unmarshal(b, pos); err != nil {
		return bad
	}
	return nil
}
