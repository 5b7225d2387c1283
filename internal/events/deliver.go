package events

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/errs"
)

// deliveryError is a failed invocation; retry says whether trying again
// may help (AWS retries throttling, server errors and timeouts, not a
// target that refuses the request).
type deliveryError struct {
	err   error
	retry bool
}

func (e *deliveryError) Error() string { return e.err.Error() }
func (e *deliveryError) Unwrap() error { return e.err }

func permanent(format string, args ...any) error {
	return &deliveryError{err: fmt.Errorf(format, args...)}
}

func transient(err error) error { return &deliveryError{err: err, retry: true} }

func isRetryable(err error) bool {
	var de *deliveryError
	if errors.As(err, &de) {
		return de.retry
	}
	return errs.Is(err, errs.Unavailable) || errs.Is(err, errs.Throttled) || errs.Is(err, errs.Internal) ||
		errors.Is(err, context.DeadlineExceeded)
}

// errNotDeliverable marks targets of services Berth does not run.
var errNotDeliverable = errors.New("target not deliverable: Berth does not run this AWS service")

func (d *dispatcher) invoke(j job) error {
	ctx, cancel := context.WithTimeout(d.ctx, invokeTimeout)
	defer cancel()
	s := d.s
	ruleARN := s.ruleARN(j.bus, j.rule.Name)
	input := inputFor(&j.target, j.event, j.rule.Name, ruleARN, eventTime(j.accepted))
	t := &j.target
	switch targetKind(*t.Arn) {
	case kindECS:
		if s.deps.Tasks == nil {
			return permanent("%w", errNotDeliverable)
		}
		return s.runTasks(ctx, j, input)
	case kindLogs:
		if s.deps.Logs == nil {
			return permanent("%w", errNotDeliverable)
		}
		p, _ := arn.Parse(*t.Arn)
		group := strings.TrimSuffix(strings.TrimPrefix(p.Resource, "log-group:"), ":*")
		var ev Event
		_ = json.Unmarshal(j.event, &ev)
		ts := j.accepted
		if tt, err := time.Parse(time.RFC3339, ev.Time); err == nil {
			ts = tt
		}
		stream := ev.ID
		if stream == "" {
			stream = newUUID()
		}
		err := s.deps.Logs.WriteLog(ctx, group, stream, ts.UnixMilli(), string(input))
		if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Invalid) {
			return permanent("log group %s: %v", group, err)
		}
		return err
	case kindDestination:
		return d.callDestination(ctx, t, input)
	case kindBus:
		p, _ := arn.Parse(*t.Arn)
		bus := p.ResourceID()
		if p.Account != s.cfg.Account || p.Region != s.cfg.Region {
			return permanent("%w (event bus of another account or region)", errNotDeliverable)
		}
		if _, _, err := s.getBus(ctx, bus); err != nil {
			if errs.Is(err, errs.NotFound) {
				return permanent("%v", err)
			}
			return err
		}
		var ev Event
		if err := json.Unmarshal(j.event, &ev); err != nil {
			return permanent("%v", err)
		}
		return s.Emit(ctx, bus, []Event{ev})
	}
	return permanent("%w", errNotDeliverable)
}

// runTasks starts the ECS target's tasks; startedBy names the rule, as
// AWS does (cut to ECS's 36 characters).
func (s *Service) runTasks(ctx context.Context, j job, input []byte) error {
	t := &j.target
	ep := t.EcsParameters
	if ep == nil {
		return permanent("EcsParameters missing")
	}
	startedBy := "events-rule/" + j.rule.Name
	if len(startedBy) > 36 {
		startedBy = startedBy[:36]
	}
	in := &ecsapi.RunTaskRequest{Cluster: t.Arn, TaskDefinition: ep.TaskDefinitionArn, Count: ptr(int32(1)),
		StartedBy: ptr(startedBy), Group: ep.Group, EnableECSManagedTags: ep.EnableECSManagedTags,
		EnableExecuteCommand: ep.EnableExecuteCommand, PlatformVersion: ep.PlatformVersion, ReferenceId: ep.ReferenceId}
	if ep.TaskCount != nil {
		in.Count = ep.TaskCount
	}
	// One event starts its tasks once, however often it is delivered (a
	// retry after a timeout, a redelivery after a restart): the client
	// token is the event's and the target's.
	var ev Event
	_ = json.Unmarshal(j.event, &ev)
	sum := sha256.Sum256([]byte(ev.ID + "|" + j.bus + "|" + j.rule.Name + "|" + deref(t.Id)))
	in.ClientToken = ptr(hex.EncodeToString(sum[:16]))
	if ep.LaunchType != nil {
		in.LaunchType = ptr(ecsapi.LaunchType(*ep.LaunchType))
	}
	if ep.PropagateTags != nil {
		in.PropagateTags = ptr(ecsapi.PropagateTags(*ep.PropagateTags))
	}
	if nc := ep.NetworkConfiguration; nc != nil && nc.AwsvpcConfiguration != nil {
		a := nc.AwsvpcConfiguration
		in.NetworkConfiguration = &ecsapi.NetworkConfiguration{AwsvpcConfiguration: &ecsapi.AwsVpcConfiguration{
			Subnets: a.Subnets, SecurityGroups: a.SecurityGroups}}
		if a.AssignPublicIp != nil {
			in.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp = ptr(ecsapi.AssignPublicIp(*a.AssignPublicIp))
		}
	}
	for _, pc := range ep.PlacementConstraints {
		c := ecsapi.PlacementConstraint{Expression: pc.Expression}
		if pc.Type != nil {
			c.Type = ptr(ecsapi.PlacementConstraintType(*pc.Type))
		}
		in.PlacementConstraints = append(in.PlacementConstraints, c)
	}
	for _, ps := range ep.PlacementStrategy {
		c := ecsapi.PlacementStrategy{Field: ps.Field}
		if ps.Type != nil {
			c.Type = ptr(ecsapi.PlacementStrategyType(*ps.Type))
		}
		in.PlacementStrategy = append(in.PlacementStrategy, c)
	}
	for _, cp := range ep.CapacityProviderStrategy {
		in.CapacityProviderStrategy = append(in.CapacityProviderStrategy, ecsapi.CapacityProviderStrategyItem{
			CapacityProvider: cp.CapacityProvider, Base: cp.Base, Weight: cp.Weight})
	}
	for _, tg := range ep.Tags {
		in.Tags = append(in.Tags, ecsapi.Tag{Key: tg.Key, Value: tg.Value})
	}
	// With Input, InputPath or InputTransformer the target's input is the
	// task's overrides (containerOverrides, taskRoleArn ...), as on AWS.
	if t.Input != nil || t.InputPath != nil || t.InputTransformer != nil {
		var ov ecsapi.TaskOverride
		if err := json.Unmarshal(input, &ov); err != nil {
			return permanent("the input is not a valid ECS task override: %v", err)
		}
		in.Overrides = &ov
	}
	if err := in.Validate(); err != nil {
		return permanent("%v", err)
	}
	out, err := s.deps.Tasks.RunTask(ctx, in)
	if err != nil {
		if errs.Is(err, errs.Invalid) || errs.Is(err, errs.NotFound) || errs.Is(err, errs.Unsupported) {
			return permanent("RunTask: %v", err)
		}
		return err
	}
	if len(out.Failures) > 0 && len(out.Tasks) == 0 {
		f := out.Failures[0]
		return transient(fmt.Errorf("RunTask placed no task: %s", deref(f.Reason)))
	}
	return nil
}

// callDestination sends the input to an API destination with its
// connection's authorization, at most its invocation rate.
func (d *dispatcher) callDestination(ctx context.Context, t *eventsapi.Target, input []byte) error {
	s := d.s
	name, ok := nameFromARN(*t.Arn, "api-destination")
	if !ok {
		return permanent("%s is not an API destination ARN", *t.Arn)
	}
	dest, _, err := s.getDest(ctx, name)
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			return permanent("%v", err)
		}
		return err
	}
	connName, _ := nameFromARN(dest.Connection, "connection")
	conn, _, err := s.getConn(ctx, connName)
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			return permanent("%v", err)
		}
		return err
	}
	rate := dest.RateLimit
	if rate <= 0 {
		rate = defaultRateLimit
	}
	if err := d.limits.wait(ctx, s.destARN(dest), int(rate)); err != nil {
		return transient(err)
	}
	endpoint := dest.Endpoint
	if hp := t.HttpParameters; hp != nil {
		for _, v := range hp.PathParameterValues {
			endpoint = strings.Replace(endpoint, "*", url.PathEscape(v), 1)
		}
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return permanent("invalid endpoint %s", endpoint)
	}
	q := u.Query()
	hdr := http.Header{}
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("User-Agent", "Amazon/EventBridge/ApiDestinations")
	if p := conn.Auth.InvocationHttpParameters; p != nil {
		for _, h := range p.HeaderParameters {
			hdr.Set(deref(h.Key), deref(h.Value))
		}
		for _, qp := range p.QueryStringParameters {
			q.Set(deref(qp.Key), deref(qp.Value))
		}
	}
	if hp := t.HttpParameters; hp != nil {
		for k, v := range hp.HeaderParameters {
			hdr.Set(k, v)
		}
		for k, v := range hp.QueryStringParameters {
			q.Set(k, v)
		}
	}
	switch {
	case conn.Auth.ApiKeyAuthParameters != nil:
		hdr.Set(deref(conn.Auth.ApiKeyAuthParameters.ApiKeyName), deref(conn.Auth.ApiKeyAuthParameters.ApiKeyValue))
	case conn.Auth.BasicAuthParameters != nil:
		b := conn.Auth.BasicAuthParameters
		hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(deref(b.Username)+":"+deref(b.Password))))
	case conn.Auth.OAuthParameters != nil:
		tok, err := d.oauthToken(ctx, conn)
		if err != nil {
			return err
		}
		hdr.Set("Authorization", "Bearer "+tok)
	}
	u.RawQuery = q.Encode()
	var body io.Reader
	if dest.Method != http.MethodGet && dest.Method != http.MethodHead {
		body = bytes.NewReader(input)
	}
	req, err := http.NewRequestWithContext(ctx, dest.Method, u.String(), body)
	if err != nil {
		return permanent("%v", err)
	}
	req.Header = hdr
	resp, err := httpClient.Do(req)
	if err != nil {
		return transient(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return statusError(resp.StatusCode)
}

// httpClient calls API destinations: 5 s per request as AWS's limit.
var httpClient = &http.Client{Timeout: 5 * time.Second}

// statusError classifies an HTTP answer as AWS does for API destinations:
// 2xx delivered; 401, 407, 409, 429 and 5xx retried; other codes dropped.
func statusError(code int) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == 401 || code == 407 || code == 409 || code == 429 || code >= 500:
		return transient(fmt.Errorf("endpoint answered HTTP %d", code))
	}
	return permanent("endpoint answered HTTP %d", code)
}

// oauthToken gets a client-credentials token from the connection's
// authorization endpoint.
func (d *dispatcher) oauthToken(ctx context.Context, conn connRecord) (string, error) {
	o := conn.Auth.OAuthParameters
	form := url.Values{"grant_type": {"client_credentials"}}
	if p := o.OAuthHttpParameters; p != nil {
		for _, b := range p.BodyParameters {
			form.Set(deref(b.Key), deref(b.Value))
		}
	}
	method := string(deref(o.HttpMethod))
	u, err := url.Parse(*o.AuthorizationEndpoint)
	if err != nil {
		return "", permanent("invalid authorization endpoint")
	}
	var body io.Reader
	if method == http.MethodGet {
		q := u.Query()
		for k, v := range form {
			q[k] = v
		}
		u.RawQuery = q.Encode()
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return "", permanent("%v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if p := o.OAuthHttpParameters; p != nil {
		for _, h := range p.HeaderParameters {
			req.Header.Set(deref(h.Key), deref(h.Value))
		}
	}
	if c := o.ClientParameters; c != nil {
		req.SetBasicAuth(deref(c.ClientID), deref(c.ClientSecret))
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", transient(err)
	}
	defer resp.Body.Close()
	if err := statusError(resp.StatusCode); err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", transient(errors.New("authorization endpoint answered no access_token"))
	}
	return tok.AccessToken, nil
}

// rateLimits spaces calls per API destination.
type rateLimits struct {
	mu   sync.Mutex
	next map[string]time.Time
}

func newRateLimits() *rateLimits { return &rateLimits{next: map[string]time.Time{}} }

func (r *rateLimits) wait(ctx context.Context, key string, perSecond int) error {
	gap := time.Second / time.Duration(perSecond)
	r.mu.Lock()
	now := time.Now()
	at := r.next[key]
	if at.Before(now) {
		at = now
	}
	r.next[key] = at.Add(gap)
	r.mu.Unlock()
	if w := time.Until(at); w > 0 {
		t := time.NewTimer(w)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// logFailure reports a dropped invocation: a warning per target at most
// once a minute (the FailedInvocations metric counts every one).
func (s *Service) logFailure(j job, err error) {
	key := queueKey(j)
	now := time.Now()
	s.failMu.Lock()
	if s.failLogged == nil {
		s.failLogged = map[string]time.Time{}
	}
	last := s.failLogged[key]
	logIt := now.Sub(last) >= time.Minute
	if logIt {
		s.failLogged[key] = now
	}
	s.failMu.Unlock()
	if !logIt {
		return
	}
	msg := "events: target invocation failed; event dropped for this target"
	if errors.Is(err, errNotDeliverable) {
		msg = "events: target not deliverable in Berth; counted in AWS/Events FailedInvocations"
	}
	s.log.Warn(msg, "bus", j.bus, "rule", j.rule.Name, "target", deref(j.target.Id), "arn", deref(j.target.Arn), "attempts", j.attempts+1, "err", err)
}
