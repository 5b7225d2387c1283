// Package logs is Berth's Amazon CloudWatch Logs application service: the
// Logs API (JSON 1.1, generated shapes in logsapi) over the log store
// (package logstore), plus Ingest, the internal entry point of the awslogs
// log driver's path from agents.
//
// Handlers check AWS's rules (batch limits, order, time windows, paging)
// with the clock passed in; errors are domain errors (internal/errs),
// mapped to CloudWatch Logs' exceptions by MapError at the edge only.
package logs

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/api/logsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/logfilter"
	"github.com/berthdev/berth/internal/logstore"
)

// Config configures the Logs service.
type Config struct {
	Partition string // default "aws"
	Region    string
	Account   string
}

// Service implements the CloudWatch Logs API.
type Service struct {
	st   *logstore.Store
	cfg  Config
	arns arn.Builder
	now  func() time.Time
	log  *slog.Logger

	stop     chan struct{} // closed by StopStreams
	stopOnce sync.Once
}

// New returns the Logs service over an open store.
func New(st *logstore.Store, cfg Config, log *slog.Logger) *Service {
	if cfg.Partition == "" {
		cfg.Partition = "aws"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{st: st, cfg: cfg, log: log, now: time.Now, stop: make(chan struct{}),
		arns: arn.Builder{Partition: cfg.Partition, Region: cfg.Region, Account: cfg.Account}}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// API returns the Logs service for the front door.
func (s *Service) API() *awsproto.Service {
	h := &logsapi.Handlers{
		CreateLogGroup:        s.CreateLogGroup,
		DeleteLogGroup:        s.DeleteLogGroup,
		DescribeLogGroups:     s.DescribeLogGroups,
		CreateLogStream:       s.CreateLogStream,
		DeleteLogStream:       s.DeleteLogStream,
		DescribeLogStreams:    s.DescribeLogStreams,
		PutRetentionPolicy:    s.PutRetentionPolicy,
		DeleteRetentionPolicy: s.DeleteRetentionPolicy,
		TagResource:           s.TagResource,
		UntagResource:         s.UntagResource,
		ListTagsForResource:   s.ListTagsForResource,
		TagLogGroup:           s.TagLogGroup,
		UntagLogGroup:         s.UntagLogGroup,
		ListTagsLogGroup:      s.ListTagsLogGroup,
		PutLogEvents:          s.PutLogEvents,
		GetLogEvents:          s.GetLogEvents,
		FilterLogEvents:       s.FilterLogEvents,
	}
	svc := h.Service()
	// StartLiveTail answers an event stream, which the generated handler
	// signature cannot carry: its operation calls startLiveTail directly.
	if op := svc.Operations["StartLiveTail"]; op != nil {
		op.Implemented = true
		op.Call = s.startLiveTail
	}
	svc.ValidationCode = logsapi.ErrInvalidParameterException
	svc.MapError = MapError
	return svc
}

// RunRetention deletes expired segments, and writes the index files of
// sealed segments, every interval until ctx ends.
func (s *Service) RunRetention(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n := s.st.EnforceRetention(s.now()); n > 0 {
			s.log.Info("deleted expired log segments", "segments", n)
		}
		s.st.WriteIndexes()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

const reasonInvalidOperation = "logs.invalid_operation"

var errorMap = awsproto.ErrorMap{
	Reasons: map[string]string{
		logfilter.InvalidPattern:   logsapi.ErrInvalidParameterException,
		logstore.ReasonTooManyTags: logsapi.ErrTooManyTagsException,
		reasonInvalidOperation:     logsapi.ErrInvalidOperationException,
		"token.invalid":            logsapi.ErrInvalidParameterException,
	},
	Kinds: map[errs.Kind]string{
		errs.Invalid:       logsapi.ErrInvalidParameterException,
		errs.NotFound:      logsapi.ErrResourceNotFoundException,
		errs.AlreadyExists: logsapi.ErrResourceAlreadyExistsException,
		errs.Conflict:      logsapi.ErrOperationAbortedException,
		errs.LimitExceeded: logsapi.ErrLimitExceededException,
		errs.Unsupported:   logsapi.ErrInvalidOperationException,
	},
	ServerCode: logsapi.ErrServiceUnavailableException,
}

// MapError maps domain errors to CloudWatch Logs' wire errors.
func MapError(err error) *awsproto.Error { return errorMap.Map(err) }

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// groupARN is the log group's ARN as DescribeLogGroups' logGroupArn and
// TagResource take it; arn adds ":*".
func (s *Service) groupARN(name string) string {
	return s.arns.Service("logs", "log-group:"+name)
}

func (s *Service) streamARN(group, stream string) string {
	return s.arns.Service("logs", "log-group:"+group+":log-stream:"+stream)
}

// groupFromARN reads the log group name out of a log group ARN (with or
// without the trailing ":*").
func (s *Service) groupFromARN(a string) (string, error) {
	p, err := arn.Parse(a)
	if err != nil || p.Service != "logs" {
		return "", errs.E(errs.Invalid, "Invalid ARN: %s", a)
	}
	name, ok := strings.CutPrefix(p.Resource, "log-group:")
	if !ok || name == "" {
		return "", errs.E(errs.Invalid, "Invalid ARN: %s. Only log group ARNs are supported.", a)
	}
	name = strings.TrimSuffix(name, ":*")
	if p.Account != s.cfg.Account || p.Region != s.cfg.Region {
		return "", errs.E(errs.NotFound, logstore.MsgGroupNotFound)
	}
	return name, nil
}

// groupName resolves logGroupName / logGroupIdentifier (a name or an ARN).
func (s *Service) groupName(name, ident *string) (string, error) {
	switch {
	case name != nil && ident != nil:
		return "", errs.E(errs.Invalid, "LogGroup name and LogGroup ARN are mutually exclusive parameters.")
	case name != nil:
		return *name, nil
	case ident != nil:
		if arn.IsARN(*ident) {
			return s.groupFromARN(*ident)
		}
		return *ident, nil
	}
	return "", errs.E(errs.Invalid, "Should provide either name or identifier")
}

func (s *Service) nowMs() int64 { return s.now().UnixMilli() }

// done returns out, or nil and err when err is set.
func done[T any](out *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return out, nil
}
