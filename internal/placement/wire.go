package placement

import (
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
)

// This file is the thin conversion between ECS's wire shapes and the
// domain types above; nothing else in the package uses ecsapi.

// ConstraintsFromWire parses RunTask's, CreateService's or
// UpdateService's placementConstraints. It does not check MaxConstraints,
// which counts the task definition's constraints too.
func ConstraintsFromWire(in []ecsapi.PlacementConstraint) ([]Constraint, error) {
	out := make([]Constraint, 0, len(in))
	for _, w := range in {
		c, err := constraintFromWire((*string)(w.Type), w.Expression)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// TaskDefinitionConstraintsFromWire parses a task definition's
// placementConstraints.
func TaskDefinitionConstraintsFromWire(in []ecsapi.TaskDefinitionPlacementConstraint) ([]Constraint, error) {
	out := make([]Constraint, 0, len(in))
	for _, w := range in {
		c, err := constraintFromWire((*string)(w.Type), w.Expression)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func constraintFromWire(typ, expression *string) (Constraint, error) {
	if typ != nil && ConstraintType(*typ) == DistinctInstance && expression != nil {
		// ECS rejects an expression that is present, even empty.
		return Constraint{}, errs.R(errs.Invalid, InvalidConstraint, "distinctInstance expression should not be specified.")
	}
	return ParseConstraint(deref(typ), deref(expression))
}

// StrategiesFromWire parses placementStrategy and checks MaxStrategies.
func StrategiesFromWire(in []ecsapi.PlacementStrategy) ([]Strategy, error) {
	if len(in) > MaxStrategies {
		return nil, errs.R(errs.Invalid, InvalidStrategy,
			"The number of placement strategies exceeds the limit of %d.", MaxStrategies)
	}
	out := make([]Strategy, 0, len(in))
	for _, w := range in {
		s, err := ParseStrategy(deref((*string)(w.Type)), deref(w.Field))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// AttributesFromWire turns a task definition's requiresAttributes into
// RequiredAttributes.
func AttributesFromWire(in []ecsapi.Attribute) []Attribute {
	out := make([]Attribute, 0, len(in))
	for _, a := range in {
		out = append(out, Attribute{Name: deref(a.Name), Value: deref(a.Value)})
	}
	return out
}

// Wire returns the failure as RunTask and StartTask report it.
func (f Failure) Wire() ecsapi.Failure {
	out := ecsapi.Failure{Reason: &f.Reason}
	if f.InstanceARN != "" {
		out.Arn = &f.InstanceARN
	}
	return out
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
