package placement

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/berthdev/berth/internal/errs"
)

// Failure reasons, as ECS reports them in RunTask's and StartTask's
// failures (with the closest matching instance's ARN) and in service
// events. Check also reports an instance that is not ACTIVE with its
// status as the reason (INACTIVE, DRAINING, ...).
const (
	ReasonAgent            = "AGENT"           // the instance's agent is disconnected
	ReasonAttribute        = "ATTRIBUTE"       // the instance lacks a required attribute
	ReasonCPU              = "RESOURCE:CPU"    // not enough CPU units left
	ReasonMemory           = "RESOURCE:MEMORY" // not enough memory left
	ReasonPorts            = "RESOURCE:PORTS"  // a static host port is taken, or no dynamic one is free
	ReasonDistinctInstance = "DistinctInstance placement constraint unsatisfied."
	ReasonMemberOf         = "MemberOf placement constraint unsatisfied."
	// ReasonNoInstances: the cluster has no ACTIVE container instance.
	// RunTask answers it with InvalidParameterException and this message.
	ReasonNoInstances = "No Container Instances were found in your cluster."
)

// Unplaceable is the errs reason of Check's errors.
const Unplaceable = "placement.unplaceable"

// Placement is where one task goes.
type Placement struct {
	InstanceID  string
	InstanceARN string
}

// Failure is why a task could not be placed, with the closest matching
// instance: the one that passed the most checks (see docs/placement.md).
// The instance is empty with ReasonNoInstances.
type Failure struct {
	InstanceID  string
	InstanceARN string
	Reason      string
}

func (f *Failure) Error() string {
	if f.InstanceID == "" {
		return f.Reason
	}
	return fmt.Sprintf("container instance %s: %s", f.InstanceID, f.Reason)
}

// Place places count tasks, each described by req, on the ACTIVE
// instances of snapshot, one after the other: after each placement it
// takes the task's CPU, memory and ports from the chosen instance and
// adds the task (in req.Group) to it, so later tasks see the cluster as
// it will be. snapshot is not modified.
//
// Each task goes through the filters (agent connected, required
// attributes, CPU, memory, ports, then the constraints in order), and the
// instances that pass all of them through the strategies in order: each
// keeps only the best candidates, the next breaks their tie, and a random
// choice with rng breaks what tie remains. With a nil rng the tie goes to
// the lowest instance ID.
//
// A task that fits nowhere gets a Failure naming the closest matching
// instance; since the cluster does not change after that, every later
// task gets the same one. len(placements)+len(failures) == count.
func Place(snapshot []Instance, req Request, count int, rng *rand.Rand) (placements []Placement, failures []Failure) {
	if count <= 0 {
		return nil, nil
	}
	p := newPlanner(snapshot, &req)
	for n := range count {
		i, fail := p.pick(rng)
		if i < 0 {
			for range count - n {
				failures = append(failures, fail)
			}
			break
		}
		p.commit(i)
		placements = append(placements, Placement{InstanceID: p.insts[i].ID, InstanceARN: p.insts[i].ARN})
	}
	return placements, failures
}

// Check reports whether a task described by req can go on inst now: the
// instance must be ACTIVE and pass every filter of Place (strategies play
// no part). It is the re-check the committing applier does on fresh state
// (and StartTask's check of the instances it is given). The error is of
// kind errs.Conflict with reason Unplaceable and wraps the *Failure.
func Check(inst Instance, req Request) error {
	reason := ""
	if inst.Status != StatusActive {
		reason = string(inst.Status)
		if reason == "" {
			reason = string(StatusInactive)
		}
	} else if _, r := evaluate(&inst, &req, inst.groupCount(req.Group)); r != "" {
		reason = r
	}
	if reason == "" {
		return nil
	}
	return &errs.Error{Kind: errs.Conflict, Reason: Unplaceable,
		Err: &Failure{InstanceID: inst.ID, InstanceARN: inst.ARN, Reason: reason}}
}

// Filter stages, in the order they are checked; a constraint's stage is
// stageConstraint plus its index. An instance that fails at a later stage
// is a closer match.
const (
	stageAgent = iota
	stageAttribute
	stageCPU
	stageMemory
	stagePorts
	stageConstraint
)

// fits is the stage of an instance that passed every filter.
const fits = int(^uint(0) >> 1)

// evaluate runs req's filters on inst, where group is the number of
// active tasks of req.Group on inst. It returns the stage and reason of
// the first filter that fails, or fits and "".
func evaluate(inst *Instance, req *Request, group int) (int, string) {
	if !inst.AgentConnected {
		return stageAgent, ReasonAgent
	}
	for _, a := range req.RequiredAttributes {
		v, ok := inst.Attributes[a.Name]
		if !ok || a.Value != "" && v != a.Value {
			return stageAttribute, ReasonAttribute
		}
	}
	if req.CPU > inst.Remaining.CPU {
		return stageCPU, ReasonCPU
	}
	if req.Memory > inst.Remaining.Memory {
		return stageMemory, ReasonMemory
	}
	if !portsFit(inst, req) {
		return stagePorts, ReasonPorts
	}
	for k, c := range req.Constraints {
		switch c.Type {
		case DistinctInstance:
			if group > 0 {
				return stageConstraint + k, ReasonDistinctInstance
			}
		case MemberOf:
			if c.Expr == nil || !c.Expr.Match(inst) {
				return stageConstraint + k, ReasonMemberOf
			}
		}
	}
	return fits, ""
}

// portsFit reports whether req's host ports are free on inst, stay within
// MaxReservedPorts per protocol, and whether enough dynamic ports are.
func portsFit(inst *Instance, req *Request) bool {
	if len(req.HostPorts) > 0 {
		var tcp, udp int
		for _, p := range inst.Remaining.Ports {
			if p.proto() == UDP {
				udp++
			} else {
				tcp++
			}
		}
		for k, p := range req.HostPorts {
			if inst.portTaken(p) || slices.Contains(req.HostPorts[:k], p) {
				return false
			}
			if p.proto() == UDP {
				udp++
			} else {
				tcp++
			}
		}
		if tcp > MaxReservedPorts || udp > MaxReservedPorts {
			return false
		}
	}
	return req.DynamicPorts <= 0 || req.DynamicPorts <= inst.freeDynamicPorts()
}

// planner holds Place's working copy of the cluster. Between two tasks
// only the instance that took the first one changes, so the result of the
// filters is kept per instance and recomputed only for that one.
type planner struct {
	req   *Request
	insts []Instance // shallow copies of the snapshot
	owned []bool     // insts[i]'s slices are private copies
	order []int      // indexes of the ACTIVE instances, by ID
	group []int      // active tasks of req.Group on each instance
	stage []int      // cached filter stage of each instance, or -1
	why   []string   // cached failure reason of each instance
	// spreads counts the active tasks of req.Group on ACTIVE instances
	// per value of each attribute a spread strategy names.
	spreads []spread
	strats  []strategy // req.Strategies, resolved
	cands   []int
}

// spread is the state of spreading over one attribute.
type spread struct {
	field  string
	bucket []int // value bucket of each ACTIVE instance
	counts []int // tasks of the group per bucket
}

// strategy is a Strategy resolved for the planner.
type strategy struct {
	kind   int // one of the strat* constants
	spread int // index in planner.spreads, for stratSpreadAttribute
}

const (
	stratRandom = iota
	stratBinpackCPU
	stratBinpackMemory
	stratSpreadInstance
	stratSpreadAttribute
)

func newPlanner(snapshot []Instance, req *Request) *planner {
	n := len(snapshot)
	p := &planner{
		req:   req,
		insts: slices.Clone(snapshot),
		owned: make([]bool, n),
		group: make([]int, n),
		stage: make([]int, n),
		why:   make([]string, n),
	}
	for i := range p.insts {
		p.stage[i] = -1
		if p.insts[i].Status != StatusActive {
			continue
		}
		p.order = append(p.order, i)
		p.group[i] = p.insts[i].groupCount(req.Group)
	}
	slices.SortStableFunc(p.order, func(a, b int) int {
		return cmp.Or(cmp.Compare(p.insts[a].ID, p.insts[b].ID), cmp.Compare(p.insts[a].ARN, p.insts[b].ARN))
	})
	for _, s := range req.Strategies {
		switch {
		case s.Type == Random:
			p.strats = append(p.strats, strategy{kind: stratRandom})
		case s.Type == Binpack && s.Field == FieldCPU:
			p.strats = append(p.strats, strategy{kind: stratBinpackCPU})
		case s.Type == Binpack && s.Field == FieldMemory:
			p.strats = append(p.strats, strategy{kind: stratBinpackMemory})
		case s.Type == Spread && s.Field == FieldInstanceID:
			p.strats = append(p.strats, strategy{kind: stratSpreadInstance})
		case s.Type == Spread && len(s.Field) > len(attributePrefix) && s.Field[:len(attributePrefix)] == attributePrefix:
			k := slices.IndexFunc(p.spreads, func(sp spread) bool { return sp.field == s.Field })
			if k < 0 {
				k = len(p.spreads)
				p.spreads = append(p.spreads, p.newSpread(s.Field))
			}
			p.strats = append(p.strats, strategy{kind: stratSpreadAttribute, spread: k})
		}
	}
	return p
}

// newSpread counts the group's tasks per value of attribute:<name>.
// Instances without the attribute share a bucket of their own.
func (p *planner) newSpread(field string) spread {
	name := field[len(attributePrefix):]
	sp := spread{field: field, bucket: make([]int, len(p.insts))}
	ids := map[string]int{}
	const missing = "\x00" // not a valid attribute value
	for _, i := range p.order {
		v, ok := p.insts[i].Attributes[name]
		if !ok {
			v = missing
		}
		b, ok := ids[v]
		if !ok {
			b = len(sp.counts)
			ids[v] = b
			sp.counts = append(sp.counts, 0)
		}
		sp.bucket[i] = b
		sp.counts[b] += p.group[i]
	}
	return sp
}

// pick chooses the instance for the next task, or returns -1 and the
// failure.
func (p *planner) pick(rng *rand.Rand) (int, Failure) {
	if len(p.order) == 0 {
		return -1, Failure{Reason: ReasonNoInstances}
	}
	p.cands = p.cands[:0]
	closest, closestStage := -1, -1
	for _, i := range p.order {
		if p.stage[i] < 0 {
			p.stage[i], p.why[i] = evaluate(&p.insts[i], p.req, p.group[i])
		}
		stage := p.stage[i]
		if stage == fits {
			p.cands = append(p.cands, i)
			continue
		}
		if stage > closestStage || stage == closestStage && closer(stage, &p.insts[i], &p.insts[closest]) {
			closest, closestStage = i, stage
		}
	}
	if len(p.cands) == 0 {
		c := &p.insts[closest]
		return -1, Failure{InstanceID: c.ID, InstanceARN: c.ARN, Reason: p.why[closest]}
	}
	cands := p.cands
	for _, s := range p.strats {
		if len(cands) <= 1 {
			break
		}
		switch s.kind {
		case stratRandom:
			k := randomIndex(rng, len(cands))
			cands = cands[k : k+1]
		case stratBinpackCPU:
			cands = keepMin(cands, func(i int) int { return p.insts[i].Remaining.CPU })
		case stratBinpackMemory:
			cands = keepMin(cands, func(i int) int { return p.insts[i].Remaining.Memory })
		case stratSpreadInstance:
			cands = keepMin(cands, func(i int) int { return p.group[i] })
		case stratSpreadAttribute:
			sp := &p.spreads[s.spread]
			cands = keepMin(cands, func(i int) int { return sp.counts[sp.bucket[i]] })
		}
	}
	return cands[randomIndex(rng, len(cands))], Failure{}
}

// closer reports whether a is a closer match than b, both having failed
// at stage: for CPU and memory the one with more left, else the first.
func closer(stage int, a, b *Instance) bool {
	switch stage {
	case stageCPU:
		return a.Remaining.CPU > b.Remaining.CPU
	case stageMemory:
		return a.Remaining.Memory > b.Remaining.Memory
	}
	return false
}

func randomIndex(rng *rand.Rand, n int) int {
	if rng == nil || n <= 1 {
		return 0
	}
	return rng.IntN(n)
}

// keepMin keeps the candidates with the least key, in order, reusing
// cands' storage.
func keepMin(cands []int, key func(int) int) []int {
	least := key(cands[0])
	for _, i := range cands[1:] {
		least = min(least, key(i))
	}
	kept := cands[:0]
	for _, i := range cands {
		if key(i) == least {
			kept = append(kept, i)
		}
	}
	return kept
}

// commit places one task of req on instance i of the working copy.
func (p *planner) commit(i int) {
	inst := &p.insts[i]
	if !p.owned[i] {
		inst.Remaining.Ports = slices.Clone(inst.Remaining.Ports)
		inst.Tasks = slices.Clone(inst.Tasks)
		p.owned[i] = true
	}
	inst.Remaining.CPU -= p.req.CPU
	inst.Remaining.Memory -= p.req.Memory
	for _, hp := range p.req.HostPorts {
		inst.Remaining.Ports = append(inst.Remaining.Ports, Port{Number: hp.Number, Protocol: hp.proto()})
	}
	inst.DynamicPortsInUse += max(0, p.req.DynamicPorts)
	inst.RunningTasksCount++
	inst.Tasks = append(inst.Tasks, TaskInfo{Group: p.req.Group})
	p.group[i]++
	for k := range p.spreads {
		p.spreads[k].counts[p.spreads[k].bucket[i]]++
	}
	p.stage[i] = -1
}
