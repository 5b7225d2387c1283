package events

import (
	"context"
	"net/url"
	"strings"

	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Connections keep their credentials in their store record (AWS keeps them
// in a Secrets Manager secret, whose ARN DescribeConnection names; Berth
// has no Secrets Manager, and etcd is the control plane's only secret
// store). Credentials are never answered back.

func (s *Service) connARN(r connRecord) string {
	return s.arns.Service("events", "connection/"+r.Name+"/"+r.UUID)
}

func (s *Service) destARN(r destRecord) string {
	return s.arns.Service("events", "api-destination/"+r.Name+"/"+r.UUID)
}

func (s *Service) getConn(ctx context.Context, name string) (connRecord, int64, error) {
	var r connRecord
	rev, err := getJSON(ctx, s.st, connKey(name), &r)
	if err == nil && rev == 0 {
		err = errs.E(errs.NotFound, "Failed to describe the connection(s). Connection '%s' does not exist.", name)
	}
	return r, rev, err
}

func (s *Service) getDest(ctx context.Context, name string) (destRecord, int64, error) {
	var r destRecord
	rev, err := getJSON(ctx, s.st, destKey(name), &r)
	if err == nil && rev == 0 {
		err = errs.E(errs.NotFound, "Failed to describe the api-destination(s). An api-destination '%s' does not exist.", name)
	}
	return r, rev, err
}

// nameFromARN reads <name> out of ...:<type>/<name>/<uuid>.
func nameFromARN(a, typ string) (string, bool) {
	i := strings.Index(a, ":"+typ+"/")
	if i < 0 {
		return "", false
	}
	rest := a[i+len(typ)+2:]
	name, _, ok := strings.Cut(rest, "/")
	return name, ok && name != ""
}

func (s *Service) CreateConnection(ctx context.Context, in *eventsapi.CreateConnectionRequest) (*eventsapi.CreateConnectionResponse, error) {
	ap := in.AuthParameters
	switch *in.AuthorizationType {
	case eventsapi.ConnectionAuthorizationTypeApiKey:
		if ap.ApiKeyAuthParameters == nil {
			return nil, errs.E(errs.Invalid, "ApiKeyAuthParameters must be specified for authorization type API_KEY.")
		}
	case eventsapi.ConnectionAuthorizationTypeBasic:
		if ap.BasicAuthParameters == nil {
			return nil, errs.E(errs.Invalid, "BasicAuthParameters must be specified for authorization type BASIC.")
		}
	case eventsapi.ConnectionAuthorizationTypeOauthClientCredentials:
		o := ap.OAuthParameters
		if o == nil {
			return nil, errs.E(errs.Invalid, "OAuthParameters must be specified for authorization type OAUTH_CLIENT_CREDENTIALS.")
		}
		if u, err := url.Parse(*o.AuthorizationEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, errs.E(errs.Invalid, "AuthorizationEndpoint is not a valid URL.")
		}
	}
	if in.InvocationConnectivityParameters != nil || ap.ConnectivityParameters != nil {
		return nil, errs.E(errs.Unsupported, "Private connectivity (VPC Lattice resource configurations) is not available in Berth.")
	}
	all, rev, err := listJSON[connRecord](ctx, s.st, keyConnections)
	if err != nil {
		return nil, err
	}
	if len(all) >= MaxConnections {
		return nil, errs.E(errs.LimitExceeded, "The requested resource exceeds the maximum number allowed.")
	}
	now := s.now().UTC()
	r := connRecord{Name: *in.Name, UUID: newUUID(), Description: deref(in.Description), AuthType: string(*in.AuthorizationType),
		Auth: *ap, Created: now, Modified: now}
	ok, err := s.st.Txn(ctx, []store.Cmp{store.Absent(connKey(r.Name)), store.PrefixUnchangedSince(keyConnections, rev)}, store.Put(connKey(r.Name), mustJSON(r)))
	if err != nil {
		return nil, err
	}
	if !ok.Succeeded {
		return nil, errs.E(errs.AlreadyExists, "Connection %s already exists.", r.Name)
	}
	return &eventsapi.CreateConnectionResponse{ConnectionArn: ptr(s.connARN(r)), ConnectionState: ptr(eventsapi.ConnectionStateAuthorized),
		CreationTime: awsTime(now), LastModifiedTime: awsTime(now)}, nil
}

func (s *Service) DescribeConnection(ctx context.Context, in *eventsapi.DescribeConnectionRequest) (*eventsapi.DescribeConnectionResponse, error) {
	r, _, err := s.getConn(ctx, *in.Name)
	if err != nil {
		return nil, err
	}
	out := &eventsapi.DescribeConnectionResponse{Name: ptr(r.Name), ConnectionArn: ptr(s.connARN(r)),
		AuthorizationType: ptr(eventsapi.ConnectionAuthorizationType(r.AuthType)), ConnectionState: ptr(eventsapi.ConnectionStateAuthorized),
		CreationTime: awsTime(r.Created), LastModifiedTime: awsTime(r.Modified), LastAuthorizedTime: awsTime(r.Modified),
		SecretArn: ptr(s.arns.Service("secretsmanager", "secret:events!connection/"+r.Name+"/"+r.UUID))}
	if r.Description != "" {
		out.Description = ptr(r.Description)
	}
	ap := &eventsapi.ConnectionAuthResponseParameters{InvocationHttpParameters: redactHTTP(r.Auth.InvocationHttpParameters)}
	if k := r.Auth.ApiKeyAuthParameters; k != nil {
		ap.ApiKeyAuthParameters = &eventsapi.ConnectionApiKeyAuthResponseParameters{ApiKeyName: k.ApiKeyName}
	}
	if b := r.Auth.BasicAuthParameters; b != nil {
		ap.BasicAuthParameters = &eventsapi.ConnectionBasicAuthResponseParameters{Username: b.Username}
	}
	if o := r.Auth.OAuthParameters; o != nil {
		ap.OAuthParameters = &eventsapi.ConnectionOAuthResponseParameters{AuthorizationEndpoint: o.AuthorizationEndpoint,
			HttpMethod: o.HttpMethod, OAuthHttpParameters: redactHTTP(o.OAuthHttpParameters)}
		if o.ClientParameters != nil {
			ap.OAuthParameters.ClientParameters = &eventsapi.ConnectionOAuthClientResponseParameters{ClientID: o.ClientParameters.ClientID}
		}
	}
	out.AuthParameters = ap
	return out, nil
}

// redactHTTP leaves out the values marked secret.
func redactHTTP(p *eventsapi.ConnectionHttpParameters) *eventsapi.ConnectionHttpParameters {
	if p == nil {
		return nil
	}
	out := &eventsapi.ConnectionHttpParameters{}
	for _, h := range p.HeaderParameters {
		if deref(h.IsValueSecret) {
			h.Value = nil
		}
		out.HeaderParameters = append(out.HeaderParameters, h)
	}
	for _, q := range p.QueryStringParameters {
		if deref(q.IsValueSecret) {
			q.Value = nil
		}
		out.QueryStringParameters = append(out.QueryStringParameters, q)
	}
	for _, b := range p.BodyParameters {
		if deref(b.IsValueSecret) {
			b.Value = nil
		}
		out.BodyParameters = append(out.BodyParameters, b)
	}
	return out
}

func (s *Service) DeleteConnection(ctx context.Context, in *eventsapi.DeleteConnectionRequest) (*eventsapi.DeleteConnectionResponse, error) {
	r, rev, err := s.getConn(ctx, *in.Name)
	if err != nil {
		return nil, err
	}
	dests, _, err := listJSON[destRecord](ctx, s.st, keyDestinations)
	if err != nil {
		return nil, err
	}
	for _, d := range dests {
		if d.Connection == s.connARN(r) {
			return nil, errs.E(errs.Invalid, "Connection '%s' is used by api-destination '%s' and cannot be deleted.", r.Name, d.Name)
		}
	}
	if err := commit(ctx, s.st, []store.Cmp{store.ModRevisionIs(connKey(r.Name), rev)}, store.Delete(connKey(r.Name))); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	return &eventsapi.DeleteConnectionResponse{ConnectionArn: ptr(s.connARN(r)), ConnectionState: ptr(eventsapi.ConnectionStateDeleting),
		CreationTime: awsTime(r.Created), LastModifiedTime: awsTime(now), LastAuthorizedTime: awsTime(r.Modified)}, nil
}

func (s *Service) ListConnections(ctx context.Context, in *eventsapi.ListConnectionsRequest) (*eventsapi.ListConnectionsResponse, error) {
	all, _, err := listJSON[connRecord](ctx, s.st, keyConnections)
	if err != nil {
		return nil, err
	}
	if in.ConnectionState != nil && *in.ConnectionState != eventsapi.ConnectionStateAuthorized {
		all = nil
	}
	page, next, err := paginate(all, func(r connRecord) string { return r.Name }, deref(in.NamePrefix), in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := &eventsapi.ListConnectionsResponse{Connections: []eventsapi.Connection{}, NextToken: next}
	for _, r := range page {
		out.Connections = append(out.Connections, eventsapi.Connection{Name: ptr(r.Name), ConnectionArn: ptr(s.connARN(r)),
			AuthorizationType: ptr(eventsapi.ConnectionAuthorizationType(r.AuthType)), ConnectionState: ptr(eventsapi.ConnectionStateAuthorized),
			CreationTime: awsTime(r.Created), LastModifiedTime: awsTime(r.Modified), LastAuthorizedTime: awsTime(r.Modified)})
	}
	return out, nil
}

func (s *Service) CreateApiDestination(ctx context.Context, in *eventsapi.CreateApiDestinationRequest) (*eventsapi.CreateApiDestinationResponse, error) {
	u, err := url.Parse(*in.InvocationEndpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errs.E(errs.Invalid, "InvocationEndpoint is not a valid URL.")
	}
	connName, ok := nameFromARN(*in.ConnectionArn, "connection")
	if !ok {
		return nil, errs.E(errs.Invalid, "Provided Arn is not in correct format.")
	}
	conn, _, err := s.getConn(ctx, connName)
	if err != nil {
		return nil, err
	}
	if s.connARN(conn) != *in.ConnectionArn {
		return nil, errs.E(errs.NotFound, "Connection '%s' does not exist.", *in.ConnectionArn)
	}
	all, rev, err := listJSON[destRecord](ctx, s.st, keyDestinations)
	if err != nil {
		return nil, err
	}
	if len(all) >= MaxDestinations {
		return nil, errs.E(errs.LimitExceeded, "The requested resource exceeds the maximum number allowed.")
	}
	now := s.now().UTC()
	r := destRecord{Name: *in.Name, UUID: newUUID(), Description: deref(in.Description), Connection: *in.ConnectionArn,
		Method: string(*in.HttpMethod), Endpoint: *in.InvocationEndpoint, RateLimit: deref(in.InvocationRateLimitPerSecond), Created: now, Modified: now}
	res, err := s.st.Txn(ctx, []store.Cmp{store.Absent(destKey(r.Name)), store.PrefixUnchangedSince(keyDestinations, rev)}, store.Put(destKey(r.Name), mustJSON(r)))
	if err != nil {
		return nil, err
	}
	if !res.Succeeded {
		return nil, errs.E(errs.AlreadyExists, "An api-destination %s already exists.", r.Name)
	}
	return &eventsapi.CreateApiDestinationResponse{ApiDestinationArn: ptr(s.destARN(r)), ApiDestinationState: ptr(eventsapi.ApiDestinationStateActive),
		CreationTime: awsTime(now), LastModifiedTime: awsTime(now)}, nil
}

func (s *Service) destOut(r destRecord) eventsapi.ApiDestination {
	rate := r.RateLimit
	if rate == 0 {
		rate = defaultRateLimit
	}
	return eventsapi.ApiDestination{Name: ptr(r.Name), ApiDestinationArn: ptr(s.destARN(r)), ApiDestinationState: ptr(eventsapi.ApiDestinationStateActive),
		ConnectionArn: ptr(r.Connection), HttpMethod: ptr(eventsapi.ApiDestinationHttpMethod(r.Method)), InvocationEndpoint: ptr(r.Endpoint),
		InvocationRateLimitPerSecond: ptr(rate), CreationTime: awsTime(r.Created), LastModifiedTime: awsTime(r.Modified)}
}

// defaultRateLimit is AWS's default invocation rate of an API destination.
const defaultRateLimit = 300

func (s *Service) DescribeApiDestination(ctx context.Context, in *eventsapi.DescribeApiDestinationRequest) (*eventsapi.DescribeApiDestinationResponse, error) {
	r, _, err := s.getDest(ctx, *in.Name)
	if err != nil {
		return nil, err
	}
	o := s.destOut(r)
	out := &eventsapi.DescribeApiDestinationResponse{Name: o.Name, ApiDestinationArn: o.ApiDestinationArn, ApiDestinationState: o.ApiDestinationState,
		ConnectionArn: o.ConnectionArn, HttpMethod: o.HttpMethod, InvocationEndpoint: o.InvocationEndpoint,
		InvocationRateLimitPerSecond: o.InvocationRateLimitPerSecond, CreationTime: o.CreationTime, LastModifiedTime: o.LastModifiedTime}
	if r.Description != "" {
		out.Description = ptr(r.Description)
	}
	return out, nil
}

func (s *Service) DeleteApiDestination(ctx context.Context, in *eventsapi.DeleteApiDestinationRequest) (*eventsapi.DeleteApiDestinationResponse, error) {
	r, rev, err := s.getDest(ctx, *in.Name)
	if err != nil {
		return nil, err
	}
	if err := commit(ctx, s.st, []store.Cmp{store.ModRevisionIs(destKey(r.Name), rev)}, store.Delete(destKey(r.Name))); err != nil {
		return nil, err
	}
	return &eventsapi.DeleteApiDestinationResponse{}, nil
}

func (s *Service) ListApiDestinations(ctx context.Context, in *eventsapi.ListApiDestinationsRequest) (*eventsapi.ListApiDestinationsResponse, error) {
	all, _, err := listJSON[destRecord](ctx, s.st, keyDestinations)
	if err != nil {
		return nil, err
	}
	var keep []destRecord
	for _, d := range all {
		if in.ConnectionArn == nil || d.Connection == *in.ConnectionArn {
			keep = append(keep, d)
		}
	}
	page, next, err := paginate(keep, func(r destRecord) string { return r.Name }, deref(in.NamePrefix), in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := &eventsapi.ListApiDestinationsResponse{ApiDestinations: []eventsapi.ApiDestination{}, NextToken: next}
	for _, r := range page {
		out.ApiDestinations = append(out.ApiDestinations, s.destOut(r))
	}
	return out, nil
}

func (s *Service) UpdateApiDestination(ctx context.Context, in *eventsapi.UpdateApiDestinationRequest) (*eventsapi.UpdateApiDestinationResponse, error) {
	if in.InvocationEndpoint != nil {
		if u, err := url.Parse(*in.InvocationEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, errs.E(errs.Invalid, "InvocationEndpoint is not a valid URL.")
		}
	}
	if in.ConnectionArn != nil {
		connName, ok := nameFromARN(*in.ConnectionArn, "connection")
		if !ok {
			return nil, errs.E(errs.Invalid, "Provided Arn is not in correct format.")
		}
		conn, _, err := s.getConn(ctx, connName)
		if err != nil {
			return nil, err
		}
		if s.connARN(conn) != *in.ConnectionArn {
			return nil, errs.E(errs.NotFound, "Connection '%s' does not exist.", *in.ConnectionArn)
		}
	}
	for {
		r, rev, err := s.getDest(ctx, *in.Name)
		if err != nil {
			return nil, err
		}
		if in.ConnectionArn != nil {
			r.Connection = *in.ConnectionArn
		}
		if in.Description != nil {
			r.Description = *in.Description
		}
		if in.HttpMethod != nil {
			r.Method = string(*in.HttpMethod)
		}
		if in.InvocationEndpoint != nil {
			r.Endpoint = *in.InvocationEndpoint
		}
		if in.InvocationRateLimitPerSecond != nil {
			r.RateLimit = *in.InvocationRateLimitPerSecond
		}
		r.Modified = s.now().UTC()
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(destKey(r.Name), rev)}, store.Put(destKey(r.Name), mustJSON(r)))
		if err != nil {
			return nil, err
		}
		if res.Succeeded {
			return &eventsapi.UpdateApiDestinationResponse{ApiDestinationArn: ptr(s.destARN(r)), ApiDestinationState: ptr(eventsapi.ApiDestinationStateActive),
				CreationTime: awsTime(r.Created), LastModifiedTime: awsTime(r.Modified)}, nil
		}
	}
}

func (s *Service) UpdateConnection(ctx context.Context, in *eventsapi.UpdateConnectionRequest) (*eventsapi.UpdateConnectionResponse, error) {
	if in.InvocationConnectivityParameters != nil || (in.AuthParameters != nil && in.AuthParameters.ConnectivityParameters != nil) {
		return nil, errs.E(errs.Unsupported, "Private connectivity (VPC Lattice resource configurations) is not available in Berth.")
	}
	if in.KmsKeyIdentifier != nil {
		return nil, errs.E(errs.Unsupported, "Berth does not implement customer managed KMS keys for connections.")
	}
	for {
		r, rev, err := s.getConn(ctx, *in.Name)
		if err != nil {
			return nil, err
		}
		if in.Description != nil {
			r.Description = *in.Description
		}
		if in.AuthorizationType != nil && string(*in.AuthorizationType) != r.AuthType {
			// A new authorization type replaces the old credentials.
			r.AuthType = string(*in.AuthorizationType)
			r.Auth = eventsapi.CreateConnectionAuthRequestParameters{InvocationHttpParameters: r.Auth.InvocationHttpParameters}
		}
		if ap := in.AuthParameters; ap != nil {
			if ap.InvocationHttpParameters != nil {
				r.Auth.InvocationHttpParameters = ap.InvocationHttpParameters
			}
			if k := ap.ApiKeyAuthParameters; k != nil {
				if r.Auth.ApiKeyAuthParameters == nil {
					r.Auth.ApiKeyAuthParameters = &eventsapi.CreateConnectionApiKeyAuthRequestParameters{}
				}
				r.Auth.ApiKeyAuthParameters.ApiKeyName = or(k.ApiKeyName, r.Auth.ApiKeyAuthParameters.ApiKeyName)
				r.Auth.ApiKeyAuthParameters.ApiKeyValue = or(k.ApiKeyValue, r.Auth.ApiKeyAuthParameters.ApiKeyValue)
			}
			if b := ap.BasicAuthParameters; b != nil {
				if r.Auth.BasicAuthParameters == nil {
					r.Auth.BasicAuthParameters = &eventsapi.CreateConnectionBasicAuthRequestParameters{}
				}
				r.Auth.BasicAuthParameters.Username = or(b.Username, r.Auth.BasicAuthParameters.Username)
				r.Auth.BasicAuthParameters.Password = or(b.Password, r.Auth.BasicAuthParameters.Password)
			}
			if o := ap.OAuthParameters; o != nil {
				if r.Auth.OAuthParameters == nil {
					r.Auth.OAuthParameters = &eventsapi.CreateConnectionOAuthRequestParameters{}
				}
				ro := r.Auth.OAuthParameters
				ro.AuthorizationEndpoint = or(o.AuthorizationEndpoint, ro.AuthorizationEndpoint)
				if o.HttpMethod != nil {
					ro.HttpMethod = o.HttpMethod
				}
				if o.OAuthHttpParameters != nil {
					ro.OAuthHttpParameters = o.OAuthHttpParameters
				}
				if c := o.ClientParameters; c != nil {
					if ro.ClientParameters == nil {
						ro.ClientParameters = &eventsapi.CreateConnectionOAuthClientRequestParameters{}
					}
					ro.ClientParameters.ClientID = or(c.ClientID, ro.ClientParameters.ClientID)
					ro.ClientParameters.ClientSecret = or(c.ClientSecret, ro.ClientParameters.ClientSecret)
				}
			}
		}
		if err := checkConnAuth(r); err != nil {
			return nil, err
		}
		r.Modified = s.now().UTC()
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(connKey(r.Name), rev)}, store.Put(connKey(r.Name), mustJSON(r)))
		if err != nil {
			return nil, err
		}
		if res.Succeeded {
			return &eventsapi.UpdateConnectionResponse{ConnectionArn: ptr(s.connARN(r)), ConnectionState: ptr(eventsapi.ConnectionStateAuthorized),
				CreationTime: awsTime(r.Created), LastModifiedTime: awsTime(r.Modified), LastAuthorizedTime: awsTime(r.Modified)}, nil
		}
	}
}

func or(a, b *string) *string {
	if a != nil {
		return a
	}
	return b
}

// checkConnAuth checks a connection has the credentials its type needs.
func checkConnAuth(r connRecord) error {
	a := r.Auth
	switch eventsapi.ConnectionAuthorizationType(r.AuthType) {
	case eventsapi.ConnectionAuthorizationTypeApiKey:
		if a.ApiKeyAuthParameters == nil || a.ApiKeyAuthParameters.ApiKeyName == nil || a.ApiKeyAuthParameters.ApiKeyValue == nil {
			return errs.E(errs.Invalid, "ApiKeyAuthParameters must be specified for authorization type API_KEY.")
		}
	case eventsapi.ConnectionAuthorizationTypeBasic:
		if a.BasicAuthParameters == nil || a.BasicAuthParameters.Username == nil || a.BasicAuthParameters.Password == nil {
			return errs.E(errs.Invalid, "BasicAuthParameters must be specified for authorization type BASIC.")
		}
	case eventsapi.ConnectionAuthorizationTypeOauthClientCredentials:
		o := a.OAuthParameters
		if o == nil || o.AuthorizationEndpoint == nil || o.HttpMethod == nil || o.ClientParameters == nil ||
			o.ClientParameters.ClientID == nil || o.ClientParameters.ClientSecret == nil {
			return errs.E(errs.Invalid, "OAuthParameters must be specified for authorization type OAUTH_CLIENT_CREDENTIALS.")
		}
		if u, err := url.Parse(*o.AuthorizationEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errs.E(errs.Invalid, "AuthorizationEndpoint is not a valid URL.")
		}
	}
	return nil
}
