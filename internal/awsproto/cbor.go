package awsproto

// Smithy RPC v2 CBOR: request and response bodies are CBOR maps whose keys
// are the member names (the generated structs' json tags, which the CBOR
// codec reads too); timestamps are tag 1 holding epoch seconds.

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
)

var (
	cborDec cbor.DecMode
	cborEnc cbor.EncMode
)

func init() {
	var err error
	cborDec, err = cbor.DecOptions{
		// Member names are exact, as in JSON.
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:   64,
		// Undefined counts as absent, as null does.
		DefaultMapType: reflect.TypeOf(map[string]any{}),
	}.DecMode()
	if err != nil {
		panic(err)
	}
	cborEnc, err = cbor.EncOptions{
		Sort:          cbor.SortNone,
		IndefLength:   cbor.IndefLengthForbidden,
		NaNConvert:    cbor.NaNConvertNone,
		InfConvert:    cbor.InfConvertNone,
		ShortestFloat: cbor.ShortestFloatNone,
	}.EncMode()
	if err != nil {
		panic(err)
	}
}

// DecodeCBOR decodes a Smithy RPC v2 CBOR request body into v (a pointer
// to a generated input struct). An empty body is {}. Unknown members are
// ignored; a body that is not one CBOR map, or a member of the wrong type,
// gives a *SerializationError.
func DecodeCBOR(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	// The top level must be a map (major type 5); null means {} too.
	switch {
	case body[0]>>5 == 5:
	case len(body) == 1 && (body[0] == 0xf6 || body[0] == 0xf7):
		return nil
	default:
		return &SerializationError{Msg: "Start of structure or map expected at the top level of the request"}
	}
	rest, err := cborDec.UnmarshalFirst(body, v)
	if err != nil {
		return cborError(err)
	}
	if len(rest) > 0 {
		return &SerializationError{Msg: "Malformed CBOR: trailing data after the request document"}
	}
	return nil
}

func cborError(err error) error {
	var te *cbor.UnmarshalTypeError
	if errors.As(err, &te) {
		member := te.StructFieldName
		if i := strings.LastIndexByte(member, '.'); i >= 0 {
			member = member[i+1:]
		}
		if member == "" {
			member = "the request"
		}
		return &SerializationError{Msg: fmt.Sprintf("Unexpected %s value for member %s: expected %s", te.CBORType, member, jsonTypeName(goType(te.GoType)))}
	}
	var tErr *TimeError
	if errors.As(err, &tErr) {
		return &SerializationError{Msg: tErr.Error()}
	}
	return &SerializationError{Msg: "Malformed CBOR: " + strings.TrimPrefix(err.Error(), "cbor: ")}
}

// goType maps the Go type name in a CBOR type error back to a kind for
// the message; unknown names read as a structure.
func goType(name string) reflect.Type {
	switch {
	case strings.Contains(name, "string"):
		return reflect.TypeOf("")
	case strings.Contains(name, "bool"):
		return reflect.TypeOf(false)
	case strings.Contains(name, "int"):
		return reflect.TypeOf(0)
	case strings.Contains(name, "float"):
		return reflect.TypeOf(0.0)
	case strings.HasPrefix(name, "[]"):
		return reflect.TypeOf([]any{})
	case strings.HasPrefix(name, "map["):
		return reflect.TypeOf(map[string]any{})
	}
	return reflect.TypeOf(struct{}{})
}

// EncodeCBOR encodes an output (or an error body) for Smithy RPC v2 CBOR.
func EncodeCBOR(v any) ([]byte, error) { return cborEnc.Marshal(v) }

// maxEpochSeconds bounds timestamps read (about the year 33658).
const maxEpochSeconds = 1_000_000_000_000

// cborTimeTag is CBOR's tag for epoch-based date/time (RFC 8949 3.4.2).
const cborTimeTag = 1

// MarshalCBOR writes tag 1 around epoch seconds: an integer for whole
// seconds, else a float64 chosen so that the Smithy clients' reading
// (milliseconds = int(seconds * 1000)) gives back the exact millisecond.
func (t Time) MarshalCBOR() ([]byte, error) {
	ms := t.UnixMilli()
	if ms%1000 == 0 {
		return cborEnc.Marshal(cbor.Tag{Number: cborTimeTag, Content: ms / 1000})
	}
	f := float64(ms) / 1000
	for i := 0; i < 4 && int64(f*1e3) != ms; i++ {
		if int64(f*1e3) < ms {
			f = math.Nextafter(f, math.Inf(1))
		} else {
			f = math.Nextafter(f, math.Inf(-1))
		}
	}
	return cborEnc.Marshal(cbor.Tag{Number: cborTimeTag, Content: f})
}

// UnmarshalCBOR reads tag 1 around an integer or float of epoch seconds
// (an untagged number is accepted too).
func (t *Time) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0]>>5 == 6 {
		var tag cbor.RawTag
		if err := cborDec.Unmarshal(b, &tag); err != nil {
			return err
		}
		if tag.Number != cborTimeTag {
			return &TimeError{Value: fmt.Sprintf("tag %d", tag.Number)}
		}
		b = tag.Content
	}
	var v any
	if err := cborDec.Unmarshal(b, &v); err != nil {
		return err
	}
	switch n := v.(type) {
	case nil:
		return nil
	case uint64:
		if n > maxEpochSeconds {
			return &TimeError{Value: fmt.Sprint(n)}
		}
		t.Time = time.Unix(int64(n), 0).UTC()
	case int64:
		if n < -maxEpochSeconds || n > maxEpochSeconds {
			return &TimeError{Value: fmt.Sprint(n)}
		}
		t.Time = time.Unix(n, 0).UTC()
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) || math.Abs(n) > maxEpochSeconds {
			return &TimeError{Value: fmt.Sprint(n)}
		}
		// Milliseconds, rounded: a float of seconds holds no more.
		t.Time = time.UnixMilli(int64(math.Round(n * 1e3))).UTC()
	default:
		return &TimeError{Value: fmt.Sprintf("a CBOR %T", v)}
	}
	return nil
}
