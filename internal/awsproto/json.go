package awsproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// DecodeJSON decodes a JSON 1.x request body into v. An empty body is {}.
// Unknown members are ignored, as AWS services do. Malformed JSON or a
// member of the wrong type gives a *SerializationError.
func DecodeJSON(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	if body[0] != '{' {
		return &SerializationError{Msg: "Start of structure or map expected at the top level of the request"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			where := te.Field
			if where == "" {
				where = "the request"
			}
			return &SerializationError{Msg: fmt.Sprintf("Unexpected %s value for member %s: expected %s", te.Value, where, jsonTypeName(te.Type))}
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return &SerializationError{Msg: fmt.Sprintf("Malformed JSON at offset %d: %v", se.Offset, se)}
		}
		var te2 *TimeError
		if errors.As(err, &te2) {
			return &SerializationError{Msg: te2.Error()}
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return &SerializationError{Msg: "Malformed JSON: the request document ends early"}
		}
		return &SerializationError{Msg: "Malformed request: " + err.Error()}
	}
	if dec.More() {
		return &SerializationError{Msg: "Malformed JSON: trailing data after the request document"}
	}
	return nil
}

func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map:
		return "map"
	}
	return "structure"
}

// Time is a timestamp on the JSON wire: epoch seconds with fractions.
type Time struct{ time.Time }

// NewTime returns t as a wire Time (nil for the zero time).
func NewTime(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	return &Time{t}
}

// TimeError reports a timestamp member that is neither a number nor a
// date string.
type TimeError struct{ Value string }

func (e *TimeError) Error() string { return "Invalid timestamp value: " + e.Value }

// MarshalJSON writes epoch seconds with millisecond fractions, as exact
// decimals ("1709242525.051").
func (t Time) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	sec, rem := ms/1000, ms%1000
	if rem < 0 {
		sec, rem = sec-1, rem+1000
	}
	if rem == 0 {
		return []byte(strconv.FormatInt(sec, 10)), nil
	}
	return []byte(strings.TrimRight(fmt.Sprintf("%d.%03d", sec, rem), "0")), nil
}

// UnmarshalJSON reads epoch seconds (number) or an ISO 8601 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) > 0 && s[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return &TimeError{Value: s}
		}
		p, ok := parseTimeString(str)
		if !ok {
			return &TimeError{Value: s}
		}
		t.Time = p
		return nil
	}
	p, err := parseEpoch(s)
	if err != nil {
		return &TimeError{Value: s}
	}
	t.Time = p
	return nil
}

// parseTimeString reads a timestamp written as text: ISO 8601 (the query
// protocol's form, accepted in JSON too) or epoch seconds.
func parseTimeString(str string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02"} {
		if p, err := time.Parse(layout, str); err == nil {
			return p, true
		}
	}
	if p, err := parseEpoch(str); err == nil {
		return p, true
	}
	return time.Time{}, false
}

// parseEpoch reads decimal epoch seconds exactly (no float rounding, so a
// timestamp survives any number of round trips): "1709242525.051".
func parseEpoch(s string) (time.Time, error) {
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return time.Time{}, &TimeError{Value: s}
		}
		return fromEpoch(f), nil
	}
	sec, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	var nsec int64
	if hasFrac {
		if frac == "" || len(frac) > 9 {
			frac = (frac + "000000000")[:9]
		}
		for _, c := range frac {
			if c < '0' || c > '9' {
				return time.Time{}, &TimeError{Value: s}
			}
		}
		frac = (frac + "000000000")[:9]
		nsec, _ = strconv.ParseInt(frac, 10, 64)
		if strings.HasPrefix(intPart, "-") {
			nsec = -nsec
		}
	}
	return time.Unix(sec, nsec).UTC(), nil
}

func fromEpoch(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
}
