// Package awsproto is Berth's front door: one HTTP handler for every AWS
// service Berth serves. It tells services apart (SigV4 credential scope,
// X-Amz-Target, the query protocol's Action), authenticates, throttles,
// decodes and validates input with the generated wire shapes, calls the
// operation, writes AWS-shaped answers and errors with x-amzn-RequestId, and
// records mutating calls and failed authentications in the audit trail.
//
// Service behaviour lives in the per-service packages; this package knows
// only protocols.
package awsproto

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/audit"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/throttle"
)

// DefaultMaxBody is the default cap on an API request body.
const DefaultMaxBody = 10 << 20

// Scope is what the front door needs from a request's SigV4 credential
// scope before authenticating it.
type Scope struct {
	AccessKey string
	Region    string
	Service   string
}

// Auth authenticates requests.
type Auth interface {
	// Scope extracts the credential scope, if the request carries one.
	Scope(r *http.Request) (Scope, bool)
	// Authenticate verifies the request's signature over body.
	Authenticate(r *http.Request, body []byte, now time.Time) (iam.Identity, error)
}

// Auditor records audit entries durably.
type Auditor interface {
	Record(ctx context.Context, rec audit.Record) error
}

// FrontDoor serves every AWS service on one listener.
type FrontDoor struct {
	auth     Auth
	limiter  *throttle.Limiter
	auditor  Auditor
	log      *slog.Logger
	now      func() time.Time
	maxBody  int64
	region   string
	registry http.Handler
	agent    http.Handler

	bySigning map[string]*Service
	byTarget  map[string]*Service
	// failedAuth bounds how many failed authentications and throttled
	// calls per second are written to the audit trail, so garbage traffic
	// cannot fill the store.
	failedAuth *throttle.Limiter
}

// Config configures a FrontDoor.
type Config struct {
	Auth     Auth
	Limiter  *throttle.Limiter // nil: no throttling
	Auditor  Auditor           // nil: no audit trail
	Log      *slog.Logger
	Now      func() time.Time // nil: time.Now
	MaxBody  int64            // 0: DefaultMaxBody
	Region   string           // default region when a request has no scope
	Registry http.Handler     // serves /v2/ (OCI distribution); nil: 404
	Agent    http.Handler     // serves /berth/ (agent protocol, admin); nil: 404
	Services []*Service
}

// New builds a front door.
func New(cfg Config) *FrontDoor {
	fd := &FrontDoor{
		auth:      cfg.Auth,
		limiter:   cfg.Limiter,
		auditor:   cfg.Auditor,
		log:       cfg.Log,
		now:       cfg.Now,
		maxBody:   cfg.MaxBody,
		region:    cfg.Region,
		registry:  cfg.Registry,
		agent:     cfg.Agent,
		bySigning: map[string]*Service{},
		byTarget:  map[string]*Service{},
		failedAuth: throttle.New(map[throttle.Class]throttle.Limit{
			"failed-auth": {Burst: 100, Rate: 20},
			"throttled":   {Burst: 100, Rate: 20},
		}),
	}
	if fd.log == nil {
		fd.log = slog.New(slog.DiscardHandler)
	}
	if fd.now == nil {
		fd.now = time.Now
	}
	if fd.maxBody == 0 {
		fd.maxBody = DefaultMaxBody
	}
	for _, s := range cfg.Services {
		fd.bySigning[s.SigningName] = s
		if s.TargetPrefix != "" {
			fd.byTarget[s.TargetPrefix] = s
			// A namespaced prefix (botocore's CloudTrail one) is also sent
			// bare by Smithy-generated SDKs: accept both.
			if i := strings.LastIndexByte(s.TargetPrefix, '.'); i >= 0 {
				fd.byTarget[s.TargetPrefix[i+1:]] = s
			}
		}
	}
	return fd
}

// Services returns the services served, by signing name.
func (fd *FrontDoor) Services() map[string]*Service { return fd.bySigning }

// NewRequestID returns a random UUID (version 4) string.
func NewRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// exchange is one request in flight.
type exchange struct {
	w       http.ResponseWriter
	r       *http.Request
	call    *Call
	svc     *Service
	started time.Time
	form    url.Values
}

// ServeHTTP implements http.Handler.
func (fd *FrontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v2/") || r.URL.Path == "/v2" {
		if fd.registry != nil {
			fd.registry.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/berth/") {
		if fd.agent != nil {
			fd.agent.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
		return
	}
	x := &exchange{w: w, r: r, started: fd.now(), call: &Call{
		RequestID: NewRequestID(),
		SourceIP:  sourceIP(r),
		UserAgent: r.UserAgent(),
		Region:    fd.region,
	}}
	w.Header().Set("x-amzn-RequestId", x.call.RequestID)
	if r.Method == http.MethodGet && r.URL.Path == "/health" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, fd.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fd.writeError(x, &Error{Code: CodeRequestTooLarge, Status: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("Request body exceeds the maximum allowed size of %d bytes", fd.maxBody)})
			return
		}
		fd.writeError(x, &Error{Code: CodeSerialization, Message: "Could not read the request body"})
		return
	}

	// Which service? The credential scope first, then the target prefix,
	// then the query protocol's form.
	scope, hasScope := fd.auth.Scope(r)
	target := r.Header.Get("X-Amz-Target")
	if hasScope {
		x.svc = fd.bySigning[scope.Service]
		if scope.Region != "" {
			x.call.Region = scope.Region
		}
		x.call.Identity.AccessKey = scope.AccessKey
	}
	// Target prefixes may hold dots (CloudTrail's does): the operation
	// follows the last one.
	prefix, opName := target, ""
	if i := strings.LastIndexByte(target, '.'); i >= 0 {
		prefix, opName = target[:i], target[i+1:]
	}
	if x.svc == nil && target != "" {
		x.svc = fd.byTarget[prefix]
	}
	if isForm(r) || (target == "" && r.URL.Query().Get("Action") != "") {
		x.form, err = parseForm(r, body)
		if err != nil {
			fd.writeError(x, &Error{Code: "MalformedQueryString", Message: err.Error()})
			return
		}
		opName = x.form.Get("Action")
	}
	if x.svc != nil {
		x.call.Service = x.svc.SigningName
	}
	x.call.Operation = opName

	// Authenticate before anything else is revealed.
	id, err := fd.auth.Authenticate(r, body, x.started)
	if err != nil {
		fd.failAuth(x, err)
		return
	}
	x.call.Identity = id

	if x.svc == nil {
		fd.writeError(x, &Error{Code: CodeUnknownOperation, Message: unknownServiceMessage(scope.Service, target)})
		return
	}
	var op *Operation
	if x.svc.Protocol == Query {
		if x.form == nil {
			x.form, _ = parseForm(r, body)
		}
		op = x.svc.Operations[x.form.Get("Action")]
		if op == nil {
			fd.writeError(x, &Error{Code: CodeInvalidAction, Message: fmt.Sprintf("Could not find operation %s for version %s", x.form.Get("Action"), x.form.Get("Version"))})
			return
		}
	} else {
		if r.Method != http.MethodPost {
			fd.writeError(x, &Error{Code: CodeUnknownOperation, Message: "JSON protocol requests must be POST"})
			return
		}
		if fd.byTarget[prefix] != x.svc {
			fd.writeError(x, &Error{Code: CodeUnknownOperation, Message: "The X-Amz-Target header does not name an operation of this service"})
			return
		}
		op = x.svc.Operations[opName]
		if op == nil {
			fd.writeError(x, &Error{Code: CodeUnknownOperation, Message: fmt.Sprintf("%s has no operation %q", x.svc.TargetPrefix, opName)})
			return
		}
	}

	if !fd.limiter.Allow(id.AccessKey, throttle.ClassOf(x.svc.SigningName, op.Name, op.ReadOnly), x.started) {
		// Throttled calls are audited, reads included, so operators can
		// find them in the trail as they do in CloudTrail (bounded rate).
		we := &Error{Code: CodeThrottling, Message: "Rate exceeded"}
		if fd.failedAuth.Allow("", "throttled", x.started) {
			rec := fd.record(x, op.Name, op.ReadOnly)
			rec.ErrorCode, rec.ErrorMessage = we.Code, we.Message
			fd.audit(r.Context(), rec)
		}
		fd.writeError(x, we)
		return
	}

	ctx := WithCall(r.Context(), x.call)
	var out any
	in, err := op.Decode(body, x.form)
	if err == nil {
		out, err = fd.invoke(ctx, op, in)
	}
	var wireErr *Error
	if err != nil {
		wireErr = toWire(x.svc, err)
		if wireErr.HTTPStatus() >= 500 {
			fd.log.Error("operation failed", "service", x.svc.SigningName, "op", op.Name, "request_id", x.call.RequestID, "err", err)
		}
	}
	if !op.ReadOnly {
		rec := fd.record(x, op.Name, false)
		if x.svc.Protocol == Query {
			rec.Parameters = formJSON(x.form)
		} else {
			rec.Parameters = audit.Redact(body, op.Sensitive)
		}
		rec.Resources = audit.Resources(rec.Parameters)
		if wireErr != nil {
			rec.ErrorCode, rec.ErrorMessage = wireErr.Code, wireErr.Message
		}
		fd.audit(ctx, rec)
	}
	if wireErr != nil {
		fd.writeError(x, wireErr)
		return
	}
	fd.writeOutput(x, op, out)
}

// invoke calls the operation, turning a panic into an internal error so one
// bad request cannot take the server down.
func (fd *FrontDoor) invoke(ctx context.Context, op *Operation, in any) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			fd.log.Error("operation panicked", "op", op.Name, "panic", fmt.Sprint(p))
			err = errs.E(errs.Internal, "internal error")
		}
	}()
	return op.Call(ctx, in)
}

func (fd *FrontDoor) record(x *exchange, op string, readOnly bool) audit.Record {
	id := x.call.Identity
	es := ""
	if x.svc != nil {
		es = x.svc.EventSource
	}
	return audit.Record{
		EventID:      NewRequestID(),
		Time:         x.started.UTC(),
		RequestID:    x.call.RequestID,
		EventSource:  es,
		Operation:    op,
		ReadOnly:     readOnly,
		AccessKey:    id.AccessKey,
		PrincipalARN: id.ARN,
		Account:      id.Account,
		UserName:     id.UserName,
		IdentityType: id.Type,
		SourceIP:     x.call.SourceIP,
		UserAgent:    x.call.UserAgent,
		Region:       x.call.Region,
	}
}

func (fd *FrontDoor) audit(ctx context.Context, rec audit.Record) {
	if fd.auditor == nil {
		return
	}
	// The write must finish even if the client went away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := fd.auditor.Record(ctx, rec); err != nil {
		fd.log.Error("audit record not written", "request_id", rec.RequestID, "op", rec.Operation, "err", err)
	}
}

// failAuth answers an authentication failure and audits it (rate-limited).
func (fd *FrontDoor) failAuth(x *exchange, err error) {
	code := errs.ReasonOf(err)
	if code == "" {
		code = CodeUnrecognizedClient
	}
	we := &Error{Code: code, Message: errs.MessageOf(err), Status: http.StatusForbidden}
	if code == CodeIncompleteSig {
		we.Status = http.StatusBadRequest
	}
	if x.svc != nil && x.svc.Protocol == Query || x.svc == nil && x.form != nil {
		we.Code = queryAuthCode(code)
	}
	if fd.failedAuth.Allow("", "failed-auth", x.started) {
		rec := fd.record(x, x.call.Operation, false)
		rec.ErrorCode, rec.ErrorMessage = we.Code, we.Message
		fd.audit(x.r.Context(), rec)
	}
	fd.writeError(x, we)
}

// queryAuthCode maps JSON-protocol auth error codes to the query
// protocol's (STS, ELBv2): they drop the Exception suffix and two differ.
func queryAuthCode(code string) string {
	switch code {
	case CodeUnrecognizedClient:
		return "InvalidClientTokenId"
	case CodeInvalidSignature:
		return "SignatureDoesNotMatch"
	}
	return strings.TrimSuffix(code, "Exception")
}

func unknownServiceMessage(service, target string) string {
	switch {
	case target != "":
		return fmt.Sprintf("Berth does not serve the operation %q", target)
	case service != "":
		return fmt.Sprintf("Berth does not serve the AWS service %q", service)
	}
	return "The request names no operation (no X-Amz-Target header and no Action)"
}

func (fd *FrontDoor) writeError(x *exchange, e *Error) {
	if x.svc != nil && x.svc.Protocol == Query || x.svc == nil && x.form != nil {
		writeQueryError(x.w, x.svc, x.call.RequestID, e)
		return
	}
	ct := "application/x-amz-json-1.1"
	if x.svc != nil && x.svc.Protocol == JSON10 {
		ct = "application/x-amz-json-1.0"
	}
	x.w.Header().Set("Content-Type", ct)
	x.w.Header().Set("x-amzn-ErrorType", e.Code)
	x.w.WriteHeader(e.HTTPStatus())
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message,omitempty"`
	}{e.Code, e.Message})
	x.w.Write(b)
}

func (fd *FrontDoor) writeOutput(x *exchange, op *Operation, out any) {
	if es, ok := out.(*EventStream); ok {
		fd.writeEventStream(WithCall(x.r.Context(), x.call), x, es)
		return
	}
	if x.svc.Protocol == Query {
		writeQueryOutput(x.w, x.svc, op.Name, x.call.RequestID, out)
		return
	}
	ct := "application/x-amz-json-1.1"
	if x.svc.Protocol == JSON10 {
		ct = "application/x-amz-json-1.0"
	}
	b, err := json.Marshal(out)
	if err != nil {
		fd.log.Error("encode response", "op", op.Name, "err", err)
		fd.writeError(x, DefaultError(err))
		return
	}
	if string(b) == "null" {
		b = []byte("{}")
	}
	x.w.Header().Set("Content-Type", ct)
	x.w.WriteHeader(http.StatusOK)
	x.w.Write(b)
}

func isForm(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

func parseForm(r *http.Request, body []byte) (url.Values, error) {
	v := url.Values{}
	for k, vals := range r.URL.Query() {
		v[k] = append(v[k], vals...)
	}
	if isForm(r) {
		fv, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("the form body is malformed: %v", err)
		}
		for k, vals := range fv {
			v[k] = append(v[k], vals...)
		}
	}
	return v, nil
}

func formJSON(form url.Values) json.RawMessage {
	m := map[string]string{}
	for k, v := range form {
		if k == "Action" || k == "Version" || len(v) == 0 {
			continue
		}
		m[k] = v[0]
	}
	b, _ := json.Marshal(m)
	return audit.Redact(b, nil)
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
