package awsproto

import (
	"errors"
	"testing"

	"github.com/berthdev/berth/internal/errs"
)

func TestErrorMapReasonThenKindThenServer(t *testing.T) {
	m := ErrorMap{
		Reasons:    map[string]string{"x.gone": "GoneException"},
		Kinds:      map[errs.Kind]string{errs.Invalid: "BadException"},
		ServerCode: "ServerException",
	}
	cases := []struct {
		err    error
		code   string
		status int
	}{
		{errs.R(errs.Invalid, "x.gone", "gone"), "GoneException", 400},
		{errs.E(errs.Invalid, "bad"), "BadException", 400},
		{errs.R(errs.Invalid, "x.other", "bad"), "BadException", 400},
		{errs.E(errs.Unavailable, "down"), "ServerException", 500},
		{errs.E(errs.Internal, "bug"), "ServerException", 500},
	}
	for _, c := range cases {
		got := m.Map(c.err)
		if got == nil || got.Code != c.code || got.HTTPStatus() != c.status {
			t.Errorf("%v: got %+v, want %s %d", c.err, got, c.code, c.status)
		}
	}
	if got := m.Map(errs.E(errs.Forbidden, "no")); got != nil {
		t.Errorf("unmapped kind: %+v", got)
	}
	if got := m.Map(errors.New("plain")); got != nil {
		t.Errorf("non-domain error: %+v", got)
	}
	if got := m.Map(errs.E(errs.Invalid, "bad")); got.Message != "bad" {
		t.Errorf("message %q", got.Message)
	}
}
