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
// on behalf of accessKey, when the image lives in this registry: its host
// is one of hosts (the addresses this registry is reached at). ok is false
// for images elsewhere; the caller then pulls with Docker's own
// configuration.
//
// This is the seam for the agent: before pulling a task's image it asks
// for credentials and passes them to Docker's image pull.
func (r *Registry) CredentialsFor(ctx context.Context, image string, hosts []string, accessKey string) (PullCredentials, bool, error) {
	host, _, found := strings.Cut(image, "/")
	if !found {
		return PullCredentials{}, false, nil
	}
	for _, h := range hosts {
		if strings.EqualFold(host, h) {
			tok, _, err := r.IssueToken(ctx, accessKey)
			if err != nil {
				return PullCredentials{}, false, err
			}
			return PullCredentials{Username: "AWS", Password: tok, ServerAddress: h}, true, nil
		}
	}
	return PullCredentials{}, false, nil
}
