package ecr

import (
	"context"
	"reflect"

	"github.com/berthdev/berth/internal/awsproto"
)

// policyExempt are operations repository policies do not govern: they
// are not about one existing repository (CreateRepository's repository
// does not exist yet; GetAuthorizationToken and DescribeRegistry are
// registry-wide).
var policyExempt = map[string]bool{
	"CreateRepository":      true,
	"GetAuthorizationToken": true,
	"DescribeRegistry":      true,
	// Registry-level settings (the registry policy governs
	// CreateRepository itself, see authorizeCreate).
	"PutRegistryPolicy":           true,
	"GetRegistryPolicy":           true,
	"DeleteRegistryPolicy":        true,
	"PutReplicationConfiguration": true,
}

// authorized wraps an operation so that the repositories its input names
// (repositoryName, repositoryNames or a repository resourceArn) are
// checked against their repository policies for action first. A
// DescribeRepositories listing without names is not filtered.
func (s *Service) authorized(action string, call func(context.Context, any) (any, error)) func(context.Context, any) (any, error) {
	return func(ctx context.Context, in any) (any, error) {
		id := awsproto.CallFrom(ctx).Identity
		for _, name := range s.repositoriesOf(in) {
			if err := s.reg.Authorize(ctx, id, name, action); err != nil {
				return nil, err
			}
		}
		return call(ctx, in)
	}
}

// repositoriesOf returns the repository names an operation input names.
func (s *Service) repositoriesOf(in any) []string {
	v := reflect.ValueOf(in)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	if f := v.FieldByName("RepositoryName"); f.IsValid() {
		if p, ok := f.Interface().(*string); ok && p != nil && *p != "" {
			out = append(out, *p)
		}
	}
	if f := v.FieldByName("RepositoryNames"); f.IsValid() {
		if l, ok := f.Interface().([]string); ok {
			out = append(out, l...)
		}
	}
	if f := v.FieldByName("ResourceArn"); f.IsValid() {
		if p, ok := f.Interface().(*string); ok && p != nil {
			if name, err := s.repoFromARN(*p); err == nil {
				out = append(out, name)
			}
		}
	}
	return out
}
