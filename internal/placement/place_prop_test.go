package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// The property tests run Place on random clusters and requests from a
// seeded generator and check invariants that must hold for every input.
// A failure prints the seed; rerun with it to reproduce.

const propRounds = 2000

var (
	propZones  = []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	propTypes  = []string{"t2.small", "t2.medium", "m5.large"}
	propGroups = []string{"service:web", "service:db", "family:batch"}
	propExprs  = []string{
		"attribute:ecs.instance-type =~ t2.*",
		"attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
		"runningTasksCount < 3",
		"not(task:group == service:db)",
		"task:group == service:web or attribute:stack exists",
		"agentVersion >= 1.50",
	}
)

// genCluster makes a random cluster of up to 12 instances.
func genCluster(r *rand.Rand) []Instance {
	n := r.IntN(13)
	c := make([]Instance, n)
	for i := range c {
		cpu, mem := 256*(1+r.IntN(16)), 256*(1+r.IntN(32))
		in := node(fmt.Sprintf("i%02d", i), cpu, mem,
			"ecs.availability-zone="+propZones[r.IntN(len(propZones))],
			"ecs.instance-type="+propTypes[r.IntN(len(propTypes))])
		if r.IntN(3) == 0 {
			in.Attributes["stack"] = "prod"
		}
		in.AgentVersion = fmt.Sprintf("1.%d.0", 40+r.IntN(30))
		in.AgentConnected = r.IntN(10) != 0
		switch r.IntN(10) {
		case 0:
			in.Status = StatusDraining
		case 1:
			in.Status = StatusInactive
		}
		in.Remaining.CPU = r.IntN(cpu + 1)
		in.Remaining.Memory = r.IntN(mem + 1)
		in.DynamicPortRange = PortRange{First: 50000, Last: 50000 + r.IntN(8)}
		in.DynamicPortsInUse = r.IntN(3)
		for range r.IntN(4) {
			in.Remaining.Ports = append(in.Remaining.Ports, Port{Number: 80 + r.IntN(4), Protocol: []Protocol{TCP, UDP, ""}[r.IntN(3)]})
		}
		for range r.IntN(4) {
			in.Tasks = append(in.Tasks, TaskInfo{Group: propGroups[r.IntN(len(propGroups))], Stopping: r.IntN(5) == 0})
			in.RunningTasksCount++
		}
		c[i] = in
	}
	return c
}

// genRequest makes a random request.
func genRequest(r *rand.Rand) Request {
	req := Request{
		CPU:    128 * r.IntN(8),
		Memory: 128 * r.IntN(16),
		Group:  propGroups[r.IntN(len(propGroups))],
	}
	for range r.IntN(3) {
		req.HostPorts = append(req.HostPorts, Port{Number: 80 + r.IntN(4), Protocol: []Protocol{TCP, UDP}[r.IntN(2)]})
	}
	req.DynamicPorts = r.IntN(3)
	if r.IntN(4) == 0 {
		req.RequiredAttributes = []Attribute{{Name: "stack"}}
	}
	if r.IntN(3) == 0 {
		req.Constraints = append(req.Constraints, distinct)
	}
	for range r.IntN(3) {
		req.Constraints = append(req.Constraints, memberOf(propExprs[r.IntN(len(propExprs))]))
	}
	all := []Strategy{{Binpack, FieldCPU}, {Binpack, FieldMemory}, {Spread, FieldInstanceID},
		{Spread, "attribute:ecs.availability-zone"}, {Spread, "attribute:stack"}, {Random, ""}}
	for range r.IntN(4) {
		req.Strategies = append(req.Strategies, all[r.IntN(len(all))])
	}
	return req
}

// apply returns the cluster after placing one task of req on the
// instance with the given ID, as the committing applier would record it.
func apply(c []Instance, req Request, id string) []Instance {
	c = cloneCluster(c)
	for i := range c {
		if c[i].ID != id {
			continue
		}
		c[i].Remaining.CPU -= req.CPU
		c[i].Remaining.Memory -= req.Memory
		c[i].Remaining.Ports = append(c[i].Remaining.Ports, req.HostPorts...)
		c[i].DynamicPortsInUse += req.DynamicPorts
		c[i].RunningTasksCount++
		c[i].Tasks = append(c[i].Tasks, TaskInfo{Group: req.Group})
	}
	return c
}

// TestPlaceProperties checks, on random input, that:
//   - every task is either placed or failed, and once one fails the rest
//     fail the same way;
//   - replaying the placements one by one, each passes Check on the
//     cluster as it is then: no CPU, memory or port is overcommitted, no
//     constraint is broken (distinctInstance included), and only ACTIVE
//     connected instances are used;
//   - a failure names an ACTIVE instance (or none, when there is none),
//     and nothing fits anywhere in the final cluster;
//   - the snapshot is left alone, and the same seed gives the same result.
func TestPlaceProperties(t *testing.T) {
	for seed := range uint64(propRounds) {
		r := rand.New(rand.NewPCG(seed, 42))
		cluster := genCluster(r)
		req := genRequest(r)
		checkPlace(t, fmt.Sprintf("seed %d", seed), cluster, req, 1+r.IntN(10), seed)
	}
}

// checkPlace runs Place and checks the properties above.
func checkPlace(t *testing.T, name string, cluster []Instance, req Request, count int, seed uint64) {
	t.Helper()
	before := cloneCluster(cluster)
	placed, failed := Place(cluster, req, count, rand.New(rand.NewPCG(seed, 7)))
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: %s\nrequest %+v\nplaced %v failed %v", name, fmt.Sprintf(format, args...), req, ids(placed), failed)
	}
	if len(placed)+len(failed) != max(count, 0) {
		fail("%d placements and %d failures for %d tasks", len(placed), len(failed), count)
	}
	for _, f := range failed {
		if f != failed[0] {
			fail("failures differ")
		}
	}
	if !reflect.DeepEqual(cluster, before) {
		fail("the snapshot was modified")
	}
	again, againFailed := Place(cluster, req, count, rand.New(rand.NewPCG(seed, 7)))
	if !reflect.DeepEqual(again, placed) || !reflect.DeepEqual(againFailed, failed) {
		fail("a second run with the same seed gave %v %v", ids(again), againFailed)
	}

	state := cluster
	for _, p := range placed {
		k := slices.IndexFunc(state, func(in Instance) bool { return in.ID == p.InstanceID })
		if k < 0 || state[k].ARN != p.InstanceARN {
			fail("placement %+v names no instance of the cluster", p)
		}
		if err := Check(state[k], req); err != nil {
			fail("placement on %s does not pass Check: %v", p.InstanceID, err)
		}
		state = apply(state, req, p.InstanceID)
	}

	if len(failed) == 0 {
		return
	}
	active := slices.ContainsFunc(cluster, func(in Instance) bool { return in.Status == StatusActive })
	f := failed[0]
	switch {
	case !active && (f.Reason != ReasonNoInstances || f.InstanceID != ""):
		fail("no ACTIVE instance but failure %+v", f)
	case active:
		k := slices.IndexFunc(state, func(in Instance) bool { return in.ID == f.InstanceID })
		if k < 0 || state[k].Status != StatusActive {
			fail("failure %+v does not name an ACTIVE instance", f)
		}
		if err := Check(state[k], req); err == nil {
			fail("the closest match %s fits", f.InstanceID)
		}
	}
	for _, in := range state {
		if Check(in, req) == nil {
			fail("a task failed although %s fits", in.ID)
		}
	}
}

// FuzzPlace runs the properties of TestPlaceProperties on clusters and
// requests drawn from the fuzzer's seed, with a memberOf constraint from
// the fuzzer's expression when it parses.
func FuzzPlace(f *testing.F) {
	f.Add(uint64(0), uint8(3), "")
	f.Add(uint64(1), uint8(10), "attribute:ecs.instance-type =~ t2.* or runningTasksCount < 2")
	f.Add(uint64(7), uint8(5), "not(task:group == service:db) and attribute:stack !exists")
	f.Add(uint64(99), uint8(200), "task:group != service:web")
	f.Fuzz(func(t *testing.T, seed uint64, count uint8, expr string) {
		r := rand.New(rand.NewPCG(seed, 47))
		cluster := genCluster(r)
		req := genRequest(r)
		if e, err := Parse(expr); err == nil {
			req.Constraints = append(req.Constraints, Constraint{Type: MemberOf, Expr: e})
		}
		checkPlace(t, fmt.Sprintf("seed %d", seed), cluster, req, int(count%32), seed)
	})
}

// TestDistinctInstanceProperty: however many tasks are asked for, no
// instance ends up with two active tasks of the group.
func TestDistinctInstanceProperty(t *testing.T) {
	for seed := range uint64(propRounds) {
		r := rand.New(rand.NewPCG(seed, 43))
		cluster := genCluster(r)
		req := genRequest(r)
		req.Constraints = append(req.Constraints, distinct)
		placed, _ := Place(cluster, req, 1+r.IntN(15), rand.New(rand.NewPCG(seed, 8)))
		per := map[string]int{}
		for _, in := range cluster {
			per[in.ID] = in.groupCount(req.Group)
		}
		for _, p := range placed {
			if per[p.InstanceID]++; per[p.InstanceID] > 1 {
				t.Fatalf("seed %d: two tasks of %s on %s", seed, req.Group, p.InstanceID)
			}
		}
	}
}

// TestSpreadProperty: spreading over an attribute on a cluster with room
// everywhere keeps the task counts of the values within one of each other
// after every placement, whatever else the strategies say.
func TestSpreadProperty(t *testing.T) {
	for seed := range uint64(propRounds / 4) {
		r := rand.New(rand.NewPCG(seed, 44))
		var cluster []Instance
		for i := range 1 + r.IntN(10) {
			cluster = append(cluster, node(fmt.Sprintf("i%02d", i), 1<<20, 1<<20,
				"zone="+propZones[i%len(propZones)], "rack="+fmt.Sprint(r.IntN(4))))
		}
		values := map[string]bool{}
		for _, in := range cluster {
			values[in.Attributes["zone"]] = true
		}
		strategies := []Strategy{{Spread, "attribute:zone"}}
		for range r.IntN(3) {
			strategies = append(strategies, []Strategy{{Binpack, FieldMemory}, {Spread, FieldInstanceID}, {Spread, "attribute:rack"}, {Random, ""}}[r.IntN(4)])
		}
		req := Request{CPU: 1 + r.IntN(100), Memory: 1 + r.IntN(100), Group: "service:web", Strategies: strategies}
		placed, failed := Place(cluster, req, 1+r.IntN(40), rand.New(rand.NewPCG(seed, 9)))
		if len(failed) > 0 {
			t.Fatalf("seed %d: failures %v", seed, failed)
		}
		counts := map[string]int{}
		for v := range values {
			counts[v] = 0
		}
		for n, p := range placed {
			k := slices.IndexFunc(cluster, func(in Instance) bool { return in.ID == p.InstanceID })
			counts[cluster[k].Attributes["zone"]]++
			lo, hi := n+1, 0
			for _, c := range counts {
				lo, hi = min(lo, c), max(hi, c)
			}
			if hi-lo > 1 {
				t.Fatalf("seed %d: after %d placements the zones hold %v", seed, n+1, counts)
			}
		}
	}
}

// TestBinpackProperty: on identical instances, binpack fills one instance
// before it starts the next, so k tasks use ceil(k/perInstance) instances,
// all full but the last.
func TestBinpackProperty(t *testing.T) {
	for seed := range uint64(propRounds / 4) {
		r := rand.New(rand.NewPCG(seed, 45))
		per := 1 + r.IntN(5)
		field := []string{FieldCPU, FieldMemory}[r.IntN(2)]
		var cluster []Instance
		n := 1 + r.IntN(6)
		for i := range n {
			cluster = append(cluster, node(fmt.Sprintf("i%02d", i), 256*per, 512*per))
		}
		count := 1 + r.IntN(per*n)
		placed, failed := Place(cluster, Request{CPU: 256, Memory: 512, Strategies: []Strategy{{Binpack, field}}}, count,
			rand.New(rand.NewPCG(seed, 10)))
		if len(failed) > 0 {
			t.Fatalf("seed %d: failures %v", seed, failed)
		}
		for k, p := range placed {
			// Task k goes to the instance task k-per*(k/per) of its run
			// started on: a new instance every per tasks.
			if k%per != 0 && p.InstanceID != placed[k-1].InstanceID {
				t.Fatalf("seed %d: %s binpack moved to %s before %s was full: %v", seed, field, p.InstanceID, placed[k-1].InstanceID, ids(placed))
			}
			if k%per == 0 && slices.Contains(ids(placed[:k]), p.InstanceID) {
				t.Fatalf("seed %d: %s binpack went back to full %s: %v", seed, field, p.InstanceID, ids(placed))
			}
		}
	}
}

// TestNothingFits: a request no instance can take places nothing and
// fails every task.
func TestNothingFits(t *testing.T) {
	for seed := range uint64(propRounds / 4) {
		r := rand.New(rand.NewPCG(seed, 46))
		cluster := genCluster(r)
		req := genRequest(r)
		req.Memory = 1 << 30
		count := 1 + r.IntN(10)
		placed, failed := Place(cluster, req, count, rand.New(rand.NewPCG(seed, 11)))
		if len(placed) != 0 || len(failed) != count {
			t.Fatalf("seed %d: placed %v, %d failures for %d tasks", seed, ids(placed), len(failed), count)
		}
	}
}
