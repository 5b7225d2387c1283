// Package sts serves the one AWS STS operation tools call first to learn
// who they are: GetCallerIdentity (query protocol, XML answers). Every
// other STS operation answers that Berth does not implement it.
package sts

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/url"

	"github.com/berthdev/berth/internal/awsproto"
)

// Namespace is STS's XML namespace.
const Namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// CallerIdentity is GetCallerIdentity's result.
type CallerIdentity struct {
	XMLName xml.Name `xml:"GetCallerIdentityResult"`
	Arn     string   `xml:"Arn"`
	UserID  string   `xml:"UserId"`
	Account string   `xml:"Account"`
}

// unimplemented are STS operations Berth knows of but does not serve.
var unimplemented = []string{"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity",
	"DecodeAuthorizationMessage", "GetAccessKeyInfo", "GetFederationToken", "GetSessionToken"}

// Service returns the STS service for the front door.
func Service() *awsproto.Service {
	ops := map[string]*awsproto.Operation{
		"GetCallerIdentity": {
			Name:        "GetCallerIdentity",
			ReadOnly:    true,
			Implemented: true,
			Decode:      func([]byte, map[string][]string) (any, error) { return nil, nil },
			Call: func(ctx context.Context, _ any) (any, error) {
				id := awsproto.CallFrom(ctx).Identity
				return &CallerIdentity{Arn: id.ARN, UserID: id.UserID, Account: id.Account}, nil
			},
		},
	}
	for _, name := range unimplemented {
		ops[name] = &awsproto.Operation{
			Name:   name,
			Decode: func(_ []byte, form map[string][]string) (any, error) { return url.Values(form), nil },
			Call: func(context.Context, any) (any, error) {
				return nil, &awsproto.Error{Code: awsproto.CodeNotImplemented, Message: fmt.Sprintf("Berth does not implement STS %s", name)}
			},
		}
	}
	return &awsproto.Service{
		SigningName:  "sts",
		APIVersion:   "2011-06-15",
		EventSource:  "sts.amazonaws.com",
		Protocol:     awsproto.Query,
		Operations:   ops,
		XMLNamespace: Namespace,
	}
}
