// Package taskdef turns a RegisterTaskDefinition request into the task
// definition ECS stores and echoes back: it applies ECS's semantic rules
// (with ECS's error messages), normalises task cpu and memory, fills the
// defaults DescribeTaskDefinition shows, and computes compatibilities and
// requiresAttributes.
//
// Everything here is a pure function of its arguments: no I/O, no clock.
// The model-level checks (required members, enum values, lengths) are done
// by the generated Validate before Build runs; Build still never panics on
// input that skipped them.
//
// The rules, their messages and what is not checked are listed in
// docs/task-definitions.md.
package taskdef

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
)

// Reasons carried by the errors Build returns. The ECS edge maps
// ReasonClient to ClientException and ReasonParam to
// InvalidParameterException.
const (
	ReasonClient = "taskdef.client"
	ReasonParam  = "taskdef.param"
)

// Limits ECS enforces on a task definition.
const (
	MaxContainers = 10    // containers in one task definition
	MaxSize       = 65536 // bytes of the definition's JSON
)

// Options carries what the caller knows and Build does not.
type Options struct {
	Revision          int32     // the family's next revision
	TaskDefinitionArn string    // ARN of family:Revision
	RegisteredAt      time.Time // when the revision is registered
	RegisteredBy      string    // principal ARN of the caller
}

// Build validates in with ECS's rules and returns the task definition to
// store: in's members (deep-copied; in is not modified), cpu and memory
// normalised to units and MiB, ECS's defaults filled in, compatibilities
// and requiresAttributes computed, and the identity fields from opts.
//
// Errors are of kind errs.Invalid with reason ReasonClient or ReasonParam
// and ECS's message; an encoding failure is errs.Internal.
func Build(in *ecsapi.RegisterTaskDefinitionRequest, opts Options) (*ecsapi.TaskDefinition, error) {
	if in == nil {
		return nil, clientErr("Family can not be blank.")
	}
	td, size, err := copyRequest(in)
	if err != nil {
		return nil, err
	}
	if size > MaxSize {
		return nil, clientErr("Actual length: '%d'. Max allowed length is '%d' bytes.", size, MaxSize)
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	res, err := validate(td)
	if err != nil {
		return nil, err
	}
	if res.cpu > 0 {
		td.Cpu = ptr(strconv.Itoa(res.cpu))
	}
	if res.memory > 0 {
		td.Memory = ptr(strconv.Itoa(res.memory))
	}
	fillDefaults(td, res.mode)
	td.Compatibilities = compatibilities(td, res)
	td.RequiresAttributes = requiresAttributes(td)

	td.TaskDefinitionArn = ptr(opts.TaskDefinitionArn)
	td.Revision = ptr(opts.Revision)
	td.Status = ptr(ecsapi.TaskDefinitionStatusActive)
	td.RegisteredAt = awsproto.NewTime(opts.RegisteredAt)
	if opts.RegisteredBy != "" {
		td.RegisteredBy = ptr(opts.RegisteredBy)
	}
	return td, nil
}

// copyRequest deep-copies the request's members into a TaskDefinition (the
// two shapes share member names) and measures the definition: the compact
// JSON of the request without its tags, which are not part of it.
func copyRequest(in *ecsapi.RegisterTaskDefinitionRequest) (*ecsapi.TaskDefinition, int, error) {
	c := *in
	c.Tags = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, 0, errs.Wrap(errs.Internal, err, "encode task definition")
	}
	td := new(ecsapi.TaskDefinition)
	if err := json.Unmarshal(b, td); err != nil {
		return nil, 0, errs.Wrap(errs.Internal, err, "copy task definition")
	}
	return td, len(b), nil
}

func clientErr(format string, args ...any) error {
	return errs.R(errs.Invalid, ReasonClient, format, args...)
}

func paramErr(format string, args ...any) error {
	return errs.R(errs.Invalid, ReasonParam, format, args...)
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
