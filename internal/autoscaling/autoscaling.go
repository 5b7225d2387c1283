// Package autoscaling is Berth's Application Auto Scaling service for ECS
// services: scalable targets (service/<cluster>/<service>,
// ecs:service:DesiredCount), target tracking and step scaling policies,
// scheduled actions and scaling activities, kept in the store.
//
// Target tracking policies own two CloudWatch alarms, made and deleted
// through the Alarms interface (the cloudwatch package). Alarms reach the
// policies through Runner, the cloudwatch.ActionRunner the daemon installs;
// Run re-invokes policies whose alarms stay in ALARM and fires scheduled
// actions. The desired count changes through the Scaler interface, which
// the daemon implements with ECS's UpdateService. The decisions (steps,
// proportional scale-out, conservative scale-in, cooldowns) are pure
// functions in decide.go. Errors are domain errors mapped to Application
// Auto Scaling's codes by MapError. docs/autoscaling.md describes it.
package autoscaling

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/api/applicationautoscalingapi"
	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Capacity is an ECS service's current task counts.
type Capacity struct {
	Desired, Running int32
}

// Scaler reads and changes an ECS service's desired count. The daemon
// implements it with ECS's DescribeServices and UpdateService, so a
// scaling goes through the service's normal update path.
type Scaler interface {
	// Capacity returns the service's counts; NotFound when the service
	// does not exist or is not ACTIVE.
	Capacity(ctx context.Context, cluster, service string) (Capacity, error)
	// SetDesiredCount sets the desired count.
	SetDesiredCount(ctx context.Context, cluster, service string, n int32) error
}

// Alarms is the part of CloudWatch the policies use; *cloudwatch.Service
// implements it.
type Alarms interface {
	PutMetricAlarm(ctx context.Context, in *cloudwatchapi.PutMetricAlarmInput) (*cloudwatchapi.PutMetricAlarmResponse, error)
	DeleteAlarms(ctx context.Context, in *cloudwatchapi.DeleteAlarmsInput) (*cloudwatchapi.DeleteAlarmsResponse, error)
	DescribeAlarms(ctx context.Context, in *cloudwatchapi.DescribeAlarmsInput) (*cloudwatchapi.DescribeAlarmsOutput, error)
}

// Config configures the service.
type Config struct {
	Partition string
	Region    string
	Account   string
	// AlarmPeriod is the period of the alarms target tracking policies
	// make: 60 s as AWS, or Berth's shorter ECS metrics period (10, 20,
	// 30 s or a multiple of 60).
	AlarmPeriod time.Duration
	// HighDatapoints and LowDatapoints are the evaluation periods of the
	// AlarmHigh and AlarmLow alarms; defaults 3 and 15 as AWS.
	HighDatapoints, LowDatapoints int32
	// Tick is how often Run looks at scheduled actions and activities;
	// default 1 s.
	Tick time.Duration
	// ActivitiesPerTarget bounds the scaling activities kept per target;
	// default 100.
	ActivitiesPerTarget int
}

// Service implements Application Auto Scaling.
type Service struct {
	st     store.Store
	cfg    Config
	arns   arn.Builder
	scaler Scaler
	alarms Alarms
	log    *slog.Logger

	clockMu sync.RWMutex
	clock   func() time.Time

	// mu serializes scaling decisions so two triggers of one target do
	// not both scale from the same capacity.
	mu sync.Mutex
	// invoked is when each (alarm, policy) pair last ran, for the
	// re-invocation of policies whose alarm stays in ALARM.
	invoked map[string]time.Time
	wake    chan struct{}
}

// New returns the service.
func New(st store.Store, scaler Scaler, alarms Alarms, cfg Config, log *slog.Logger) *Service {
	if cfg.Partition == "" {
		cfg.Partition = "aws"
	}
	if cfg.AlarmPeriod <= 0 {
		cfg.AlarmPeriod = time.Minute
	}
	if cfg.HighDatapoints <= 0 {
		cfg.HighDatapoints = 3
	}
	if cfg.LowDatapoints <= 0 {
		cfg.LowDatapoints = 15
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.ActivitiesPerTarget <= 0 {
		cfg.ActivitiesPerTarget = 100
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, cfg: cfg, scaler: scaler, alarms: alarms, log: log, clock: time.Now,
		invoked: map[string]time.Time{}, wake: make(chan struct{}, 1),
		arns: arn.Builder{Partition: cfg.Partition, Region: cfg.Region, Account: cfg.Account}}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) {
	s.clockMu.Lock()
	s.clock = now
	s.clockMu.Unlock()
	s.nudge()
}

func (s *Service) now() time.Time {
	s.clockMu.RLock()
	defer s.clockMu.RUnlock()
	return s.clock().UTC()
}

func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// API returns the service for the front door.
func (s *Service) API() *awsproto.Service {
	h := &applicationautoscalingapi.Handlers{
		RegisterScalableTarget:    s.RegisterScalableTarget,
		DescribeScalableTargets:   s.DescribeScalableTargets,
		DeregisterScalableTarget:  s.DeregisterScalableTarget,
		PutScalingPolicy:          s.PutScalingPolicy,
		DescribeScalingPolicies:   s.DescribeScalingPolicies,
		DeleteScalingPolicy:       s.DeleteScalingPolicy,
		PutScheduledAction:        s.PutScheduledAction,
		DescribeScheduledActions:  s.DescribeScheduledActions,
		DeleteScheduledAction:     s.DeleteScheduledAction,
		DescribeScalingActivities: s.DescribeScalingActivities,
		TagResource:               s.TagResource,
		UntagResource:             s.UntagResource,
		ListTagsForResource:       s.ListTagsForResource,
	}
	svc := h.Service()
	svc.ValidationCode = applicationautoscalingapi.ErrValidationException
	svc.MapError = MapError
	return svc
}

// Reasons of the errors this package makes.
const (
	reasonNotFound   = "autoscaling.object_not_found"
	reasonResource   = "autoscaling.resource_not_found"
	reasonConcurrent = "autoscaling.concurrent_update"
	reasonNextToken  = "autoscaling.invalid_next_token"
	reasonTooMany    = "autoscaling.too_many_tags"
)

var errorMap = awsproto.ErrorMap{
	Reasons: map[string]string{
		reasonNotFound:   applicationautoscalingapi.ErrObjectNotFoundException,
		reasonResource:   applicationautoscalingapi.ErrResourceNotFoundException,
		reasonConcurrent: applicationautoscalingapi.ErrConcurrentUpdateException,
		reasonNextToken:  applicationautoscalingapi.ErrInvalidNextTokenException,
		reasonTooMany:    applicationautoscalingapi.ErrTooManyTagsException,
	},
	Kinds: map[errs.Kind]string{
		errs.Invalid:       applicationautoscalingapi.ErrValidationException,
		errs.NotFound:      applicationautoscalingapi.ErrObjectNotFoundException,
		errs.LimitExceeded: applicationautoscalingapi.ErrLimitExceededException,
		errs.Conflict:      applicationautoscalingapi.ErrConcurrentUpdateException,
		errs.Unsupported:   awsproto.CodeNotImplemented,
	},
	ServerCode: applicationautoscalingapi.ErrInternalServiceException,
}

// MapError maps domain errors to Application Auto Scaling's wire errors.
func MapError(err error) *awsproto.Error { return errorMap.Map(err) }

func invalid(format string, args ...any) error { return errs.E(errs.Invalid, format, args...) }

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// retry runs f again while it reports a Conflict (a concurrent writer),
// a few times, then answers ConcurrentUpdateException.
func retry(f func() error) error {
	var err error
	for range 8 {
		err = f()
		if !errs.Is(err, errs.Conflict) {
			return err
		}
	}
	return errs.R(errs.Conflict, reasonConcurrent, "Concurrent update on the scalable target; retry the request.")
}
