// Package awsproto is Berth's front door: one HTTP handler for every AWS
// service Berth serves. It tells protocols and services apart (SigV4
// credential scope, X-Amz-Target for JSON, the Smithy RPC v2 CBOR path, the
// query protocol's Action), authenticates, throttles, decodes and validates
// input with the generated wire shapes whatever the encoding, calls the
// operation, writes AWS-shaped answers and errors in the request's protocol
// with x-amzn-RequestId, and records mutating calls and failed
// authentications in the audit trail.
//
// Service behaviour lives in the per-service packages; this package knows
// only protocols.
package awsproto

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
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

// DefaultMaxBody is the default cap on an API request body, for the
// operations that take large ones (LargeBodyOperations).
const DefaultMaxBody = 10 << 20

// Body caps before authentication. The front door reads at most
// PreAuthBody bytes of a request before it knows that the request's
// access key is one Berth has: a request signed with an unknown key, or
// not signed, is answered its authentication error after at most that
// much. A request with a known key is read on to OrdinaryBody, or to the
// front door's MaxBody for LargeBodyOperations, and then authenticated.
// Compressed bodies are decompressed only after authentication.
const (
	PreAuthBody  = 64 << 10
	OrdinaryBody = 1 << 20
)

// LargeBodyOperations are the operations, by signing name, whose bodies
// may exceed OrdinaryBody (AWS caps PutMetricData and PutLogEvents at
// 1 MiB of payload, which the query protocol's form encoding or base64
// makes larger; ECR image manifests and layer parts are megabytes). A
// query-protocol request names its operation in the body, so for one the
// service's entry counts.
var LargeBodyOperations = map[string][]string{
	"monitoring": {"PutMetricData", "PutDashboard"},
	"logs":       {"PutLogEvents"},
	"ecr":        {"PutImage", "UploadLayerPart"},
}

// KeyChecker is implemented by an Auth that can tell whether an access key
// is known before the request's body is read.
type KeyChecker interface {
	KnownKey(accessKey string) bool
}

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

// Observer is told about every AWS API request the front door answers
// (not /health, /v2/ or /berth/): the service's signing name and the
// operation's name, each "" when the request named none Berth serves (so
// garbage cannot grow the label set), the AWS error code ("" on success),
// and how long the answer took. It is called on the request's goroutine
// after the answer is written, so it must be cheap and must not block.
type Observer interface {
	ObserveRequest(service, operation, code string, took time.Duration)
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
	observer Observer

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
	Observer Observer         // told about each API request; nil: none
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
		observer:  cfg.Observer,
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
	started time.Time
	raw     []byte // the body as sent (and signed)
	body    []byte // the body, decompressed

	// What the request is, as recognised before authentication.
	proto  Protocol // protoNone when the request names no protocol
	scope  Scope
	target string     // X-Amz-Target, or the service named in a CBOR path
	form   url.Values // query protocol fields
	svc    *Service

	// op is the operation's name once resolved; code the AWS error code
	// answered, if any (for the Observer).
	op   string
	code string
}

// ServeHTTP implements http.Handler. A request goes through named stages:
// read the body, recognise its protocol and service, authenticate, find the
// operation, throttle, then decode, call, audit and answer. Each stage
// answers the error itself and reports whether to go on.
func (fd *FrontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if fd.serveNonAPI(w, r) {
		return
	}
	x := fd.newExchange(w, r)
	if r.Method == http.MethodGet && r.URL.Path == "/health" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
		return
	}
	if fd.observer != nil {
		defer fd.observe(x)
	}
	fd.recognise(x)
	if !fd.readBody(x) {
		return
	}
	// An uncompressed form is read before authentication (so a failed
	// authentication's audit record names the Action); a compressed body
	// is decompressed only once authenticated.
	encoded := x.r.Header.Get("Content-Encoding") != ""
	if !encoded && !fd.readForm(x) {
		return
	}
	if !fd.authenticate(x) || !fd.decodeBody(x) {
		return
	}
	if encoded && !fd.readForm(x) {
		return
	}
	op := fd.operation(x)
	if op != nil {
		x.op = op.Name
	}
	if op == nil || !fd.admit(x, op) {
		return
	}
	fd.serve(x, op)
}

// serveNonAPI hands registry (/v2/) and agent (/berth/) traffic to their
// handlers.
func (fd *FrontDoor) serveNonAPI(w http.ResponseWriter, r *http.Request) bool {
	var h http.Handler
	switch {
	case strings.HasPrefix(r.URL.Path, "/v2/") || r.URL.Path == "/v2":
		h = fd.registry
	case strings.HasPrefix(r.URL.Path, "/berth/"):
		h = fd.agent
	default:
		return false
	}
	if h == nil {
		http.NotFound(w, r)
		return true
	}
	h.ServeHTTP(w, r)
	return true
}

func (fd *FrontDoor) newExchange(w http.ResponseWriter, r *http.Request) *exchange {
	x := &exchange{w: w, r: r, started: fd.now(), proto: protoNone, call: &Call{
		RequestID: NewRequestID(),
		SourceIP:  sourceIP(r),
		UserAgent: r.UserAgent(),
		Region:    fd.region,
	}}
	w.Header().Set("x-amzn-RequestId", x.call.RequestID)
	return x
}

// observe tells the Observer how the request was answered.
func (fd *FrontDoor) observe(x *exchange) {
	svc := ""
	if x.svc != nil {
		svc = x.svc.SigningName
	}
	fd.observer.ObserveRequest(svc, x.op, x.code, fd.now().Sub(x.started))
}

// readBody reads the request body (as sent) up to its cap (bodyLimit). A
// request whose key is unknown and whose body is over PreAuthBody is
// answered its authentication error, with the body read so far.
func (fd *FrontDoor) readBody(x *exchange) bool {
	limit, unknown := fd.bodyLimit(x)
	body, err := io.ReadAll(http.MaxBytesReader(x.w, x.r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			if unknown {
				// Not a key Berth knows (or no signature): that is the
				// answer, whatever the body.
				x.raw = body
				if !fd.authenticate(x) {
					return false
				}
			}
			fd.writeError(x, &Error{Code: CodeRequestTooLarge, Status: http.StatusRequestEntityTooLarge,
				Message: fmt.Sprintf("Request body exceeds the maximum allowed size of %d bytes", limit)})
			return false
		}
		fd.writeError(x, &Error{Code: CodeSerialization, Message: "Could not read the request body"})
		return false
	}
	x.raw, x.body = body, body
	return true
}

// decodeBody undoes the body's Content-Encoding, after authentication.
func (fd *FrontDoor) decodeBody(x *exchange) bool {
	enc := x.r.Header.Get("Content-Encoding")
	if enc == "" {
		return true
	}
	plain, we := decompress(enc, x.raw, fd.maxBody)
	if we != nil {
		fd.writeError(x, we)
		return false
	}
	x.body = plain
	return true
}

// bodyLimit is how much of x's body may be read: PreAuthBody unless the
// request's access key is known (unknown is true then), else OrdinaryBody
// or, for an operation that takes large bodies, the front door's cap.
func (fd *FrontDoor) bodyLimit(x *exchange) (limit int64, unknown bool) {
	if kc, ok := fd.auth.(KeyChecker); ok && !kc.KnownKey(x.scope.AccessKey) {
		return min(int64(PreAuthBody), fd.maxBody), true
	}
	limit = min(int64(OrdinaryBody), fd.maxBody)
	if x.svc == nil {
		return limit, false
	}
	for _, op := range LargeBodyOperations[x.svc.SigningName] {
		if op == x.call.Operation || x.proto == Query {
			return fd.maxBody, false
		}
	}
	return limit, false
}

// decompress undoes a request's Content-Encoding: the SDKs gzip large
// PutMetricData bodies (the model's requestCompression). The signature
// covers the compressed body; decoding reads the plain one, capped as the
// body is.
func decompress(encoding string, body []byte, max int64) ([]byte, *Error) {
	for _, enc := range strings.Split(encoding, ",") {
		switch strings.ToLower(strings.TrimSpace(enc)) {
		case "", "identity", "aws-chunked":
		case "gzip":
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				return nil, &Error{Code: CodeSerialization, Message: "The request body is not valid gzip data"}
			}
			plain, err := io.ReadAll(io.LimitReader(zr, max+1))
			if err != nil {
				return nil, &Error{Code: CodeSerialization, Message: "The request body is not valid gzip data"}
			}
			if int64(len(plain)) > max {
				return nil, &Error{Code: CodeRequestTooLarge, Status: http.StatusRequestEntityTooLarge,
					Message: fmt.Sprintf("Request body exceeds the maximum allowed size of %d bytes", max)}
			}
			body = plain
		default:
			return nil, &Error{Code: CodeSerialization, Message: fmt.Sprintf("Unsupported Content-Encoding %q", enc)}
		}
	}
	return body, nil
}

// recognise finds, from the path and headers, the request's protocol,
// service and operation name: the service from the credential scope first,
// then from the X-Amz-Target prefix or the CBOR path; the operation from
// the target or the path (the query protocol's Action is read with the
// form).
func (fd *FrontDoor) recognise(x *exchange) {
	x.proto, x.target, x.call.Operation = recogniseProtocol(x.r)
	var hasScope bool
	x.scope, hasScope = fd.auth.Scope(x.r)
	if hasScope {
		x.svc = fd.bySigning[x.scope.Service]
		if x.scope.Region != "" {
			x.call.Region = x.scope.Region
		}
		x.call.Identity.AccessKey = x.scope.AccessKey
	}
	if x.svc == nil && x.target != "" {
		x.svc = fd.byTarget[x.target]
	}
	if x.svc != nil {
		x.call.Service = x.svc.SigningName
	}
}

// readForm parses a query-protocol request's fields (URL and form body)
// and takes the operation from its Action.
func (fd *FrontDoor) readForm(x *exchange) bool {
	if x.proto != Query {
		return true
	}
	form, err := parseForm(x.r, x.body)
	if err != nil {
		fd.writeError(x, &Error{Code: "MalformedQueryString", Message: err.Error()})
		return false
	}
	x.form = form
	x.call.Operation = form.Get("Action")
	return true
}

// authenticate verifies the signature before anything else is revealed.
func (fd *FrontDoor) authenticate(x *exchange) bool {
	id, err := fd.auth.Authenticate(x.r, x.raw, x.started)
	if err != nil {
		fd.failAuth(x, err)
		return false
	}
	x.call.Identity = id
	return true
}

// operation finds the operation the request names, or answers why not.
func (fd *FrontDoor) operation(x *exchange) *Operation {
	fail := func(code, format string, args ...any) *Operation {
		fd.writeError(x, NewError(code, format, args...))
		return nil
	}
	if x.svc == nil {
		return fail(CodeUnknownOperation, "%s", unknownServiceMessage(x.scope.Service, x.target))
	}
	if x.proto == protoNone {
		return fail(CodeUnknownOperation, "%s", unknownServiceMessage("", ""))
	}
	if !x.svc.Speaks(x.proto) {
		return fail(CodeUnknownOperation, "The service %s is not served over the %s protocol", x.svc.SigningName, x.proto)
	}
	if x.proto != Query {
		if x.r.Method != http.MethodPost {
			return fail(CodeUnknownOperation, "%s requests must be POST", x.proto)
		}
		if fd.byTarget[x.target] != x.svc {
			if x.proto == RPCv2CBOR {
				return fail(CodeUnknownOperation, "The path does not name an operation of this service")
			}
			return fail(CodeUnknownOperation, "The X-Amz-Target header does not name an operation of this service")
		}
	}
	op := x.svc.Operations[x.call.Operation]
	if op == nil {
		if x.proto == Query {
			return fail(CodeInvalidAction, "Could not find operation %s for version %s", x.form.Get("Action"), x.form.Get("Version"))
		}
		return fail(CodeUnknownOperation, "%s has no operation %q", x.svc.TargetPrefix, x.call.Operation)
	}
	return op
}

// admit applies the rate limit of the caller's access key.
func (fd *FrontDoor) admit(x *exchange, op *Operation) bool {
	if fd.limiter.Allow(x.call.Identity.AccessKey, throttle.ClassOf(x.svc.SigningName, op.Name, op.ReadOnly), x.started) {
		return true
	}
	// Throttled calls are audited, reads included, so operators can find
	// them in the trail as they do in CloudTrail (bounded rate).
	we := &Error{Code: CodeThrottling, Message: "Rate exceeded"}
	if fd.failedAuth.Allow("", "throttled", x.started) {
		rec := fd.record(x, op.Name, op.ReadOnly)
		rec.ErrorCode, rec.ErrorMessage = x.clientCode(we), we.Message
		fd.audit(x.r.Context(), rec)
	}
	fd.writeError(x, we)
	return false
}

// serve decodes and validates the input, calls the operation, audits a
// mutating call and answers.
func (fd *FrontDoor) serve(x *exchange, op *Operation) {
	ctx := WithCall(x.r.Context(), x.call)
	var out any
	in, err := decodeInput(x, op)
	if err == nil {
		out, err = fd.invoke(ctx, op, in)
	}
	var wireErr *Error
	if err != nil {
		wireErr = x.svc.resolve(toWire(x.svc, err))
		if wireErr.HTTPStatus() >= 500 {
			fd.log.Error("operation failed", "service", x.svc.SigningName, "op", op.Name, "request_id", x.call.RequestID, "err", err)
		}
	}
	if !op.ReadOnly && !op.DataEvent {
		rec := fd.record(x, op.Name, false)
		rec.Parameters = auditParameters(x, op, in)
		rec.Resources = audit.Resources(rec.Parameters)
		if wireErr != nil {
			rec.ErrorCode, rec.ErrorMessage = x.clientCode(wireErr), wireErr.Message
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
	if fd.failedAuth.Allow("", "failed-auth", x.started) {
		rec := fd.record(x, x.call.Operation, false)
		rec.ErrorCode, rec.ErrorMessage = x.clientCode(we), we.Message
		fd.audit(x.r.Context(), rec)
	}
	fd.writeError(x, we)
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

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
