package autoscaling

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	api "github.com/berthdev/berth/internal/api/applicationautoscalingapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Store layout: small records, one key each.
const (
	prefix           = "/berth/autoscaling/"
	targetsPrefix    = prefix + "targets/"
	policiesPrefix   = prefix + "policies/"
	scheduledPrefix  = prefix + "scheduled/"
	activitiesPrefix = prefix + "activities/"
)

func targetKey(res string) string { return targetsPrefix + url.PathEscape(res) }
func policyKey(res, name string) string {
	return policiesPrefix + url.PathEscape(res) + "/" + url.PathEscape(name)
}
func scheduledKey(res, name string) string {
	return scheduledPrefix + url.PathEscape(res) + "/" + url.PathEscape(name)
}
func activitiesKeyPrefix(res string) string { return activitiesPrefix + url.PathEscape(res) + "/" }

// Limits.
const (
	maxTags        = 200
	maxResults     = 50
	ecsDimension   = api.ScalableDimensionEcsServiceDesiredCount
	ecsNamespace   = api.ServiceNamespaceEcs
	serviceRoleFmt = "arn:%s:iam::%s:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"
)

// targetRecord is a scalable target as stored.
type targetRecord struct {
	ResourceID string
	ARN        string
	Min, Max   int32
	RoleARN    string
	Suspended  api.SuspendedState
	Created    time.Time
	Tags       map[string]string `json:",omitempty"`
}

// service splits the resource id service/<cluster>/<service>.
func (t targetRecord) service() (cluster, service string) {
	c, s, _ := parseResource(t.ResourceID)
	return c, s
}

func parseResource(res string) (cluster, service string, ok bool) {
	parts := strings.Split(res, "/")
	if len(parts) != 3 || parts[0] != "service" || parts[1] == "" || parts[2] == "" {
		return "", "", false
	}
	return parts[1], parts[2], true
}

// checkNamespace refuses what Berth does not scale.
func checkNamespace(ns *api.ServiceNamespace) error {
	if deref(ns) != ecsNamespace {
		return invalid("Unsupported service namespace %s: Berth supports Application Auto Scaling for the service namespace ecs only (resource ID service/<cluster>/<service>, scalable dimension ecs:service:DesiredCount).", deref(ns))
	}
	return nil
}

// checkTarget checks a namespace, resource id and dimension triple.
func checkTarget(ns *api.ServiceNamespace, res string, dim *api.ScalableDimension) error {
	if err := checkNamespace(ns); err != nil {
		return err
	}
	if dim != nil && *dim != ecsDimension {
		return invalid("Unsupported scalable dimension %s for service namespace ecs: the supported dimension is ecs:service:DesiredCount.", *dim)
	}
	if _, _, ok := parseResource(res); !ok {
		return invalid("Unsupported resource ID %s for service namespace ecs: it must be service/<cluster>/<service>.", res)
	}
	return nil
}

func targetNotFound(res string) error {
	return errs.R(errs.NotFound, reasonNotFound, "No scalable target registered for service namespace: ecs, resource ID: %s, scalable dimension: ecs:service:DesiredCount", res)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func get[T any](ctx context.Context, st store.Store, key string) (T, int64, error) {
	var v T
	kv, err := st.Get(ctx, key)
	if err != nil {
		return v, 0, err
	}
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, 0, errs.Wrap(errs.Internal, err, "decode %s", key)
	}
	return v, kv.ModRevision, nil
}

func list[T any](ctx context.Context, st store.Store, pfx string) ([]T, error) {
	var out []T
	opts := store.ListOptions{Limit: 500}
	for {
		res, err := st.List(ctx, pfx, opts)
		if err != nil {
			return nil, err
		}
		for _, kv := range res.KVs {
			var v T
			if json.Unmarshal(kv.Value, &v) == nil {
				out = append(out, v)
			}
		}
		if !res.More || len(res.KVs) == 0 {
			return out, nil
		}
		opts.StartAfter = res.KVs[len(res.KVs)-1].Key
		opts.Revision = res.Revision
	}
}

// put writes v at key when its revision is still rev (0: absent);
// Conflict otherwise.
func put(ctx context.Context, st store.Store, key string, v any, rev int64, more ...store.Op) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	cmp := store.ModRevisionIs(key, rev)
	if rev == 0 {
		cmp = store.Absent(key)
	}
	res, err := st.Txn(ctx, []store.Cmp{cmp}, append([]store.Op{store.Put(key, b)}, more...)...)
	if err != nil {
		return err
	}
	if !res.Succeeded {
		return errs.E(errs.Conflict, "%s changed concurrently", key)
	}
	return nil
}

// page cuts items by an offset NextToken.
func page[T any](items []T, token *string, maxRes *int32) ([]T, *string, error) {
	off := 0
	if token != nil {
		b, err := base64.RawURLEncoding.DecodeString(*token)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 || n > len(items) {
			return nil, nil, errs.R(errs.Invalid, reasonNextToken, "Invalid token: %s", *token)
		}
		off = n
	}
	lim := maxResults
	if maxRes != nil {
		lim = min(int(*maxRes), maxResults)
	}
	end := min(len(items), off+lim)
	var next *string
	if end < len(items) {
		next = ptr(base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end))))
	}
	return items[off:end], next, nil
}

// RegisterScalableTarget registers an ECS service's desired count, or
// updates a registered target's capacity limits and suspended state.
func (s *Service) RegisterScalableTarget(ctx context.Context, in *api.RegisterScalableTargetRequest) (*api.RegisterScalableTargetResponse, error) {
	res := deref(in.ResourceId)
	if err := checkTarget(in.ServiceNamespace, res, in.ScalableDimension); err != nil {
		return nil, err
	}
	if in.MinCapacity != nil && *in.MinCapacity < 0 || in.MaxCapacity != nil && *in.MaxCapacity < 0 {
		return nil, invalid("Minimum and maximum capacity must not be negative.")
	}
	if len(in.Tags) > maxTags {
		return nil, errs.R(errs.Invalid, reasonTooMany, "The number of tags exceeds the limit of %d.", maxTags)
	}
	cluster, service, _ := parseResource(res)
	if _, err := s.scaler.Capacity(ctx, cluster, service); errs.Is(err, errs.NotFound) {
		return nil, invalid("ECS service doesn't exist: %s", res)
	} else if err != nil {
		return nil, err
	}
	var rec targetRecord
	err := retry(func() error {
		old, rev, err := get[targetRecord](ctx, s.st, targetKey(res))
		if err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
		if rev == 0 {
			if in.MinCapacity == nil || in.MaxCapacity == nil {
				return invalid("MinCapacity and MaxCapacity are required for registering a new scalable target.")
			}
			old = targetRecord{ResourceID: res, Created: s.now(),
				ARN:     s.arns.Service("application-autoscaling", "scalable-target/"+randomHex(18)),
				RoleARN: fmt.Sprintf(serviceRoleFmt, s.cfg.Partition, s.cfg.Account)}
			old.Tags = in.Tags
		}
		if in.MinCapacity != nil {
			old.Min = *in.MinCapacity
		}
		if in.MaxCapacity != nil {
			old.Max = *in.MaxCapacity
		}
		if old.Min > old.Max {
			return invalid("Minimum capacity cannot be greater than maximum capacity")
		}
		if in.RoleARN != nil {
			old.RoleARN = *in.RoleARN
		}
		if ss := in.SuspendedState; ss != nil {
			if ss.DynamicScalingInSuspended != nil {
				old.Suspended.DynamicScalingInSuspended = ss.DynamicScalingInSuspended
			}
			if ss.DynamicScalingOutSuspended != nil {
				old.Suspended.DynamicScalingOutSuspended = ss.DynamicScalingOutSuspended
			}
			if ss.ScheduledScalingSuspended != nil {
				old.Suspended.ScheduledScalingSuspended = ss.ScheduledScalingSuspended
			}
		}
		rec = old
		return put(ctx, s.st, targetKey(res), old, rev)
	})
	if err != nil {
		return nil, err
	}
	// A desired count outside the new limits is brought inside them.
	s.clampToBounds(ctx, rec)
	return &api.RegisterScalableTargetResponse{ScalableTargetARN: ptr(rec.ARN)}, nil
}

func (s *Service) wireTarget(t targetRecord) api.ScalableTarget {
	b := func(p *bool) *bool { return ptr(deref(p)) }
	return api.ScalableTarget{
		CreationTime: awsproto.NewTime(t.Created), MaxCapacity: ptr(t.Max), MinCapacity: ptr(t.Min),
		ResourceId: ptr(t.ResourceID), RoleARN: ptr(t.RoleARN), ScalableDimension: ptr(ecsDimension),
		ScalableTargetARN: ptr(t.ARN), ServiceNamespace: ptr(ecsNamespace),
		SuspendedState: &api.SuspendedState{DynamicScalingInSuspended: b(t.Suspended.DynamicScalingInSuspended),
			DynamicScalingOutSuspended: b(t.Suspended.DynamicScalingOutSuspended),
			ScheduledScalingSuspended:  b(t.Suspended.ScheduledScalingSuspended)},
	}
}

// DescribeScalableTargets lists targets, optionally by resource id.
func (s *Service) DescribeScalableTargets(ctx context.Context, in *api.DescribeScalableTargetsRequest) (*api.DescribeScalableTargetsResponse, error) {
	if err := checkNamespace(in.ServiceNamespace); err != nil {
		return nil, err
	}
	all, err := list[targetRecord](ctx, s.st, targetsPrefix)
	if err != nil {
		return nil, err
	}
	out := []api.ScalableTarget{}
	for _, t := range all {
		if len(in.ResourceIds) > 0 && !slices.Contains(in.ResourceIds, t.ResourceID) {
			continue
		}
		if in.ScalableDimension != nil && *in.ScalableDimension != ecsDimension {
			continue
		}
		out = append(out, s.wireTarget(t))
	}
	pg, next, err := page(out, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	return &api.DescribeScalableTargetsResponse{ScalableTargets: pg, NextToken: next}, nil
}

// DeregisterScalableTarget deletes a target with its policies (and their
// alarms), scheduled actions and activities.
func (s *Service) DeregisterScalableTarget(ctx context.Context, in *api.DeregisterScalableTargetRequest) (*api.DeregisterScalableTargetResponse, error) {
	res := deref(in.ResourceId)
	if err := checkTarget(in.ServiceNamespace, res, in.ScalableDimension); err != nil {
		return nil, err
	}
	_, rev, err := get[targetRecord](ctx, s.st, targetKey(res))
	if errs.Is(err, errs.NotFound) {
		return nil, errs.R(errs.NotFound, reasonNotFound, "No scalable target found for service namespace: ecs, resource ID: %s, scalable dimension: ecs:service:DesiredCount", res)
	}
	if err != nil {
		return nil, err
	}
	pols, err := list[policyRecord](ctx, s.st, policiesPrefix+url.PathEscape(res)+"/")
	if err != nil {
		return nil, err
	}
	var alarms []string
	for _, p := range pols {
		for _, a := range p.Alarms {
			alarms = append(alarms, deref(a.AlarmName))
		}
	}
	if err := s.deleteAlarms(ctx, alarms); err != nil {
		return nil, err
	}
	r, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(targetKey(res), rev)}, store.Delete(targetKey(res)),
		store.DeletePrefix(policiesPrefix+url.PathEscape(res)+"/"), store.DeletePrefix(scheduledPrefix+url.PathEscape(res)+"/"))
	if err != nil {
		return nil, err
	}
	if !r.Succeeded {
		return nil, errs.R(errs.Conflict, reasonConcurrent, "Concurrent update on the scalable target %s; retry the request.", res)
	}
	return &api.DeregisterScalableTargetResponse{}, nil
}

// deleteAlarms deletes alarms that exist (a policy's alarms deleted by
// hand are not an error).
func (s *Service) deleteAlarms(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	d, err := s.alarms.DescribeAlarms(ctx, &cloudwatchDescribe{AlarmNames: names})
	if err != nil {
		return err
	}
	var exist []string
	for _, a := range d.MetricAlarms {
		exist = append(exist, deref(a.AlarmName))
	}
	if len(exist) == 0 {
		return nil
	}
	_, err = s.alarms.DeleteAlarms(ctx, &cloudwatchDelete{AlarmNames: exist})
	return err
}

// targetByARN finds a target by its ARN (tagging).
func (s *Service) targetByARN(ctx context.Context, a string) (targetRecord, int64, error) {
	all, err := list[targetRecord](ctx, s.st, targetsPrefix)
	if err != nil {
		return targetRecord{}, 0, err
	}
	for _, t := range all {
		if t.ARN == a {
			return get[targetRecord](ctx, s.st, targetKey(t.ResourceID))
		}
	}
	return targetRecord{}, 0, errs.R(errs.NotFound, reasonResource, "Resource not found: %s", a)
}

// TagResource adds tags to a scalable target.
func (s *Service) TagResource(ctx context.Context, in *api.TagResourceRequest) (*api.TagResourceResponse, error) {
	err := retry(func() error {
		t, rev, err := s.targetByARN(ctx, deref(in.ResourceARN))
		if err != nil {
			return err
		}
		if t.Tags == nil {
			t.Tags = map[string]string{}
		}
		for k, v := range in.Tags {
			t.Tags[k] = v
		}
		if len(t.Tags) > maxTags {
			return errs.R(errs.Invalid, reasonTooMany, "The number of tags exceeds the limit of %d.", maxTags)
		}
		return put(ctx, s.st, targetKey(t.ResourceID), t, rev)
	})
	return &api.TagResourceResponse{}, err
}

// UntagResource removes tags from a scalable target.
func (s *Service) UntagResource(ctx context.Context, in *api.UntagResourceRequest) (*api.UntagResourceResponse, error) {
	err := retry(func() error {
		t, rev, err := s.targetByARN(ctx, deref(in.ResourceARN))
		if err != nil {
			return err
		}
		for _, k := range in.TagKeys {
			delete(t.Tags, k)
		}
		return put(ctx, s.st, targetKey(t.ResourceID), t, rev)
	})
	return &api.UntagResourceResponse{}, err
}

// ListTagsForResource lists a scalable target's tags.
func (s *Service) ListTagsForResource(ctx context.Context, in *api.ListTagsForResourceRequest) (*api.ListTagsForResourceResponse, error) {
	t, _, err := s.targetByARN(ctx, deref(in.ResourceARN))
	if err != nil {
		return nil, err
	}
	tags := t.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return &api.ListTagsForResourceResponse{Tags: tags}, nil
}
