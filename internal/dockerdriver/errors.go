package dockerdriver

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errs"
)

// Reasons carried by the errors this package returns (errs.ReasonOf).
const (
	// ReasonCannotPull marks a failed image pull; its message starts with
	// "CannotPullContainerError: ", as ECS's stoppedReason does.
	ReasonCannotPull = "CannotPullContainerError"
	// ReasonTimeout marks a Docker call that ran out of its time.
	ReasonTimeout = "docker.timeout"
	// ReasonDaemonDown marks a Docker daemon that could not be reached.
	ReasonDaemonDown = "docker.daemon_unavailable"
	// ReasonUnsupportedOption marks a container definition option the
	// translation does not support (yet).
	ReasonUnsupportedOption = "container.unsupported_option"
)

// call runs fn with a context bounded by timeout and maps its error.
// op names the call in error messages ("create container web").
func call[T any](ctx context.Context, op string, timeout time.Duration, fn func(context.Context) (T, error)) (T, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := fn(cctx)
	if err != nil {
		return v, mapErr(ctx, cctx, op, timeout, err)
	}
	return v, nil
}

// mapErr turns an error from the Docker client into an errs error. parent is
// the caller's context, cctx the one bounded by our timeout.
func mapErr(parent, cctx context.Context, op string, timeout time.Duration, err error) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err // already mapped
	}
	switch {
	case parent.Err() != nil:
		// The caller gave up; keep its cause in the chain.
		return errs.Wrap(errs.Unavailable, err, "docker %s: %v", op, context.Cause(parent))
	case cctx != nil && errors.Is(cctx.Err(), context.DeadlineExceeded):
		return &errs.Error{Kind: errs.Unavailable, Reason: ReasonTimeout,
			Msg: "docker " + op + " timed out after " + timeout.String(), Err: err}
	case client.IsErrConnectionFailed(err), isNetErr(err), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &errs.Error{Kind: errs.Unavailable, Reason: ReasonDaemonDown,
			Msg: "docker " + op + ": daemon unavailable", Err: err}
	}
	return errs.Wrap(kindOfDocker(err), err, "docker %s", op)
}

// kindOfDocker classifies a Docker API error by the HTTP status class the
// client attached to it.
func kindOfDocker(err error) errs.Kind {
	switch {
	case cerrdefs.IsNotFound(err):
		return errs.NotFound
	case cerrdefs.IsConflict(err), cerrdefs.IsAlreadyExists(err):
		return errs.Conflict
	case cerrdefs.IsInvalidArgument(err):
		return errs.Invalid
	case cerrdefs.IsUnauthorized(err):
		return errs.Unauthenticated
	case cerrdefs.IsPermissionDenied(err):
		return errs.Forbidden
	case cerrdefs.IsNotImplemented(err):
		return errs.Unsupported
	case cerrdefs.IsUnavailable(err), cerrdefs.IsDeadlineExceeded(err):
		return errs.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		return errs.Unavailable
	}
	return errs.Other
}

func isNetErr(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}
