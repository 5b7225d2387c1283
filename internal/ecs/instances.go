package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/lazyre"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
)

// Container instance APIs over instanceRecord. The records are created by
// JoinInstance (agentjoin.go); this file describes, lists, drains,
// deregisters and labels them. docs/tasks.md has the behaviours.

// Reasons of the errors of this file and of tasks.go that MapError does not
// know; wireErr gives them their ECS code.
const (
	reasonTargetNotFound = "ecs.target_not_found"
	reasonAttributeLimit = "ecs.attribute_limit"
	reasonConflict       = "ecs.conflict"
)

// wireErr is a domain error that carries its ECS error code, for the
// codes MapError has no reason for (AttributeLimitExceededException,
// TargetNotFoundException, ConflictException): the front door finds the
// wire error in the chain first.
func wireErr(kind errs.Kind, reason, code, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &errs.Error{Kind: kind, Reason: reason, Msg: msg, Err: &awsproto.Error{Code: code, Message: msg}}
}

// maxCustomAttributes is ECS's limit of custom attributes per resource,
// and of attributes per PutAttributes or DeleteAttributes call.
const maxCustomAttributes = 10

// snapshot reads a cluster's instances, their live tasks and the agent
// presence keys, all at the revision of the instance list, so that the
// tasks seen are exactly those committed before every instance record's
// ModRevision the snapshot holds (see the applier in applier.go).
func (s *Service) snapshot(ctx context.Context, cluster string) (*clusterSnapshot, error) {
	return s.readSnapshot(ctx, cluster, false)
}

// instanceView reads one instance with its live tasks.
func (s *Service) instanceView(ctx context.Context, cluster, id string) (*instanceView, error) {
	snap, err := s.snapshot(ctx, cluster)
	if err != nil {
		return nil, err
	}
	v := snap.ByID[id]
	if v == nil {
		return nil, errs.E(errs.NotFound, "container instance %s not found", id)
	}
	return v, nil
}

// instanceRef resolves a container instance reference (ID or ARN) in
// cluster to an ID. ok is false when the reference cannot name an instance
// of the cluster.
func instanceRef(cluster, ref string) (id string, ok bool) {
	ref = strings.TrimSpace(ref)
	if !arn.IsARN(ref) {
		return ref, ref != "" && !strings.Contains(ref, "/")
	}
	a, err := arn.Parse(ref)
	if err != nil || a.Service != "ecs" || a.ResourceType() != "container-instance" {
		return "", false
	}
	rest := a.ResourceID()
	if c, i, found := strings.Cut(rest, "/"); found {
		return i, c == cluster && i != ""
	}
	return rest, rest != ""
}

// builtinAttribute reports whether an attribute name is ECS's own.
func builtinAttribute(name string) bool {
	return strings.HasPrefix(name, "ecs.") || strings.HasPrefix(name, "com.amazonaws.ecs.")
}

func portStrings(ps []placement.Port, proto placement.Protocol) []string {
	out := []string{}
	for _, p := range ps {
		pp := p.Protocol
		if pp == "" {
			pp = placement.TCP
		}
		if pp == proto {
			out = append(out, strconv.Itoa(p.Number))
		}
	}
	return out
}

// resourcesOut shapes resources as ECS's registeredResources and
// remainingResources.
func resourcesOut(r placement.Resources) []ecsapi.Resource {
	integer := func(name string, v int) ecsapi.Resource {
		return ecsapi.Resource{Name: ptr(name), Type: ptr("INTEGER"), IntegerValue: ptr(int32(v)),
			LongValue: ptr(int64(0)), DoubleValue: ptr(0.0)}
	}
	set := func(name string, v []string) ecsapi.Resource {
		return ecsapi.Resource{Name: ptr(name), Type: ptr("STRINGSET"), StringSetValue: v,
			IntegerValue: ptr(int32(0)), LongValue: ptr(int64(0)), DoubleValue: ptr(0.0)}
	}
	return []ecsapi.Resource{
		integer("CPU", r.CPU),
		integer("MEMORY", r.Memory),
		set("PORTS", portStrings(r.Ports, placement.TCP)),
		set("PORTS_UDP", portStrings(r.Ports, placement.UDP)),
	}
}

func attributesOut(attrs map[string]string) []ecsapi.Attribute {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]ecsapi.Attribute, 0, len(names))
	for _, n := range names {
		a := ecsapi.Attribute{Name: ptr(n)}
		if v := attrs[n]; v != "" {
			a.Value = ptr(v)
		}
		out = append(out, a)
	}
	return out
}

// instanceOut shapes an instance as ECS's ContainerInstance.
func instanceOut(v *instanceView, include []ecsapi.ContainerInstanceField) ecsapi.ContainerInstance {
	pi := v.PlacementInstance()
	u := taskUsage(v.Tasks)
	out := ecsapi.ContainerInstance{
		ContainerInstanceArn: ptr(v.Rec.ARN),
		Ec2InstanceId:        ptr(v.Rec.Ec2InstanceID),
		Version:              ptr(v.Rec.Version),
		VersionInfo: &ecsapi.VersionInfo{
			AgentVersion:  ptr(v.Rec.VersionInfo.AgentVersion),
			DockerVersion: ptr(v.Rec.VersionInfo.DockerVersion),
		},
		RemainingResources:  resourcesOut(pi.Remaining),
		RegisteredResources: resourcesOut(pi.Registered),
		Status:              ptr(v.Rec.Status),
		AgentConnected:      ptr(v.Connected),
		RunningTasksCount:   ptr(int32(u.Running)),
		PendingTasksCount:   ptr(int32(u.Pending)),
		Attributes:          attributesOut(pi.Attributes),
		RegisteredAt:        awsproto.NewTime(v.Rec.RegisteredAt),
		Attachments:         []ecsapi.Attachment{},
		Tags:                []ecsapi.Tag{},
	}
	if v.Rec.VersionInfo.AgentHash != "" {
		out.VersionInfo.AgentHash = ptr(v.Rec.VersionInfo.AgentHash)
	}
	if v.Rec.StatusReason != "" {
		out.StatusReason = ptr(v.Rec.StatusReason)
	}
	if slices.Contains(include, ecsapi.ContainerInstanceFieldTags) && v.Rec.Tags != nil {
		out.Tags = v.Rec.Tags
	}
	if slices.Contains(include, ecsapi.ContainerInstanceFieldContainerInstanceHealth) {
		st := ecsapi.InstanceHealthCheckStateOk
		if !v.Connected {
			st = ecsapi.InstanceHealthCheckStateInsufficientData
		}
		out.HealthStatus = &ecsapi.ContainerInstanceHealthStatus{
			OverallStatus: ptr(st),
			Details: []ecsapi.InstanceHealthCheckResult{{
				Type:   ptr(ecsapi.InstanceHealthCheckTypeContainerRuntime),
				Status: ptr(st),
			}},
		}
	}
	return out
}

// DescribeContainerInstances describes instances; unknown ones come back
// as MISSING failures.
func (s *Service) DescribeContainerInstances(ctx context.Context, in *ecsapi.DescribeContainerInstancesRequest) (*ecsapi.DescribeContainerInstancesResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	if len(in.ContainerInstances) == 0 || len(in.ContainerInstances) > 100 {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "containerInstances must contain between 1 and 100 entries.")
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	snap, err := s.snapshot(ctx, cluster)
	if err != nil {
		return nil, err
	}
	out := &ecsapi.DescribeContainerInstancesResponse{ContainerInstances: []ecsapi.ContainerInstance{}, Failures: []ecsapi.Failure{}}
	for _, ref := range in.ContainerInstances {
		id, ok := instanceRef(cluster, ref)
		v := snap.ByID[id]
		if !ok || v == nil {
			out.Failures = append(out.Failures, ecsapi.Failure{Arn: ptr(s.instanceFailureARN(cluster, ref)), Reason: ptr("MISSING")})
			continue
		}
		out.ContainerInstances = append(out.ContainerInstances, instanceOut(v, in.Include))
	}
	if err := s.markInstanceProviders(ctx, out.ContainerInstances); err != nil { // asgproviders.go
		return nil, err
	}
	return out, nil
}

func (s *Service) instanceFailureARN(cluster, ref string) string {
	if arn.IsARN(ref) {
		return ref
	}
	return s.instanceARN(cluster, ref)
}

// ListContainerInstances lists instance ARNs, by default every status but
// INACTIVE, optionally filtered with the cluster query language.
func (s *Service) ListContainerInstances(ctx context.Context, in *ecsapi.ListContainerInstancesRequest) (*ecsapi.ListContainerInstancesResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	limit, after, err := pagePosition(in.MaxResults, in.NextToken, 100, 100)
	if err != nil {
		return nil, err
	}
	var filter placement.Expr
	if f := deref(in.Filter); strings.TrimSpace(f) != "" {
		if filter, err = placement.Parse(f); err != nil {
			return nil, err
		}
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	snap, err := s.snapshot(ctx, cluster)
	if err != nil {
		return nil, err
	}
	out := &ecsapi.ListContainerInstancesResponse{ContainerInstanceArns: []string{}}
	for _, v := range snap.Instances {
		if v.Rec.ID <= after {
			continue
		}
		if in.Status != nil {
			if v.Rec.Status != string(*in.Status) {
				continue
			}
		} else if v.Rec.Status == InstanceInactive {
			continue
		}
		if filter != nil {
			pi := v.PlacementInstance()
			if !filter.Match(&pi) {
				continue
			}
		}
		if int64(len(out.ContainerInstanceArns)) == limit {
			out.NextToken = ptr(encodeAfter(after))
			break
		}
		out.ContainerInstanceArns = append(out.ContainerInstanceArns, v.Rec.ARN)
		after = v.Rec.ID
	}
	return out, nil
}

// changeInstance applies change to an instance record with optimistic
// concurrency, bumping its version. change may return errs to abort.
func (s *Service) changeInstance(ctx context.Context, cluster, id string, change func(*instanceRecord) error) (instanceRecord, error) {
	key := instanceKey(cluster, id)
	for {
		kv, err := s.st.Get(ctx, key)
		if err != nil {
			return instanceRecord{}, err
		}
		var rec instanceRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return rec, errs.Wrap(errs.Internal, err, "decode container instance %s", id)
		}
		if err := change(&rec); err != nil {
			return rec, err
		}
		rec.Version++
		b, _ := json.Marshal(rec)
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(key, kv.ModRevision)}, store.Put(key, b))
		if err != nil {
			return rec, err
		}
		if res.Succeeded {
			return rec, nil
		}
	}
}

// UpdateContainerInstancesState sets instances ACTIVE or DRAINING. A
// DRAINING instance takes no new tasks; the service scheduler replaces its
// service tasks (issue 4).
func (s *Service) UpdateContainerInstancesState(ctx context.Context, in *ecsapi.UpdateContainerInstancesStateRequest) (*ecsapi.UpdateContainerInstancesStateResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	status := string(deref(in.Status))
	if status != InstanceActive && status != InstanceDraining {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Container instances can only be set to ACTIVE or DRAINING.")
	}
	if len(in.ContainerInstances) == 0 || len(in.ContainerInstances) > 10 {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "containerInstances must contain between 1 and 10 entries.")
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	out := &ecsapi.UpdateContainerInstancesStateResponse{ContainerInstances: []ecsapi.ContainerInstance{}, Failures: []ecsapi.Failure{}}
	var changed []string
	for _, ref := range in.ContainerInstances {
		id, ok := instanceRef(cluster, ref)
		fail := func(reason string) {
			out.Failures = append(out.Failures, ecsapi.Failure{Arn: ptr(s.instanceFailureARN(cluster, ref)), Reason: ptr(reason)})
		}
		if !ok {
			fail("MISSING")
			continue
		}
		_, err := s.changeInstance(ctx, cluster, id, func(r *instanceRecord) error {
			if r.Status == InstanceInactive {
				return errs.E(errs.Conflict, "INACTIVE")
			}
			r.Status = status
			return nil
		})
		switch {
		case errs.Is(err, errs.NotFound):
			fail("MISSING")
		case errs.Is(err, errs.Conflict):
			fail(errs.MessageOf(err))
		case err != nil:
			return nil, err
		default:
			changed = append(changed, id)
		}
	}
	if len(changed) > 0 {
		snap, err := s.snapshot(ctx, cluster)
		if err != nil {
			return nil, err
		}
		for _, id := range changed {
			if v := snap.ByID[id]; v != nil {
				out.ContainerInstances = append(out.ContainerInstances, instanceOut(v, nil))
			}
		}
	}
	return out, nil
}

// DeregisterContainerInstance marks an instance INACTIVE. With tasks on it
// ECS refuses unless force is set; with force, its tasks are stopped.
func (s *Service) DeregisterContainerInstance(ctx context.Context, in *ecsapi.DeregisterContainerInstanceRequest) (*ecsapi.DeregisterContainerInstanceResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	id, ok := instanceRef(cluster, deref(in.ContainerInstance))
	notFound := errs.R(errs.Invalid, reasonInvalidParameter, "Referenced container instance %s not found.", deref(in.ContainerInstance))
	if !ok {
		return nil, notFound
	}
	for {
		v, err := s.instanceView(ctx, cluster, id)
		if errs.Is(err, errs.NotFound) {
			return nil, notFound
		}
		if err != nil {
			return nil, err
		}
		if v.Rec.Status == InstanceInactive {
			out := instanceOut(v, nil)
			return &ecsapi.DeregisterContainerInstanceResponse{ContainerInstance: &out}, nil
		}
		if len(v.Tasks) > 0 && !deref(in.Force) {
			return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Found running tasks on the instance.")
		}
		// Stop the tasks first, each in its own transaction; a placement
		// that lands meanwhile bumps the instance record, so the
		// transaction below fails and the loop stops that task too.
		for _, t := range v.Tasks {
			if t.DesiredStatus == DesiredStopped {
				continue
			}
			if _, err := s.stopTaskRecord(ctx, cluster, t.ID, ecsapi.TaskStopCodeUserInitiated, "Container instance deregistered"); err != nil && !errs.Is(err, errs.NotFound) {
				return nil, err
			}
		}
		rec := v.Rec
		rec.Status = InstanceInactive
		rec.DeregisteredAt = ptr(s.now().UTC())
		rec.Version++
		b, _ := json.Marshal(rec)
		key := instanceKey(cluster, id)
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(key, v.ModRev)}, store.Put(key, b))
		if err != nil {
			return nil, err
		}
		if res.Succeeded {
			s.log.Info("container instance deregistered", "cluster", cluster, "instance", id, "force", deref(in.Force))
			s.closeStream(id) // the agent reconnects and is refused
			v.Rec = rec
			out := instanceOut(v, nil)
			return &ecsapi.DeregisterContainerInstanceResponse{ContainerInstance: &out}, nil
		}
	}
}

var (
	attrNameRE  = lazyre.New(`^[a-zA-Z0-9_./\\-]{1,128}$`)
	attrValueRE = lazyre.New(`^[a-zA-Z0-9_.@/\\: -]{1,128}$`)
)

// validateAttribute applies ECS's rules to a custom attribute.
func validateAttribute(a ecsapi.Attribute, withValue bool) error {
	name := deref(a.Name)
	if !attrNameRE.MatchString(name) {
		return errs.R(errs.Invalid, reasonInvalidParameter, "Attribute name %q is invalid: up to 128 letters, numbers, hyphens, underscores, periods and slashes are allowed.", name)
	}
	if builtinAttribute(name) {
		return errs.R(errs.Invalid, reasonInvalidParameter, "Attribute name %q uses a prefix reserved for Amazon ECS.", name)
	}
	if t := deref(a.TargetType); t != "" && t != ecsapi.TargetTypeContainerInstance {
		return errs.R(errs.Invalid, reasonInvalidParameter, "Invalid targetType: %s.", t)
	}
	if v := deref(a.Value); withValue && a.Value != nil {
		if !attrValueRE.MatchString(v) || strings.TrimSpace(v) != v {
			return errs.R(errs.Invalid, reasonInvalidParameter, "Attribute value %q is invalid: up to 128 letters, numbers, hyphens, underscores, periods, at signs, slashes, colons and spaces are allowed, without leading or trailing whitespace.", v)
		}
	}
	if deref(a.TargetId) == "" {
		return errs.R(errs.Invalid, reasonInvalidParameter, "Attribute %s needs a targetId.", name)
	}
	return nil
}

// changeAttributes applies per-target attribute changes to container
// instances; every target must exist.
func (s *Service) changeAttributes(ctx context.Context, clusterRef *string, attrs []ecsapi.Attribute, put bool) ([]ecsapi.Attribute, error) {
	cluster, err := s.clusterName(clusterRef)
	if err != nil {
		return nil, err
	}
	if len(attrs) == 0 {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "attributes can not be empty.")
	}
	if len(attrs) > maxCustomAttributes {
		return nil, wireErr(errs.LimitExceeded, reasonAttributeLimit, ecsapi.ErrAttributeLimitExceededException,
			"You can apply up to %d custom attributes for each resource.", maxCustomAttributes)
	}
	for _, a := range attrs {
		if err := validateAttribute(a, put); err != nil {
			return nil, err
		}
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	byTarget := map[string][]ecsapi.Attribute{}
	var order []string
	for _, a := range attrs {
		id, ok := instanceRef(cluster, deref(a.TargetId))
		if ok {
			_, err := s.st.Get(ctx, instanceKey(cluster, id))
			if errs.Is(err, errs.NotFound) {
				ok = false
			} else if err != nil {
				return nil, err
			}
		}
		if !ok {
			return nil, wireErr(errs.NotFound, reasonTargetNotFound, ecsapi.ErrTargetNotFoundException,
				"Could not find %s. You can view your available container instances with ListContainerInstances. Amazon ECS container instances are cluster-specific and Region-specific.", deref(a.TargetId))
		}
		if _, seen := byTarget[id]; !seen {
			order = append(order, id)
		}
		byTarget[id] = append(byTarget[id], a)
	}
	for _, id := range order {
		_, err := s.changeInstance(ctx, cluster, id, func(r *instanceRecord) error {
			if r.Attributes == nil {
				r.Attributes = map[string]string{}
			}
			for _, a := range byTarget[id] {
				if put {
					r.Attributes[deref(a.Name)] = deref(a.Value)
				} else {
					delete(r.Attributes, deref(a.Name))
				}
			}
			n := 0
			for k := range r.Attributes {
				if !builtinAttribute(k) {
					n++
				}
			}
			if n > maxCustomAttributes {
				return wireErr(errs.LimitExceeded, reasonAttributeLimit, ecsapi.ErrAttributeLimitExceededException,
					"You can apply up to %d custom attributes for each resource.", maxCustomAttributes)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]ecsapi.Attribute, 0, len(attrs))
	for _, a := range attrs {
		a.TargetType = ptr(ecsapi.TargetTypeContainerInstance)
		out = append(out, a)
	}
	return out, nil
}

// PutAttributes creates or replaces custom attributes of container
// instances.
func (s *Service) PutAttributes(ctx context.Context, in *ecsapi.PutAttributesRequest) (*ecsapi.PutAttributesResponse, error) {
	out, err := s.changeAttributes(ctx, in.Cluster, in.Attributes, true)
	if err != nil {
		return nil, err
	}
	return &ecsapi.PutAttributesResponse{Attributes: out}, nil
}

// DeleteAttributes removes custom attributes of container instances.
func (s *Service) DeleteAttributes(ctx context.Context, in *ecsapi.DeleteAttributesRequest) (*ecsapi.DeleteAttributesResponse, error) {
	out, err := s.changeAttributes(ctx, in.Cluster, in.Attributes, false)
	if err != nil {
		return nil, err
	}
	return &ecsapi.DeleteAttributesResponse{Attributes: out}, nil
}

// ListAttributes lists the attributes (built-in and custom) of a cluster's
// container instances, by instance then name.
func (s *Service) ListAttributes(ctx context.Context, in *ecsapi.ListAttributesRequest) (*ecsapi.ListAttributesResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	if deref(in.TargetType) != ecsapi.TargetTypeContainerInstance {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Invalid targetType: %s.", deref(in.TargetType))
	}
	if in.AttributeValue != nil && deref(in.AttributeName) == "" {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "attributeName must be specified with attributeValue.")
	}
	limit, after, err := pagePosition(in.MaxResults, in.NextToken, 100, 100)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	snap, err := s.snapshot(ctx, cluster)
	if err != nil {
		return nil, err
	}
	out := &ecsapi.ListAttributesResponse{Attributes: []ecsapi.Attribute{}}
	for _, v := range snap.Instances {
		if v.Rec.Status == InstanceInactive {
			continue
		}
		for _, a := range attributesOut(allAttributes(&v.Rec)) {
			pos := v.Rec.ID + "/" + deref(a.Name)
			if pos <= after {
				continue
			}
			if in.AttributeName != nil && deref(a.Name) != *in.AttributeName {
				continue
			}
			if in.AttributeValue != nil && deref(a.Value) != *in.AttributeValue {
				continue
			}
			if int64(len(out.Attributes)) == limit {
				out.NextToken = ptr(encodeAfter(after))
				return out, nil
			}
			a.TargetId = ptr(v.Rec.ARN)
			a.TargetType = ptr(ecsapi.TargetTypeContainerInstance)
			out.Attributes = append(out.Attributes, a)
			after = pos
		}
	}
	return out, nil
}

// InstanceHostname finds the ACTIVE or DRAINING container instance whose
// ec2InstanceId is id, in any cluster, and returns the hostname its agent
// reported (ELBv2 instance targets). NotFound when there is none.
func (s *Service) InstanceHostname(ctx context.Context, id string) (string, error) {
	res, err := s.st.List(ctx, keyInstances, store.ListOptions{})
	if err != nil {
		return "", err
	}
	for _, kv := range res.KVs {
		var rec instanceRecord
		if json.Unmarshal(kv.Value, &rec) != nil || rec.Ec2InstanceID != id {
			continue
		}
		if rec.Status == InstanceActive || rec.Status == InstanceDraining {
			return rec.Hostname, nil
		}
	}
	return "", errs.E(errs.NotFound, "no active container instance has the instance id %s", id)
}
