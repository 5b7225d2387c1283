package audit

import (
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Bounds on one record. Much of a record is text the caller chose: the
// user agent, the access key and region of a signature that need not be
// valid, the operation named by a header, error messages that may echo
// input, request parameters. Each is cut to its bound so that one record
// stays a few KiB however large the request (headers up to 1 MiB), and the
// names of the fields cut are listed in Record.Truncated.
const (
	// MaxField bounds short identity strings: access key, principal ARN,
	// account, user name, identity type, source address, region,
	// operation, event source, error code.
	MaxField = 256
	// MaxUserAgent bounds the user agent (SDK user agents with all their
	// feature tags are well under 1 KiB).
	MaxUserAgent = 1024
	// MaxErrorMessage bounds the error message.
	MaxErrorMessage = 1024
	// MaxParameters bounds the redacted request parameters (a 64 KiB ECS
	// task definition, ECS's own limit, fits). Larger parameters are
	// replaced with {"berthTruncated":true,"bytes":N}.
	MaxParameters = 64 << 10
	// MaxResources bounds the number of resources listed.
	MaxResources = 100
	// MaxRecord is the most a bounded record's JSON can take: the sum of
	// the bounds above, with member names and punctuation.
	MaxRecord = 14*MaxField + MaxUserAgent + MaxErrorMessage + MaxResources*(2*MaxField+24) + MaxParameters + 1024
)

// Bound returns rec with every caller-controlled field cut to its bound
// and the fields cut named in Truncated. Bounds are in bytes of the JSON
// encoding (a "<" counts six, as encoding/json writes \u003c); strings are
// cut between runes and end with "...[truncated]"; the record stays valid
// JSON.
func Bound(rec Record) Record {
	cut := func(name string, s *string, max int) {
		if t := truncate(*s, max); len(t) != len(*s) {
			*s = t
			rec.Truncated = append(rec.Truncated, name)
		}
	}
	cut("eventSource", &rec.EventSource, MaxField)
	cut("operation", &rec.Operation, MaxField)
	cut("requestId", &rec.RequestID, MaxField)
	cut("eventId", &rec.EventID, MaxField)
	cut("accessKey", &rec.AccessKey, MaxField)
	cut("principalArn", &rec.PrincipalARN, MaxField)
	cut("account", &rec.Account, MaxField)
	cut("userName", &rec.UserName, MaxField)
	cut("identityType", &rec.IdentityType, MaxField)
	cut("sourceIp", &rec.SourceIP, MaxField)
	cut("userAgent", &rec.UserAgent, MaxUserAgent)
	cut("region", &rec.Region, MaxField)
	cut("errorCode", &rec.ErrorCode, MaxField)
	cut("errorMessage", &rec.ErrorMessage, MaxErrorMessage)
	if len(rec.Parameters) > MaxParameters || (len(rec.Parameters) > 0 && !json.Valid(rec.Parameters)) {
		rec.Parameters = json.RawMessage(fmt.Sprintf(`{"berthTruncated":true,"bytes":%d}`, len(rec.Parameters)))
		rec.Truncated = append(rec.Truncated, "parameters")
	}
	if len(rec.Resources) > MaxResources {
		rec.Resources = rec.Resources[:MaxResources:MaxResources]
		rec.Truncated = append(rec.Truncated, "resources")
	}
	copied := false
	for i, r := range rec.Resources {
		typ, name := truncate(r.Type, MaxField), truncate(r.Name, MaxField)
		if len(typ) == len(r.Type) && len(name) == len(r.Name) {
			continue
		}
		if !copied {
			rec.Resources = append([]Resource(nil), rec.Resources...)
			copied = true
			if !slices.Contains(rec.Truncated, "resources") {
				rec.Truncated = append(rec.Truncated, "resources")
			}
		}
		rec.Resources[i] = Resource{Type: typ, Name: name}
	}
	return rec
}

const truncMark = "...[truncated]"

// truncate cuts s so that its JSON encoding (quotes aside) takes at most
// max bytes, mark included, cutting between runes. A string within the
// bound is returned unchanged.
func truncate(s string, max int) string {
	if len(s) <= max/6 || jsonLen(s) <= max {
		return s
	}
	budget := max - len(truncMark)
	n := 0
	for i, r := range s {
		c := runeJSONLen(r, s[i:])
		if n+c > budget {
			return s[:i] + truncMark
		}
		n += c
	}
	return s
}

// jsonLen is the length of s encoded as a JSON string by encoding/json,
// without the quotes.
func jsonLen(s string) int {
	n := 0
	for i, r := range s {
		n += runeJSONLen(r, s[i:])
	}
	return n
}

// runeJSONLen is how many bytes encoding/json writes for r, the rune at
// the start of rest.
func runeJSONLen(r rune, rest string) int {
	switch {
	case r == utf8.RuneError:
		if _, size := utf8.DecodeRuneInString(rest); size == 1 {
			return 6 // invalid byte: \ufffd
		}
		return 3
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
		return 6
	}
	return utf8.RuneLen(r)
}
