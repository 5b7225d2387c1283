package scenario

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/berthtest"
)

// autoscalingService makes a cluster, a task definition and a service
// with the given desired count (no agent: its tasks are not placed, but
// the desired count is what scaling changes).
func autoscalingService(t *testing.T, cfg aws.Config, cluster, name string, desired int32) {
	t.Helper()
	c := ecs.NewFromConfig(cfg)
	ctx := context.Background()
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(name),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("main"), Image: aws.String("busybox"), Memory: aws.Int32(32)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String(name),
		TaskDefinition: aws.String(name), DesiredCount: aws.Int32(desired)}); err != nil {
		t.Fatal(err)
	}
}

func desiredCount(t *testing.T, cfg aws.Config, cluster, name string) int32 {
	t.Helper()
	out, err := ecs.NewFromConfig(cfg).DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{name}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describe service: %+v %v", out, err)
	}
	return out.Services[0].DesiredCount
}

func wantAPIError(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), msgPart) {
		t.Fatalf("want %s containing %q, got %v", code, msgPart, err)
	}
}

// TestAutoScalingGoSDK drives Application Auto Scaling through the AWS SDK
// for Go v2: bad input, step scaling triggered by SetAlarmState, target
// tracking's own alarms, a scheduled action a minute ahead on a driven
// clock, tags and deregistration.
func TestAutoScalingGoSDK(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, nil)
	cfg := s.AWSConfig()
	ctx := context.Background()
	as := aas.NewFromConfig(cfg)
	cw := cloudwatch.NewFromConfig(cfg)
	autoscalingService(t, cfg, "shop", "web", 1)
	res := aws.String("service/shop/web")
	dim := aastypes.ScalableDimensionECSServiceDesiredCount
	ns := aastypes.ServiceNamespaceEcs

	// Bad input changes nothing.
	_, err := as.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{ServiceNamespace: aastypes.ServiceNamespaceDynamodb,
		ResourceId: aws.String("table/t"), ScalableDimension: aastypes.ScalableDimensionDynamoDBTableReadCapacityUnits, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(2)})
	wantAPIError(t, err, "ValidationException", "service namespace ecs only")
	_, err = as.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim, MinCapacity: aws.Int32(5), MaxCapacity: aws.Int32(2)})
	wantAPIError(t, err, "ValidationException", "Minimum capacity cannot be greater than maximum capacity")
	_, err = as.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{ServiceNamespace: ns, ResourceId: aws.String("service/shop/nope"), ScalableDimension: dim, MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(2)})
	wantAPIError(t, err, "ValidationException", "ECS service doesn't exist: service/shop/nope")
	_, err = as.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim, PolicyName: aws.String("p"),
		PolicyType: aastypes.PolicyTypeStepScaling, StepScalingPolicyConfiguration: &aastypes.StepScalingPolicyConfiguration{AdjustmentType: aastypes.AdjustmentTypeChangeInCapacity,
			StepAdjustments: []aastypes.StepAdjustment{{MetricIntervalLowerBound: aws.Float64(0), ScalingAdjustment: aws.Int32(1)}}}})
	wantAPIError(t, err, "ObjectNotFoundException", "No scalable target registered for service namespace: ecs, resource ID: service/shop/web")
	d, err := as.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{ServiceNamespace: ns})
	if err != nil || len(d.ScalableTargets) != 0 {
		t.Fatalf("targets after bad input: %+v %v", d, err)
	}

	reg, err := as.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim,
		MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(10), Tags: map[string]string{"team": "shop"}})
	if err != nil || !strings.HasPrefix(aws.ToString(reg.ScalableTargetARN), "arn:aws:application-autoscaling:us-east-1:") {
		t.Fatalf("register: %+v %v", reg, err)
	}
	_, err = as.PutScheduledAction(ctx, &aas.PutScheduledActionInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim,
		ScheduledActionName: aws.String("bad"), Schedule: aws.String("cron(0 10 * * *)"), ScalableTargetAction: &aastypes.ScalableTargetAction{MinCapacity: aws.Int32(2)}})
	wantAPIError(t, err, "ValidationException", "Invalid schedule expression cron(0 10 * * *)")
	_, err = as.PutScheduledAction(ctx, &aas.PutScheduledActionInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim,
		ScheduledActionName: aws.String("bad"), Schedule: aws.String("rate(0 minutes)"), ScalableTargetAction: &aastypes.ScalableTargetAction{MinCapacity: aws.Int32(2)}})
	wantAPIError(t, err, "ValidationException", "Invalid schedule expression rate(0 minutes)")

	// Step scaling, triggered by a user's alarm whose action is the policy.
	pol, err := as.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim, PolicyName: aws.String("step-out"),
		PolicyType: aastypes.PolicyTypeStepScaling, StepScalingPolicyConfiguration: &aastypes.StepScalingPolicyConfiguration{
			AdjustmentType: aastypes.AdjustmentTypeChangeInCapacity, Cooldown: aws.Int32(0), MetricAggregationType: aastypes.MetricAggregationTypeAverage,
			StepAdjustments: []aastypes.StepAdjustment{
				{MetricIntervalLowerBound: aws.Float64(0), MetricIntervalUpperBound: aws.Float64(20), ScalingAdjustment: aws.Int32(1)},
				{MetricIntervalLowerBound: aws.Float64(20), ScalingAdjustment: aws.Int32(3)}}}})
	if err != nil || !strings.HasPrefix(aws.ToString(pol.PolicyARN), "arn:aws:autoscaling:us-east-1:") ||
		!strings.HasSuffix(aws.ToString(pol.PolicyARN), ":resource/ecs/service/shop/web:policyName/step-out") {
		t.Fatalf("put step policy: %+v %v", pol, err)
	}
	_, err = cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("web-cpu-high"), Namespace: aws.String("AWS/ECS"), MetricName: aws.String("CPUUtilization"),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("ClusterName"), Value: aws.String("shop")}, {Name: aws.String("ServiceName"), Value: aws.String("web")}},
		Statistic:  cwtypes.StatisticAverage, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(50),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold, AlarmActions: []string{*pol.PolicyARN}})
	if err != nil {
		t.Fatal(err)
	}
	setState := func(state cwtypes.StateValue, data string) {
		t.Helper()
		in := &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("web-cpu-high"), StateValue: state, StateReason: aws.String("drill")}
		if data != "" {
			in.StateReasonData = aws.String(data)
		}
		if _, err := cw.SetAlarmState(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	setState(cwtypes.StateValueAlarm, "") // at the threshold: the first step, +1
	if n := desiredCount(t, cfg, "shop", "web"); n != 2 {
		t.Fatalf("desired count after the first ALARM: %d, want 2", n)
	}
	setState(cwtypes.StateValueOk, "")
	setState(cwtypes.StateValueAlarm, `{"version":"1.0","recentDatapoints":[70,80]}`) // 75 - 50 = 25: +3
	if n := desiredCount(t, cfg, "shop", "web"); n != 5 {
		t.Fatalf("desired count after the second ALARM: %d, want 5", n)
	}
	acts, err := as.DescribeScalingActivities(ctx, &aas.DescribeScalingActivitiesInput{ServiceNamespace: ns, ResourceId: res})
	if err != nil || len(acts.ScalingActivities) != 2 {
		t.Fatalf("activities: %+v %v", acts, err)
	}
	a := acts.ScalingActivities[0]
	if aws.ToString(a.Description) != "Setting desired count to 5." || aws.ToString(a.Cause) != "monitor alarm web-cpu-high in state ALARM triggered policy step-out" ||
		a.StatusCode != aastypes.ScalingActivityStatusCodeInProgress || aws.ToString(a.StatusMessage) != "Successfully set desired count to 5. Waiting for change to be fulfilled by ecs." {
		t.Fatalf("newest activity: %+v", a)
	}
	if acts.ScalingActivities[1].StatusCode != aastypes.ScalingActivityStatusCodeOverridden {
		t.Fatalf("older activity: %+v", acts.ScalingActivities[1])
	}
	h, err := cw.DescribeAlarmHistory(ctx, &cloudwatch.DescribeAlarmHistoryInput{AlarmName: aws.String("web-cpu-high"), HistoryItemType: cwtypes.HistoryItemTypeAction})
	if err != nil || len(h.AlarmHistoryItems) == 0 || aws.ToString(h.AlarmHistoryItems[0].HistorySummary) != "Successfully executed action "+*pol.PolicyARN {
		t.Fatalf("alarm action history: %+v %v", h, err)
	}
	pols, err := as.DescribeScalingPolicies(ctx, &aas.DescribeScalingPoliciesInput{ServiceNamespace: ns, ResourceId: res})
	if err != nil || len(pols.ScalingPolicies) != 1 || len(pols.ScalingPolicies[0].Alarms) != 1 || aws.ToString(pols.ScalingPolicies[0].Alarms[0].AlarmName) != "web-cpu-high" {
		t.Fatalf("describe step policy: %+v %v", pols, err)
	}

	// Target tracking makes and owns its two alarms.
	tt, err := as.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim, PolicyName: aws.String("cpu50"),
		PolicyType: aastypes.PolicyTypeTargetTrackingScaling, TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(50), PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{PredefinedMetricType: aastypes.MetricTypeECSServiceAverageCPUUtilization},
			ScaleOutCooldown: aws.Int32(30), ScaleInCooldown: aws.Int32(60)}})
	if err != nil || len(tt.Alarms) != 2 {
		t.Fatalf("put target tracking: %+v %v", tt, err)
	}
	if n := aws.ToString(tt.Alarms[0].AlarmName); !strings.HasPrefix(n, "TargetTracking-service/shop/web-AlarmHigh-") || len(n) != len("TargetTracking-service/shop/web-AlarmHigh-")+36 {
		t.Fatalf("high alarm name %q", n)
	}
	if n := aws.ToString(tt.Alarms[1].AlarmName); !strings.HasPrefix(n, "TargetTracking-service/shop/web-AlarmLow-") {
		t.Fatalf("low alarm name %q", n)
	}
	ad, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("TargetTracking-service/shop/web-")})
	if err != nil || len(ad.MetricAlarms) != 2 {
		t.Fatalf("target tracking alarms: %+v %v", ad, err)
	}
	for _, al := range ad.MetricAlarms {
		high := strings.Contains(*al.AlarmName, "AlarmHigh")
		if aws.ToString(al.AlarmDescription) != "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy "+*tt.PolicyARN+"." ||
			len(al.AlarmActions) != 1 || al.AlarmActions[0] != *tt.PolicyARN || aws.ToString(al.Namespace) != "AWS/ECS" || aws.ToString(al.MetricName) != "CPUUtilization" ||
			high && (*al.Threshold != 50 || al.ComparisonOperator != cwtypes.ComparisonOperatorGreaterThanThreshold || *al.EvaluationPeriods != 3) ||
			!high && (*al.Threshold != 45 || al.ComparisonOperator != cwtypes.ComparisonOperatorLessThanThreshold || *al.EvaluationPeriods != 15) {
			t.Fatalf("alarm %+v", al)
		}
	}
	// Its alarms drive it: AlarmLow at 10 % scales in conservatively (one
	// task of 5), AlarmHigh at 100 % scales out proportionally (4 -> 8).
	ttState := func(alarm *string, data string) {
		t.Helper()
		if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: alarm, StateValue: cwtypes.StateValueOk, StateReason: aws.String("drill")}); err != nil {
			t.Fatal(err)
		}
		if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: alarm, StateValue: cwtypes.StateValueAlarm,
			StateReason: aws.String("drill"), StateReasonData: aws.String(data)}); err != nil {
			t.Fatal(err)
		}
	}
	ttState(tt.Alarms[1].AlarmName, `{"version":"1.0","recentDatapoints":[10]}`)
	if n := desiredCount(t, cfg, "shop", "web"); n != 4 {
		t.Fatalf("desired count after AlarmLow: %d, want 4", n)
	}
	ttState(tt.Alarms[0].AlarmName, `{"version":"1.0","recentDatapoints":[100]}`)
	if n := desiredCount(t, cfg, "shop", "web"); n != 8 {
		t.Fatalf("desired count after AlarmHigh: %d, want 8", n)
	}
	// The scale-out ended the scale-in cooldown: one more task goes; the
	// next scale-in waits for the cooldown (60 s).
	ttState(tt.Alarms[1].AlarmName, `{"version":"1.0","recentDatapoints":[10]}`)
	if n := desiredCount(t, cfg, "shop", "web"); n != 7 {
		t.Fatalf("desired count after AlarmLow again: %d, want 7", n)
	}
	ttState(tt.Alarms[1].AlarmName, `{"version":"1.0","recentDatapoints":[10]}`)
	if n := desiredCount(t, cfg, "shop", "web"); n != 7 {
		t.Fatalf("desired count during the scale-in cooldown: %d, want 7", n)
	}
	_, err = as.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim, PolicyName: aws.String("alb"),
		PolicyType: aastypes.PolicyTypeTargetTrackingScaling, TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(100), PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{PredefinedMetricType: aastypes.MetricTypeALBRequestCountPerTarget,
				ResourceLabel: aws.String("app/lb/1/targetgroup/tg/2")}}})
	wantAPIError(t, err, "ValidationException", "ALBRequestCountPerTarget")
	if _, err := as.DeleteScalingPolicy(ctx, &aas.DeleteScalingPolicyInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim, PolicyName: aws.String("cpu50")}); err != nil {
		t.Fatal(err)
	}
	ad, _ = cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String("TargetTracking-")})
	if len(ad.MetricAlarms) != 0 {
		t.Fatalf("alarms left after the policy was deleted: %+v", ad.MetricAlarms)
	}
	_, err = as.DeleteScalingPolicy(ctx, &aas.DeleteScalingPolicyInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim, PolicyName: aws.String("cpu50")})
	wantAPIError(t, err, "ObjectNotFoundException", "No scaling policy found for service namespace: ecs, resource ID: service/shop/web, scalable dimension: ecs:service:DesiredCount, policy name: cpu50")

	// A scheduled action a minute ahead, on a clock the test moves. (The
	// alarm leaves ALARM first: a policy is re-invoked once per alarm
	// period while its alarm stays in ALARM.)
	setState(cwtypes.StateValueOk, "")
	base := time.Now().UTC().Truncate(time.Second)
	var clock atomic.Int64
	clock.Store(base.UnixNano())
	s.Daemon.Autoscaling().SetClock(func() time.Time { return time.Unix(0, clock.Load()) })
	at := base.Add(time.Minute)
	if _, err := as.PutScheduledAction(ctx, &aas.PutScheduledActionInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim,
		ScheduledActionName: aws.String("peak"), Schedule: aws.String("at(" + at.Format("2006-01-02T15:04:05") + ")"),
		ScalableTargetAction: &aastypes.ScalableTargetAction{MinCapacity: aws.Int32(8), MaxCapacity: aws.Int32(9)}}); err != nil {
		t.Fatal(err)
	}
	setClock := func(t2 time.Time) { clock.Store(t2.UnixNano()) }
	setClock(at.Add(-2 * time.Second))
	time.Sleep(1500 * time.Millisecond) // the runner ticks every second: nothing is due yet
	if n := desiredCount(t, cfg, "shop", "web"); n != 7 {
		t.Fatalf("the scheduled action ran early: desired %d", n)
	}
	setClock(at.Add(time.Second))
	eventuallyTrue(t, "scheduled action ran", 10*time.Second, func() bool { return desiredCount(t, cfg, "shop", "web") == 8 })
	d, _ = as.DescribeScalableTargets(ctx, &aas.DescribeScalableTargetsInput{ServiceNamespace: ns, ResourceIds: []string{*res}})
	if len(d.ScalableTargets) != 1 || *d.ScalableTargets[0].MinCapacity != 8 || *d.ScalableTargets[0].MaxCapacity != 9 {
		t.Fatalf("target after the scheduled action: %+v", d.ScalableTargets)
	}
	// The activity is recorded just after the desired count changes.
	want := []string{"Setting desired count to 8. | minimum capacity was set to 8", "Setting min capacity to 8 and max capacity to 9 | scheduled action name peak was triggered"}
	var causes []string
	recorded := func() bool {
		acts, _ = as.DescribeScalingActivities(ctx, &aas.DescribeScalingActivitiesInput{ServiceNamespace: ns, ResourceId: res})
		causes = causes[:0]
		for _, a := range acts.ScalingActivities {
			causes = append(causes, aws.ToString(a.Description)+" | "+aws.ToString(a.Cause))
		}
		return len(causes) >= 2 && causes[0] == want[0] && causes[1] == want[1]
	}
	deadline := time.Now().Add(berthtest.Scale(10 * time.Second))
	for !recorded() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !recorded() {
		t.Fatalf("activities after the scheduled action:\n%s", strings.Join(causes, "\n"))
	}
	sa, err := as.DescribeScheduledActions(ctx, &aas.DescribeScheduledActionsInput{ServiceNamespace: ns})
	if err != nil || len(sa.ScheduledActions) != 1 || !strings.Contains(aws.ToString(sa.ScheduledActions[0].ScheduledActionARN), ":scheduledAction:") {
		t.Fatalf("scheduled actions: %+v %v", sa, err)
	}

	// Tags on the target.
	if _, err := as.TagResource(ctx, &aas.TagResourceInput{ResourceARN: reg.ScalableTargetARN, Tags: map[string]string{"env": "prod"}}); err != nil {
		t.Fatal(err)
	}
	tg, err := as.ListTagsForResource(ctx, &aas.ListTagsForResourceInput{ResourceARN: reg.ScalableTargetARN})
	if err != nil || fmt.Sprint(tg.Tags) != "map[env:prod team:shop]" {
		t.Fatalf("tags: %+v %v", tg, err)
	}

	// Deregistering takes the policies and scheduled actions with it.
	if _, err := as.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim}); err != nil {
		t.Fatal(err)
	}
	pols, _ = as.DescribeScalingPolicies(ctx, &aas.DescribeScalingPoliciesInput{ServiceNamespace: ns})
	sa, _ = as.DescribeScheduledActions(ctx, &aas.DescribeScheduledActionsInput{ServiceNamespace: ns})
	if len(pols.ScalingPolicies) != 0 || len(sa.ScheduledActions) != 0 {
		t.Fatalf("left after deregistering: %+v %+v", pols, sa)
	}
	_, err = as.DeregisterScalableTarget(ctx, &aas.DeregisterScalableTargetInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim})
	wantAPIError(t, err, "ObjectNotFoundException", "No scalable target found")
}

// TestAutoScalingCLIs drives step scaling and the errors through both AWS
// CLIs: an alarm set to ALARM with set-alarm-state runs the policy named
// in its actions.
func TestAutoScalingCLIs(t *testing.T) {
	t.Parallel()
	s := berthtest.Start(t, nil)
	berthtest.EachCLI(t, berthtest.CLIs(t), func(t *testing.T, _ int, cli berthtest.CLI) {
		run := func(args ...string) map[string]any {
			t.Helper()
			return cli.RunJSON(t, s, args...)
		}
		fails := func(want string, args ...string) {
			t.Helper()
			_, errOut, code := cli.Run(t, s, args...)
			if code == 0 || !strings.Contains(errOut, want) {
				t.Fatalf("%v: exit %d, stderr %s; want an error with %q", args, code, errOut, want)
			}
		}
		cluster := "c-" + cli.Name
		autoscalingService(t, s.AWSConfig(), cluster, "web", 1)
		res := "service/" + cluster + "/web"
		tgt := []string{"--service-namespace", "ecs", "--resource-id", res, "--scalable-dimension", "ecs:service:DesiredCount"}
		fails("ValidationException", "application-autoscaling", "describe-scalable-targets", "--service-namespace", "dynamodb")
		fails("Minimum capacity cannot be greater than maximum capacity", append([]string{"application-autoscaling", "register-scalable-target", "--min-capacity", "3", "--max-capacity", "1"}, tgt...)...)
		run(append([]string{"application-autoscaling", "register-scalable-target", "--min-capacity", "1", "--max-capacity", "4"}, tgt...)...)
		fails("Invalid schedule expression", append([]string{"application-autoscaling", "put-scheduled-action", "--scheduled-action-name", "x",
			"--schedule", "cron(61 * * * ? *)", "--scalable-target-action", "MinCapacity=2"}, tgt...)...)
		pol := run(append([]string{"application-autoscaling", "put-scaling-policy", "--policy-name", "out", "--policy-type", "StepScaling",
			"--step-scaling-policy-configuration", `{"AdjustmentType":"ExactCapacity","Cooldown":0,"StepAdjustments":[{"MetricIntervalLowerBound":0,"ScalingAdjustment":3}]}`}, tgt...)...)
		arn, _ := pol["PolicyARN"].(string)
		if !strings.Contains(arn, ":scalingPolicy:") {
			t.Fatalf("put-scaling-policy: %v", pol)
		}
		alarm := "q-" + cli.Name
		run("cloudwatch", "put-metric-alarm", "--alarm-name", alarm, "--namespace", "Shop", "--metric-name", "Queue", "--statistic", "Maximum",
			"--period", "60", "--evaluation-periods", "1", "--threshold", "100", "--comparison-operator", "GreaterThanThreshold", "--alarm-actions", arn)
		run("cloudwatch", "set-alarm-state", "--alarm-name", alarm, "--state-value", "ALARM", "--state-reason", "drill")
		if n := desiredCount(t, s.AWSConfig(), cluster, "web"); n != 3 {
			t.Fatalf("desired count %d, want 3", n)
		}
		acts := run(append([]string{"application-autoscaling", "describe-scaling-activities"}, tgt[:4]...)...)
		list, _ := acts["ScalingActivities"].([]any)
		if len(list) != 1 {
			t.Fatalf("activities: %v", acts)
		}
		a := list[0].(map[string]any)
		if a["Cause"] != "monitor alarm "+alarm+" in state ALARM triggered policy out" || a["Description"] != "Setting desired count to 3." {
			t.Fatalf("activity: %v", a)
		}
		pols := run(append([]string{"application-autoscaling", "describe-scaling-policies"}, tgt[:4]...)...)
		if ps, _ := pols["ScalingPolicies"].([]any); len(ps) != 1 {
			t.Fatalf("policies: %v", pols)
		}
		run(append([]string{"application-autoscaling", "delete-scaling-policy", "--policy-name", "out"}, tgt...)...)
		fails("ObjectNotFoundException", append([]string{"application-autoscaling", "delete-scaling-policy", "--policy-name", "out"}, tgt...)...)
	})
}

// TestAutoScalingAgainstBinary runs `berth up` (the real binary): a
// scheduled at() action a few seconds ahead changes the target's limits
// and the service; policies, their alarms and scheduled actions survive a
// SIGKILL; an at() action that came due while the server was down runs
// once when it is back.
func TestAutoScalingAgainstBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	p := berthtest.StartProcess(t, "up", dir, nil, "--throttle=false")
	cfg := p.Server.AWSConfig()
	ctx := context.Background()
	autoscalingService(t, cfg, "prod", "api", 1)
	res := aws.String("service/prod/api")
	dim, ns := aastypes.ScalableDimensionECSServiceDesiredCount, aastypes.ServiceNamespaceEcs
	as := aas.NewFromConfig(cfg)
	if _, err := as.RegisterScalableTarget(ctx, &aas.RegisterScalableTargetInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim,
		MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
	atExpr := func(d time.Duration) *string {
		return aws.String("at(" + time.Now().UTC().Add(d).Format("2006-01-02T15:04:05") + ")")
	}
	putAt := func(as *aas.Client, name string, d time.Duration, minCap int32) {
		t.Helper()
		if _, err := as.PutScheduledAction(ctx, &aas.PutScheduledActionInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim,
			ScheduledActionName: aws.String(name), Schedule: atExpr(d), ScalableTargetAction: &aastypes.ScalableTargetAction{MinCapacity: aws.Int32(minCap)}}); err != nil {
			t.Fatal(err)
		}
	}
	putAt(as, "soon", 2*time.Second, 2)
	eventuallyTrue(t, "scheduled action ran", 10*time.Second, func() bool { return desiredCount(t, cfg, "prod", "api") == 2 })
	tt, err := as.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim, PolicyName: aws.String("mem"),
		PolicyType: aastypes.PolicyTypeTargetTrackingScaling, TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(70), PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{PredefinedMetricType: aastypes.MetricTypeECSServiceAverageMemoryUtilization}}})
	if err != nil {
		t.Fatal(err)
	}
	step, err := as.PutScalingPolicy(ctx, &aas.PutScalingPolicyInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim, PolicyName: aws.String("step"),
		StepScalingPolicyConfiguration: &aastypes.StepScalingPolicyConfiguration{AdjustmentType: aastypes.AdjustmentTypeChangeInCapacity, Cooldown: aws.Int32(0),
			StepAdjustments: []aastypes.StepAdjustment{{MetricIntervalLowerBound: aws.Float64(0), ScalingAdjustment: aws.Int32(1)}}}})
	if err != nil {
		t.Fatal(err)
	}
	cw := cloudwatch.NewFromConfig(cfg)
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{AlarmName: aws.String("api-queue"), Namespace: aws.String("Shop"), MetricName: aws.String("Queue"),
		Statistic: cwtypes.StatisticMaximum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(10),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold, AlarmActions: []string{*step.PolicyARN}}); err != nil {
		t.Fatal(err)
	}
	// An action due in two seconds, and the server killed before then.
	putAt(as, "while-down", 2*time.Second, 4)
	p.Kill9()
	time.Sleep(3 * time.Second)
	p = berthtest.StartProcessAt(t, strings.TrimPrefix(p.Endpoint, "http://"), "up", dir, nil, "--throttle=false")
	cfg = p.Server.AWSConfig()
	as, cw = aas.NewFromConfig(cfg), cloudwatch.NewFromConfig(cfg)
	eventuallyTrue(t, "missed scheduled action ran after the restart", 10*time.Second, func() bool { return desiredCount(t, cfg, "prod", "api") == 4 })
	pols, err := as.DescribeScalingPolicies(ctx, &aas.DescribeScalingPoliciesInput{ServiceNamespace: ns, ResourceId: res})
	if err != nil || len(pols.ScalingPolicies) != 2 {
		t.Fatalf("policies after restart: %+v %v", pols, err)
	}
	sa, err := as.DescribeScheduledActions(ctx, &aas.DescribeScheduledActionsInput{ServiceNamespace: ns, ResourceId: res})
	if err != nil || len(sa.ScheduledActions) != 2 {
		t.Fatalf("scheduled actions after restart: %+v %v", sa, err)
	}
	ad, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: alarmNamesOf(tt.Alarms)})
	if err != nil || len(ad.MetricAlarms) != 2 {
		t.Fatalf("target tracking alarms after restart: %+v %v", ad, err)
	}
	acts, _ := as.DescribeScalingActivities(ctx, &aas.DescribeScalingActivitiesInput{ServiceNamespace: ns, ResourceId: res})
	n := 0
	for _, a := range acts.ScalingActivities {
		if aws.ToString(a.Cause) == "scheduled action name while-down was triggered" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the missed action ran %d times: %+v", n, acts.ScalingActivities)
	}
	// The step policy still answers its alarm.
	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("api-queue"), StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("drill")}); err != nil {
		t.Fatal(err)
	}
	if n := desiredCount(t, cfg, "prod", "api"); n != 5 {
		t.Fatalf("desired count after the alarm: %d, want 5", n)
	}
}

func alarmNamesOf(as []aastypes.Alarm) []string {
	var out []string
	for _, a := range as {
		out = append(out, aws.ToString(a.AlarmName))
	}
	return out
}
