package awsproto

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestViolationWording(t *testing.T) {
	v := &ValidationError{}
	v.Null("family")
	v.Violation("networkMode", "foo", false, "Member must satisfy enum value set: [bridge, host]")
	v.Violation("password", "hunter2", true, "Member must have length greater than or equal to 8")
	v.CheckElements("registryIds", []string{"1", "2"}, false, "Member", []string{"Member must satisfy regular expression pattern: [0-9]{12}"})
	v.CheckElements("ids", []string{"1"}, false, "Member", nil)
	want := []string{
		"Value null at 'family' failed to satisfy constraint: Member must not be null",
		"Value 'foo' at 'networkMode' failed to satisfy constraint: Member must satisfy enum value set: [bridge, host]",
		"Value at 'password' failed to satisfy constraint: Member must have length greater than or equal to 8",
		"Value '[1, 2]' at 'registryIds' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]{12}]",
	}
	if strings.Join(v.Problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(v.Problems, "\n"), strings.Join(want, "\n"))
	}
}

func TestFormatValue(t *testing.T) {
	s := "x"
	var nilp *string
	type tag struct {
		Key   *string `json:"key,omitzero"`
		Value *string `json:"value,omitzero"`
	}
	for _, tt := range []struct {
		in   any
		want string
	}{
		{"a", "a"}, {&s, "x"}, {nilp, "null"}, {int32(-1), "-1"}, {int64(7), "7"}, {2.5, "2.5"}, {true, "true"},
		{[]string{"a", "b"}, "[a, b]"}, {map[string]string{"b": "2", "a": "1"}, "{a=1, b=2}"},
		{[]byte("abc"), "<3 bytes>"}, {tag{Key: &s}, "{key=x}"},
		{Time{time.Date(2024, 3, 1, 2, 3, 4, 5e6, time.UTC)}, "2024-03-01T02:03:04.005Z"},
		{strings.Repeat("é", 2000), strings.Repeat("é", 1024) + "..."},
	} {
		if got := FormatValue(tt.in); got != tt.want {
			t.Errorf("FormatValue(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

type pingIn struct{ N *int32 }

func (p *pingIn) Validate() error {
	if p.N != nil && *p.N < 0 {
		v := &ValidationError{}
		v.Violation("n", *p.N, false, "Member must have value greater than or equal to 0")
		return v
	}
	return nil
}

type pingOut struct{ N int32 }

func TestJSONOperation(t *testing.T) {
	var fn func(context.Context, *pingIn) (*pingOut, error)
	op := JSONOperation("Thing", "Ping", true, []string{"secret"}, fn)
	if op.Implemented || !op.ReadOnly || op.Name != "Ping" || op.Sensitive[0] != "secret" {
		t.Errorf("%+v", op)
	}
	in, err := op.Decode(nil, nil) // an empty body is {}
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.Call(t.Context(), in)
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != CodeNotImplemented || ae.Message != "Berth does not implement Thing Ping yet" || ae.HTTPStatus() != 400 {
		t.Errorf("unimplemented: %v", err)
	}

	op = JSONOperation("Thing", "Ping", false, nil, func(_ context.Context, in *pingIn) (*pingOut, error) {
		return &pingOut{N: *in.N * 2}, nil
	})
	if _, err := op.Decode([]byte(`{"N": -1}`), nil); !errors.As(err, new(*ValidationError)) {
		t.Errorf("validation: %v", err)
	}
	if _, err := op.Decode([]byte(`{"N": "x"}`), nil); !errors.As(err, new(*SerializationError)) {
		t.Errorf("serialization: %v", err)
	}
	in, _ = op.Decode([]byte(`{"N": 21}`), nil)
	out, err := op.Call(t.Context(), in)
	if err != nil || out.(*pingOut).N != 42 {
		t.Errorf("call: %v %v", out, err)
	}
}
