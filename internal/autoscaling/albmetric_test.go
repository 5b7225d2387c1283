package autoscaling

import (
	"strings"
	"testing"

	api "github.com/berthdev/berth/internal/api/applicationautoscalingapi"
)

func TestALBRequestCountPerTargetMetric(t *testing.T) {
	label := "app/web/50dc6c495c0c9188/targetgroup/web/73e2d6bc24d8a067"
	c := &api.TargetTrackingScalingPolicyConfiguration{TargetValue: ptr(100.0), PredefinedMetricSpecification: &api.PredefinedMetricSpecification{
		PredefinedMetricType: ptr(api.MetricTypeALBRequestCountPerTarget), ResourceLabel: ptr(label)}}
	a, err := trackedMetric(c, "service/default/web")
	if err != nil {
		t.Fatal(err)
	}
	if deref(a.Namespace) != "AWS/ApplicationELB" || deref(a.MetricName) != "RequestCountPerTarget" || string(deref(a.Statistic)) != "Sum" ||
		len(a.Dimensions) != 1 || deref(a.Dimensions[0].Name) != "TargetGroup" || deref(a.Dimensions[0].Value) != "targetgroup/web/73e2d6bc24d8a067" {
		t.Fatalf("alarm metric: %+v", a)
	}
	for _, bad := range []*string{nil, ptr("app/lb/1/targetgroup/tg/2"), ptr("targetgroup/web/73e2d6bc24d8a067")} {
		c.PredefinedMetricSpecification.ResourceLabel = bad
		if _, err := trackedMetric(c, "service/default/web"); err == nil || !strings.Contains(err.Error(), "ResourceLabel") {
			t.Fatalf("label %v: %v", bad, err)
		}
	}
}
