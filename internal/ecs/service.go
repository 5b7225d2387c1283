// Package ecs is Berth's Amazon ECS application service: it validates ECS
// API requests, applies ECS's rules and writes desired state to the store.
// Clusters, task definitions, tags and account settings live here; the
// scheduler, agents and controllers of later issues read what it writes.
//
// Handlers take and return the generated wire shapes (package ecsapi);
// errors are domain errors (package errs) mapped to ECS's error codes by
// MapError, at the edge only.
package ecs

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Config configures the ECS service.
type Config struct {
	Partition string // "aws"
	Region    string // "us-east-1"
	Account   string // 12 digits
	// Endpoint is the control plane's URL as agents reach it, answered by
	// DiscoverPollEndpoint; nil leaves that operation unanswered.
	Endpoint func() string
}

// Service implements the ECS API over the store.
type Service struct {
	st   store.Store
	arns arn.Builder
	now  func() time.Time
	log  *slog.Logger
	cfg  Config

	creds agentCredCache
	// seen is when each instance's agent last reported (its heartbeat),
	// for the streams this server holds.
	seen sync.Map
	// streams maps an instance id to the cancel of the assignment stream
	// this server holds for it (*streamHandle), so that deregistering the
	// instance closes it and the agent, reconnecting, learns it is refused.
	streams sync.Map
	// tdCache holds the task definitions of assignments (agentassign.go).
	tdCache assignmentTaskDefs
	// registryAuth returns pull credentials for an image in Berth's own
	// registry (ok false for images elsewhere); nil: none.
	// instance is the container instance id the credential is for.
	registryAuth func(ctx context.Context, image, instance string) (agentapi.RegistryCredential, bool, error)
	// scNamespaces reaches Cloud Map for Service Connect (serviceconnect.go);
	// nil: Service Connect is refused.
	scNamespaces ServiceConnectNamespaces
	// lb is what services with loadBalancers need of ELBv2
	// (loadbalancers.go); nil: such services are refused.
	lb atomic.Pointer[LoadBalancing]
}

// SetRegistryAuth installs the source of registry pull credentials that
// assignments carry to agents.
func (s *Service) SetRegistryAuth(f func(ctx context.Context, image, instance string) (agentapi.RegistryCredential, bool, error)) {
	s.registryAuth = f
}

// New returns the ECS service.
func New(st store.Store, cfg Config, log *slog.Logger) *Service {
	if cfg.Partition == "" {
		cfg.Partition = "aws"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		st:   st,
		arns: arn.Builder{Partition: cfg.Partition, Region: cfg.Region, Account: cfg.Account},
		now:  time.Now,
		log:  log,
		cfg:  cfg,
	}
}

// DiscoverPollEndpoint answers where agents poll, send telemetry and get
// Service Connect configuration: Berth's one endpoint for all three.
func (s *Service) DiscoverPollEndpoint(ctx context.Context, in *ecsapi.DiscoverPollEndpointRequest) (*ecsapi.DiscoverPollEndpointResponse, error) {
	if _, err := s.clusterName(in.Cluster); err != nil {
		return nil, err
	}
	ep := s.cfg.Endpoint()
	return &ecsapi.DiscoverPollEndpointResponse{Endpoint: ptr(ep), TelemetryEndpoint: ptr(ep), ServiceConnectEndpoint: ptr(ep)}, nil
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// API returns the ECS service for the front door.
func (s *Service) API() *awsproto.Service {
	h := &ecsapi.Handlers{
		CreateCluster:                 s.CreateCluster,
		DescribeClusters:              s.DescribeClusters,
		ListClusters:                  s.ListClusters,
		UpdateCluster:                 s.UpdateCluster,
		UpdateClusterSettings:         s.UpdateClusterSettings,
		PutClusterCapacityProviders:   s.PutClusterCapacityProviders,
		CreateCapacityProvider:        s.CreateCapacityProvider,
		DescribeCapacityProviders:     s.DescribeCapacityProviders,
		UpdateCapacityProvider:        s.UpdateCapacityProvider,
		DeleteCapacityProvider:        s.DeleteCapacityProvider,
		DeleteCluster:                 s.DeleteCluster,
		RegisterTaskDefinition:        s.RegisterTaskDefinition,
		DescribeTaskDefinition:        s.DescribeTaskDefinition,
		ListTaskDefinitions:           s.ListTaskDefinitions,
		ListTaskDefinitionFamilies:    s.ListTaskDefinitionFamilies,
		DeregisterTaskDefinition:      s.DeregisterTaskDefinition,
		DeleteTaskDefinitions:         s.DeleteTaskDefinitions,
		TagResource:                   s.TagResource,
		UntagResource:                 s.UntagResource,
		ListTagsForResource:           s.ListTagsForResource,
		PutAccountSetting:             s.PutAccountSetting,
		PutAccountSettingDefault:      s.PutAccountSettingDefault,
		ListAccountSettings:           s.ListAccountSettings,
		DeleteAccountSetting:          s.DeleteAccountSetting,
		DescribeContainerInstances:    s.DescribeContainerInstances,
		RegisterContainerInstance:     s.RegisterContainerInstance,
		ListContainerInstances:        s.ListContainerInstances,
		UpdateContainerInstancesState: s.UpdateContainerInstancesState,
		DeregisterContainerInstance:   s.DeregisterContainerInstance,
		PutAttributes:                 s.PutAttributes,
		DeleteAttributes:              s.DeleteAttributes,
		ListAttributes:                s.ListAttributes,
		RunTask:                       s.RunTask,
		StartTask:                     s.StartTask,
		StopTask:                      s.StopTask,
		DescribeTasks:                 s.DescribeTasks,
		ListTasks:                     s.ListTasks,
		CreateService:                 s.CreateService,
		UpdateService:                 s.UpdateService,
		DeleteService:                 s.DeleteService,
		DescribeServices:              s.DescribeServices,
		ListServices:                  s.ListServices,
	}
	if s.cfg.Endpoint != nil {
		h.DiscoverPollEndpoint = s.DiscoverPollEndpoint
	}
	svc := h.Service()
	svc.ValidationCode = ecsapi.ErrInvalidParameterException
	svc.MapError = MapError
	return svc
}

// Reasons this package gives errors (see errs.Error.Reason).
const (
	reasonClusterNotFound  = "ecs.cluster_not_found"
	reasonClusterInstances = "ecs.cluster_has_instances"
	reasonClusterServices  = "ecs.cluster_has_services"
	reasonClusterTasks     = "ecs.cluster_has_tasks"
	reasonClient           = "ecs.client"
	reasonResourceNotFound = "ecs.resource_not_found"
	reasonTaskDefClient    = "taskdef.client"
	reasonTaskDefParam     = "taskdef.param"
	reasonInvalidParameter = "ecs.invalid_parameter"
	reasonLimitExceeded    = "ecs.limit_exceeded"
	reasonNamespaceMissing = "ecs.namespace_not_found"
)

// errorMap maps domain errors to ECS's wire errors. Errors that are not
// domain errors (protocol errors, validation) are left to the front
// door's generic mapping.
var errorMap = awsproto.ErrorMap{
	Reasons: map[string]string{
		reasonClusterNotFound:  ecsapi.ErrClusterNotFoundException,
		reasonClusterInstances: ecsapi.ErrClusterContainsContainerInstancesException,
		reasonClusterServices:  ecsapi.ErrClusterContainsServicesException,
		reasonClusterTasks:     ecsapi.ErrClusterContainsTasksException,
		reasonClient:           ecsapi.ErrClientException,
		reasonTaskDefClient:    ecsapi.ErrClientException,
		reasonResourceNotFound: ecsapi.ErrResourceNotFoundException,
		reasonTaskDefParam:     ecsapi.ErrInvalidParameterException,
		reasonInvalidParameter: ecsapi.ErrInvalidParameterException,
		reasonLimitExceeded:    ecsapi.ErrLimitExceededException,
		reasonNamespaceMissing: ecsapi.ErrNamespaceNotFoundException,
		"ecs.resource_in_use":  ecsapi.ErrResourceInUseException, // capacityproviders.go
	},
	Kinds: map[errs.Kind]string{
		errs.Invalid:       ecsapi.ErrInvalidParameterException,
		errs.NotFound:      ecsapi.ErrClientException,
		errs.Conflict:      ecsapi.ErrClientException,
		errs.AlreadyExists: ecsapi.ErrClientException,
		errs.LimitExceeded: ecsapi.ErrLimitExceededException,
	},
	ServerCode: ecsapi.ErrServerException,
}

// MapError maps domain errors to ECS's wire errors.
func MapError(err error) *awsproto.Error { return errorMap.Map(err) }

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// caller returns the principal ARN of the request in ctx.
func caller(ctx context.Context) string { return awsproto.CallFrom(ctx).Identity.ARN }
