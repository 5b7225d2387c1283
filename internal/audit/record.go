// Package audit is Berth's audit trail: every mutating API call and every
// failed authentication becomes a Record, written durably to the store
// before the caller gets its answer, kept for a configurable retention, and
// read back through CloudTrail's LookupEvents (package cloudtrail).
//
// Records are keyed by time so that lookups newest-first and expiry are
// range scans: /berth/audit/<20-digit unix nanos>/<event id>.
package audit

import (
	"encoding/json"
	"time"
)

// Record is one audited call.
type Record struct {
	EventID      string          `json:"eventId"`
	Time         time.Time       `json:"time"`
	RequestID    string          `json:"requestId"`
	EventSource  string          `json:"eventSource"` // "ecs.amazonaws.com"
	Operation    string          `json:"operation"`   // "CreateCluster"
	ReadOnly     bool            `json:"readOnly"`
	AccessKey    string          `json:"accessKey,omitempty"`
	PrincipalARN string          `json:"principalArn,omitempty"`
	Account      string          `json:"account,omitempty"`
	UserName     string          `json:"userName,omitempty"`
	IdentityType string          `json:"identityType,omitempty"`
	SourceIP     string          `json:"sourceIp"`
	UserAgent    string          `json:"userAgent,omitempty"`
	Region       string          `json:"region,omitempty"`
	Parameters   json.RawMessage `json:"parameters,omitempty"` // secrets redacted
	ErrorCode    string          `json:"errorCode,omitempty"`
	ErrorMessage string          `json:"errorMessage,omitempty"`
	Resources    []Resource      `json:"resources,omitempty"`
	// Truncated names the fields Bound cut to their size bound.
	Truncated []string `json:"truncated,omitempty"`
}

// Resource is a resource a call referred to.
type Resource struct {
	Type string `json:"type"` // "AWS::ECS::Cluster"
	Name string `json:"name"`
}

// Redacted is what replaces a secret value in recorded parameters.
const Redacted = "HIDDEN_DUE_TO_SECURITY_REASONS"
