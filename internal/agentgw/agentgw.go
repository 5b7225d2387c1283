// Package agentgw is the HTTP shell of the agent protocol (package
// agentapi) on the control plane: it authenticates agents with their own
// SigV4 credentials and hands joins, assignment streams and reports to the
// ECS service, which owns the records.
package agentgw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/sigv4"
)

// maxBody caps join and report bodies.
const maxBody = 4 << 20

// Gateway serves agentapi.PathPrefix and AdminPrefix.
type Gateway struct {
	ecs  *ecs.Service
	keys *iam.Keyring // user credentials, for the admin calls
	log  *slog.Logger
	now  func() time.Time
	obs  Observer

	logSink  LogSink // agentapi.PathLogs (logs.go)
	logDests logDests
	// stats receives the agents' usage reports (SetStatsSink); nil: the
	// stats route answers NotFound.
	stats StatsSink
	// caPin is the control plane CA's pin, appended to the join tokens
	// it hands out (SetCAPin).
	caPin string
	// scDir serves agentapi.PathServiceConnect (SetServiceConnect); nil:
	// that route answers NotFound.
	scDir SCDirectory
}

// SetCAPin makes the join tokens the gateway hands out carry pin (the
// control plane CA's, tlsca.Pin). Call it before serving.
func (g *Gateway) SetCAPin(pin string) { g.caPin = pin }

// Observer is told about agent traffic (metrics). Its methods are called
// from request goroutines: they must be safe for concurrent use and must
// not block.
type Observer interface {
	// StreamOpened and StreamClosed bracket an authenticated assignment
	// stream (one connected agent).
	StreamOpened()
	StreamClosed()
	// ReportReceived reports one agent report, and whether it was applied.
	ReportReceived(err error)
}

type nopObserver struct{}

func (nopObserver) StreamOpened()        {}
func (nopObserver) StreamClosed()        {}
func (nopObserver) ReportReceived(error) {}

// StatsSink receives an agent's usage report; cred says which instance
// (and cluster) it speaks for.
type StatsSink func(ctx context.Context, cred ecs.AgentCredential, rep agentapi.StatsReport) error

// SetStatsSink routes agentapi.PathStats to fn. Call it before the gateway
// serves.
func (g *Gateway) SetStatsSink(fn StatsSink) { g.stats = fn }

// New returns the gateway.
func New(svc *ecs.Service, keys *iam.Keyring, log *slog.Logger) *Gateway {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Gateway{ecs: svc, keys: keys, log: log, now: time.Now, obs: nopObserver{}}
}

// SetObserver makes o the gateway's observer; call it before serving.
func (g *Gateway) SetObserver(o Observer) {
	if o == nil {
		o = nopObserver{}
	}
	g.obs = o
}

// Admin calls: Berth's own operations that have no AWS API, signed by a
// user credential with SigV4 service AdminSigningService.
const (
	AdminPrefix    = "/berth/admin/v1/"
	PathJoinTokens = AdminPrefix + "join-tokens"
	// PathSpotInterruptions injects a Fargate Spot interruption
	// (`berth spot-interrupt`, docs/fargate.md).
	PathSpotInterruptions = AdminPrefix + "spot-interruptions"
	AdminSigningService   = "berth"
)

// JoinTokenRequest asks for a join token.
type JoinTokenRequest struct {
	TTLSeconds int    `json:"ttlSeconds,omitempty"`
	Cluster    string `json:"cluster,omitempty"`   // bind the token to this cluster
	SingleUse  bool   `json:"singleUse,omitempty"` // good for one join
}

// JoinTokenResponse carries a new join token, as an agent takes it: the
// secret and the CA pin (agentapi.FormatJoinToken).
type JoinTokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	CAPin     string    `json:"caPin,omitempty"`
	Cluster   string    `json:"cluster,omitempty"`
	SingleUse bool      `json:"singleUse,omitempty"`
}

// SpotInterruptionRequest interrupts a FARGATE_SPOT task.
type SpotInterruptionRequest struct {
	Cluster string `json:"cluster,omitempty"`
	Task    string `json:"task"` // ARN or id
	// WarningSeconds is the time between SIGTERM and SIGKILL (default
	// 120, AWS's two minutes).
	WarningSeconds int `json:"warningSeconds,omitempty"`
}

// SpotInterruptionResponse names the interrupted task.
type SpotInterruptionResponse struct {
	TaskArn string `json:"taskArn"`
}

// ErrorBody is the JSON body of an agent protocol error.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (g *Gateway) fail(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, "InternalError"
	switch errs.KindOf(err) {
	case errs.Invalid:
		status, code = http.StatusBadRequest, "InvalidRequest"
	case errs.Unauthenticated:
		status, code = http.StatusUnauthorized, "Unauthenticated"
		if r := errs.ReasonOf(err); r != "" && r != "agent.bad_token" {
			code = r
		}
	case errs.Forbidden:
		status, code = http.StatusForbidden, "Forbidden"
	case errs.NotFound:
		status, code = http.StatusNotFound, "NotFound"
	case errs.Unavailable:
		status, code = http.StatusServiceUnavailable, "Unavailable"
	}
	if status >= 500 {
		g.log.Error("agent request failed", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(ErrorBody{Code: code, Message: errs.MessageOf(err)})
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		g.fail(w, errs.E(errs.Invalid, "request body too large or unreadable"))
		return
	}
	switch {
	case r.URL.Path == agentapi.PathJoin && r.Method == http.MethodPost:
		if r.TLS == nil && !fromLoopback(r) {
			// The agent refuses this too; the server does so that a
			// token sent in clear at least registers nothing.
			g.fail(w, errs.E(errs.Forbidden, "agents join over HTTPS: plain HTTP is accepted from this host only (docs/security.md)"))
			return
		}
		var req agentapi.JoinRequest
		if err := json.Unmarshal(body, &req); err != nil {
			g.fail(w, errs.E(errs.Invalid, "malformed join request: %v", err))
			return
		}
		resp, err := g.ecs.JoinInstance(r.Context(), req)
		if err != nil {
			g.fail(w, err)
			return
		}
		writeJSON(w, resp)
	case r.URL.Path == agentapi.PathAssignments && r.Method == http.MethodGet:
		cred, err := g.authenticate(r, body)
		if err != nil {
			g.fail(w, err)
			return
		}
		since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		g.stream(w, r, cred, since)
	case r.URL.Path == agentapi.PathReport && r.Method == http.MethodPost:
		cred, err := g.authenticate(r, body)
		if err != nil {
			g.fail(w, err)
			return
		}
		var rep agentapi.Report
		if err := json.Unmarshal(body, &rep); err != nil {
			g.fail(w, errs.E(errs.Invalid, "malformed report: %v", err))
			return
		}
		err = g.ecs.ApplyReport(r.Context(), cred, rep)
		g.obs.ReportReceived(err)
		if err != nil {
			g.fail(w, err)
			return
		}
		writeJSON(w, struct{}{})
	case r.URL.Path == agentapi.PathLogs && r.Method == http.MethodPost:
		cred, err := g.authenticate(r, body)
		if err != nil {
			g.fail(w, err)
			return
		}
		g.putLogs(w, r, cred, body)
	case r.URL.Path == agentapi.PathStats && r.Method == http.MethodPost && g.stats != nil:
		cred, err := g.authenticate(r, body)
		if err != nil {
			g.fail(w, err)
			return
		}
		var rep agentapi.StatsReport
		if err := json.Unmarshal(body, &rep); err != nil {
			g.fail(w, errs.E(errs.Invalid, "malformed stats report: %v", err))
			return
		}
		if err := g.stats(r.Context(), cred, rep); err != nil {
			g.fail(w, err)
			return
		}
		writeJSON(w, struct{}{})
	case r.URL.Path == agentapi.PathServiceConnect && r.Method == http.MethodGet && g.scDir != nil:
		cred, err := g.authenticate(r, body)
		if err != nil {
			g.fail(w, err)
			return
		}
		g.serviceConnect(w, r, cred)
	case r.URL.Path == PathJoinTokens && r.Method == http.MethodPost:
		if err := g.authenticateUser(r, body); err != nil {
			g.fail(w, err)
			return
		}
		var req JoinTokenRequest
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				g.fail(w, errs.E(errs.Invalid, "malformed request: %v", err))
				return
			}
		}
		tok, exp, err := g.ecs.CreateJoinToken(r.Context(), ecs.JoinTokenOptions{TTL: time.Duration(req.TTLSeconds) * time.Second,
			Cluster: req.Cluster, SingleUse: req.SingleUse})
		if err != nil {
			g.fail(w, err)
			return
		}
		writeJSON(w, JoinTokenResponse{Token: agentapi.FormatJoinToken(tok, g.caPin), ExpiresAt: exp, CAPin: g.caPin,
			Cluster: req.Cluster, SingleUse: req.SingleUse})
	case r.URL.Path == PathSpotInterruptions && r.Method == http.MethodPost:
		if err := g.authenticateUser(r, body); err != nil {
			g.fail(w, err)
			return
		}
		var req SpotInterruptionRequest
		if err := json.Unmarshal(body, &req); err != nil {
			g.fail(w, errs.E(errs.Invalid, "malformed request: %v", err))
			return
		}
		arn, err := g.ecs.InterruptSpotTask(r.Context(), req.Cluster, req.Task, time.Duration(req.WarningSeconds)*time.Second)
		if err != nil {
			g.fail(w, err)
			return
		}
		writeJSON(w, SpotInterruptionResponse{TaskArn: arn})
	default:
		g.fail(w, errs.E(errs.NotFound, "no agent operation at %s %s", r.Method, r.URL.Path))
	}
}

// authenticateUser verifies a user's SigV4 signature for an admin call.
func (g *Gateway) authenticateUser(r *http.Request, body []byte) error {
	sc, ok := sigv4.ParseScope(r)
	if !ok {
		return errs.R(errs.Unauthenticated, sigv4.ReasonMissingToken, "Missing Authentication Token")
	}
	if sc.Service != AdminSigningService {
		return errs.R(errs.Forbidden, "admin.wrong_service", "admin requests must be signed for service %s", AdminSigningService)
	}
	_, err := sigv4.Verify(r, body, g.now(), g.keys.Secret)
	return err
}

// authenticate verifies an agent's SigV4 signature.
func (g *Gateway) authenticate(r *http.Request, body []byte) (ecs.AgentCredential, error) {
	sc, ok := sigv4.ParseScope(r)
	if !ok {
		return ecs.AgentCredential{}, errs.R(errs.Unauthenticated, sigv4.ReasonMissingToken, "Missing Authentication Token")
	}
	if sc.Service != agentapi.SigningService {
		return ecs.AgentCredential{}, errs.R(errs.Forbidden, "agent.wrong_service", "agent requests must be signed for service %s", agentapi.SigningService)
	}
	cred, found, err := g.ecs.AgentCredential(r.Context(), sc.AccessKey)
	if err != nil {
		return ecs.AgentCredential{}, err
	}
	_, err = sigv4.Verify(r, body, g.now(), func(ak string) (string, bool) {
		if ak != sc.AccessKey || !found {
			return "", false
		}
		return cred.Secret, true
	})
	if err != nil {
		return ecs.AgentCredential{}, err
	}
	return cred, nil
}

func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, cred ecs.AgentCredential, since int64) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	events, err := g.ecs.OpenAssignments(ctx, cred, since)
	if err != nil {
		g.fail(w, err)
		return
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	g.obs.StreamOpened()
	defer g.obs.StreamClosed()
	g.log.Info("agent connected", "instance", cred.InstanceID, "since", since)
	defer g.log.Info("agent disconnected", "instance", cred.InstanceID)
	for ev := range events {
		if err := enc.Encode(ev); err != nil {
			if !errors.Is(err, context.Canceled) {
				g.log.Debug("agent stream write failed", "instance", cred.InstanceID, "err", err)
			}
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// fromLoopback says whether a request came from this host.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CreateJoinToken asks a control plane for a join token, signing with a
// user credential.
func CreateJoinToken(ctx context.Context, endpoint, region, accessKey, secret string, ttl time.Duration) (JoinTokenResponse, error) {
	return AdminClient{Endpoint: endpoint, Region: region, AccessKeyID: accessKey, SecretAccessKey: secret}.
		CreateJoinToken(ctx, JoinTokenRequest{TTLSeconds: int(ttl / time.Second)})
}

// AdminClient makes admin calls (the `berth join-token` command).
type AdminClient struct {
	Endpoint, Region             string
	AccessKeyID, SecretAccessKey string
	HTTP                         *http.Client // nil: http.DefaultClient
}

// CreateJoinToken asks for a join token.
func (c AdminClient) CreateJoinToken(ctx context.Context, in JoinTokenRequest) (JoinTokenResponse, error) {
	endpoint := c.Endpoint
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+PathJoinTokens, bytes.NewReader(b))
	if err != nil {
		return JoinTokenResponse{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	sigv4.Sign(req, b, c.AccessKeyID, c.SecretAccessKey, c.Region, AdminSigningService, time.Now())
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return JoinTokenResponse{}, errs.Wrap(errs.Unavailable, err, "reach %s", endpoint)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		return JoinTokenResponse{}, errs.E(errs.Unauthenticated, "join token refused (%d %s): %s", resp.StatusCode, eb.Code, eb.Message)
	}
	var out JoinTokenResponse
	err = json.NewDecoder(resp.Body).Decode(&out)
	return out, err
}

// InterruptSpotTask injects a Fargate Spot interruption.
func (c AdminClient) InterruptSpotTask(ctx context.Context, in SpotInterruptionRequest) (SpotInterruptionResponse, error) {
	var out SpotInterruptionResponse
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.Endpoint, "/")+PathSpotInterruptions, bytes.NewReader(b))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	sigv4.Sign(req, b, c.AccessKeyID, c.SecretAccessKey, c.Region, AdminSigningService, time.Now())
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return out, errs.Wrap(errs.Unavailable, err, "reach %s", c.Endpoint)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		return out, errs.E(errs.Invalid, "spot interruption refused (%d %s): %s", resp.StatusCode, eb.Code, eb.Message)
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	return out, err
}
