// Package errs defines the small closed set of error kinds Berth's domain
// packages return. Kinds say what the caller must do differently; they are
// mapped to AWS wire errors (ClusterNotFoundException, ...) only at the edge,
// by each AWS service's API layer.
//
// A domain error may carry a Reason: a stable, dotted identifier
// ("cluster.has_services") for the cases where one kind maps to several
// distinct AWS error codes.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller must do about it.
type Kind int

const (
	Other           Kind = iota // unclassified; treated as internal
	Invalid                     // the input is wrong; do not retry unchanged
	NotFound                    // the named thing does not exist
	AlreadyExists               // a thing with that identity exists already
	Conflict                    // the current state forbids the change now
	LimitExceeded               // a quota or size limit was reached
	Unavailable                 // a dependency is down; retry later
	Unsupported                 // Berth does not implement this (yet)
	Unauthenticated             // credentials missing or wrong
	Forbidden                   // authenticated, but not allowed
	Throttled                   // too many requests; retry with back-off
	Internal                    // a bug or an invariant broken in Berth
)

var kindNames = [...]string{"other", "invalid", "not found", "already exists", "conflict",
	"limit exceeded", "unavailable", "unsupported", "unauthenticated", "forbidden", "throttled", "internal"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a domain error with a kind.
type Error struct {
	Kind   Kind
	Reason string // optional stable identifier of the specific case
	Msg    string // human message, shown to API callers
	Err    error  // wrapped cause, if any
}

func (e *Error) Error() string {
	switch {
	case e.Msg != "" && e.Err != nil:
		return e.Msg + ": " + e.Err.Error()
	case e.Msg != "":
		return e.Msg
	case e.Err != nil:
		return e.Err.Error()
	}
	return e.Kind.String()
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an error of kind k with a formatted message.
func E(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// R builds an error of kind k with a reason and a formatted message.
func R(k Kind, reason, format string, args ...any) error {
	return &Error{Kind: k, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Wrap wraps err with kind k and a message. A nil err gives nil.
func Wrap(k Kind, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...), Err: err}
}

// KindOf returns the kind of the first *Error in err's chain, or Other.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Other
}

// ReasonOf returns the reason of the first *Error in err's chain with one.
func ReasonOf(err error) string {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return ""
		}
		if e.Reason != "" {
			return e.Reason
		}
		err = e.Err
	}
	return ""
}

// MessageOf returns the message meant for API callers: the Msg of the
// outermost *Error, or err.Error().
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Msg != "" {
		return e.Msg
	}
	return err.Error()
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }
