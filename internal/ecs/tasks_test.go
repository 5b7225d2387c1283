package ecs

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs/taskgc"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
)

func webTD() ecsapi.TaskDefinition {
	return ecsapi.TaskDefinition{
		Family:          ptr("web"),
		NetworkMode:     ptr(ecsapi.NetworkModeBridge),
		Compatibilities: []ecsapi.Compatibility{ecsapi.CompatibilityEc2, ecsapi.CompatibilityExternal},
		ContainerDefinitions: []ecsapi.ContainerDefinition{
			{Name: ptr("web"), Cpu: ptr(int32(128)), Memory: ptr(int32(512)), MemoryReservation: ptr(int32(256)),
				PortMappings: []ecsapi.PortMapping{
					{ContainerPort: ptr(int32(80)), HostPort: ptr(int32(8080)), Protocol: ptr(ecsapi.TransportProtocolTcp)},
					{ContainerPort: ptr(int32(53)), HostPort: ptr(int32(5353)), Protocol: ptr(ecsapi.TransportProtocolUdp)},
					{ContainerPort: ptr(int32(9000)), HostPort: ptr(int32(0)), Protocol: ptr(ecsapi.TransportProtocolTcp)},
				}},
			{Name: ptr("log"), Cpu: ptr(int32(0)), Memory: ptr(int32(64))},
		},
	}
}

func TestApplyOverrides(t *testing.T) {
	td := webTD()
	cases := []struct {
		name     string
		o        *ecsapi.TaskOverride
		cpu, mem int
		wantErr  bool
	}{
		{name: "none: reservations of the definition", cpu: 128, mem: 256 + 64},
		{name: "container override", o: &ecsapi.TaskOverride{ContainerOverrides: []ecsapi.ContainerOverride{{Name: ptr("log"), Memory: ptr(int32(128)), Cpu: ptr(int32(64))}}}, cpu: 192, mem: 256 + 128},
		{name: "task-level override wins", o: &ecsapi.TaskOverride{Cpu: ptr("1 vCPU"), Memory: ptr("2GB")}, cpu: 1024, mem: 2048},
		{name: "unknown container", o: &ecsapi.TaskOverride{ContainerOverrides: []ecsapi.ContainerOverride{{Name: ptr("nope")}}}, wantErr: true},
		{name: "nameless override", o: &ecsapi.TaskOverride{ContainerOverrides: []ecsapi.ContainerOverride{{}}}, wantErr: true},
		{name: "bad task cpu", o: &ecsapi.TaskOverride{Cpu: ptr("lots")}, wantErr: true},
		{name: "reservation above limit", o: &ecsapi.TaskOverride{ContainerOverrides: []ecsapi.ContainerOverride{{Name: ptr("web"), MemoryReservation: ptr(int32(1024))}}}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc, tm, sizes, err := applyOverrides(&td, c.o)
			if c.wantErr {
				if !errs.Is(err, errs.Invalid) {
					t.Fatalf("want Invalid, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cpu, mem := placement.Reservation(tc, tm, sizes)
			if cpu != c.cpu || mem != c.mem {
				t.Fatalf("reservation %d/%d, want %d/%d", cpu, mem, c.cpu, c.mem)
			}
		})
	}
}

func TestHostPorts(t *testing.T) {
	td := webTD()
	tcp, udp, dyn := hostPorts(&td)
	if !slices.Equal(tcp, []int{8080}) || !slices.Equal(udp, []int{5353}) || dyn != 1 {
		t.Fatalf("bridge: %v %v %d", tcp, udp, dyn)
	}
	td.NetworkMode = ptr(ecsapi.NetworkModeAwsvpc)
	if tcp, udp, dyn := hostPorts(&td); tcp != nil || udp != nil || dyn != 0 {
		t.Fatalf("awsvpc binds host ports: %v %v %d", tcp, udp, dyn)
	}
	td.NetworkMode = ptr(ecsapi.NetworkModeHost)
	td.ContainerDefinitions[0].PortMappings = []ecsapi.PortMapping{{ContainerPort: ptr(int32(80))}}
	if tcp, _, dyn := hostPorts(&td); !slices.Equal(tcp, []int{80}) || dyn != 0 {
		t.Fatalf("host: %v %d", tcp, dyn)
	}
	td.NetworkMode = nil
	td.ContainerDefinitions[0].PortMappings = []ecsapi.PortMapping{{ContainerPortRange: ptr("9000-9009")}}
	if _, _, dyn := hostPorts(&td); dyn != 10 {
		t.Fatalf("range: %d dynamic ports", dyn)
	}
}

func TestSupportsEC2(t *testing.T) {
	td := webTD()
	if !supportsEC2(&td) {
		t.Fatal("EC2 task definition refused")
	}
	td.RequiresCompatibilities = []ecsapi.Compatibility{ecsapi.CompatibilityFargate}
	if supportsEC2(&td) {
		t.Fatal("Fargate-only task definition accepted")
	}
	td.RequiresCompatibilities = nil
	td.Compatibilities = []ecsapi.Compatibility{ecsapi.CompatibilityFargate}
	if supportsEC2(&td) {
		t.Fatal("task definition without EC2 compatibility accepted")
	}
}

func TestRefs(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		ref    string
		id     string
		ok     bool
		isTask bool
	}{
		{id, id, true, true},
		{"arn:aws:ecs:us-east-1:000000000000:task/c1/" + id, id, true, true},
		{"arn:aws:ecs:us-east-1:000000000000:task/other/" + id, id, false, true},
		{"arn:aws:ecs:us-east-1:000000000000:task/" + id, id, true, true},
		{"arn:aws:ecs:us-east-1:000000000000:container-instance/c1/" + id, id, true, false},
		{"arn:aws:ecs:us-east-1:000000000000:cluster/c1", "", false, false},
		{"", "", false, true},
		{"a/b", "", false, true},
	} {
		f := instanceRef
		if c.isTask {
			f = taskRef
		}
		got, ok := f("c1", c.ref)
		if ok != c.ok || ok && got != c.id {
			t.Errorf("%q: %q %v, want %q %v", c.ref, got, ok, c.id, c.ok)
		}
	}
}

func TestPlacementInstanceAndResources(t *testing.T) {
	v := &instanceView{
		Rec: instanceRecord{ID: "i1", ARN: "arn:i1", Status: InstanceActive,
			Registered: agentapiResources(2048, 4096, []int{22}, []int{53})},
		Connected: true,
		Tasks: []taskRecord{
			{ARN: "t1", Group: "family:web", CPU: 256, MemoryMiB: 512, HostPorts: []int{8080}, DynamicPorts: 2, LastStatus: "RUNNING", DesiredStatus: DesiredRunning},
			{ARN: "t2", Group: "family:web", CPU: 128, MemoryMiB: 128, HostUDP: []int{5353}, LastStatus: "PENDING", DesiredStatus: DesiredStopped},
		},
	}
	pi := v.PlacementInstance()
	if pi.Remaining.CPU != 2048-384 || pi.Remaining.Memory != 4096-640 || pi.DynamicPortsInUse != 2 || pi.RunningTasksCount != 1 {
		t.Fatalf("remaining %+v", pi)
	}
	if len(pi.Tasks) != 2 || !pi.Tasks[1].Stopping {
		t.Fatalf("tasks %+v", pi.Tasks)
	}
	out := instanceOut(v, nil)
	res := map[string]ecsapi.Resource{}
	for _, r := range out.RemainingResources {
		res[deref(r.Name)] = r
	}
	if deref(res["CPU"].IntegerValue) != 1664 || deref(res["CPU"].Type) != "INTEGER" ||
		!slices.Equal(res["PORTS"].StringSetValue, []string{"22", "8080"}) || !slices.Equal(res["PORTS_UDP"].StringSetValue, []string{"53", "5353"}) ||
		deref(res["PORTS"].Type) != "STRINGSET" {
		t.Fatalf("remaining resources %+v", out.RemainingResources)
	}
	if deref(out.RunningTasksCount) != 1 || deref(out.PendingTasksCount) != 1 {
		t.Fatalf("counts %d %d", deref(out.RunningTasksCount), deref(out.PendingTasksCount))
	}
}

func TestRequestHashIgnoresToken(t *testing.T) {
	a := &ecsapi.RunTaskRequest{TaskDefinition: ptr("web"), ClientToken: ptr("x")}
	b := &ecsapi.RunTaskRequest{TaskDefinition: ptr("web"), ClientToken: ptr("y")}
	c := &ecsapi.RunTaskRequest{TaskDefinition: ptr("web"), Count: ptr(int32(2))}
	if requestHash(a) != requestHash(b) || requestHash(a) == requestHash(c) {
		t.Fatal("request hash")
	}
}

func agentapiResources(cpu, mem int, tcp, udp []int) agentapi.Resources {
	return agentapi.Resources{CPU: cpu, MemoryMiB: mem, ReservedPorts: tcp, ReservedUDP: udp, OSType: "linux", CPUArch: "x86_64"}
}

// The store-backed tests below use an embedded etcd.

func newTestService(t *testing.T) (*Service, store.Store) {
	t.Helper()
	e, err := store.StartEmbedded(context.Background(), store.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	s := New(e.Store(), Config{Region: "us-east-1", Account: "000000000000"}, nil)
	if _, err := s.CreateCluster(t.Context(), &ecsapi.CreateClusterRequest{ClusterName: ptr("c1")}); err != nil {
		t.Fatal(err)
	}
	return s, e.Store()
}

func putJSON(t *testing.T, st store.Store, key string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if _, err := st.Txn(t.Context(), nil, store.Put(key, b)); err != nil {
		t.Fatal(err)
	}
}

func TestCollectGarbage(t *testing.T) {
	s, st := newTestService(t)
	ctx := t.Context()
	now := time.Now().UTC()
	old := now.Add(-2 * time.Hour)
	recent := now.Add(-10 * time.Minute)
	putJSON(t, st, instanceKey("c1", "i1"), instanceRecord{ID: "i1", Cluster: "c1", Status: InstanceActive})
	tdArn := s.taskDefARN("gone", 1)
	keepArn := s.taskDefARN("kept", 1)
	for _, td := range []struct {
		arn, fam string
	}{{tdArn, "gone"}, {keepArn, "kept"}} {
		putJSON(t, st, taskDefKey(td.fam, 1), taskDefRecord{TaskDefinition: ecsapi.TaskDefinition{
			TaskDefinitionArn: ptr(td.arn), Status: ptr(ecsapi.TaskDefinitionStatusDeleteInProgress)}})
	}
	tasks := []taskRecord{
		{ID: "old", Cluster: "c1", InstanceID: "i1", TaskDefinitionARN: tdArn, DesiredStatus: DesiredStopped, LastStatus: "STOPPED", StoppedAt: &old, Group: "service:web"},
		{ID: "recent", Cluster: "c1", InstanceID: "i1", TaskDefinitionARN: keepArn, DesiredStatus: DesiredStopped, LastStatus: "STOPPED", StoppedAt: &recent, Group: "service:web"},
		{ID: "orphan", Cluster: "c1", InstanceID: "i9", TaskDefinitionARN: keepArn, DesiredStatus: DesiredStopped, LastStatus: "PENDING", StoppingAt: &old},
	}
	for _, tk := range tasks {
		putJSON(t, st, taskKey("c1", tk.ID), tk)
		putJSON(t, st, assignKey(tk.InstanceID, tk.ID), assignmentRecord{Cluster: "c1", TaskID: tk.ID})
		if tk.Group != "" {
			putJSON(t, st, taskGroupKey("c1", tk.Group, tk.ID), 1)
		}
	}
	putJSON(t, st, clientTokenKey("c1", "old"), clientTokenRecord{CreatedAt: now.Add(-25 * time.Hour)})
	putJSON(t, st, clientTokenKey("c1", "new"), clientTokenRecord{CreatedAt: now})

	got, err := taskgc.New(st, taskgc.Config{Retention: time.Hour}).Collect(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != (taskgc.Stats{Tasks: 2, TaskDefs: 1, Tokens: 1}) {
		t.Fatalf("collected %+v", got)
	}
	for _, k := range []string{taskKey("c1", "old"), assignKey("i1", "old"), taskGroupKey("c1", "service:web", "old"), taskKey("c1", "orphan"), taskDefKey("gone", 1), clientTokenKey("c1", "old")} {
		if _, err := st.Get(ctx, k); !errs.Is(err, errs.NotFound) {
			t.Errorf("%s not collected: %v", k, err)
		}
	}
	for _, k := range []string{taskKey("c1", "recent"), assignKey("i1", "recent"), taskGroupKey("c1", "service:web", "recent"), taskDefKey("kept", 1), clientTokenKey("c1", "new")} {
		if _, err := st.Get(ctx, k); err != nil {
			t.Errorf("%s collected: %v", k, err)
		}
	}
}
