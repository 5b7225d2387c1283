package elbv2

import (
	"log/slog"
	"testing"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/api/elbv2api"
)

func TestDesiredTargetsAndPlan(t *testing.T) {
	const tg = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"
	const cluster = "arn:aws:ecs:us-east-1:000000000000:cluster/default"
	svc := ecsapi.Service{ServiceName: ptr("web"), ClusterArn: ptr(cluster),
		LoadBalancers: []ecsapi.LoadBalancer{{TargetGroupArn: ptr(tg), ContainerName: ptr("web"), ContainerPort: ptr(int32(80))}}}
	task := func(id, last, desired string, hostPort int32) ecsapi.Task {
		return ecsapi.Task{TaskArn: ptr("task/" + id), ClusterArn: ptr(cluster), Group: ptr("service:web"), LastStatus: ptr(last), DesiredStatus: ptr(desired),
			ContainerInstanceArn: ptr("ci/1"), Containers: []ecsapi.Container{{Name: ptr("web"), NetworkBindings: []ecsapi.NetworkBinding{
				{ContainerPort: ptr(int32(80)), HostPort: ptr(hostPort)}}}}}
	}
	tasks := map[string]ecsapi.Task{
		"a": task("a", "RUNNING", "RUNNING", 32768),
		"b": task("b", "PENDING", "RUNNING", 32769),      // not yet running
		"c": task("c", "DEACTIVATING", "STOPPED", 32770), // told to stop
		"d": task("d", "RUNNING", "RUNNING", 32771),
	}
	other := task("x", "RUNNING", "RUNNING", 40000)
	other.Group = ptr("service:other") // a service without load balancers
	tasks["x"] = other
	want := desiredTargets(tasks, map[string]ecsapi.Service{cluster + "|web": svc, cluster + "|other": {ServiceName: ptr("other"), ClusterArn: ptr(cluster)}},
		map[string]string{"ci/1": "i-1"})
	if len(want) != 2 || want[0].id != "i-1" || want[0].port != 32768 || want[1].port != 32771 || want[0].service != cluster+"|web" {
		t.Fatalf("desired: %+v", want)
	}

	st := &state{tgs: map[string]*tgRecord{tg: {ID: "0123456789abcdef", TG: elbv2api.TargetGroup{TargetGroupArn: ptr(tg)}, Targets: []targetRecord{
		{ID: "10.0.0.9", Port: 80}, // registered by hand: left alone
		{ID: "i-1", Port: 32770, ECSTask: "task/c", ECSService: cluster + "|web"}, // its task stops: deregistered
		{ID: "i-1", Port: 32771, ECSTask: "task/d", ECSService: cluster + "|web"}, // still wanted
	}}}, puts: map[string]any{}, dels: map[string]bool{}}
	ch := planTargets(st, want, slog.New(slog.DiscardHandler))
	got := map[string]string{}
	for _, tr := range st.tgs[tg].Targets {
		got[tr.ID+":"+itoa(tr.Port)] = tr.ECSTask
	}
	if len(got) != 3 || got["10.0.0.9:80"] != "" || got["i-1:32768"] != "task/a" || got["i-1:32771"] != "task/d" {
		t.Fatalf("targets after the plan: %v", got)
	}
	k := [2]string{cluster + "|web", tg}
	if ch.registered[k] != 1 || ch.deregistered[k] != 1 {
		t.Fatalf("changes: %+v", ch)
	}
	if _, ok := st.puts[keyTG+"0123456789abcdef"]; !ok {
		t.Fatal("the group is not written")
	}
	// Nothing to change: nothing written.
	st.puts = map[string]any{}
	if ch := planTargets(st, want, slog.New(slog.DiscardHandler)); len(ch.registered)+len(ch.deregistered) != 0 || len(st.puts) != 0 {
		t.Fatalf("second plan changed something: %+v %v", ch, st.puts)
	}
}
