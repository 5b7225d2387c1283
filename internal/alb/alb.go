// Package alb is Berth's load balancer data plane: Application Load Balancer listeners (HTTP,
// HTTPS, h2c, WebSocket) and Network Load Balancer TCP listeners that really listen, route by
// rules, forward to target groups with health checks, and drain deregistered targets.
//
// The package knows nothing of the store or the ELBv2 API. internal/elbv2 hands it the whole
// desired configuration (Config) through Plane.Apply and reads back target health through
// Plane.TargetHealth; the plane makes its listeners, routes and health checkers match.
package alb

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"
)

// Config is the whole desired configuration of the data plane.
type Config struct {
	LoadBalancers []LoadBalancer
	TargetGroups  []TargetGroup
}

// LoadBalancer is one ALB or NLB with its listeners.
type LoadBalancer struct {
	ARN, Name   string
	Type        string        // "application" or "network"
	IdleTimeout time.Duration // idle_timeout.timeout_seconds; 0 means ALB's default, 60 s
	Listeners   []Listener
}

// Listener is one port of a load balancer.
type Listener struct {
	ARN               string
	Addr              string // "host:port" to listen on, chosen by elbv2
	Protocol          string // "HTTP", "HTTPS" (ALB), "TCP" (NLB)
	CertFile, KeyFile string // HTTPS: PEM files
	DefaultActions    []Action
	Rules             []Rule // any order; the plane applies them by Priority, lowest first
}

// Rule is a listener rule: when all Conditions match, Actions run.
type Rule struct {
	ARN        string
	Priority   int
	Conditions []Condition // all must match
	Actions    []Action
}

// Condition is one rule condition.
type Condition struct {
	Field        string     // path-pattern, host-header, http-header, http-request-method, query-string, source-ip
	Values       []string   // patterns (* and ? wildcards) or methods or CIDRs; any may match
	HeaderName   string     // http-header
	QueryStrings []KeyValue // query-string: Key "" matches any key
}

// KeyValue is one query-string condition pair.
type KeyValue struct{ Key, Value string }

// Action is what a listener or rule does with a request. Actions run by Order; the last one is
// the terminal action (forward, fixed-response or redirect).
type Action struct {
	Type          string // "forward", "fixed-response", "redirect"
	Order         int
	Forward       []WeightedTargetGroup
	Stickiness    time.Duration // forward-level group stickiness; 0 = off
	FixedResponse *FixedResponse
	Redirect      *Redirect
}

// WeightedTargetGroup is one target group of a forward action with its weight (0..999).
type WeightedTargetGroup struct {
	ARN    string
	Weight int
}

// FixedResponse is the fixed-response action.
type FixedResponse struct {
	StatusCode        int
	ContentType, Body string
}

// Redirect is the redirect action. Empty fields keep the request's value; fields may use ALB's
// #{protocol} #{host} #{port} #{path} #{query} placeholders.
type Redirect struct {
	Protocol, Host, Port, Path, Query string
	StatusCode                        int // 301 or 302
}

// TargetGroup is a set of targets with its health check and attributes.
type TargetGroup struct {
	ARN, Name           string
	Protocol            string // HTTP, HTTPS, TCP
	ProtocolVersion     string // HTTP1, HTTP2, GRPC
	HealthCheck         HealthCheck
	DeregistrationDelay time.Duration
	SlowStart           time.Duration
	Stickiness          time.Duration // lb_cookie duration; 0 = off
	Algorithm           string        // "round_robin" or "least_outstanding_requests"
	Targets             []Target
}

// HealthCheck is a target group's active health check.
type HealthCheck struct {
	Enabled                              bool
	Protocol, Path                       string
	Port                                 string // "traffic-port" or a number
	Interval, Timeout                    time.Duration
	HealthyThreshold, UnhealthyThreshold int
	Matcher                              string // "200", "200-299", "200,202"
}

// Target is one registered target.
type Target struct {
	ID   string // instance id or IP, as registered
	Port int
	Addr string // "host:port" the plane dials
	// StartHealthy starts a newly registered target healthy instead of initial: for targets
	// restored after a restart that were healthy before it, so that they take traffic at once
	// and do not flap. Its health checks run as usual and take it out if they fail.
	StartHealthy bool
}

// Options configures a Plane.
type Options struct {
	Log      *slog.Logger
	Observer Observer // may be nil
}

// Observer receives one call per request, for AWS/ApplicationELB metrics. elbError is true when
// the load balancer itself answered (its own 4xx/5xx errors, fixed-response and redirect actions;
// targetGroupARN is "" unless a forward failed), false when a target answered (status is the
// target's, targetTime the time from sending the request to the target's response head). A client
// that went away before an answer is reported with status 460, as ALB logs it.
type Observer interface {
	Request(lbARN, targetGroupARN string, status int, targetTime time.Duration, elbError bool)
}

// ListenError is returned by Apply and CanListen when a listener's address cannot be listened on.
type ListenError struct {
	ListenerARN, Addr string
	Err               error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("listener %s cannot listen on %s: %v", e.ListenerARN, e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// TargetHealth is the health of one target as DescribeTargetHealth reports it.
type TargetHealth struct {
	ID          string
	Port        int
	State       string // initial, healthy, unhealthy, unused, draining, unavailable (ELBv2's TargetHealthStateEnum)
	Reason      string // ELBv2's reason codes: Elb.RegistrationInProgress, Elb.InitialHealthChecking, Target.ResponseCodeMismatch, Target.Timeout, Target.FailedHealthChecks, Target.NotInUse, Target.DeregistrationInProgress, Target.HealthCheckDisabled, ...
	Description string // ELBv2's wording
}

// Plane is the running data plane.
type Plane struct {
	log         *slog.Logger
	observer    Observer
	checkClient *http.Client
	proxy       *httputil.ReverseProxy
	changes     chan struct{}

	mu     sync.Mutex // serialises Apply, Close and the maps in st
	closed bool
	st     planeState
}

// New returns an empty plane; Apply gives it listeners.
func New(opts Options) *Plane {
	p := &Plane{changes: make(chan struct{}, 1)}
	p.init(opts)
	return p
}
