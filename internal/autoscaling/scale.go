package autoscaling

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	api "github.com/berthdev/berth/internal/api/applicationautoscalingapi"
	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/cloudwatch"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// activityRecord is a scaling activity as stored.
type activityRecord struct {
	ID            string
	ResourceID    string
	Description   string
	Cause         string
	Status        api.ScalingActivityStatusCode
	StatusMessage string
	Start         time.Time
	End           time.Time `json:",omitzero"`
	// Desired is the desired count the activity set; 0 with Bounds for an
	// activity that set only limits.
	Desired   int32
	SetsCount bool
	// Seq orders activities recorded at the same instant.
	Seq int64
}

var activitySeq atomic.Int64

func activityKey(res string, t time.Time, id string) string {
	return fmt.Sprintf("%s%020d-%s", activitiesKeyPrefix(res), t.UnixNano(), id)
}

// addActivity stores an activity and drops the oldest beyond the bound.
func (s *Service) addActivity(ctx context.Context, a activityRecord) {
	a.Seq = activitySeq.Add(1)
	b, _ := json.Marshal(a)
	ops := []store.Op{store.Put(activityKey(a.ResourceID, a.Start, a.ID), b)}
	if r, err := s.st.List(ctx, activitiesKeyPrefix(a.ResourceID), store.ListOptions{KeysOnly: true}); err == nil {
		for i := 0; i < len(r.KVs)+1-s.cfg.ActivitiesPerTarget; i++ {
			ops = append(ops, store.Delete(r.KVs[i].Key))
		}
	}
	if _, err := s.st.Txn(ctx, nil, ops...); err != nil {
		s.log.Warn("record scaling activity", "resource", a.ResourceID, "err", err)
	}
}

// setDesired changes a service's desired count and records the activity.
func (s *Service) setDesired(ctx context.Context, t targetRecord, from, to int32, cause string) error {
	cluster, service := t.service()
	now := s.now()
	a := activityRecord{ID: newUUID(), ResourceID: t.ResourceID, Start: now, Cause: cause, Desired: to, SetsCount: true,
		Description: fmt.Sprintf("Setting desired count to %d.", to)}
	if err := s.scaler.SetDesiredCount(ctx, cluster, service, to); err != nil {
		a.Status, a.End = api.ScalingActivityStatusCodeFailed, now
		a.StatusMessage = fmt.Sprintf("Failed to set desired count to %d. Reason: %s", to, errs.MessageOf(err))
		s.addActivity(ctx, a)
		return err
	}
	a.Status = api.ScalingActivityStatusCodeInProgress
	a.StatusMessage = fmt.Sprintf("Successfully set desired count to %d. Waiting for change to be fulfilled by ecs.", to)
	s.supersede(ctx, t.ResourceID)
	s.addActivity(ctx, a)
	s.log.Info("scaled", "resource", t.ResourceID, "from", from, "to", to, "cause", cause)
	return nil
}

// supersede marks a target's activities still in progress as Overridden:
// a newer desired count replaces theirs.
func (s *Service) supersede(ctx context.Context, res string) {
	r, err := s.st.List(ctx, activitiesKeyPrefix(res), store.ListOptions{})
	if err != nil {
		return
	}
	for _, kv := range r.KVs {
		var a activityRecord
		if json.Unmarshal(kv.Value, &a) != nil || a.Status != api.ScalingActivityStatusCodeInProgress || !a.SetsCount {
			continue
		}
		a.Status, a.End = api.ScalingActivityStatusCodeOverridden, s.now()
		a.StatusMessage = fmt.Sprintf("Successfully set desired count to %d. Change was overridden by a later scaling activity.", a.Desired)
		b, _ := json.Marshal(a)
		s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(kv.Key, kv.ModRevision)}, store.Put(kv.Key, b))
	}
}

// completeActivities marks activities in progress Successful once the
// service runs the count they set.
func (s *Service) completeActivities(ctx context.Context) {
	r, err := s.st.List(ctx, activitiesPrefix, store.ListOptions{})
	if err != nil {
		return
	}
	for _, kv := range r.KVs {
		var a activityRecord
		if json.Unmarshal(kv.Value, &a) != nil || a.Status != api.ScalingActivityStatusCodeInProgress || !a.SetsCount {
			continue
		}
		cluster, service, _ := parseResource(a.ResourceID)
		c, err := s.scaler.Capacity(ctx, cluster, service)
		now := s.now()
		switch {
		case errs.Is(err, errs.NotFound):
			a.Status, a.End = api.ScalingActivityStatusCodeUnfulfilled, now
			a.StatusMessage = fmt.Sprintf("Successfully set desired count to %d. ECS service %s no longer exists.", a.Desired, a.ResourceID)
		case err != nil:
			continue
		case c.Running == a.Desired && c.Desired == a.Desired:
			a.Status, a.End = api.ScalingActivityStatusCodeSuccessful, now
			a.StatusMessage = fmt.Sprintf("Successfully set desired count to %d. Change successfully fulfilled by ecs.", a.Desired)
		default:
			continue
		}
		b, _ := json.Marshal(a)
		s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(kv.Key, kv.ModRevision)}, store.Put(kv.Key, b))
	}
}

// clampToBounds brings a service's desired count within its target's
// limits after they changed.
func (s *Service) clampToBounds(ctx context.Context, t targetRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cluster, service := t.service()
	c, err := s.scaler.Capacity(ctx, cluster, service)
	if err != nil {
		return
	}
	b := Bounds{t.Min, t.Max}
	to := b.Clamp(c.Desired)
	if to == c.Desired {
		return
	}
	cause := fmt.Sprintf("minimum capacity was set to %d", t.Min)
	if to < c.Desired {
		cause = fmt.Sprintf("maximum capacity was set to %d", t.Max)
	}
	if err := s.setDesired(ctx, t, c.Desired, to, cause); err != nil {
		s.log.Warn("bring desired count within limits", "resource", t.ResourceID, "err", err)
	}
}

// Runner delivers CloudWatch alarm actions that name scaling policies;
// the daemon installs it as the CloudWatch service's ActionRunner. Other
// ARNs go to Next (when set).
type Runner struct {
	S    *Service
	Next cloudwatch.ActionRunner
}

// Run implements cloudwatch.ActionRunner.
func (r Runner) Run(ctx context.Context, actionARN string, info cloudwatch.AlarmInfo) error {
	if !IsPolicyARN(actionARN) {
		if r.Next != nil {
			return r.Next.Run(ctx, actionARN, info)
		}
		return errs.E(errs.Unsupported, "the action target %s is not deliverable in Berth", actionARN)
	}
	return r.S.Trigger(ctx, actionARN, info.Name)
}

func invokedKey(alarm, policy string) string { return alarm + "\x00" + policy }

// Trigger runs the policy an alarm names, with the alarm's current state
// and its latest datapoints.
func (s *Service) Trigger(ctx context.Context, policyARN, alarmName string) error {
	d, err := s.alarms.DescribeAlarms(ctx, &cloudwatchapi.DescribeAlarmsInput{AlarmNames: []string{alarmName}})
	if err != nil {
		return err
	}
	if len(d.MetricAlarms) == 0 {
		return errs.E(errs.NotFound, "alarm %s not found", alarmName)
	}
	return s.trigger(ctx, policyARN, d.MetricAlarms[0])
}

func (s *Service) findPolicy(ctx context.Context, policyARN string) (policyRecord, int64, error) {
	all, err := list[policyRecord](ctx, s.st, policiesPrefix)
	if err != nil {
		return policyRecord{}, 0, err
	}
	for _, p := range all {
		if p.ARN == policyARN {
			return get[policyRecord](ctx, s.st, policyKey(p.resource(), p.name()))
		}
	}
	return policyRecord{}, 0, errs.E(errs.NotFound, "the scaling policy %s does not exist", policyARN)
}

// alarmValues returns the newest datapoints the alarm evaluated, from its
// state reason data (empty for a state set without data).
func alarmValues(a cloudwatchapi.MetricAlarm) []float64 {
	var d struct {
		RecentDatapoints []float64 `json:"recentDatapoints"`
	}
	if a.StateReasonData == nil || json.Unmarshal([]byte(*a.StateReasonData), &d) != nil {
		return nil
	}
	return d.RecentDatapoints
}

func (s *Service) trigger(ctx context.Context, policyARN string, al cloudwatchapi.MetricAlarm) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	alarmName := deref(al.AlarmName)
	s.invoked[invokedKey(alarmName, policyARN)] = s.now()
	p, rev, err := s.findPolicy(ctx, policyARN)
	if err != nil {
		return err
	}
	t, _, err := get[targetRecord](ctx, s.st, targetKey(p.resource()))
	if err != nil {
		return err
	}
	cluster, service := t.service()
	c, err := s.scaler.Capacity(ctx, cluster, service)
	if err != nil {
		return err
	}
	now := s.now()
	b := Bounds{t.Min, t.Max}
	vals := alarmValues(al)
	var dec Decision
	switch p.policyType() {
	case api.PolicyTypeTargetTrackingScaling:
		cfg := p.Def.TargetTrackingScalingPolicyConfiguration
		high := len(p.Alarms) > 0 && deref(p.Alarms[0].AlarmName) == alarmName
		if len(p.Alarms) < 2 || (!high && deref(p.Alarms[1].AlarmName) != alarmName) {
			return errs.E(errs.Invalid, "the alarm %s is not one of the target tracking policy's alarms", alarmName)
		}
		metric := math.NaN()
		if len(vals) > 0 {
			metric = vals[len(vals)-1]
		}
		tt := TargetTracking{Target: deref(cfg.TargetValue), DisableScaleIn: deref(cfg.DisableScaleIn),
			ScaleOutCooldown: cooldown(cfg.ScaleOutCooldown), ScaleInCooldown: cooldown(cfg.ScaleInCooldown)}
		dec = DecideTargetTracking(tt, high, metric, c.Desired, b, p.Cooldown, now)
	default:
		cfg := p.Def.StepScalingPolicyConfiguration
		diff := Aggregate(string(deref(cfg.MetricAggregationType)), vals) - deref(al.Threshold)
		if math.IsNaN(diff) {
			// A state set without datapoints (SetAlarmState): the metric
			// is taken to be just past the threshold.
			diff = 0
			if strings.HasPrefix(string(deref(al.ComparisonOperator)), "LessThan") {
				diff = math.Nextafter(0, -1)
			}
		}
		sp := StepScaling{AdjustmentType: string(deref(cfg.AdjustmentType)), Steps: steps(cfg.StepAdjustments),
			MinAdjustmentMagnitude: deref(cfg.MinAdjustmentMagnitude), Cooldown: time.Duration(deref(cfg.Cooldown)) * time.Second}
		dec = DecideStep(sp, diff, c.Desired, b, p.Cooldown, now)
	}
	if dec.Desired == c.Desired {
		s.log.Debug("policy did not scale", "policy", p.name(), "alarm", alarmName, "reason", dec.Reason)
		return nil
	}
	if dec.Desired > c.Desired && deref(t.Suspended.DynamicScalingOutSuspended) ||
		dec.Desired < c.Desired && deref(t.Suspended.DynamicScalingInSuspended) {
		return nil
	}
	cause := fmt.Sprintf("monitor alarm %s in state %s triggered policy %s", alarmName, deref(al.StateValue), p.name())
	if err := s.setDesired(ctx, t, c.Desired, dec.Desired, cause); err != nil {
		return err
	}
	p.Cooldown = p.Cooldown.Record(c.Desired, dec.Desired, now)
	if err := put(ctx, s.st, policyKey(p.resource(), p.name()), p, rev); err != nil {
		s.log.Warn("record policy cooldown", "policy", p.name(), "err", err)
	}
	return nil
}

// cooldown is a target tracking cooldown: 300 s when not given, as AWS
// for ECS.
func cooldown(p *int32) time.Duration {
	if p == nil {
		return 300 * time.Second
	}
	return time.Duration(*p) * time.Second
}

// reinvoke runs again the policies of alarms that stay in ALARM, once per
// alarm period (CloudWatch invokes Auto Scaling actions periodically while
// an alarm stays in ALARM). Transitions themselves arrive through Runner.
func (s *Service) reinvoke(ctx context.Context) {
	var token *string
	for {
		d, err := s.alarms.DescribeAlarms(ctx, &cloudwatchapi.DescribeAlarmsInput{StateValue: ptr(cloudwatchapi.StateValueAlarm), MaxRecords: ptr(int32(100)), NextToken: token})
		if err != nil {
			s.log.Warn("list alarms in ALARM", "err", err)
			return
		}
		now := s.now()
		for _, a := range d.MetricAlarms {
			if a.ActionsEnabled != nil && !*a.ActionsEnabled {
				continue
			}
			period := time.Duration(deref(a.Period)) * time.Second
			if period <= 0 {
				period = time.Minute
			}
			for _, act := range a.AlarmActions {
				if !IsPolicyARN(act) {
					continue
				}
				s.mu.Lock()
				last, ok := s.invoked[invokedKey(deref(a.AlarmName), act)]
				s.mu.Unlock()
				if !ok && a.StateUpdatedTimestamp != nil {
					last = a.StateUpdatedTimestamp.Time // the transition ran it
				}
				if now.Sub(last) < period {
					continue
				}
				if err := s.trigger(ctx, act, a); err != nil && !errs.Is(err, errs.NotFound) {
					s.log.Warn("re-invoke scaling policy", "alarm", deref(a.AlarmName), "policy", act, "err", err)
				}
			}
		}
		if d.NextToken == nil {
			return
		}
		token = d.NextToken
	}
}

// DescribeScalingActivities lists activities, newest first.
func (s *Service) DescribeScalingActivities(ctx context.Context, in *api.DescribeScalingActivitiesRequest) (*api.DescribeScalingActivitiesResponse, error) {
	if err := checkNamespace(in.ServiceNamespace); err != nil {
		return nil, err
	}
	pfx := activitiesPrefix
	if in.ResourceId != nil {
		pfx = activitiesKeyPrefix(*in.ResourceId)
	}
	all, err := list[activityRecord](ctx, s.st, pfx)
	if err != nil {
		return nil, err
	}
	if in.ScalableDimension != nil && *in.ScalableDimension != ecsDimension {
		all = nil
	}
	slices.SortStableFunc(all, func(a, b activityRecord) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return cmp.Compare(b.Seq, a.Seq)
	})
	pg, next, err := page(all, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := []api.ScalingActivity{}
	for _, a := range pg {
		w := api.ScalingActivity{ActivityId: ptr(a.ID), Cause: ptr(a.Cause), Description: ptr(a.Description),
			ResourceId: ptr(a.ResourceID), ScalableDimension: ptr(ecsDimension), ServiceNamespace: ptr(ecsNamespace),
			StartTime: awsproto.NewTime(a.Start), StatusCode: ptr(a.Status), StatusMessage: ptr(a.StatusMessage)}
		if !a.End.IsZero() {
			w.EndTime = awsproto.NewTime(a.End)
		}
		out = append(out, w)
	}
	return &api.DescribeScalingActivitiesResponse{ScalingActivities: out, NextToken: next}, nil
}
