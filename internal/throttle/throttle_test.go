package throttle

import (
	"testing"
	"time"
)

func TestTakeBurstThenRate(t *testing.T) {
	l := Limit{Burst: 3, Rate: 1}
	now := time.Unix(1000, 0)
	var b bucket
	var ok bool
	for i := 0; i < 3; i++ {
		if b, ok = take(b, l, now); !ok {
			t.Fatalf("request %d within the burst was refused", i)
		}
	}
	if _, ok = take(b, l, now); ok {
		t.Fatal("request past the burst was allowed")
	}
	if b, ok = take(b, l, now.Add(999*time.Millisecond)); ok {
		t.Fatal("allowed before a whole token refilled")
	}
	if b, ok = take(b, l, now.Add(1001*time.Millisecond)); !ok {
		t.Fatal("refused after a token refilled")
	}
	// A long idle period refills only up to the burst.
	b, _ = take(b, l, now.Add(time.Hour))
	if b.tokens > l.Burst-1+1e-9 {
		t.Fatalf("bucket over burst: %v", b.tokens)
	}
}

func TestLimiterKeysAndClassesAreIndependent(t *testing.T) {
	lim := New(map[Class]Limit{ClassECSRegisterTD: {Burst: 1, Rate: 0.001}})
	now := time.Unix(1000, 0)
	if !lim.Allow("A", ClassECSRegisterTD, now) {
		t.Fatal("first refused")
	}
	if lim.Allow("A", ClassECSRegisterTD, now) {
		t.Fatal("second allowed")
	}
	if !lim.Allow("B", ClassECSRegisterTD, now) {
		t.Fatal("another key shares the bucket")
	}
	if !lim.Allow("A", ClassECSRead, now) {
		t.Fatal("another class shares the bucket")
	}
	if !Disabled().Allow("A", ClassECSRegisterTD, now) {
		t.Fatal("disabled limiter refused")
	}
}

func TestClassOf(t *testing.T) {
	cases := map[string]Class{
		"RunTask": ClassECSTasks, "DescribeClusters": ClassECSRead, "ListTaskDefinitions": ClassECSRead,
		"CreateService": ClassECSServiceWrite, "RegisterTaskDefinition": ClassECSRegisterTD,
		"CreateCluster": ClassECSWrite, "SubmitTaskStateChange": ClassECSAgent,
	}
	for op, want := range cases {
		if got := ClassOf("ecs", op, false); got != want {
			t.Errorf("%s: got %s want %s", op, got, want)
		}
	}
	if ClassOf("cloudtrail", "LookupEvents", true) != ClassDefaultRead {
		t.Error("cloudtrail read class")
	}
}

func TestCloudWatchClasses(t *testing.T) {
	for op, want := range map[string]Class{
		"PutMetricData": ClassCWPutMetricData, "GetMetricData": ClassCWGetMetricData,
		"GetMetricStatistics": ClassCWGetStatistics, "PutMetricAlarm": ClassDefaultWrite,
	} {
		if got := ClassOf("monitoring", op, op == "GetMetricData" || op == "GetMetricStatistics"); got != want {
			t.Errorf("%s: %s, want %s", op, got, want)
		}
	}
	if l := DefaultLimits()[ClassCWPutMetricData]; l.Rate != 500 {
		t.Errorf("PutMetricData limit %+v", l)
	}
}
