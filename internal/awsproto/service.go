package awsproto

import (
	"context"
	"net/http"
)

// Protocol is the wire protocol an AWS service speaks.
type Protocol int

const (
	JSON11 Protocol = iota // POST /, X-Amz-Target, application/x-amz-json-1.1
	JSON10                 // the same with application/x-amz-json-1.0
	Query                  // form-encoded Action=...&Version=..., XML answers
)

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
}

// Operation is one API operation of a Service.
type Operation struct {
	Name string
	// ReadOnly operations are not audited and use read throttling classes.
	ReadOnly bool
	// Implemented is false for operations Berth does not serve yet; they
	// answer an AWS-shaped error saying so.
	Implemented bool
	// Decode parses and validates the request into the operation's input
	// type. For JSON protocols body is the JSON document; for the query
	// protocol, form holds the parsed fields.
	Decode func(body []byte, form map[string][]string) (any, error)
	// Call runs the operation on a decoded input and returns its output.
	Call func(ctx context.Context, input any) (any, error)
	// Sensitive lists JSON member names whose values audit records redact.
	Sensitive []string
}

// Handler is what a service's request handling needs from the front door
// beyond the operation itself (registry traffic under /v2/, for example).
type Handler = http.Handler
