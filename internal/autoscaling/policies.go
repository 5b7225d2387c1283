package autoscaling

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	api "github.com/berthdev/berth/internal/api/applicationautoscalingapi"
	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/lazyre"
	"github.com/berthdev/berth/internal/store"
)

type (
	cloudwatchDescribe = cloudwatchapi.DescribeAlarmsInput
	cloudwatchDelete   = cloudwatchapi.DeleteAlarmsInput
)

// policyRecord is a scaling policy as stored.
type policyRecord struct {
	Def      api.PutScalingPolicyRequest
	ARN      string
	Created  time.Time
	Alarms   []api.Alarm `json:",omitempty"` // target tracking: AlarmHigh, AlarmLow
	Cooldown Cooldown
}

func (p policyRecord) resource() string { return deref(p.Def.ResourceId) }
func (p policyRecord) name() string     { return deref(p.Def.PolicyName) }
func (p policyRecord) policyType() api.PolicyType {
	if p.Def.PolicyType == nil {
		return api.PolicyTypeStepScaling
	}
	return *p.Def.PolicyType
}

func policyNotFound(res, name string) error {
	return errs.R(errs.NotFound, reasonNotFound, "No scaling policy found for service namespace: ecs, resource ID: %s, scalable dimension: ecs:service:DesiredCount, policy name: %s", res, name)
}

// IsPolicyARN says whether an alarm action names a scaling policy.
func IsPolicyARN(a string) bool {
	return strings.HasPrefix(a, "arn:") && strings.Contains(a, ":autoscaling:") && strings.Contains(a, ":scalingPolicy:")
}

func (s *Service) policyARN(res, name string) string {
	return s.arns.Service("autoscaling", "scalingPolicy:"+newUUID()+":resource/ecs/"+res+":policyName/"+name)
}

// checkStep checks a step scaling configuration.
func checkStep(c *api.StepScalingPolicyConfiguration) error {
	if c == nil {
		return invalid("StepScalingPolicyConfiguration is required for a policy of type StepScaling.")
	}
	if c.AdjustmentType == nil {
		return invalid("AdjustmentType is required for a step scaling policy.")
	}
	if len(c.StepAdjustments) == 0 {
		return invalid("StepAdjustments are required for a step scaling policy.")
	}
	if c.MinAdjustmentMagnitude != nil && *c.AdjustmentType != api.AdjustmentTypePercentChangeInCapacity {
		return invalid("MinAdjustmentMagnitude is only supported with the adjustment type PercentChangeInCapacity.")
	}
	if c.Cooldown != nil && *c.Cooldown < 0 {
		return invalid("Cooldown must not be negative.")
	}
	steps := steps(c.StepAdjustments)
	for i, st := range steps {
		if math.IsNaN(st.Lower) && math.IsNaN(st.Upper) && len(steps) > 1 {
			return invalid("A step adjustment without lower and upper bounds must be the only one.")
		}
		if !math.IsNaN(st.Lower) && !math.IsNaN(st.Upper) && st.Lower >= st.Upper {
			return invalid("The upper bound of a step adjustment must be greater than its lower bound.")
		}
		if i > 0 {
			prev := steps[i-1]
			if math.IsNaN(prev.Upper) || math.IsNaN(st.Lower) || prev.Upper != st.Lower {
				return invalid("The ranges of the step adjustments must not overlap or have a gap between them.")
			}
		}
	}
	return nil
}

// steps converts step adjustments, sorted by lower bound (unbounded
// first).
func steps(in []api.StepAdjustment) []Step {
	out := make([]Step, 0, len(in))
	for _, a := range in {
		st := Step{Lower: math.NaN(), Upper: math.NaN(), Adjustment: deref(a.ScalingAdjustment)}
		if a.MetricIntervalLowerBound != nil {
			st.Lower = *a.MetricIntervalLowerBound
		}
		if a.MetricIntervalUpperBound != nil {
			st.Upper = *a.MetricIntervalUpperBound
		}
		out = append(out, st)
	}
	slices.SortStableFunc(out, func(a, b Step) int {
		switch {
		case math.IsNaN(a.Lower) && math.IsNaN(b.Lower):
			return 0
		case math.IsNaN(a.Lower):
			return -1
		case math.IsNaN(b.Lower):
			return 1
		}
		return cmp.Compare(a.Lower, b.Lower)
	})
	return out
}

// trackedMetric is the metric a target tracking policy follows, as an
// alarm definition's metric members.
func trackedMetric(c *api.TargetTrackingScalingPolicyConfiguration, res string) (cloudwatchapi.PutMetricAlarmInput, error) {
	var a cloudwatchapi.PutMetricAlarmInput
	if c == nil {
		return a, invalid("TargetTrackingScalingPolicyConfiguration is required for a policy of type TargetTrackingScaling.")
	}
	if c.TargetValue == nil || !(*c.TargetValue > 0) || math.IsInf(*c.TargetValue, 0) {
		return a, invalid("TargetValue must be a positive number.")
	}
	if c.ScaleInCooldown != nil && *c.ScaleInCooldown < 0 || c.ScaleOutCooldown != nil && *c.ScaleOutCooldown < 0 {
		return a, invalid("Cooldowns must not be negative.")
	}
	pre, cus := c.PredefinedMetricSpecification, c.CustomizedMetricSpecification
	if (pre == nil) == (cus == nil) {
		return a, invalid("Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification must be specified.")
	}
	cluster, service, _ := parseResource(res)
	if pre != nil {
		switch deref(pre.PredefinedMetricType) {
		case api.MetricTypeECSServiceAverageCPUUtilization:
			a.MetricName = ptr("CPUUtilization")
		case api.MetricTypeECSServiceAverageMemoryUtilization:
			a.MetricName = ptr("MemoryUtilization")
		case api.MetricTypeALBRequestCountPerTarget:
			return albRequestCountPerTarget(pre.ResourceLabel)
		default:
			return a, invalid("Unsupported predefined metric type %s for service namespace ecs: use ECSServiceAverageCPUUtilization, ECSServiceAverageMemoryUtilization or ALBRequestCountPerTarget.", deref(pre.PredefinedMetricType))
		}
		if pre.ResourceLabel != nil {
			return a, invalid("ResourceLabel is only supported with the predefined metric type ALBRequestCountPerTarget.")
		}
		a.Namespace = ptr("AWS/ECS")
		a.Statistic = ptr(cloudwatchapi.StatisticAverage)
		a.Dimensions = []cloudwatchapi.Dimension{{Name: ptr("ClusterName"), Value: ptr(cluster)}, {Name: ptr("ServiceName"), Value: ptr(service)}}
		return a, nil
	}
	if len(cus.Metrics) > 0 {
		if cus.MetricName != nil || cus.Namespace != nil || cus.Statistic != nil || len(cus.Dimensions) > 0 || cus.Unit != nil {
			return a, invalid("A customized metric specification has either Metrics or MetricName, Namespace, Dimensions, Statistic and Unit, not both.")
		}
		for _, q := range cus.Metrics {
			mq := cloudwatchapi.MetricDataQuery{Id: q.Id, Expression: q.Expression, Label: q.Label, ReturnData: q.ReturnData}
			if ms := q.MetricStat; ms != nil {
				m := cloudwatchapi.Metric{}
				if ms.Metric != nil {
					m.MetricName, m.Namespace = ms.Metric.MetricName, ms.Metric.Namespace
					for _, d := range ms.Metric.Dimensions {
						m.Dimensions = append(m.Dimensions, cloudwatchapi.Dimension{Name: d.Name, Value: d.Value})
					}
				}
				mq.MetricStat = &cloudwatchapi.MetricStat{Metric: &m, Stat: ms.Stat, Unit: (*cloudwatchapi.StandardUnit)(ms.Unit)}
			}
			a.Metrics = append(a.Metrics, mq)
		}
		return a, nil
	}
	if cus.MetricName == nil || cus.Namespace == nil || cus.Statistic == nil {
		return a, invalid("A customized metric specification needs MetricName, Namespace and Statistic (or Metrics).")
	}
	a.MetricName, a.Namespace = cus.MetricName, cus.Namespace
	a.Statistic = ptr(cloudwatchapi.Statistic(*cus.Statistic))
	if cus.Unit != nil {
		a.Unit = ptr(cloudwatchapi.StandardUnit(*cus.Unit))
	}
	for _, d := range cus.Dimensions {
		a.Dimensions = append(a.Dimensions, cloudwatchapi.Dimension{Name: d.Name, Value: d.Value})
	}
	return a, nil
}

// ttAlarms makes the AlarmHigh and AlarmLow definitions of a target
// tracking policy, named and described as AWS does.
func (s *Service) ttAlarms(metric cloudwatchapi.PutMetricAlarmInput, target float64, res, policyARN string, names [2]string) [2]cloudwatchapi.PutMetricAlarmInput {
	period := int32(s.cfg.AlarmPeriod / time.Second)
	desc := fmt.Sprintf("DO NOT EDIT OR DELETE. For TargetTrackingScaling policy %s.", policyARN)
	mk := func(name string, n int32, thr float64, op cloudwatchapi.ComparisonOperator) cloudwatchapi.PutMetricAlarmInput {
		a := metric
		a.AlarmName, a.AlarmDescription = ptr(name), ptr(desc)
		a.ActionsEnabled, a.AlarmActions = ptr(true), []string{policyARN}
		a.EvaluationPeriods, a.DatapointsToAlarm = ptr(n), ptr(n)
		a.Threshold, a.ComparisonOperator = ptr(thr), ptr(op)
		a.TreatMissingData = ptr("missing")
		if len(a.Metrics) > 0 {
			qs := slices.Clone(a.Metrics)
			for i := range qs {
				if qs[i].MetricStat != nil {
					ms := *qs[i].MetricStat
					ms.Period = ptr(period)
					qs[i].MetricStat = &ms
				}
			}
			a.Metrics = qs
		} else {
			a.Period = ptr(period)
		}
		return a
	}
	return [2]cloudwatchapi.PutMetricAlarmInput{
		mk(names[0], s.cfg.HighDatapoints, target, cloudwatchapi.ComparisonOperatorGreaterThanThreshold),
		mk(names[1], s.cfg.LowDatapoints, target*0.9, cloudwatchapi.ComparisonOperatorLessThanThreshold),
	}
}

// PutScalingPolicy creates or replaces a scaling policy.
func (s *Service) PutScalingPolicy(ctx context.Context, in *api.PutScalingPolicyRequest) (*api.PutScalingPolicyResponse, error) {
	res, name := deref(in.ResourceId), deref(in.PolicyName)
	if err := checkTarget(in.ServiceNamespace, res, in.ScalableDimension); err != nil {
		return nil, err
	}
	typ := deref(in.PolicyType)
	if typ == "" {
		typ = api.PolicyTypeStepScaling
	}
	var metric cloudwatchapi.PutMetricAlarmInput
	switch typ {
	case api.PolicyTypeStepScaling:
		if in.TargetTrackingScalingPolicyConfiguration != nil || in.PredictiveScalingPolicyConfiguration != nil {
			return nil, invalid("A policy of type StepScaling takes only a StepScalingPolicyConfiguration.")
		}
		if err := checkStep(in.StepScalingPolicyConfiguration); err != nil {
			return nil, err
		}
	case api.PolicyTypeTargetTrackingScaling:
		if in.StepScalingPolicyConfiguration != nil || in.PredictiveScalingPolicyConfiguration != nil {
			return nil, invalid("A policy of type TargetTrackingScaling takes only a TargetTrackingScalingPolicyConfiguration.")
		}
		var err error
		if metric, err = trackedMetric(in.TargetTrackingScalingPolicyConfiguration, res); err != nil {
			return nil, err
		}
	default:
		return nil, invalid("Unsupported policy type %s for service namespace ecs: Berth supports StepScaling and TargetTrackingScaling.", typ)
	}
	if _, _, err := get[targetRecord](ctx, s.st, targetKey(res)); errs.Is(err, errs.NotFound) {
		return nil, targetNotFound(res)
	} else if err != nil {
		return nil, err
	}
	key := policyKey(res, name)
	old, rev, err := get[policyRecord](ctx, s.st, key)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return nil, err
	}
	rec := policyRecord{Def: *in, Created: s.now()}
	rec.Def.PolicyType = ptr(typ)
	if rev != 0 {
		rec.ARN, rec.Created, rec.Cooldown = old.ARN, old.Created, old.Cooldown
	} else {
		rec.ARN = s.policyARN(res, name)
	}
	var stale []string // alarms of the old definition no longer wanted
	if typ == api.PolicyTypeTargetTrackingScaling {
		id := newUUID()
		names := [2]string{"TargetTracking-" + res + "-AlarmHigh-" + id, "TargetTracking-" + res + "-AlarmLow-" + newUUID()}
		if len(old.Alarms) == 2 {
			names = [2]string{deref(old.Alarms[0].AlarmName), deref(old.Alarms[1].AlarmName)}
		}
		defs := s.ttAlarms(metric, *in.TargetTrackingScalingPolicyConfiguration.TargetValue, res, rec.ARN, names)
		for i := range defs {
			if _, err := s.alarms.PutMetricAlarm(ctx, &defs[i]); err != nil {
				if rev == 0 {
					s.deleteAlarms(ctx, alarmNames(rec.Alarms)) // the new policy's first alarm
				}
				return nil, errs.Wrap(errs.KindOf(err), err, "create the alarm %s", names[i])
			}
			rec.Alarms = append(rec.Alarms, api.Alarm{AlarmName: ptr(names[i]), AlarmARN: ptr(s.arns.Service("cloudwatch", "alarm:"+names[i]))})
		}
	} else {
		for _, a := range old.Alarms {
			stale = append(stale, deref(a.AlarmName))
		}
	}
	if err := put(ctx, s.st, key, rec, rev); err != nil {
		if rev == 0 && len(rec.Alarms) > 0 {
			s.deleteAlarms(ctx, alarmNames(rec.Alarms))
		}
		if errs.Is(err, errs.Conflict) {
			return nil, errs.R(errs.Conflict, reasonConcurrent, "Concurrent update on the scaling policy %s; retry the request.", name)
		}
		return nil, err
	}
	if err := s.deleteAlarms(ctx, stale); err != nil {
		s.log.Warn("delete the alarms of a replaced target tracking policy", "policy", name, "err", err)
	}
	out := &api.PutScalingPolicyResponse{PolicyARN: ptr(rec.ARN)}
	if len(rec.Alarms) > 0 {
		out.Alarms = rec.Alarms
	}
	return out, nil
}

func alarmNames(as []api.Alarm) []string {
	var out []string
	for _, a := range as {
		out = append(out, deref(a.AlarmName))
	}
	return out
}

// stepAlarms lists the alarms whose actions name a step policy.
func (s *Service) stepAlarms(ctx context.Context, policyARN string) []api.Alarm {
	out := []api.Alarm{}
	d, err := s.alarms.DescribeAlarms(ctx, &cloudwatchapi.DescribeAlarmsInput{ActionPrefix: ptr(policyARN), MaxRecords: ptr(int32(100))})
	if err != nil {
		return out
	}
	for _, a := range d.MetricAlarms {
		out = append(out, api.Alarm{AlarmName: a.AlarmName, AlarmARN: a.AlarmArn})
	}
	return out
}

// DescribeScalingPolicies lists policies.
func (s *Service) DescribeScalingPolicies(ctx context.Context, in *api.DescribeScalingPoliciesRequest) (*api.DescribeScalingPoliciesResponse, error) {
	if err := checkNamespace(in.ServiceNamespace); err != nil {
		return nil, err
	}
	pfx := policiesPrefix
	if in.ResourceId != nil {
		pfx += url.PathEscape(*in.ResourceId) + "/"
	}
	all, err := list[policyRecord](ctx, s.st, pfx)
	if err != nil {
		return nil, err
	}
	var sel []policyRecord
	for _, p := range all {
		if len(in.PolicyNames) > 0 && !slices.Contains(in.PolicyNames, p.name()) {
			continue
		}
		if in.ScalableDimension != nil && *in.ScalableDimension != ecsDimension {
			continue
		}
		sel = append(sel, p)
	}
	pg, next, err := page(sel, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := []api.ScalingPolicy{}
	for _, p := range pg {
		d := p.Def
		w := api.ScalingPolicy{CreationTime: awsproto.NewTime(p.Created), PolicyARN: ptr(p.ARN), PolicyName: d.PolicyName,
			PolicyType: ptr(p.policyType()), ResourceId: d.ResourceId, ScalableDimension: ptr(ecsDimension), ServiceNamespace: ptr(ecsNamespace),
			StepScalingPolicyConfiguration: d.StepScalingPolicyConfiguration, TargetTrackingScalingPolicyConfiguration: d.TargetTrackingScalingPolicyConfiguration,
			Alarms: p.Alarms}
		if p.policyType() == api.PolicyTypeStepScaling {
			w.Alarms = s.stepAlarms(ctx, p.ARN)
		}
		out = append(out, w)
	}
	return &api.DescribeScalingPoliciesResponse{ScalingPolicies: out, NextToken: next}, nil
}

// DeleteScalingPolicy deletes a policy and the alarms it owns.
func (s *Service) DeleteScalingPolicy(ctx context.Context, in *api.DeleteScalingPolicyRequest) (*api.DeleteScalingPolicyResponse, error) {
	res, name := deref(in.ResourceId), deref(in.PolicyName)
	if err := checkTarget(in.ServiceNamespace, res, in.ScalableDimension); err != nil {
		return nil, err
	}
	p, rev, err := get[policyRecord](ctx, s.st, policyKey(res, name))
	if errs.Is(err, errs.NotFound) {
		return nil, policyNotFound(res, name)
	}
	if err != nil {
		return nil, err
	}
	if err := s.deleteAlarms(ctx, alarmNames(p.Alarms)); err != nil {
		return nil, err
	}
	r, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(policyKey(res, name), rev)}, store.Delete(policyKey(res, name)))
	if err != nil {
		return nil, err
	}
	if !r.Succeeded {
		return nil, errs.R(errs.Conflict, reasonConcurrent, "Concurrent update on the scaling policy %s; retry the request.", name)
	}
	return &api.DeleteScalingPolicyResponse{}, nil
}

// resourceLabelRE is ALBRequestCountPerTarget's ResourceLabel:
// app/<load balancer name>/<id>/targetgroup/<target group name>/<id>.
var resourceLabelRE = lazyre.New(`^app/[a-zA-Z0-9-]{1,32}/[0-9a-f]{16}/targetgroup/[a-zA-Z0-9-]{1,32}/[0-9a-f]{16}$`)

// albRequestCountPerTarget is the alarm metric of the predefined
// ALBRequestCountPerTarget: AWS/ApplicationELB RequestCountPerTarget
// (requests of the target group divided by its healthy targets) of the
// target group the ResourceLabel names, summed over the period.
func albRequestCountPerTarget(label *string) (cloudwatchapi.PutMetricAlarmInput, error) {
	var a cloudwatchapi.PutMetricAlarmInput
	if label == nil || *label == "" {
		return a, invalid("ResourceLabel must be specified for the predefined metric type ALBRequestCountPerTarget.")
	}
	if !resourceLabelRE.MatchString(*label) {
		return a, invalid("ResourceLabel %s is not valid for ALBRequestCountPerTarget: it must be app/<load-balancer-name>/<load-balancer-id>/targetgroup/<target-group-name>/<target-group-id>.", *label)
	}
	tg := (*label)[strings.Index(*label, "/targetgroup/")+1:]
	a.Namespace = ptr("AWS/ApplicationELB")
	a.MetricName = ptr("RequestCountPerTarget")
	a.Statistic = ptr(cloudwatchapi.StatisticSum)
	a.Dimensions = []cloudwatchapi.Dimension{{Name: ptr("TargetGroup"), Value: ptr(tg)}}
	return a, nil
}
