package ecs

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/errs"
)

// RegisterContainerInstance is ECS's agent-facing registration call. ECS
// documents it as used only by its agent; Berth's agents join through the
// agent protocol instead (docs/agent.md), which also gives them their
// credential. Called through the ECS API, it registers an instance record
// with the given resources and attributes and no agent credential: such an
// instance stays agentConnected false, so tasks are never placed on it
// (placement reports AGENT) until it is deregistered. With
// containerInstanceArn it re-registers an existing instance: its
// resources, attributes and version info are replaced.
func (s *Service) RegisterContainerInstance(ctx context.Context, in *ecsapi.RegisterContainerInstanceRequest) (*ecsapi.RegisterContainerInstanceResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	req := agentapi.JoinRequest{Cluster: cluster, Attributes: map[string]string{}}
	for _, r := range in.TotalResources {
		switch deref(r.Name) {
		case "CPU":
			req.Resources.CPU = int(deref(r.IntegerValue))
		case "MEMORY":
			req.Resources.MemoryMiB = int(deref(r.IntegerValue))
		case "PORTS":
			req.Resources.ReservedPorts = parsePorts(r.StringSetValue)
		case "PORTS_UDP":
			req.Resources.ReservedUDP = parsePorts(r.StringSetValue)
		}
	}
	for _, a := range in.Attributes {
		name := deref(a.Name)
		switch {
		case name == "ecs.os-type":
			req.Resources.OSType = deref(a.Value)
		case name == "ecs.cpu-architecture":
			req.Resources.CPUArch = deref(a.Value)
		case name == "ecs.availability-zone":
			req.AvailabilityZone = deref(a.Value)
		case name == "ecs.instance-type":
			req.InstanceType = deref(a.Value)
		case strings.HasPrefix(name, "ecs.capability.") || strings.HasPrefix(name, "com.amazonaws.ecs.capability."):
			req.Resources.Capabilities = append(req.Resources.Capabilities, name)
		case strings.HasPrefix(name, "ecs."):
			// other built-ins are Berth's to set
		default:
			req.Attributes[name] = deref(a.Value)
		}
	}
	if err := fromIdentityDocument(deref(in.InstanceIdentityDocument), &req); err != nil {
		return nil, err
	}
	if in.VersionInfo != nil {
		req.VersionInfo = agentapi.VersionInfo{AgentVersion: deref(in.VersionInfo.AgentVersion),
			AgentHash: deref(in.VersionInfo.AgentHash), DockerVersion: deref(in.VersionInfo.DockerVersion)}
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	var rec instanceRecord
	if ref := deref(in.ContainerInstanceArn); ref != "" {
		a, err := arn.Parse(ref)
		if err != nil || a.Service != "ecs" || a.ResourceType() != "container-instance" {
			return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Invalid containerInstanceArn: %s", ref)
		}
		key, err := recordKeyOf(a, keyInstances)
		if err != nil {
			return nil, err
		}
		err = s.updateRecord(ctx, key, &rec, func() error {
			if rec.Status == InstanceInactive {
				return errs.R(errs.Invalid, reasonInvalidParameter, "The container instance %s is INACTIVE.", ref)
			}
			if req.Resources.CPU <= 0 || req.Resources.MemoryMiB <= 0 {
				return errs.R(errs.Invalid, reasonInvalidParameter, "A container instance must register CPU and MEMORY resources.")
			}
			rec.Registered = req.Resources
			rec.Attributes = s.builtinAttributes(req)
			for k, v := range req.Attributes {
				rec.Attributes[k] = v
			}
			rec.VersionInfo = req.VersionInfo
			rec.Version++
			return nil
		})
		if err != nil {
			return nil, err
		}
	} else {
		rec, _, err = s.createInstance(ctx, req, false, nil)
		if err != nil {
			return nil, err
		}
	}
	if len(in.Tags) > 0 {
		if _, err := s.TagResource(ctx, &ecsapi.TagResourceRequest{ResourceArn: &rec.ARN, Tags: in.Tags}); err != nil {
			return nil, err
		}
	}
	d, err := s.DescribeContainerInstances(ctx, &ecsapi.DescribeContainerInstancesRequest{Cluster: &rec.Cluster, ContainerInstances: []string{rec.ARN},
		Include: []ecsapi.ContainerInstanceField{ecsapi.ContainerInstanceFieldTags}})
	if err != nil {
		return nil, err
	}
	if len(d.ContainerInstances) != 1 {
		return nil, errs.E(errs.Internal, "registered container instance %s not found", rec.ARN)
	}
	return &ecsapi.RegisterContainerInstanceResponse{ContainerInstance: &d.ContainerInstances[0]}, nil
}

// fromIdentityDocument fills, from an EC2 instance identity document, what
// the request left out: the instance type and availability zone, and CPU
// and MEMORY derived from the instance type (instancetypes.go), as ECS's
// agent registers them. A request with neither resources nor a document
// naming a known instance type is refused, saying what to give.
func fromIdentityDocument(doc string, req *agentapi.JoinRequest) error {
	var id struct {
		InstanceType     string `json:"instanceType"`
		AvailabilityZone string `json:"availabilityZone"`
	}
	if strings.TrimSpace(doc) != "" {
		if err := json.Unmarshal([]byte(doc), &id); err != nil {
			return errs.R(errs.Invalid, reasonInvalidParameter, "instanceIdentityDocument is not a valid EC2 instance identity document: %v", err)
		}
		if req.InstanceType == "" {
			req.InstanceType = id.InstanceType
		}
		if req.AvailabilityZone == "" {
			req.AvailabilityZone = id.AvailabilityZone
		}
	}
	if req.Resources.CPU > 0 && req.Resources.MemoryMiB > 0 {
		return nil
	}
	cpu, mem, ok := instanceTypeResources(req.InstanceType)
	switch {
	case ok:
		if req.Resources.CPU <= 0 {
			req.Resources.CPU = cpu
		}
		if req.Resources.MemoryMiB <= 0 {
			req.Resources.MemoryMiB = mem
		}
		return nil
	case req.InstanceType != "":
		return errs.R(errs.Invalid, reasonInvalidParameter, "Berth cannot derive CPU and MEMORY for instance type %s: give them in totalResources.", req.InstanceType)
	default:
		return errs.R(errs.Invalid, reasonInvalidParameter, "A container instance must register CPU and MEMORY resources: give them in totalResources, or an instanceIdentityDocument with a known instanceType.")
	}
}

func parsePorts(vals []string) []int {
	var out []int
	for _, v := range vals {
		n := 0
		for _, c := range v {
			if c < '0' || c > '9' {
				n = -1
				break
			}
			n = n*10 + int(c-'0')
		}
		if n > 0 && n < 65536 {
			out = append(out, n)
		}
	}
	return out
}
