package ecr

import (
	"testing"

	"github.com/berthdev/berth/internal/api/ecrapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/registry"
)

func TestValidationMessageInECRWords(t *testing.T) {
	v := &awsproto.ValidationError{}
	v.Violation("imageIds", []int{}, false, "Member must have length greater than or equal to 1")
	v.Null("repositoryName")
	e := MapError(v)
	if e.Code != ecrapi.ErrInvalidParameterException || e.Message != "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length greater than or equal to 1'" {
		t.Fatalf("%+v", e)
	}
	v = &awsproto.ValidationError{}
	v.Null("repositoryName")
	if e := MapError(v); e.Message != "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must not be null'" {
		t.Fatalf("%+v", e)
	}
}

func TestCheckMutability(t *testing.T) {
	w := ecrapi.ImageTagMutabilityExclusionFilterTypeWildcard
	f := func(s string) []ecrapi.ImageTagMutabilityExclusionFilter {
		return []ecrapi.ImageTagMutabilityExclusionFilter{{Filter: &s, FilterType: &w}}
	}
	mut, excl, err := checkMutability(ecrapi.ImageTagMutabilityImmutableWithExclusion, f("dev-*"))
	if err != nil || mut != registry.ImmutableWithExclusion || len(excl) != 1 || excl[0] != "dev-*" {
		t.Fatalf("%s %v %v", mut, excl, err)
	}
	if mut, _, err := checkMutability("", nil); err != nil || mut != registry.Mutable {
		t.Fatalf("default: %s %v", mut, err)
	}
	six := append(append(append(f("a"), f("b")...), append(f("c"), f("d")...)...), append(f("e"), f("g")...)...)
	for _, c := range []struct {
		m ecrapi.ImageTagMutability
		f []ecrapi.ImageTagMutabilityExclusionFilter
	}{
		{ecrapi.ImageTagMutabilityMutable, f("x")},
		{ecrapi.ImageTagMutabilityMutableWithExclusion, nil},
		{ecrapi.ImageTagMutabilityMutableWithExclusion, f("a/b")},
		{ecrapi.ImageTagMutabilityMutableWithExclusion, f("")},
		{ecrapi.ImageTagMutabilityMutableWithExclusion, six},
		{"SOMETIMES", nil},
	} {
		if _, _, err := checkMutability(c.m, c.f); errs.KindOf(err) != errs.Invalid {
			t.Errorf("%s %d filters: %v", c.m, len(c.f), err)
		}
	}
}
