package awsproto

import (
	"context"
	"fmt"
	"net/http"
)

// Protocol is the wire protocol an AWS service speaks.
type Protocol int

const (
	JSON11    Protocol = iota // POST /, X-Amz-Target, application/x-amz-json-1.1
	JSON10                    // the same with application/x-amz-json-1.0
	Query                     // form-encoded Action=...&Version=..., XML answers
	RPCv2CBOR                 // Smithy RPC v2: POST /service/<S>/operation/<Op>, CBOR both ways
)

// String names the protocol as the docs do.
func (p Protocol) String() string {
	switch p {
	case JSON11:
		return "JSON 1.1"
	case JSON10:
		return "JSON 1.0"
	case Query:
		return "query"
	case RPCv2CBOR:
		return "Smithy RPC v2 CBOR"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// isJSON reports whether p is one of the JSON 1.x protocols.
func (p Protocol) isJSON() bool { return p == JSON10 || p == JSON11 }

// ModeledError is an error shape a service's model declares, with the
// facts its wire encodings need.
type ModeledError struct {
	// Shape is the error shape's name: the __type of JSON and CBOR errors.
	Shape string
	// Code is the query protocol's code for it (the model's error.code,
	// "ResourceNotFound"); the x-amzn-query-error header carries it too.
	Code string
	// Status is the model's error.httpStatusCode (0: 400).
	Status int
	// Sender is true for the client's faults (Type Sender), false for the
	// server's (Receiver).
	Sender bool
}

// Service is one AWS service served by the front door.
type Service struct {
	// SigningName is the service name in the SigV4 credential scope ("ecs").
	SigningName string
	// TargetPrefix is the X-Amz-Target prefix for JSON protocols.
	TargetPrefix string
	// APIVersion is the Version form field for the query protocol.
	APIVersion string
	// EventSource names the service in audit records ("ecs.amazonaws.com").
	EventSource string
	Protocol    Protocol
	// Operations by name.
	Operations map[string]*Operation
	// MapError turns an error into the service's AWS error; it sees every
	// error first, model validation errors included. When nil, or when it
	// returns nil, the generic mapping applies (DefaultError for kinds).
	MapError func(err error) *Error
	// ValidationCode is the AWS error code for model validation failures
	// (a required member missing, a bad enum value, a length or range out of
	// bounds). ECS: InvalidParameterException.
	ValidationCode string
	// XMLNamespace is the namespace of query-protocol XML answers.
	XMLNamespace string
	// Protocols lists every protocol the service answers in, when it is
	// more than Protocol (CloudWatch: RPC v2 CBOR, JSON 1.0 and query).
	// Every operation of such a service must have NewInput.
	Protocols []Protocol
	// QueryCompatible marks a former query service now also served over
	// JSON or CBOR (the model's awsQueryCompatible): its errors carry the
	// query code in an x-amzn-query-error header ("ResourceNotFound;Sender")
	// and take their HTTP status from Errors.
	QueryCompatible bool
	// Errors are the model's error shapes with their query codes and
	// statuses (generated for query-compatible services).
	Errors []ModeledError
}

// Speaks reports whether the service answers in protocol p. The two JSON
// versions are one protocol family: a JSON service accepts either.
func (s *Service) Speaks(p Protocol) bool {
	if p.isJSON() && s.Protocol.isJSON() {
		return true
	}
	if s.Protocol == p {
		return true
	}
	for _, q := range s.Protocols {
		if q == p || p.isJSON() && q.isJSON() {
			return true
		}
	}
	return false
}

// jsonVersion returns the JSON protocol the service answers JSON requests in.
func (s *Service) jsonVersion() Protocol {
	if s.Protocol.isJSON() {
		return s.Protocol
	}
	for _, q := range s.Protocols {
		if q.isJSON() {
			return q
		}
	}
	return JSON11
}

// modeled returns the model's error for an error code: the shape of that
// name, else the first shape whose query code it is.
func (s *Service) modeled(code string) (ModeledError, bool) {
	if s == nil {
		return ModeledError{}, false
	}
	for _, e := range s.Errors {
		if e.Shape == code {
			return e, true
		}
	}
	for _, e := range s.Errors {
		if e.Code == code {
			return e, true
		}
	}
	return ModeledError{}, false
}

// Operation is one API operation of a Service.
type Operation struct {
	Name string
	// ReadOnly operations are not audited and use read throttling classes.
	ReadOnly bool
	// DataEvent operations are what CloudTrail records only as data events
	// (CloudWatch's PutMetricData, for one): the audit trail, which holds
	// management events, skips them.
	DataEvent bool
	// Implemented is false for operations Berth does not serve yet; they
	// answer an AWS-shaped error saying so.
	Implemented bool
	// Decode parses and validates the request into the operation's input
	// type. For JSON protocols body is the JSON document; for the query
	// protocol, form holds the parsed fields. Unused when NewInput is set.
	Decode func(body []byte, form map[string][]string) (any, error)
	// NewInput returns a new, empty input: a pointer to a generated struct
	// (json tags name the members) with a Validate() error method. When it
	// is set, the front door decodes the request from whichever protocol
	// it came in (JSON, query form, CBOR) and validates it.
	NewInput func() any
	// Call runs the operation on a decoded input and returns its output.
	Call func(ctx context.Context, input any) (any, error)
	// Sensitive lists JSON member names whose values audit records redact.
	Sensitive []string
}

// Handler is what a service's request handling needs from the front door
// beyond the operation itself (registry traffic under /v2/, for example).
type Handler = http.Handler
