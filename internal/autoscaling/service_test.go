package autoscaling

import (
	"context"
	"strings"
	"sync"
	"testing"

	api "github.com/berthdev/berth/internal/api/applicationautoscalingapi"
	"github.com/berthdev/berth/internal/api/cloudwatchapi"
	"github.com/berthdev/berth/internal/cloudwatch"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// fakeECS is a service table with behaviour: desired counts change, and
// running follows desired at once.
type fakeECS struct {
	mu      sync.Mutex
	desired map[string]int32
	updates int
}

func (f *fakeECS) Capacity(ctx context.Context, cluster, service string) (Capacity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.desired[cluster+"/"+service]
	if !ok {
		return Capacity{}, errs.E(errs.NotFound, "no service")
	}
	return Capacity{Desired: n, Running: n}, nil
}

func (f *fakeECS) SetDesiredCount(ctx context.Context, cluster, service string, n int32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.desired[cluster+"/"+service] = n
	f.updates++
	return nil
}

// fakeAlarms keeps alarm definitions in memory.
type fakeAlarms struct {
	mu     sync.Mutex
	alarms map[string]cloudwatchapi.PutMetricAlarmInput
	state  map[string]string
}

func (f *fakeAlarms) PutMetricAlarm(ctx context.Context, in *cloudwatchapi.PutMetricAlarmInput) (*cloudwatchapi.PutMetricAlarmResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alarms[*in.AlarmName] = *in
	return &cloudwatchapi.PutMetricAlarmResponse{}, nil
}

func (f *fakeAlarms) DeleteAlarms(ctx context.Context, in *cloudwatchapi.DeleteAlarmsInput) (*cloudwatchapi.DeleteAlarmsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range in.AlarmNames {
		delete(f.alarms, n)
	}
	return &cloudwatchapi.DeleteAlarmsResponse{}, nil
}

func (f *fakeAlarms) DescribeAlarms(ctx context.Context, in *cloudwatchapi.DescribeAlarmsInput) (*cloudwatchapi.DescribeAlarmsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &cloudwatchapi.DescribeAlarmsOutput{MetricAlarms: []cloudwatchapi.MetricAlarm{}}
	for name, a := range f.alarms {
		if len(in.AlarmNames) > 0 && !contains(in.AlarmNames, name) || in.AlarmNamePrefix != nil && !strings.HasPrefix(name, *in.AlarmNamePrefix) {
			continue
		}
		st := cloudwatchapi.StateValue(f.state[name])
		if in.StateValue != nil && *in.StateValue != st {
			continue
		}
		out.MetricAlarms = append(out.MetricAlarms, cloudwatchapi.MetricAlarm{AlarmName: ptr(name), AlarmActions: a.AlarmActions,
			Threshold: a.Threshold, ComparisonOperator: a.ComparisonOperator, StateValue: &st, Period: a.Period})
	}
	return out, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

var (
	storeOnce   sync.Once
	sharedStore store.Store
	storeErr    error
)

func testService(t *testing.T) (*Service, *fakeECS, *fakeAlarms) {
	t.Helper()
	storeOnce.Do(func() {
		sharedStore, storeErr = store.Open(context.Background(), store.Config{DataDir: t.TempDir() + "/etcd"})
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	if _, err := sharedStore.Txn(context.Background(), nil, store.DeletePrefix(prefix)); err != nil {
		t.Fatal(err)
	}
	e := &fakeECS{desired: map[string]int32{"c/web": 1}}
	a := &fakeAlarms{alarms: map[string]cloudwatchapi.PutMetricAlarmInput{}, state: map[string]string{}}
	return New(sharedStore, e, a, Config{Region: "us-east-1", Account: "000000000000"}, nil), e, a
}

// TestConcurrentTriggersLoseNoScaling: triggers arriving at once (alarm
// transitions and re-invocations) each scale from the capacity the
// previous one left, never from the same one.
func TestConcurrentTriggersLoseNoScaling(t *testing.T) {
	s, e, a := testService(t)
	ctx := context.Background()
	res := "service/c/web"
	tgt := func() (*api.ServiceNamespace, *string, *api.ScalableDimension) {
		return ptr(api.ServiceNamespaceEcs), ptr(res), ptr(api.ScalableDimensionEcsServiceDesiredCount)
	}
	ns, rid, dim := tgt()
	if _, err := s.RegisterScalableTarget(ctx, &api.RegisterScalableTargetRequest{ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim,
		MinCapacity: ptr(int32(1)), MaxCapacity: ptr(int32(100))}); err != nil {
		t.Fatal(err)
	}
	pol, err := s.PutScalingPolicy(ctx, &api.PutScalingPolicyRequest{ServiceNamespace: ns, ResourceId: rid, ScalableDimension: dim, PolicyName: ptr("up"),
		StepScalingPolicyConfiguration: &api.StepScalingPolicyConfiguration{AdjustmentType: ptr(api.AdjustmentTypeChangeInCapacity), Cooldown: ptr(int32(0)),
			StepAdjustments: []api.StepAdjustment{{MetricIntervalLowerBound: ptr(0.0), ScalingAdjustment: ptr(int32(1))}}}})
	if err != nil {
		t.Fatal(err)
	}
	a.alarms["high"] = cloudwatchapi.PutMetricAlarmInput{AlarmName: ptr("high"), Threshold: ptr(10.0), AlarmActions: []string{*pol.PolicyARN},
		ComparisonOperator: ptr(cloudwatchapi.ComparisonOperatorGreaterThanThreshold), Period: ptr(int32(60))}
	a.state["high"] = "ALARM"
	r := Runner{S: s}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx, *pol.PolicyARN, cloudwatch.AlarmInfo{Name: "high", State: "ALARM"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, _ := e.Capacity(ctx, "c", "web"); n.Desired != 9 {
		t.Fatalf("desired %d after 8 concurrent +1 triggers, want 9", n.Desired)
	}
	// Other ARNs are not ours.
	if err := r.Run(ctx, "arn:aws:sns:us-east-1:000000000000:t", cloudwatch.AlarmInfo{Name: "high"}); !errs.Is(err, errs.Unsupported) {
		t.Fatalf("SNS action: %v", err)
	}
	// The service gone: the trigger fails and the target stays.
	delete(e.desired, "c/web")
	if err := r.Run(ctx, *pol.PolicyARN, cloudwatch.AlarmInfo{Name: "high", State: "ALARM"}); !errs.Is(err, errs.NotFound) {
		t.Fatalf("trigger without the service: %v", err)
	}
	d, err := s.DescribeScalableTargets(ctx, &api.DescribeScalableTargetsRequest{ServiceNamespace: ns})
	if err != nil || len(d.ScalableTargets) != 1 {
		t.Fatalf("target after the service went: %+v %v", d, err)
	}
}
