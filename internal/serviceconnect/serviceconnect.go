// Package serviceconnect holds what Service Connect's control plane (the
// ECS API, the server's directory stream, metrics) and its data plane (the
// agent, the per-task proxy in internal/scproxy) exchange. It has types and
// small pure helpers only; docs/service-connect.md describes the design.
//
// The flow:
//   - The control plane resolves a service's serviceConnectConfiguration
//     into a TaskConfig for each task it places, carried in the task's
//     agentapi.Assignment.
//   - The agent starts the task's proxy container beside the task's
//     containers, gives the application containers /etc/hosts entries that
//     map every client alias of TaskConfig.Outbound to its VIP, and relays
//     configuration and endpoint updates to the proxy.
//   - Endpoints change as tasks start and stop: the agent follows the
//     server's directory stream (agentapi PathServiceConnect) for each
//     namespace its tasks use, one Directory per line.
//   - The agent reports each proxy's traffic since its last report in the
//     task's agentapi.TaskUsage; the control plane turns it into the
//     AWS/ECS Service Connect metrics.
package serviceconnect

import (
	"fmt"
	"net/netip"
	"time"
)

// Protocols a listener speaks, from the port mapping's appProtocol.
const (
	ProtocolTCP   = "tcp"   // no appProtocol
	ProtocolHTTP  = "http"  // appProtocol http
	ProtocolHTTP2 = "http2" // appProtocol http2
	ProtocolGRPC  = "grpc"  // appProtocol grpc
)

// Defaults ECS documents for a service's timeout configuration.
const (
	DefaultPerRequestTimeout = 15 * time.Second
	DefaultIdleTimeoutHTTP   = 5 * time.Minute
	DefaultIdleTimeoutTCP    = time.Hour
)

// TaskConfig is one task's Service Connect configuration, fixed when the
// task is placed (as on ECS, a task sees the aliases that existed when its
// deployment started; a new deployment picks up later ones).
type TaskConfig struct {
	NamespaceArn  string `json:"namespaceArn"`
	NamespaceName string `json:"namespaceName"`
	// ServiceArn and DeploymentID name the ECS service and deployment that
	// placed the task (metrics carry the service's name).
	ServiceArn   string `json:"serviceArn"`
	DeploymentID string `json:"deploymentId,omitempty"`
	// ProxyContainerName is the name the proxy container has in
	// DescribeTasks: "ecs-service-connect-" and a short random suffix.
	ProxyContainerName string `json:"proxyContainerName"`
	// Inbound lists the ports the task serves to the namespace; empty for
	// a client-only service.
	Inbound []Inbound `json:"inbound,omitempty"`
	// Outbound lists every client alias in the namespace when the task was
	// placed, its own service's included.
	Outbound []Outbound `json:"outbound,omitempty"`
	// LogDriver and LogOptions are the proxy container's log configuration
	// (serviceConnectConfiguration.logConfiguration), empty for none.
	LogDriver  string            `json:"logDriver,omitempty"`
	LogOptions map[string]string `json:"logOptions,omitempty"`
}

// Inbound is a port the task serves through its proxy.
type Inbound struct {
	PortName      string `json:"portName"`
	DiscoveryName string `json:"discoveryName"`
	// ListenPort is the proxy's port in the task's network namespace:
	// ingressPortOverride when set, otherwise the port the control plane
	// chose (docs/service-connect.md). The endpoint other tasks reach.
	ListenPort int `json:"listenPort"`
	// AppPort is the named port mapping's containerPort: where the proxy
	// sends the traffic, on 127.0.0.1 of the task's network namespace.
	AppPort           int           `json:"appPort"`
	Protocol          string        `json:"protocol"`
	IdleTimeout       time.Duration `json:"idleTimeout,omitempty"`
	PerRequestTimeout time.Duration `json:"perRequestTimeout,omitempty"`
}

// Outbound is a client alias the task's applications can call.
type Outbound struct {
	// DiscoveryName is the Cloud Map service whose endpoints serve it.
	DiscoveryName string `json:"discoveryName"`
	// DNSName and Port are the alias as the applications use it
	// (http://DNSName:Port).
	DNSName string `json:"dnsName"`
	Port    int    `json:"port"`
	// VIP is the address in 127.255.0.0/16 the alias resolves to inside
	// the task (/etc/hosts); the proxy listens on VIP:Port, or on
	// VIP:ListenPort when that is set.
	VIP string `json:"vip"`
	// ListenPort, set by the agent, is where the proxy listens when the
	// task's network namespace redirects VIP:Port to VIP:ListenPort (so an
	// application of the task may listen on Port with a wildcard address);
	// 0: no redirect.
	ListenPort        int           `json:"listenPort,omitempty"`
	Protocol          string        `json:"protocol"`
	IdleTimeout       time.Duration `json:"idleTimeout,omitempty"`
	PerRequestTimeout time.Duration `json:"perRequestTimeout,omitempty"`
}

// Directory is the state of one namespace's Service Connect endpoints at a
// store revision: one line of the directory stream. Each line is complete
// (a receiver replaces what it had).
type Directory struct {
	NamespaceArn string             `json:"namespaceArn"`
	Revision     int64              `json:"revision"`
	Services     []DirectoryService `json:"services"`
}

// DirectoryService is one discovery name's endpoints.
type DirectoryService struct {
	DiscoveryName string     `json:"discoveryName"`
	Endpoints     []Endpoint `json:"endpoints"`
}

// Endpoint is one task's inbound listener as other tasks reach it.
type Endpoint struct {
	TaskArn string `json:"taskArn"`
	Address string `json:"address"` // IPv4
	Port    int    `json:"port"`
	// Healthy is false while the task is not RUNNING and healthy, or is
	// draining (desired STOPPED): proxies send it no new requests.
	Healthy bool `json:"healthy"`
}

// Traffic is what one task's proxy counted since its previous report.
type Traffic struct {
	// Inbound is keyed by the task's own discovery name.
	Inbound map[string]Counters `json:"inbound,omitempty"`
	// Outbound is keyed by the target's discovery name.
	Outbound map[string]Counters `json:"outbound,omitempty"`
}

// Counters are the Service Connect metrics of one direction and discovery
// name over one report interval. Counts are deltas; ActiveConnections is
// the value at the end of the interval.
type Counters struct {
	Requests          uint64 `json:"requests,omitempty"`
	NewConnections    uint64 `json:"newConnections,omitempty"`
	ActiveConnections uint64 `json:"activeConnections,omitempty"`
	ProcessedBytes    uint64 `json:"processedBytes,omitempty"`
	HTTP2XX           uint64 `json:"http2xx,omitempty"`
	HTTP3XX           uint64 `json:"http3xx,omitempty"`
	HTTP4XX           uint64 `json:"http4xx,omitempty"`
	HTTP5XX           uint64 `json:"http5xx,omitempty"`
	// ResponseTimeSumMs and ResponseTimeCount give TargetResponseTime's
	// average; ResponseTimeMaxMs its maximum.
	ResponseTimeSumMs float64 `json:"responseTimeSumMs,omitempty"`
	ResponseTimeCount uint64  `json:"responseTimeCount,omitempty"`
	ResponseTimeMaxMs float64 `json:"responseTimeMaxMs,omitempty"`
	// HealthyEndpoints and UnhealthyEndpoints (outbound only) are what the
	// proxy saw at the end of the interval.
	HealthyEndpoints   int `json:"healthyEndpoints,omitempty"`
	UnhealthyEndpoints int `json:"unhealthyEndpoints,omitempty"`
}

// VIPPrefix is the range client aliases resolve into, as on ECS.
var VIPPrefix = netip.MustParsePrefix("127.255.0.0/16")

// VIP returns the n-th alias address of VIPPrefix (n from 1; 127.255.0.0
// and 127.255.255.255 are never used).
func VIP(n int) (string, error) {
	if n < 1 || n > 65534 {
		return "", fmt.Errorf("serviceconnect: alias number %d out of range 1-65534", n)
	}
	return netip.AddrFrom4([4]byte{127, 255, byte(n >> 8), byte(n)}).String(), nil
}

// RedirectBase is the first port AssignRedirectPorts gives an alias.
// Inbound listeners take 15000 upward (the control plane's choice), so
// the aliases start further up.
const RedirectBase = 15200

// AssignRedirectPorts gives every outbound alias of tc a ListenPort of its
// own, from RedirectBase upward, skipping the ports in taken (the task's
// container ports and its inbound listeners) and those given before. The
// same tc and taken always give the same ports. Ports above 65535 are not
// given (ListenPort stays 0: that alias is served on its own port).
func AssignRedirectPorts(tc *TaskConfig, taken map[int]bool) {
	used := map[int]bool{}
	for p := range taken {
		used[p] = true
	}
	for _, in := range tc.Inbound {
		used[in.ListenPort], used[in.AppPort] = true, true
	}
	next := RedirectBase
	for i := range tc.Outbound {
		for used[next] {
			next++
		}
		if next > 65535 {
			tc.Outbound[i].ListenPort = 0
			continue
		}
		tc.Outbound[i].ListenPort = next
		used[next] = true
	}
}
