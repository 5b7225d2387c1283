package awsproto

import (
	"context"

	"github.com/berthdev/berth/internal/iam"
)

// Call describes the request being served; handlers read it from ctx.
type Call struct {
	RequestID string
	Identity  iam.Identity
	SourceIP  string
	UserAgent string
	Region    string // region from the request's credential scope
	Service   string // signing name
	Operation string
}

type callKey struct{}

// WithCall returns ctx carrying c.
func WithCall(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// CallFrom returns the call in ctx, or an empty one (never nil).
func CallFrom(ctx context.Context) *Call {
	if c, ok := ctx.Value(callKey{}).(*Call); ok {
		return c
	}
	return &Call{}
}
