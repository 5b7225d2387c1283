package placement

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
)

// reservedPorts are the ports an ECS agent reserves by default.
var reservedPorts = []Port{{22, TCP}, {2375, TCP}, {2376, TCP}, {51678, TCP}, {51679, TCP}}

// node builds an ACTIVE, connected instance with cpu units and mem MiB
// free and attributes given as name=value pairs.
func node(id string, cpu, mem int, attrs ...string) Instance {
	in := Instance{
		ID: id, ARN: "arn:aws:ecs:us-east-1:123456789012:container-instance/default/" + id,
		EC2InstanceID: "i-" + id, Status: StatusActive, AgentConnected: true, AgentVersion: "1.68.2",
		Attributes: map[string]string{},
		Registered: Resources{CPU: cpu, Memory: mem, Ports: reservedPorts},
		Remaining:  Resources{CPU: cpu, Memory: mem, Ports: reservedPorts},
	}
	for _, a := range attrs {
		k, v, _ := strings.Cut(a, "=")
		in.Attributes[k] = v
	}
	return in
}

func memberOf(expr string) Constraint { return Constraint{Type: MemberOf, Expr: MustParse(expr)} }

var distinct = Constraint{Type: DistinctInstance}

func ids(ps []Placement) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.InstanceID)
	}
	return out
}

func TestPlaceFilters(t *testing.T) {
	disconnected := node("c", 4096, 8192)
	disconnected.AgentConnected = false
	draining := node("d", 4096, 8192)
	draining.Status = StatusDraining
	withDB := node("db", 4096, 8192)
	withDB.Tasks = []TaskInfo{{Group: "service:db"}}
	stopping := node("s", 4096, 8192)
	stopping.Tasks = []TaskInfo{{Group: "service:web", Stopping: true}}
	tinyRange := node("t", 4096, 8192)
	tinyRange.DynamicPortRange = PortRange{First: 50000, Last: 50002}
	tinyRange.Remaining.Ports = append(append([]Port(nil), reservedPorts...), Port{50001, UDP})
	manyPorts := node("m", 4096, 8192)
	for p := range MaxReservedPorts - len(reservedPorts) {
		manyPorts.Remaining.Ports = append(manyPorts.Remaining.Ports, Port{Number: 1000 + p})
	}

	for _, tc := range []struct {
		name     string
		cluster  []Instance
		req      Request
		count    int
		want     []string // instance IDs, in order, when the test fixes them
		wantN    int      // number of placements, when want is nil
		failures []Failure
	}{
		{
			name:    "a static port fits once per instance",
			cluster: []Instance{node("a", 4096, 8192)},
			req:     Request{CPU: 10, Memory: 10, HostPorts: []Port{{80, TCP}}},
			count:   2, want: []string{"a"},
			failures: []Failure{{InstanceID: "a", InstanceARN: node("a", 0, 0).ARN, Reason: ReasonPorts}},
		},
		{
			name:    "the same port number on UDP is free",
			cluster: []Instance{node("a", 4096, 8192)},
			req:     Request{HostPorts: []Port{{22, UDP}}},
			count:   1, want: []string{"a"},
		},
		{
			name:    "reserved ports are taken",
			cluster: []Instance{node("a", 4096, 8192)},
			req:     Request{HostPorts: []Port{{22, ""}}},
			count:   1, failures: []Failure{{InstanceID: "a", InstanceARN: node("a", 0, 0).ARN, Reason: ReasonPorts}},
		},
		{
			name:    "no more than 100 reserved ports",
			cluster: []Instance{manyPorts},
			req:     Request{HostPorts: []Port{{80, TCP}}},
			count:   1, failures: []Failure{{InstanceID: "m", InstanceARN: manyPorts.ARN, Reason: ReasonPorts}},
		},
		{
			name:    "dynamic ports run out, static ports in the range count",
			cluster: []Instance{tinyRange},
			req:     Request{DynamicPorts: 1},
			count:   3, want: []string{"t", "t"},
			failures: []Failure{{InstanceID: "t", InstanceARN: tinyRange.ARN, Reason: ReasonPorts}},
		},
		{
			name:    "memory: the closest instance is the one with the most left",
			cluster: []Instance{node("a", 4096, 512), node("b", 4096, 1000), node("c", 4096, 900)},
			req:     Request{CPU: 128, Memory: 1024},
			count:   2, failures: []Failure{{InstanceID: "b", InstanceARN: node("b", 0, 0).ARN, Reason: ReasonMemory}, {InstanceID: "b", InstanceARN: node("b", 0, 0).ARN, Reason: ReasonMemory}},
		},
		{
			name:    "CPU is checked before memory",
			cluster: []Instance{node("a", 100, 100)},
			req:     Request{CPU: 128, Memory: 1024},
			count:   1, failures: []Failure{{InstanceID: "a", InstanceARN: node("a", 0, 0).ARN, Reason: ReasonCPU}},
		},
		{
			name:    "resources run out as tasks are placed",
			cluster: []Instance{node("a", 1024, 2048)},
			req:     Request{CPU: 256, Memory: 1024},
			count:   3, want: []string{"a", "a"},
			failures: []Failure{{InstanceID: "a", InstanceARN: node("a", 0, 0).ARN, Reason: ReasonMemory}},
		},
		{
			name:    "a disconnected agent",
			cluster: []Instance{disconnected},
			req:     Request{},
			count:   1, failures: []Failure{{InstanceID: "c", InstanceARN: disconnected.ARN, Reason: ReasonAgent}},
		},
		{
			name:    "a missing required attribute",
			cluster: []Instance{node("a", 4096, 8192, "com.amazonaws.ecs.capability.docker-remote-api.1.17")},
			req:     Request{RequiredAttributes: []Attribute{{Name: "com.amazonaws.ecs.capability.docker-remote-api.1.17"}, {Name: "ecs.capability.task-eni"}}},
			count:   1, failures: []Failure{{InstanceID: "a", InstanceARN: node("a", 0, 0).ARN, Reason: ReasonAttribute}},
		},
		{
			name:    "a required attribute with a value",
			cluster: []Instance{node("a", 4096, 8192, "ecs.os-type=windows"), node("b", 4096, 8192, "ecs.os-type=linux")},
			req:     Request{RequiredAttributes: []Attribute{{Name: "ecs.os-type", Value: "linux"}}},
			count:   1, want: []string{"b"},
		},
		{
			name:    "draining instances take no tasks and are never the closest match",
			cluster: []Instance{draining, node("a", 100, 100)},
			req:     Request{CPU: 200},
			count:   1, failures: []Failure{{InstanceID: "a", InstanceARN: node("a", 0, 0).ARN, Reason: ReasonCPU}},
		},
		{
			name:    "no ACTIVE instance",
			cluster: []Instance{draining},
			req:     Request{},
			count:   2, failures: []Failure{{Reason: ReasonNoInstances}, {Reason: ReasonNoInstances}},
		},
		{
			name:  "no instance at all",
			req:   Request{},
			count: 1, failures: []Failure{{Reason: ReasonNoInstances}},
		},
		{
			name:    "distinctInstance spreads the group, one task per instance",
			cluster: []Instance{node("a", 4096, 8192), node("b", 4096, 8192), withDB},
			req:     Request{Group: "service:web", Constraints: []Constraint{distinct}},
			count:   4, wantN: 3,
			failures: []Failure{{InstanceID: "a", InstanceARN: node("a", 0, 0).ARN, Reason: ReasonDistinctInstance}},
		},
		{
			name:    "distinctInstance ignores other groups and stopping tasks",
			cluster: []Instance{withDB, stopping},
			req:     Request{Group: "service:web", Constraints: []Constraint{distinct}},
			count:   2, wantN: 2,
		},
		{
			name:    "memberOf affinity with a task group",
			cluster: []Instance{node("a", 4096, 8192), withDB},
			req:     Request{Constraints: []Constraint{memberOf("task:group == service:db")}},
			count:   2, want: []string{"db", "db"},
		},
		{
			name:    "memberOf anti-affinity",
			cluster: []Instance{node("a", 4096, 8192), withDB},
			req:     Request{Constraints: []Constraint{memberOf("not(task:group == service:db)")}},
			count:   1, want: []string{"a"},
		},
		{
			name:    "runningTasksCount counts the tasks placed in the same call",
			cluster: []Instance{node("a", 4096, 8192), node("b", 4096, 8192)},
			req:     Request{Constraints: []Constraint{memberOf("runningTasksCount < 2")}},
			count:   5, wantN: 4,
			failures: []Failure{{InstanceID: "a", InstanceARN: node("a", 0, 0).ARN, Reason: ReasonMemberOf}},
		},
		{
			name:    "a constraint failure is closer than a resource failure",
			cluster: []Instance{node("a", 4096, 8192, "zone=x"), node("b", 10, 10, "zone=y")},
			req:     Request{CPU: 100, Constraints: []Constraint{memberOf("attribute:zone == y")}},
			count:   1, failures: []Failure{{InstanceID: "a", InstanceARN: node("a", 0, 0).ARN, Reason: ReasonMemberOf}},
		},
		{
			name:    "constraints are checked in order",
			cluster: []Instance{withDB},
			req:     Request{Group: "service:db", Constraints: []Constraint{memberOf("attribute:zone exists"), distinct}},
			count:   1, failures: []Failure{{InstanceID: "db", InstanceARN: withDB.ARN, Reason: ReasonMemberOf}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := cloneCluster(tc.cluster)
			got, fails := Place(tc.cluster, tc.req, tc.count, rand.New(rand.NewPCG(1, 2)))
			if tc.want != nil && !reflect.DeepEqual(ids(got), tc.want) {
				t.Errorf("placed on %v, want %v", ids(got), tc.want)
			}
			if tc.want == nil && len(got) != tc.wantN {
				t.Errorf("placed on %v, want %d placements", ids(got), tc.wantN)
			}
			if !reflect.DeepEqual(fails, tc.failures) {
				t.Errorf("failures = %+v, want %+v", fails, tc.failures)
			}
			if !reflect.DeepEqual(tc.cluster, before) {
				t.Error("Place modified the snapshot")
			}
		})
	}
}

func cloneCluster(c []Instance) []Instance {
	if c == nil {
		return nil
	}
	out := make([]Instance, len(c))
	for i, in := range c {
		in.Remaining.Ports = append([]Port(nil), in.Remaining.Ports...)
		in.Tasks = append([]TaskInfo(nil), in.Tasks...)
		out[i] = in
	}
	return out
}

func TestPlaceStrategies(t *testing.T) {
	zones := func() []Instance {
		return []Instance{
			node("a1", 4096, 4000, "zone=a"), node("a2", 4096, 3000, "zone=a"),
			node("b1", 4096, 2000, "zone=b"), node("c1", 4096, 1000, "zone=c"),
		}
	}
	for _, tc := range []struct {
		name       string
		cluster    []Instance
		strategies []Strategy
		count      int
		want       []string
	}{
		{"binpack on memory fills the fullest instance first", zones(), []Strategy{{Binpack, FieldMemory}}, 3, []string{"c1", "c1", "b1"}},
		{"binpack on cpu, then memory breaks the tie", zones(), []Strategy{{Binpack, FieldCPU}, {Binpack, FieldMemory}}, 2, []string{"c1", "c1"}},
		{"spread over zones, then binpack within", zones(), []Strategy{{Spread, "attribute:zone"}, {Binpack, FieldMemory}}, 4, []string{"c1", "b1", "a2", "c1"}},
		{"spread over instances, then binpack", zones(), []Strategy{{Spread, FieldInstanceID}, {Binpack, FieldMemory}}, 5, []string{"c1", "b1", "a2", "a1", "c1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, fails := Place(tc.cluster, Request{Memory: 400, Group: "g", Strategies: tc.strategies}, tc.count, rand.New(rand.NewPCG(3, 4)))
			if len(fails) != 0 || !reflect.DeepEqual(ids(got), tc.want) {
				t.Errorf("placed on %v (failures %v), want %v", ids(got), fails, tc.want)
			}
		})
	}

	// Existing tasks of the group count for spread; other groups do not.
	cluster := zones()
	cluster[0].Tasks = []TaskInfo{{Group: "g"}, {Group: "g"}}
	cluster[2].Tasks = []TaskInfo{{Group: "other"}, {Group: "g", Stopping: true}}
	got, _ := Place(cluster, Request{Group: "g", Strategies: []Strategy{{Spread, "attribute:zone"}, {Binpack, FieldMemory}}}, 3, nil)
	if want := []string{"c1", "b1", "c1"}; !reflect.DeepEqual(ids(got), want) {
		t.Errorf("spread with existing tasks placed on %v, want %v", ids(got), want)
	}

	// Instances without the attribute form a group of their own.
	cluster = []Instance{node("a", 4096, 4096, "zone=a"), node("x", 4096, 4096), node("y", 4096, 4096)}
	got, _ = Place(cluster, Request{Group: "g", Strategies: []Strategy{{Spread, "attribute:zone"}}}, 2, nil)
	if want := []string{"a", "x"}; !reflect.DeepEqual(ids(got), want) {
		t.Errorf("spread with a missing attribute placed on %v, want %v", ids(got), want)
	}

	// Random picks among all candidates, and the rng decides.
	seen := map[string]bool{}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100 {
		got, _ := Place(zones(), Request{Strategies: []Strategy{{Random, ""}}}, 1, rng)
		seen[got[0].InstanceID] = true
	}
	if len(seen) != 4 {
		t.Errorf("random placed only on %v", seen)
	}

	// Without an rng, ties go to the lowest ID, whatever the order of the snapshot.
	shuffled := zones()
	shuffled[0], shuffled[3] = shuffled[3], shuffled[0]
	got, _ = Place(shuffled, Request{}, 1, nil)
	if got[0].InstanceID != "a1" {
		t.Errorf("tie without rng went to %s", got[0].InstanceID)
	}
}

func TestCheck(t *testing.T) {
	a := node("a", 1024, 1024, "zone=x")
	a.Tasks = []TaskInfo{{Group: "service:web"}}
	if err := Check(a, Request{CPU: 1024, Memory: 1024, Constraints: []Constraint{memberOf("attribute:zone == x")}}); err != nil {
		t.Errorf("a fitting task: %v", err)
	}
	inactive := a
	inactive.Status = StatusInactive
	for _, tc := range []struct {
		inst   Instance
		req    Request
		reason string
	}{
		{a, Request{Memory: 1025}, ReasonMemory},
		{a, Request{CPU: 1025}, ReasonCPU},
		{a, Request{HostPorts: []Port{{22, TCP}}}, ReasonPorts},
		{a, Request{HostPorts: []Port{{80, TCP}, {80, TCP}}}, ReasonPorts},
		{a, Request{Group: "service:web", Constraints: []Constraint{distinct}}, ReasonDistinctInstance},
		{a, Request{Constraints: []Constraint{memberOf("attribute:zone == y")}}, ReasonMemberOf},
		{a, Request{Constraints: []Constraint{{Type: MemberOf}}}, ReasonMemberOf},
		{inactive, Request{}, "INACTIVE"},
	} {
		err := Check(tc.inst, tc.req)
		var f *Failure
		if !errs.Is(err, errs.Conflict) || errs.ReasonOf(err) != Unplaceable || !errors.As(err, &f) {
			t.Errorf("Check(%+v) = %v, want a conflict wrapping a *Failure", tc.req, err)
			continue
		}
		if f.Reason != tc.reason || f.InstanceARN != a.ARN || f.InstanceID != "a" {
			t.Errorf("Check(%+v) failure = %+v, want reason %s", tc.req, f, tc.reason)
		}
	}
}

func TestUnableToPlaceMessage(t *testing.T) {
	const head = "(service web) was unable to place a task because no container instance met all of its requirements. "
	const tail = " For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
	for _, tc := range []struct {
		f    Failure
		want string
	}{
		{Failure{InstanceID: "79cac21e", Reason: ReasonMemory}, "The closest matching (container-instance 79cac21e) has insufficient memory available."},
		{Failure{InstanceID: "79cac21e", Reason: ReasonCPU}, "The closest matching (container-instance 79cac21e) has insufficient CPU units available."},
		{Failure{InstanceID: "79cac21e", Reason: ReasonPorts}, "The closest matching (container-instance 79cac21e) is already using a port required by your task."},
		{Failure{InstanceID: "79cac21e", Reason: ReasonAgent}, "The closest matching (container-instance 79cac21e) doesn't have the agent connected."},
		{Failure{InstanceID: "79cac21e", Reason: ReasonAttribute}, "The closest matching (container-instance 79cac21e) is missing an attribute required by your task."},
		{Failure{InstanceID: "79cac21e", Reason: ReasonMemberOf}, `The closest matching (container-instance 79cac21e) encountered error "MemberOf placement constraint unsatisfied.".`},
		{Failure{Reason: ReasonNoInstances}, "Reason: No Container Instances were found in your cluster."},
	} {
		if got := UnableToPlaceMessage("web", tc.f); got != head+tc.want+tail {
			t.Errorf("UnableToPlaceMessage(%+v) =\n%s\nwant\n%s", tc.f, got, head+tc.want+tail)
		}
	}
}

func TestReservation(t *testing.T) {
	for _, tc := range []struct {
		name             string
		taskCPU, taskMem int
		containers       []ContainerSize
		cpu, mem         int
	}{
		{"hard limits", 0, 0, []ContainerSize{{CPU: 256, Memory: 512}, {CPU: 128, Memory: 256}}, 384, 768},
		{"a reservation wins over the hard limit", 0, 0, []ContainerSize{{Memory: 512, MemoryReservation: 128}, {Memory: 256}}, 0, 384},
		{"only a reservation", 0, 0, []ContainerSize{{MemoryReservation: 300}}, 0, 300},
		{"task-level values win", 1024, 2048, []ContainerSize{{CPU: 256, Memory: 512}}, 1024, 2048},
		{"task-level memory only", 0, 2048, []ContainerSize{{CPU: 256, MemoryReservation: 512}}, 256, 2048},
	} {
		cpu, mem := Reservation(tc.taskCPU, tc.taskMem, tc.containers)
		if cpu != tc.cpu || mem != tc.mem {
			t.Errorf("%s: Reservation = %d, %d; want %d, %d", tc.name, cpu, mem, tc.cpu, tc.mem)
		}
	}
}

func TestParseConstraintAndStrategy(t *testing.T) {
	for _, tc := range []struct {
		typ, expr string
		ok        bool
		reason    string
	}{
		{"distinctInstance", "", true, ""},
		{"distinctInstance", "x", false, InvalidConstraint},
		{"memberOf", "attribute:a exists", true, ""},
		{"memberOf", "", false, InvalidConstraint},
		{"memberOf", "attribute:a", false, InvalidExpression},
		{"sameInstance", "", false, InvalidConstraint},
	} {
		_, err := ParseConstraint(tc.typ, tc.expr)
		if (err == nil) != tc.ok || err != nil && (!errs.Is(err, errs.Invalid) || errs.ReasonOf(err) != tc.reason) {
			t.Errorf("ParseConstraint(%q, %q) = %v", tc.typ, tc.expr, err)
		}
	}
	for _, tc := range []struct {
		typ, field string
		want       Strategy
		ok         bool
	}{
		{"binpack", "memory", Strategy{Binpack, FieldMemory}, true},
		{"binpack", "CPU", Strategy{Binpack, FieldCPU}, true},
		{"binpack", "disk", Strategy{}, false},
		{"binpack", "", Strategy{}, false},
		{"spread", "instanceId", Strategy{Spread, FieldInstanceID}, true},
		{"spread", "host", Strategy{Spread, FieldInstanceID}, true},
		{"spread", "attribute:ecs.availability-zone", Strategy{Spread, "attribute:ecs.availability-zone"}, true},
		{"spread", "attribute:", Strategy{}, false},
		{"spread", "zone", Strategy{}, false},
		{"random", "", Strategy{Random, ""}, true},
		{"random", "ignored", Strategy{Random, ""}, true},
		{"fill", "", Strategy{}, false},
	} {
		got, err := ParseStrategy(tc.typ, tc.field)
		if (err == nil) != tc.ok || got != tc.want || err != nil && errs.ReasonOf(err) != InvalidStrategy {
			t.Errorf("ParseStrategy(%q, %q) = %v, %v", tc.typ, tc.field, got, err)
		}
	}
}

func TestWire(t *testing.T) {
	str := func(s string) *string { return &s }
	ctype := func(s ecsapi.PlacementConstraintType) *ecsapi.PlacementConstraintType { return &s }
	cs, err := ConstraintsFromWire([]ecsapi.PlacementConstraint{
		{Type: ctype(ecsapi.PlacementConstraintTypeDistinctInstance)},
		{Type: ctype(ecsapi.PlacementConstraintTypeMemberOf), Expression: str("attribute:ecs.instance-type =~ t2.*")},
	})
	if err != nil || len(cs) != 2 || cs[0].Type != DistinctInstance || cs[1].Expr.String() != "attribute:ecs.instance-type =~ t2.*" {
		t.Errorf("ConstraintsFromWire = %v, %v", cs, err)
	}
	// ECS rejects an expression on distinctInstance even when it is empty.
	_, err = ConstraintsFromWire([]ecsapi.PlacementConstraint{{Type: ctype(ecsapi.PlacementConstraintTypeDistinctInstance), Expression: str("")}})
	if errs.ReasonOf(err) != InvalidConstraint || errs.MessageOf(err) != "distinctInstance expression should not be specified." {
		t.Errorf("distinctInstance with an empty expression: %v", err)
	}
	tdType := ecsapi.TaskDefinitionPlacementConstraintType("memberOf")
	if cs, err := TaskDefinitionConstraintsFromWire([]ecsapi.TaskDefinitionPlacementConstraint{{Type: &tdType, Expression: str("runningTasksCount < 3")}}); err != nil || len(cs) != 1 {
		t.Errorf("TaskDefinitionConstraintsFromWire = %v, %v", cs, err)
	}

	stype := func(s ecsapi.PlacementStrategyType) *ecsapi.PlacementStrategyType { return &s }
	ss, err := StrategiesFromWire([]ecsapi.PlacementStrategy{
		{Type: stype(ecsapi.PlacementStrategyTypeSpread), Field: str("attribute:ecs.availability-zone")},
		{Type: stype(ecsapi.PlacementStrategyTypeBinpack), Field: str("memory")},
	})
	if err != nil || !reflect.DeepEqual(ss, []Strategy{{Spread, "attribute:ecs.availability-zone"}, {Binpack, FieldMemory}}) {
		t.Errorf("StrategiesFromWire = %v, %v", ss, err)
	}
	six := make([]ecsapi.PlacementStrategy, MaxStrategies+1)
	for i := range six {
		six[i].Type = stype(ecsapi.PlacementStrategyTypeRandom)
	}
	if _, err := StrategiesFromWire(six); errs.ReasonOf(err) != InvalidStrategy {
		t.Errorf("%d strategies: %v", len(six), err)
	}

	if got := AttributesFromWire([]ecsapi.Attribute{{Name: str("ecs.capability.task-eni")}, {Name: str("ecs.os-type"), Value: str("linux")}}); !reflect.DeepEqual(got,
		[]Attribute{{Name: "ecs.capability.task-eni"}, {Name: "ecs.os-type", Value: "linux"}}) {
		t.Errorf("AttributesFromWire = %v", got)
	}

	w := Failure{InstanceID: "a", InstanceARN: "arn:x", Reason: ReasonPorts}.Wire()
	if *w.Arn != "arn:x" || *w.Reason != "RESOURCE:PORTS" || w.Detail != nil {
		t.Errorf("Wire = %+v", w)
	}
	if w := (Failure{Reason: ReasonNoInstances}).Wire(); w.Arn != nil {
		t.Errorf("Wire without an instance has an arn: %+v", w)
	}
}
