// Package arn builds and parses Amazon Resource Names in the long format
// ECS uses: arn:<partition>:<service>:<region>:<account>:<resource>.
package arn

import (
	"strings"

	"github.com/berthdev/berth/internal/errs"
)

// ARN is a parsed Amazon Resource Name.
type ARN struct {
	Partition string
	Service   string
	Region    string
	Account   string
	Resource  string // e.g. "cluster/default", "task-definition/web:3"
}

// String formats the ARN.
func (a ARN) String() string {
	return "arn:" + a.Partition + ":" + a.Service + ":" + a.Region + ":" + a.Account + ":" + a.Resource
}

// ResourceType returns the part of Resource before the first '/' or ':'.
func (a ARN) ResourceType() string {
	if i := strings.IndexAny(a.Resource, "/:"); i >= 0 {
		return a.Resource[:i]
	}
	return a.Resource
}

// ResourceID returns the part of Resource after the resource type.
func (a ARN) ResourceID() string {
	if i := strings.IndexAny(a.Resource, "/:"); i >= 0 {
		return a.Resource[i+1:]
	}
	return ""
}

// IsARN reports whether s looks like an ARN.
func IsARN(s string) bool { return strings.HasPrefix(s, "arn:") }

// Parse parses an ARN. Errors are of kind errs.Invalid.
func Parse(s string) (ARN, error) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] == "" || parts[5] == "" {
		return ARN{}, errs.E(errs.Invalid, "%q is not a valid ARN", s)
	}
	return ARN{Partition: parts[1], Service: parts[2], Region: parts[3], Account: parts[4], Resource: parts[5]}, nil
}

// Builder makes ARNs for one partition, region and account.
type Builder struct {
	Partition string
	Region    string
	Account   string
}

// ECS returns an ECS ARN for a resource ("cluster/web").
func (b Builder) ECS(resource string) string {
	return ARN{Partition: b.Partition, Service: "ecs", Region: b.Region, Account: b.Account, Resource: resource}.String()
}

// Service returns an ARN of another service.
func (b Builder) Service(service, resource string) string {
	return ARN{Partition: b.Partition, Service: service, Region: b.Region, Account: b.Account, Resource: resource}.String()
}
