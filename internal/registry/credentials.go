package registry

import (
	"context"
	"strings"
)

// PullCredentials are what Docker needs to pull from this registry
// (docker's AuthConfig: username, password, server address).
type PullCredentials struct {
	Username      string
	Password      string
	ServerAddress string
}

// CredentialsFor returns credentials for pulling image (a Docker reference
// such as "127.0.0.1:4566/web:1" or "127.0.0.1:4566/team/api@sha256:...")
// for an agent (subject: its container instance id), when the image lives in this registry: its host
// is one of hosts (the addresses this registry is reached at). ok is false
// for images elsewhere; the caller then pulls with Docker's own
// configuration.
//
// This is the seam for the agent: before pulling a task's image it asks
// for credentials and passes them to Docker's image pull.
//
// The password is a pull token (IssuePullToken): short-lived and good for
// pulling only, never the push and delete rights of a user's key.
func (r *Registry) CredentialsFor(ctx context.Context, image string, hosts []string, subject string) (PullCredentials, bool, error) {
	host, _, found := strings.Cut(image, "/")
	if !found {
		return PullCredentials{}, false, nil
	}
	for _, h := range hosts {
		if strings.EqualFold(host, h) {
			tok, _, err := r.IssuePullToken(ctx, subject)
			if err != nil {
				return PullCredentials{}, false, err
			}
			return PullCredentials{Username: "AWS", Password: tok, ServerAddress: h}, true, nil
		}
	}
	return PullCredentials{}, false, nil
}
