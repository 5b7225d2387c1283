package awsproto

// Support for the code tools/apigen generates into internal/api/*api:
// operation wiring for JSON protocols and the Coral-style wording of model
// validation problems.

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NotImplemented returns the error an operation answers while Berth does
// not serve it yet: "Berth does not implement ECS RunTask yet".
func NotImplemented(service, operation string) *Error {
	return &Error{
		Code:    CodeNotImplemented,
		Message: fmt.Sprintf("Berth does not implement %s %s yet", service, operation),
	}
}

// JSONOperation builds the Operation of a JSON-protocol operation whose
// input type is In (decoded through its pointer type P, which validates
// itself) and whose output type is Out. fn may be nil: the operation is then
// not Implemented and Call answers NotImplemented(service, name).
// A handler that returns a nil output with a nil error answers {}.
func JSONOperation[In, Out any, P interface {
	*In
	Validate() error
}](service, name string, readOnly bool, sensitive []string, fn func(context.Context, P) (*Out, error)) *Operation {
	return &Operation{
		Name:        name,
		ReadOnly:    readOnly,
		Implemented: fn != nil,
		Sensitive:   sensitive,
		NewInput:    func() any { return P(new(In)) },
		Decode: func(body []byte, _ map[string][]string) (any, error) {
			in := P(new(In))
			if err := DecodeJSON(body, in); err != nil {
				return nil, err
			}
			if err := in.Validate(); err != nil {
				return nil, err
			}
			return in, nil
		},
		Call: func(ctx context.Context, input any) (any, error) {
			in, ok := input.(P)
			if !ok {
				return nil, fmt.Errorf("awsproto: %s %s called with input of type %T", service, name, input)
			}
			if fn == nil {
				return nil, NotImplemented(service, name)
			}
			out, err := fn(ctx, in)
			if err != nil {
				return nil, err
			}
			if out == nil {
				out = new(Out)
			}
			return out, nil
		},
	}
}

// Null records that the required member at path is missing:
// "Value null at 'family' failed to satisfy constraint: Member must not be null".
func (v *ValidationError) Null(path string) {
	v.Problems = append(v.Problems, "Value null at '"+path+"' failed to satisfy constraint: Member must not be null")
}

// Violation records that value, found at path, fails constraint. The value
// of a sensitive member is not echoed ("Value at 'password' failed ...").
func (v *ValidationError) Violation(path string, value any, sensitive bool, constraint string) {
	var b strings.Builder
	b.WriteString("Value ")
	if !sensitive {
		b.WriteByte('\'')
		b.WriteString(FormatValue(value))
		b.WriteString("' ")
	}
	b.WriteString("at '")
	b.WriteString(path)
	b.WriteString("' failed to satisfy constraint: ")
	b.WriteString(constraint)
	v.Problems = append(v.Problems, b.String())
}

// Check records one Violation per failed constraint.
func (v *ValidationError) Check(path string, value any, sensitive bool, failed []string) {
	for _, c := range failed {
		v.Violation(path, value, sensitive, c)
	}
}

// CheckElements records the constraints the elements (or keys, or values)
// of a list or map failed, as one problem in Coral's form:
// "Member must satisfy constraint: [Member must have length ...]". what is
// "Member" for list elements, "Map keys" or "Map value" for maps.
func (v *ValidationError) CheckElements(path string, value any, sensitive bool, what string, failed []string) {
	if len(failed) == 0 {
		return
	}
	v.Violation(path, value, sensitive, what+" must satisfy constraint: ["+strings.Join(failed, ", ")+"]")
}

// AddFailed appends to dst the constraints in failed it does not hold yet.
func AddFailed(dst []string, failed ...string) []string {
	for _, c := range failed {
		if !slices.Contains(dst, c) {
			dst = append(dst, c)
		}
	}
	return dst
}

// maxEchoedRunes bounds how much of a long value a validation message echoes.
const maxEchoedRunes = 1024

// FormatValue renders a member value the way validation messages echo it:
// strings as they are, lists as [a, b], maps as {k=v}, structures as
// {member=value}. Blobs are not echoed, only their size; very long values
// are cut.
func FormatValue(value any) string {
	s := formatValue(reflect.ValueOf(value))
	if utf8.RuneCountInString(s) > maxEchoedRunes {
		s = string([]rune(s)[:maxEchoedRunes]) + "..."
	}
	return s
}

func formatValue(rv reflect.Value) string {
	if !rv.IsValid() {
		return "null"
	}
	if t, ok := rv.Interface().(Time); ok {
		return t.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return "null"
		}
		return formatValue(rv.Elem())
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return strconv.FormatBool(rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(rv.Float(), 'g', -1, 64)
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return fmt.Sprintf("<%d bytes>", rv.Len())
		}
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = formatValue(rv.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Map:
		keys := rv.MapKeys()
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = formatValue(k) + "=" + formatValue(rv.MapIndex(k))
		}
		slices.Sort(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	case reflect.Struct:
		var parts []string
		for i := range rv.NumField() {
			f := rv.Type().Field(i)
			if !f.IsExported() || rv.Field(i).IsZero() {
				continue
			}
			name := f.Name
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" && tag != "-" {
				name = tag
			}
			parts = append(parts, name+"="+formatValue(rv.Field(i)))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(rv.Interface())
}
