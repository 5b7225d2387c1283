// Package elbv2 is Berth's Elastic Load Balancing v2 application service:
// load balancers, target groups and their targets, listeners and rules,
// attributes and tags, kept as small records in the store
// (/berth/elbv2/state/...), and the controller that hands the committed
// configuration to the data plane (package alb) and answers target health
// from it.
//
// Handlers take and return the generated wire shapes of elbv2api (query
// protocol: form in, XML out). Validation decisions that need no store
// are pure functions in validate.go; the mapping of domain errors to
// ELBv2's codes happens in MapError only. docs/load-balancing.md describes
// the behaviour, the conventions (listen address, DNS names, certificates)
// and the limits.
package elbv2

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/alb"
	"github.com/berthdev/berth/internal/api/elbv2api"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// DataPlane is what the API and its controller need of the data plane
// (*alb.Plane implements it).
type DataPlane interface {
	Apply(cfg alb.Config) error
	CanListen(listenerARN, addr string) error
	TargetHealth(targetGroupARN string) []alb.TargetHealth
	HealthChanges() <-chan struct{}
}

// InstanceResolver finds the host a container instance's targets are
// reached on, by the instance id RegisterTargets names (ECS's
// ec2InstanceId). NotFound when no active instance has that id.
type InstanceResolver func(ctx context.Context, instanceID string) (host string, err error)

// Config configures the ELBv2 service.
type Config struct {
	Partition string // "aws"
	Region    string
	Account   string
	// ListenHost is the address every listener listens on; default
	// 127.0.0.1 (docs/load-balancing.md).
	ListenHost string
	// CertDir holds the PEM files of ACM-style certificate ARNs:
	// <CertDir>/<certificate id>/cert.pem and key.pem.
	CertDir string
	// Instances resolves instance targets; nil refuses them.
	Instances InstanceResolver
	// ServerID names this server in load balancer ownership claims.
	ServerID string
	// OwnerTTL is the lease of this server's claims; default 15 s.
	OwnerTTL time.Duration
	// Resync is how often the controller re-applies the configuration
	// without a change; default 10 s.
	Resync time.Duration
}

// Service implements the ELBv2 API.
type Service struct {
	st    store.Store
	cfg   Config
	arns  arn.Builder
	plane DataPlane
	log   *slog.Logger
	now   func() time.Time
	wake  chan struct{}

	mu sync.Mutex
	// servedPairs are the (load balancer, target group) pairs of the
	// configuration last applied (host count metrics).
	servedPairs []pairKey
	// healthSeen is the health record last written per target group id
	// (used by the controller's goroutine only).
	healthSeen map[string]string
}

// New returns the ELBv2 service over the store and a data plane.
func New(st store.Store, plane DataPlane, cfg Config, log *slog.Logger) *Service {
	if cfg.Partition == "" {
		cfg.Partition = "aws"
	}
	if cfg.ListenHost == "" {
		cfg.ListenHost = "127.0.0.1"
	}
	if cfg.OwnerTTL <= 0 {
		cfg.OwnerTTL = 15 * time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 10 * time.Second
	}
	if cfg.ServerID == "" {
		cfg.ServerID = newID()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, cfg: cfg, plane: plane, log: log, now: time.Now, wake: make(chan struct{}, 1),
		arns: arn.Builder{Partition: cfg.Partition, Region: cfg.Region, Account: cfg.Account}}
}

// API returns the ELBv2 service for the front door.
func (s *Service) API() *awsproto.Service {
	h := &elbv2api.Handlers{
		CreateLoadBalancer:             s.CreateLoadBalancer,
		DescribeLoadBalancers:          s.DescribeLoadBalancers,
		DeleteLoadBalancer:             s.DeleteLoadBalancer,
		DescribeLoadBalancerAttributes: s.DescribeLoadBalancerAttributes,
		ModifyLoadBalancerAttributes:   s.ModifyLoadBalancerAttributes,
		CreateTargetGroup:              s.CreateTargetGroup,
		DescribeTargetGroups:           s.DescribeTargetGroups,
		ModifyTargetGroup:              s.ModifyTargetGroup,
		DeleteTargetGroup:              s.DeleteTargetGroup,
		DescribeTargetGroupAttributes:  s.DescribeTargetGroupAttributes,
		ModifyTargetGroupAttributes:    s.ModifyTargetGroupAttributes,
		RegisterTargets:                s.RegisterTargets,
		DeregisterTargets:              s.DeregisterTargets,
		DescribeTargetHealth:           s.DescribeTargetHealth,
		CreateListener:                 s.CreateListener,
		DescribeListeners:              s.DescribeListeners,
		ModifyListener:                 s.ModifyListener,
		DeleteListener:                 s.DeleteListener,
		CreateRule:                     s.CreateRule,
		DescribeRules:                  s.DescribeRules,
		ModifyRule:                     s.ModifyRule,
		DeleteRule:                     s.DeleteRule,
		SetRulePriorities:              s.SetRulePriorities,
		AddTags:                        s.AddTags,
		RemoveTags:                     s.RemoveTags,
		DescribeTags:                   s.DescribeTags,
	}
	svc := h.Service()
	svc.ValidationCode = CodeValidationError
	svc.MapError = MapError
	return svc
}

// CodeValidationError is ELBv2's code for input that breaks the model's
// constraints or its documented rules. It is not an exception shape.
const CodeValidationError = "ValidationError"

// reasonPrefix marks a domain error's reason that names the ELBv2 code to
// answer ("elbv2.PriorityInUse").
const reasonPrefix = "elbv2."

var kindCodes = awsproto.ErrorMap{
	Kinds: map[errs.Kind]string{
		errs.Invalid:       CodeValidationError,
		errs.Unsupported:   awsproto.CodeNotImplemented,
		errs.LimitExceeded: CodeValidationError,
	},
}

// MapError maps domain errors to ELBv2's wire errors: a reason
// "elbv2.<Code>" is answered with that code, other kinds by kindCodes.
func MapError(err error) *awsproto.Error {
	if r := errs.ReasonOf(err); strings.HasPrefix(r, reasonPrefix) {
		return &awsproto.Error{Code: strings.TrimPrefix(r, reasonPrefix), Message: errs.MessageOf(err)}
	}
	return kindCodes.Map(err)
}

// fail makes a domain error answered with an ELBv2 code.
func fail(k errs.Kind, code, format string, args ...any) error {
	return errs.R(k, reasonPrefix+code, format, args...)
}

func invalid(format string, args ...any) error {
	return fail(errs.Invalid, CodeValidationError, format, args...)
}

func notFound(code, format string, args ...any) error {
	return fail(errs.NotFound, code, format, args...)
}

// nudge asks the controller to apply soon.
func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// listenAddr is where a listener on port listens.
func (s *Service) listenAddr(port int32) string {
	return net.JoinHostPort(s.cfg.ListenHost, itoa(port))
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
