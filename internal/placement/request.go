package placement

import (
	"fmt"
	"strings"

	"github.com/berthdev/berth/internal/errs"
)

// Limits ECS puts on placement rules.
const (
	// MaxConstraints is the most constraints a task may have, counting
	// the task definition's and the request's together.
	MaxConstraints = 10
	// MaxStrategies is the most strategies a RunTask or service may have.
	MaxStrategies = 5
)

// Request is what one task needs from a container instance.
type Request struct {
	CPU    int // CPU units to reserve; see Reservation
	Memory int // MiB to reserve; see Reservation
	// HostPorts are the static host ports the task binds (host network
	// mode, or bridge mode with a hostPort), each of which must be free.
	HostPorts []Port
	// DynamicPorts is how many dynamic host ports the task takes (bridge
	// mode mappings with hostPort 0 or none).
	DynamicPorts int
	// Group is the task's group: service:<name> for a service's tasks,
	// the RunTask group, or family:<family> when RunTask gives none.
	// distinctInstance and spread count the tasks of this group.
	Group string
	// RequiredAttributes are the task definition's requiresAttributes; an
	// instance must have every one (with the value, if one is given).
	RequiredAttributes []Attribute
	Constraints        []Constraint // the task definition's and the request's
	// Strategies are applied in order. None means random; a service
	// without strategies should pass DefaultServiceStrategies.
	Strategies []Strategy
}

// Attribute is a container instance attribute a task requires. An empty
// Value matches any value.
type Attribute struct{ Name, Value string }

// ConstraintType is a placement constraint type.
type ConstraintType string

// Constraint types.
const (
	DistinctInstance ConstraintType = "distinctInstance"
	MemberOf         ConstraintType = "memberOf"
)

// Constraint is a placement constraint. Build one with ParseConstraint.
type Constraint struct {
	Type ConstraintType
	// Expr is the memberOf expression; nil for distinctInstance.
	Expr Expr
}

// ParseConstraint checks a constraint as ECS does and parses its
// expression. A distinctInstance constraint takes no expression, a
// memberOf constraint needs one. Errors are of kind errs.Invalid, with
// reason InvalidConstraint or, for an expression that does not parse,
// InvalidExpression.
func ParseConstraint(typ, expression string) (Constraint, error) {
	switch ConstraintType(typ) {
	case DistinctInstance:
		if expression != "" {
			return Constraint{}, errs.R(errs.Invalid, InvalidConstraint, "distinctInstance expression should not be specified.")
		}
		return Constraint{Type: DistinctInstance}, nil
	case MemberOf:
		if strings.TrimSpace(expression) == "" {
			return Constraint{}, errs.R(errs.Invalid, InvalidConstraint, "memberOf expression should be specified.")
		}
		e, err := Parse(expression)
		if err != nil {
			return Constraint{}, err
		}
		return Constraint{Type: MemberOf, Expr: e}, nil
	}
	return Constraint{}, errs.R(errs.Invalid, InvalidConstraint,
		"Invalid placement constraint type '%s'. Valid types are distinctInstance and memberOf.", typ)
}

func (c Constraint) String() string {
	if c.Type == MemberOf && c.Expr != nil {
		return fmt.Sprintf("memberOf(%s)", c.Expr)
	}
	return string(c.Type)
}

// StrategyType is a placement strategy type.
type StrategyType string

// Strategy types.
const (
	Binpack StrategyType = "binpack"
	Spread  StrategyType = "spread"
	Random  StrategyType = "random"
)

// Strategy fields with a fixed meaning.
const (
	FieldCPU        = "cpu"        // binpack
	FieldMemory     = "memory"     // binpack
	FieldInstanceID = "instanceId" // spread; "host" is the same
)

// Strategy is a placement strategy. Field is, for binpack, FieldCPU or
// FieldMemory; for spread, FieldInstanceID or attribute:<name>; for
// random, empty. Build one with ParseStrategy.
type Strategy struct {
	Type  StrategyType
	Field string
}

// DefaultServiceStrategies is what ECS applies to a service's tasks when
// the service has no strategies: spread across Availability Zones.
var DefaultServiceStrategies = []Strategy{{Type: Spread, Field: "attribute:ecs.availability-zone"}}

// ParseStrategy checks a strategy as ECS does and returns it with its
// field normalised: binpack fields and instanceId in any case, and host,
// become FieldCPU, FieldMemory and FieldInstanceID; random ignores its
// field. Errors are of kind errs.Invalid with reason InvalidStrategy.
func ParseStrategy(typ, field string) (Strategy, error) {
	switch StrategyType(typ) {
	case Random:
		return Strategy{Type: Random}, nil
	case Binpack:
		switch strings.ToLower(field) {
		case FieldCPU:
			return Strategy{Type: Binpack, Field: FieldCPU}, nil
		case FieldMemory:
			return Strategy{Type: Binpack, Field: FieldMemory}, nil
		}
		return Strategy{}, errs.R(errs.Invalid, InvalidStrategy,
			"Invalid binpack field '%s'. Valid fields are cpu and memory.", field)
	case Spread:
		switch l := strings.ToLower(field); {
		case l == "instanceid" || l == "host":
			return Strategy{Type: Spread, Field: FieldInstanceID}, nil
		case strings.HasPrefix(field, attributePrefix):
			if msg := checkAttributeName(field[len(attributePrefix):]); msg != "" {
				return Strategy{}, errs.R(errs.Invalid, InvalidStrategy, "Invalid spread field '%s': %s.", field, msg)
			}
			return Strategy{Type: Spread, Field: field}, nil
		}
		return Strategy{}, errs.R(errs.Invalid, InvalidStrategy,
			"Invalid spread field '%s'. Valid fields are instanceId, host and attribute:<name>.", field)
	}
	return Strategy{}, errs.R(errs.Invalid, InvalidStrategy,
		"Invalid placement strategy type '%s'. Valid types are binpack, random and spread.", typ)
}

func (s Strategy) String() string {
	if s.Field == "" {
		return string(s.Type)
	}
	return string(s.Type) + "(" + s.Field + ")"
}

// ContainerSize is one container definition's cpu, memory and
// memoryReservation, after overrides; zero means not set.
type ContainerSize struct{ CPU, Memory, MemoryReservation int }

// Reservation returns the CPU units and MiB of memory a task takes from a
// container instance. ECS reserves the task-level cpu and memory when the
// task definition sets them; otherwise the sum over the containers of
// their cpu, and of their memoryReservation if set, else their memory
// (the hard limit). Zero task values mean not set.
func Reservation(taskCPU, taskMemory int, containers []ContainerSize) (cpu, memory int) {
	for _, c := range containers {
		cpu += c.CPU
		if c.MemoryReservation > 0 {
			memory += c.MemoryReservation
		} else {
			memory += c.Memory
		}
	}
	if taskCPU > 0 {
		cpu = taskCPU
	}
	if taskMemory > 0 {
		memory = taskMemory
	}
	return cpu, memory
}
