package tasklife

import (
	"testing"

	"github.com/berthdev/berth/internal/api/ecsapi"
)

const testTG = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"

func lbFor(name string, port int32) ecsapi.LoadBalancer {
	return ecsapi.LoadBalancer{TargetGroupArn: ptr(testTG), ContainerName: ptr(name), ContainerPort: ptr(port)}
}

func TestTaskTargets(t *testing.T) {
	lbs := []ecsapi.LoadBalancer{lbFor("web", 80)}
	bridge := []ecsapi.Container{{Name: ptr("web"), NetworkBindings: []ecsapi.NetworkBinding{
		{ContainerPort: ptr(int32(53)), HostPort: ptr(int32(5353)), Protocol: ptr(ecsapi.TransportProtocolUdp)},
		{ContainerPort: ptr(int32(80)), HostPort: ptr(int32(32768)), Protocol: ptr(ecsapi.TransportProtocolTcp)},
	}}}
	ts, ok := TaskTargets(lbs, bridge, "i-0abc")
	if !ok || len(ts) != 1 || ts[0].ID != "i-0abc" || ts[0].Port != 32768 || ts[0].Key() != "i-0abc:32768" || ts[0].TargetGroupARN != testTG {
		t.Fatalf("bridge: %+v %v", ts, ok)
	}
	awsvpc := []ecsapi.Container{{Name: ptr("web"), NetworkInterfaces: []ecsapi.NetworkInterface{{PrivateIpv4Address: ptr("172.17.0.5")}}}}
	if ts, ok := TaskTargets(lbs, awsvpc, ""); !ok || ts[0].ID != "172.17.0.5" || ts[0].Port != 80 {
		t.Fatalf("awsvpc: %+v %v", ts, ok)
	}
	if _, ok := TaskTargets(lbs, []ecsapi.Container{{Name: ptr("web")}}, "i-0abc"); ok {
		t.Fatal("bindings not reported yet: no target")
	}
	if _, ok := TaskTargets(lbs, bridge, ""); ok {
		t.Fatal("instance unknown: no target")
	}
	if _, ok := TaskTargets([]ecsapi.LoadBalancer{lbFor("api", 80)}, bridge, "i-0abc"); ok {
		t.Fatal("container missing: no target")
	}
}
