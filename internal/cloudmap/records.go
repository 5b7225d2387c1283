package cloudmap

import (
	"crypto/rand"
	"strings"
	"time"
)

// Store layout (etcd, small records, JSON):
//
//	/berth/cloudmap/ns/<ns-id>                  namespace
//	/berth/cloudmap/nsname/<name>               -> ns-id (names are unique per account)
//	/berth/cloudmap/svc/<srv-id>                service
//	/berth/cloudmap/svcname/<ns-id>/<name>      -> srv-id (names are unique per namespace)
//	/berth/cloudmap/inst/<srv-id>/<instance-id> instance
//	/berth/cloudmap/rev/<srv-id>                touched on every instance change: its
//	                                            ModRevision is the InstancesRevision
//	/berth/cloudmap/op/<op-id>                  operation
//	/berth/cloudmap/req/<creator-request-id>    -> operation or resource made by that request
//
// Everything a data plane needs (DNS today, Service Connect proxies next)
// lives under one prefix, so one watch follows it (catalog.go).
const (
	prefix        = "/berth/cloudmap/"
	keyNamespaces = prefix + "ns/"
	keyNSNames    = prefix + "nsname/"
	keyServices   = prefix + "svc/"
	keySvcNames   = prefix + "svcname/"
	keyInstances  = prefix + "inst/"
	keyRevisions  = prefix + "rev/"
	keyOperations = prefix + "op/"
	keyRequests   = prefix + "req/"
)

// Namespace types, as the wire says them.
const (
	TypeHTTP       = "HTTP"
	TypeDNSPrivate = "DNS_PRIVATE"
	TypeDNSPublic  = "DNS_PUBLIC"
)

// Health statuses of an instance.
const (
	Healthy   = "HEALTHY"
	Unhealthy = "UNHEALTHY"
	Unknown   = "UNKNOWN"
)

// Instance attributes with a meaning to Cloud Map.
const (
	AttrIPv4           = "AWS_INSTANCE_IPV4"
	AttrIPv6           = "AWS_INSTANCE_IPV6"
	AttrPort           = "AWS_INSTANCE_PORT"
	AttrCNAME          = "AWS_INSTANCE_CNAME"
	AttrAlias          = "AWS_ALIAS_DNS_NAME"
	AttrInitHealth     = "AWS_INIT_HEALTH_STATUS"
	AttrEC2InstanceID  = "AWS_EC2_INSTANCE_ID"
	defaultSOATTL      = 15
	maxInstancesPerSvc = 1000
)

// Namespace is a stored namespace.
type Namespace struct {
	ID               string            `json:"id"`
	ARN              string            `json:"arn"`
	Name             string            `json:"name"`
	Type             string            `json:"type"`
	Description      string            `json:"description,omitempty"`
	CreatorRequestID string            `json:"creatorRequestId,omitempty"`
	VPC              string            `json:"vpc,omitempty"`
	HostedZoneID     string            `json:"hostedZoneId,omitempty"`
	SOATTL           int64             `json:"soaTtl,omitempty"`
	Created          time.Time         `json:"created"`
	Tags             map[string]string `json:"tags,omitempty"`
}

// IsDNS says whether the namespace answers DNS queries.
func (n *Namespace) IsDNS() bool { return n.Type == TypeDNSPrivate || n.Type == TypeDNSPublic }

// DNSRecord is one record type a service publishes per instance.
type DNSRecord struct {
	Type string `json:"type"` // A, AAAA, SRV, CNAME
	TTL  int64  `json:"ttl"`
}

// Service is a stored Cloud Map service.
type Service struct {
	ID               string            `json:"id"`
	ARN              string            `json:"arn"`
	Name             string            `json:"name"`
	NamespaceID      string            `json:"namespaceId"`
	Type             string            `json:"type"` // HTTP, DNS_HTTP, DNS
	Description      string            `json:"description,omitempty"`
	CreatorRequestID string            `json:"creatorRequestId,omitempty"`
	Records          []DNSRecord       `json:"records,omitempty"`
	RoutingPolicy    string            `json:"routingPolicy,omitempty"` // MULTIVALUE, WEIGHTED
	CustomHealth     bool              `json:"customHealth,omitempty"`
	FailureThreshold int32             `json:"failureThreshold,omitempty"`
	Attributes       map[string]string `json:"attributes,omitempty"`
	Created          time.Time         `json:"created"`
	Tags             map[string]string `json:"tags,omitempty"`
}

// HasRecord says whether the service publishes records of type t.
func (s *Service) HasRecord(t string) bool {
	for _, r := range s.Records {
		if r.Type == t {
			return true
		}
	}
	return false
}

// Instance is a stored instance of a service.
type Instance struct {
	ID               string            `json:"id"`
	ServiceID        string            `json:"serviceId"`
	CreatorRequestID string            `json:"creatorRequestId,omitempty"`
	Attributes       map[string]string `json:"attributes"`
	Health           string            `json:"health"`
	Created          time.Time         `json:"created"`
	// Owner names what registered the instance when it was not an API
	// caller: "ecs:<task arn>" for ECS service registries.
	Owner string `json:"owner,omitempty"`
}

// Operation is a stored operation (a namespace or instance change). Berth
// applies the change in the same transaction that records the operation,
// so an operation is SUCCESS from the start, or FAIL with the reason.
type Operation struct {
	ID           string            `json:"id"`
	Type         string            `json:"type"`
	Status       string            `json:"status"`
	ErrorCode    string            `json:"errorCode,omitempty"`
	ErrorMessage string            `json:"errorMessage,omitempty"`
	Targets      map[string]string `json:"targets"` // NAMESPACE, SERVICE, INSTANCE -> id
	Created      time.Time         `json:"created"`
	Updated      time.Time         `json:"updated"`
}

// request records what a CreatorRequestId made, for retries.
type request struct {
	Kind        string `json:"kind"` // namespace, service, instance
	Name        string `json:"name"` // the resource's name or id
	ResourceID  string `json:"resourceId,omitempty"`
	OperationID string `json:"operationId,omitempty"`
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

// newNamespaceID, newServiceID and newOperationID make ids shaped as AWS's:
// ns-xxxxxxxxxxxxxxxx, srv-xxxxxxxxxxxxxxxx and a 32-character id with an
// 8-character suffix.
func newNamespaceID() string { return "ns-" + randomID(16) }
func newServiceID() string   { return "srv-" + randomID(16) }
func newOperationID() string { return randomID(32) + "-" + randomID(8) }

// dnsName lower-cases a namespace name and drops a trailing dot: DNS
// names compare case-insensitively and Cloud Map stores them without it.
func dnsName(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".") }
