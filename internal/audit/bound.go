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
	// the bounds above, with JSON escaping (up to 6 bytes per byte for
	// control characters) and keys.
	MaxRecord = 6*(13*MaxField+MaxUserAgent+MaxErrorMessage+MaxResources*(MaxField+40)) + MaxParameters + 1024
)

// Bound returns rec with every caller-controlled field cut to its bound
// and the fields cut named in Truncated. Strings are cut on a UTF-8
// boundary and end with "...[truncated]"; the record stays valid JSON.
func Bound(rec Record) Record {
	cut := func(name string, s *string, max int) {
		if len(*s) <= max {
			return
		}
		*s = truncate(*s, max)
		rec.Truncated = append(rec.Truncated, name)
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
		if len(r.Type) <= MaxField && len(r.Name) <= MaxField {
			continue
		}
		if !copied {
			rec.Resources = append([]Resource(nil), rec.Resources...)
			copied = true
			if !slices.Contains(rec.Truncated, "resources") {
				rec.Truncated = append(rec.Truncated, "resources")
			}
		}
		rec.Resources[i] = Resource{Type: truncate(r.Type, MaxField), Name: truncate(r.Name, MaxField)}
	}
	return rec
}

const truncMark = "...[truncated]"

// truncate cuts s to at most max bytes (mark included) on a rune boundary.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max - len(truncMark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + truncMark
}
