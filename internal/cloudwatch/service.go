// Package cloudwatch is Berth's Amazon CloudWatch application service: the
// metrics API (PutMetricData, GetMetricStatistics, GetMetricData,
// ListMetrics) over the datapoint storage of package tsdb, and metric
// alarms (definitions, state and a bounded history in the store) with the
// controller loop that evaluates them.
//
// Handlers take and return the generated wire shapes of cloudwatchapi;
// the front door serves them over every encoding CloudWatch clients use.
// The decisions are pure functions elsewhere: metric math in package
// metricmath, alarm evaluation in package alarm. Errors are domain errors
// mapped to CloudWatch's codes by MapError at the edge only.
// docs/metrics.md describes the behaviour and the limits.
package cloudwatch

import (
	"context"
	"log/slog"
	"time"

	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/tsdb"
)

// Config configures the CloudWatch service.
type Config struct {
	Partition string // "aws"
	Region    string
	Account   string
	// EvalInterval is how often the alarm controller evaluates every
	// alarm besides at period ends; default 10 s.
	EvalInterval time.Duration
	// HistoryPerAlarm bounds the history items kept per alarm; default 100.
	HistoryPerAlarm int
	// MaxAlarms bounds the number of metric alarms; default 5000.
	MaxAlarms int
}

// AlarmInfo is what an alarm action receives.
type AlarmInfo struct {
	Name, ARN   string
	State       string
	OldState    string
	StateReason string
	Time        time.Time
}

// AlarmStateChange is an alarm's state change about to be committed,
// for EventBridge's "CloudWatch Alarm State Change" events.
type AlarmStateChange struct {
	Def                                cloudwatchapi.PutMetricAlarmInput
	ARN                                string
	State, Reason, ReasonData          string
	Time                               time.Time
	OldState, OldReason, OldReasonData string
	OldTime                            time.Time
}

// SetStateChangeOps sets f, whose store operations are committed in the
// same transaction as every alarm state change: an event derived from a
// change is exactly as durable as the change.
func (s *Service) SetStateChangeOps(f func(AlarmStateChange) []store.Op) { s.stateOps = f }

// ActionRunner delivers alarm actions. Run returns an error when the
// action could not be delivered; the error is recorded in the alarm's
// history.
type ActionRunner interface {
	Run(ctx context.Context, actionARN string, alarm AlarmInfo) error
}

// noActions is the default runner: no action target is deliverable.
type noActions struct{}

func (noActions) Run(ctx context.Context, actionARN string, alarm AlarmInfo) error {
	return errs.E(errs.Unsupported, "the action target %s is not deliverable in Berth", actionARN)
}

// Service implements the CloudWatch API.
type Service struct {
	db      *tsdb.DB
	st      store.Store
	cfg     Config
	arns    arn.Builder
	now     func() time.Time
	log     *slog.Logger
	actions ActionRunner
	wake    chan struct{}

	// stateOps, when set, gives store operations committed with every
	// alarm state change (EventBridge's outbox write).
	stateOps func(AlarmStateChange) []store.Op
}

// New returns the CloudWatch service over a datapoint store and the state
// store.
func New(db *tsdb.DB, st store.Store, cfg Config, log *slog.Logger) *Service {
	if cfg.Partition == "" {
		cfg.Partition = "aws"
	}
	if cfg.EvalInterval <= 0 {
		cfg.EvalInterval = 10 * time.Second
	}
	if cfg.HistoryPerAlarm <= 0 {
		cfg.HistoryPerAlarm = 100
	}
	if cfg.MaxAlarms <= 0 {
		cfg.MaxAlarms = 5000
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, st: st, cfg: cfg, log: log, now: time.Now, actions: noActions{},
		wake: make(chan struct{}, 1),
		arns: arn.Builder{Partition: cfg.Partition, Region: cfg.Region, Account: cfg.Account}}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// SetActionRunner sets who delivers alarm actions (the daemon). Call it
// before Run.
func (s *Service) SetActionRunner(r ActionRunner) {
	if r != nil {
		s.actions = r
	}
}

// Publish stores datapoints from inside Berth (ECS's own metrics). It
// skips the API's checks, including the reserved AWS/ namespaces.
func (s *Service) Publish(ctx context.Context, pts []tsdb.Point) error {
	if err := s.db.Append(ctx, pts); err != nil {
		return err
	}
	s.nudge()
	return nil
}

// nudge asks the alarm controller to evaluate soon.
func (s *Service) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// API returns the CloudWatch service for the front door.
func (s *Service) API() *awsproto.Service {
	h := &cloudwatchapi.Handlers{
		PutMetricData:           s.PutMetricData,
		GetMetricStatistics:     s.GetMetricStatistics,
		GetMetricData:           s.GetMetricData,
		ListMetrics:             s.ListMetrics,
		PutMetricAlarm:          s.PutMetricAlarm,
		DescribeAlarms:          s.DescribeAlarms,
		DescribeAlarmsForMetric: s.DescribeAlarmsForMetric,
		DeleteAlarms:            s.DeleteAlarms,
		SetAlarmState:           s.SetAlarmState,
		DescribeAlarmHistory:    s.DescribeAlarmHistory,
		EnableAlarmActions:      s.EnableAlarmActions,
		DisableAlarmActions:     s.DisableAlarmActions,
		TagResource:             s.TagResource,
		UntagResource:           s.UntagResource,
		ListTagsForResource:     s.ListTagsForResource,
	}
	svc := h.Service()
	// CloudTrail records PutMetricData only as a data event (like the
	// metric reads); the audit trail keeps management events.
	svc.Operations["PutMetricData"].DataEvent = true
	svc.ValidationCode = CodeValidationError
	svc.MapError = MapError
	return svc
}

// CodeValidationError is the code CloudWatch answers for input that
// breaks the model's constraints and for malformed queries and
// expressions. It is not an exception shape of the model.
const CodeValidationError = "ValidationError"

// Reasons of errors this package makes.
const (
	reasonInvalidValue  = "cloudwatch.invalid_parameter_value"
	reasonCombination   = "cloudwatch.invalid_parameter_combination"
	reasonMissing       = "cloudwatch.missing_parameter"
	reasonValidation    = "cloudwatch.validation"
	reasonNextToken     = "cloudwatch.invalid_next_token"
	reasonAlarmNotFound = "cloudwatch.alarm_not_found"
	reasonTagNotFound   = "cloudwatch.resource_not_found"
	reasonLimit         = "cloudwatch.limit_exceeded"
	reasonInvalidFormat = "cloudwatch.invalid_format"
)

var errorMap = awsproto.ErrorMap{
	Reasons: map[string]string{
		reasonInvalidValue:  cloudwatchapi.ErrInvalidParameterValueException,
		reasonCombination:   cloudwatchapi.ErrInvalidParameterCombinationException,
		reasonMissing:       cloudwatchapi.ErrMissingRequiredParameterException,
		reasonValidation:    CodeValidationError,
		reasonNextToken:     cloudwatchapi.ErrInvalidNextToken,
		reasonAlarmNotFound: cloudwatchapi.ErrResourceNotFound,
		reasonTagNotFound:   cloudwatchapi.ErrResourceNotFoundException,
		reasonLimit:         cloudwatchapi.ErrLimitExceededFault,
		reasonInvalidFormat: cloudwatchapi.ErrInvalidFormatFault,
	},
	Kinds: map[errs.Kind]string{
		errs.Invalid:       cloudwatchapi.ErrInvalidParameterValueException,
		errs.NotFound:      cloudwatchapi.ErrResourceNotFound,
		errs.LimitExceeded: cloudwatchapi.ErrLimitExceededFault,
		errs.Unsupported:   awsproto.CodeNotImplemented,
		errs.Conflict:      cloudwatchapi.ErrConcurrentModificationException,
	},
	ServerCode: cloudwatchapi.ErrInternalServiceFault,
}

// MapError maps domain errors to CloudWatch's wire errors.
func MapError(err error) *awsproto.Error { return errorMap.Map(err) }

func invalidValue(format string, args ...any) error {
	return errs.R(errs.Invalid, reasonInvalidValue, format, args...)
}

func combination(format string, args ...any) error {
	return errs.R(errs.Invalid, reasonCombination, format, args...)
}

func missing(format string, args ...any) error {
	return errs.R(errs.Invalid, reasonMissing, format, args...)
}

func validation(format string, args ...any) error {
	return errs.R(errs.Invalid, reasonValidation, format, args...)
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func errsR(reason, format string, args ...any) error {
	return errs.R(errs.Invalid, reason, format, args...)
}
