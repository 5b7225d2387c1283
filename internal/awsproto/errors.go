package awsproto

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/berthdev/berth/internal/errs"
)

// Error is an AWS wire error: the shape name clients switch on, a message,
// and the HTTP status.
type Error struct {
	Code    string // bare shape name: "ClusterNotFoundException"
	Message string
	Status  int // HTTP status; 0 means 400
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// HTTPStatus returns the status to send.
func (e *Error) HTTPStatus() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

// NewError builds a 400 AWS error.
func NewError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ValidationError lists model constraint violations found in an input.
type ValidationError struct {
	Problems []string
}

func (v *ValidationError) Error() string {
	n := len(v.Problems)
	noun := "errors"
	if n == 1 {
		noun = "error"
	}
	return fmt.Sprintf("%d validation %s detected: %s", n, noun, strings.Join(v.Problems, "; "))
}

// Add records one problem.
func (v *ValidationError) Add(format string, args ...any) {
	v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
}

// Err returns v when it holds problems, else nil.
func (v *ValidationError) Err() error {
	if v == nil || len(v.Problems) == 0 {
		return nil
	}
	return v
}

// SerializationError is returned when a request body is not a valid
// document of the operation's input shape (malformed JSON, wrong types).
type SerializationError struct{ Msg string }

func (s *SerializationError) Error() string { return s.Msg }

// Codes of errors every service shares.
const (
	CodeUnknownOperation   = "UnknownOperationException"
	CodeSerialization      = "SerializationException"
	CodeThrottling         = "ThrottlingException"
	CodeInternalFailure    = "InternalFailure"
	CodeNotImplemented     = "UnsupportedOperation"
	CodeMissingAuth        = "MissingAuthenticationTokenException"
	CodeUnrecognizedClient = "UnrecognizedClientException"
	CodeIncompleteSig      = "IncompleteSignatureException"
	CodeInvalidSignature   = "InvalidSignatureException"
	CodeAccessDenied       = "AccessDeniedException"
	CodeRequestTooLarge    = "RequestEntityTooLargeException"
	CodeInvalidAction      = "InvalidAction"
)

// toWire maps any error a handler returned to the AWS error to send, using
// svc's mapping first.
func toWire(svc *Service, err error) *Error {
	var we *Error
	if errors.As(err, &we) {
		return we
	}
	if svc != nil && svc.MapError != nil {
		if m := svc.MapError(err); m != nil {
			return m
		}
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		code := "ValidationException"
		if svc != nil && svc.ValidationCode != "" {
			code = svc.ValidationCode
		}
		return &Error{Code: code, Message: ve.Error()}
	}
	var se *SerializationError
	if errors.As(err, &se) {
		return &Error{Code: CodeSerialization, Message: se.Msg}
	}
	return DefaultError(err)
}

// DefaultError maps an error by its kind to a generic AWS error.
func DefaultError(err error) *Error {
	msg := errs.MessageOf(err)
	switch errs.KindOf(err) {
	case errs.Invalid, errs.AlreadyExists, errs.Conflict, errs.NotFound:
		return &Error{Code: "InvalidParameterException", Message: msg}
	case errs.LimitExceeded:
		return &Error{Code: "LimitExceededException", Message: msg}
	case errs.Throttled:
		return &Error{Code: CodeThrottling, Message: msg}
	case errs.Unsupported:
		return &Error{Code: CodeNotImplemented, Message: msg}
	case errs.Unauthenticated:
		return &Error{Code: CodeUnrecognizedClient, Message: msg, Status: http.StatusForbidden}
	case errs.Forbidden:
		return &Error{Code: CodeAccessDenied, Message: msg}
	case errs.Unavailable:
		return &Error{Code: "ServiceUnavailableException", Message: msg, Status: http.StatusServiceUnavailable}
	}
	return &Error{Code: CodeInternalFailure, Message: "We encountered an internal error. Please try again.", Status: http.StatusInternalServerError}
}
