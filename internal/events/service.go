// Package events is Berth's Amazon EventBridge: the API (JSON 1.1,
// AWSEvents, shapes in eventsapi) over buses, rules, targets, connections
// and API destinations kept in the store; a durable outbox of events in
// the store; the dispatcher that matches outbox events against rules
// (internal/eventpattern) and invokes targets with retries; the scheduler
// of rate/cron rules (internal/schedule); and the controller that turns
// ECS's committed state (ecs.WatchTasks and friends) into ECS's events.
//
// Targets outside this package (ECS RunTask, CloudWatch Logs, metrics) are
// reached through small interfaces the daemon implements (Deps). Handlers
// return domain errors (internal/errs); MapError maps them to EventBridge's
// exceptions at the edge. docs/events.md describes behaviour and limits.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Limits, as AWS's default quotas.
const (
	MaxRulesPerBus    = 300
	MaxTargetsPerRule = 5
	MaxCustomBuses    = 100
	MaxConnections    = 50
	MaxDestinations   = 3000
	MaxPutEventsBytes = 256 * 1024
	MaxEntrySize      = 256 * 1024
	DefaultBus        = "default"
)

// TaskRunner starts ECS tasks for ECS targets (the daemon calls the ECS
// service's RunTask).
type TaskRunner interface {
	RunTask(ctx context.Context, in *ecsapi.RunTaskRequest) (*ecsapi.RunTaskResponse, error)
}

// LogWriter appends events to a CloudWatch Logs log group, creating the
// stream when missing. A missing group is an errs.NotFound error.
type LogWriter interface {
	WriteLog(ctx context.Context, group, stream string, timestampMs int64, message string) error
}

// Metric is one AWS/Events datapoint (a count) for MetricSink.
type Metric struct {
	Name     string // Invocations, FailedInvocations, TriggeredRules, MatchedEvents
	RuleName string // dimension RuleName; empty for bus-wide metrics
	Time     time.Time
	Count    float64
}

// MetricSink publishes AWS/Events metrics (the daemon writes them to
// CloudWatch).
type MetricSink interface {
	PublishEventMetrics(ctx context.Context, ms []Metric) error
}

// Deps are the other subsystems targets reach; any may be nil, and a
// target of a missing one is reported as not deliverable.
type Deps struct {
	Tasks   TaskRunner
	Logs    LogWriter
	Metrics MetricSink
}

// Config configures the service.
type Config struct {
	Partition string // default "aws"
	Region    string
	Account   string
}

// Service implements the EventBridge API and runs delivery.
type Service struct {
	st   store.Store
	cfg  Config
	arns arn.Builder
	now  func() time.Time
	log  *slog.Logger
	deps Deps
	ids  *idGen

	metricsEvery time.Duration // how often AWS/Events metrics are published (default 5 s)

	failMu     sync.Mutex
	failLogged map[string]time.Time // target -> last failure logged

	// onInvoke, when set before RunDelivery, is told of every successful
	// invocation (tests, the delivery latency benchmark).
	onInvoke func(ev json.RawMessage, target eventsapi.Target, at time.Time)
}

// New returns the service over the store.
func New(st store.Store, cfg Config, deps Deps, log *slog.Logger) *Service {
	if cfg.Partition == "" {
		cfg.Partition = "aws"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, cfg: cfg, log: log, now: time.Now, deps: deps, ids: &idGen{},
		arns: arn.Builder{Partition: cfg.Partition, Region: cfg.Region, Account: cfg.Account}}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// API returns the EventBridge service for the front door.
func (s *Service) API() *awsproto.Service {
	h := &eventsapi.Handlers{
		CreateEventBus:         s.CreateEventBus,
		DescribeEventBus:       s.DescribeEventBus,
		DeleteEventBus:         s.DeleteEventBus,
		ListEventBuses:         s.ListEventBuses,
		PutRule:                s.PutRule,
		DescribeRule:           s.DescribeRule,
		ListRules:              s.ListRules,
		DeleteRule:             s.DeleteRule,
		EnableRule:             s.EnableRule,
		DisableRule:            s.DisableRule,
		PutTargets:             s.PutTargets,
		RemoveTargets:          s.RemoveTargets,
		ListTargetsByRule:      s.ListTargetsByRule,
		ListRuleNamesByTarget:  s.ListRuleNamesByTarget,
		PutEvents:              s.PutEvents,
		TestEventPattern:       s.TestEventPattern,
		CreateConnection:       s.CreateConnection,
		DescribeConnection:     s.DescribeConnection,
		DeleteConnection:       s.DeleteConnection,
		ListConnections:        s.ListConnections,
		CreateApiDestination:   s.CreateApiDestination,
		DescribeApiDestination: s.DescribeApiDestination,
		DeleteApiDestination:   s.DeleteApiDestination,
		ListApiDestinations:    s.ListApiDestinations,
		TagResource:            s.TagResource,
		UntagResource:          s.UntagResource,
		ListTagsForResource:    s.ListTagsForResource,
	}
	svc := h.Service()
	svc.ValidationCode = "ValidationException"
	svc.MapError = MapError
	return svc
}

// Reasons of domain errors with their own AWS code.
const (
	reasonInvalidPattern = "events.invalid_pattern"
	reasonManagedRule    = "events.managed_rule"
	reasonIllegalStatus  = "events.illegal_status"
)

var errorMap = awsproto.ErrorMap{
	Reasons: map[string]string{
		reasonInvalidPattern: eventsapi.ErrInvalidEventPatternException,
		reasonManagedRule:    eventsapi.ErrManagedRuleException,
		reasonIllegalStatus:  eventsapi.ErrIllegalStatusException,
		"token.invalid":      "ValidationException",
	},
	Kinds: map[errs.Kind]string{
		errs.Invalid:       "ValidationException",
		errs.NotFound:      eventsapi.ErrResourceNotFoundException,
		errs.AlreadyExists: eventsapi.ErrResourceAlreadyExistsException,
		errs.Conflict:      eventsapi.ErrConcurrentModificationException,
		errs.LimitExceeded: eventsapi.ErrLimitExceededException,
		errs.Unsupported:   eventsapi.ErrOperationDisabledException,
	},
	ServerCode: eventsapi.ErrInternalException,
}

// MapError maps domain errors to EventBridge's wire errors.
func MapError(err error) *awsproto.Error { return errorMap.Map(err) }

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func awsTime(t time.Time) *awsproto.Time { return awsproto.NewTime(t) }
