package ecs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/capacityprovider"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/taskdef"
)

// Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks. Tasks are
// created PROVISIONING / desired RUNNING by the applier (applier.go); the
// agent reports their observed state (agentreport.go). docs/tasks.md.

// Limits and defaults of the task APIs.
const (
	maxRunCount        = 10
	maxClientTokenLen  = 64
	maxGroupLen        = 255
	maxStartedByLen    = 128
	defaultStopReason  = "Task stopped by user"
	reasonTaskNotFound = "The referenced task was not found."
)

// buildSpec resolves and checks a task request against its task
// definition.
func (s *Service) buildSpec(ctx context.Context, cluster string, in taskInput) (*taskSpec, error) {
	if err := checkLaunchType(in.LaunchType); err != nil {
		return nil, err
	}
	fargate := isFargateLaunch(in.LaunchType)
	if !fargate && in.PlatformVersion != nil {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "The platform version must be null when specifying an EC2 launch type.")
	}
	if len(in.Group) > maxGroupLen {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "group can be at most %d characters.", maxGroupLen)
	}
	if len(in.StartedBy) > maxStartedByLen {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "startedBy can be at most %d characters.", maxStartedByLen)
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	if in.TaskDefinition == "" {
		return nil, errs.R(errs.Invalid, reasonClient, "TaskDefinition can not be blank.")
	}
	rec, _, err := s.findTaskDef(ctx, in.TaskDefinition)
	if err != nil {
		return nil, err
	}
	td := rec.TaskDefinition
	if deref(td.Status) != ecsapi.TaskDefinitionStatusActive {
		return nil, errs.R(errs.Invalid, reasonClient, "TaskDefinition is inactive")
	}
	var fl *fargateLaunch
	if fargate {
		if fl, err = resolveFargate(&td, in.PlatformVersion, in.Network); err != nil {
			return nil, err
		}
		fl.CapacityProvider = in.CapacityProvider
	} else {
		if !supportsEC2(&td) {
			return nil, errs.R(errs.Invalid, reasonInvalidParameter,
				"Task definition does not support launch_type EC2. Berth runs tasks on its own container instances (EC2 launch type) or on its Fargate hosts (launch type FARGATE).")
		}
		if err := checkNetworkConfiguration(in.Network, deref(td.NetworkMode), false); err != nil {
			return nil, err
		}
	}
	taskCPU, taskMem, sizes, err := applyOverrides(&td, in.Overrides)
	if err != nil {
		return nil, err
	}
	spec := &taskSpec{TD: td, Overrides: in.Overrides, Group: in.Group, StartedBy: in.StartedBy, Fargate: fl}
	if spec.Group == "" {
		spec.Group = "family:" + deref(td.Family)
	}
	switch deref(in.PropagateTags) {
	case "", ecsapi.PropagateTagsNone:
		spec.Tags = in.Tags
	case ecsapi.PropagateTagsTaskDefinition:
		spec.Tags = mergeTags(rec.Tags, in.Tags)
	default:
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "propagateTags %s is only valid for service tasks.", deref(in.PropagateTags))
	}
	if in.ManagedTags {
		spec.Tags = mergeTags(spec.Tags, []ecsapi.Tag{{Key: ptr("aws:ecs:clusterName"), Value: ptr(cluster)}})
	}
	spec.TCP, spec.UDP, spec.Dynamic = hostPorts(&td)
	cpu, mem := placement.Reservation(taskCPU, taskMem, sizes)
	spec.Req = placement.Request{
		CPU: cpu, Memory: mem, DynamicPorts: spec.Dynamic, Group: spec.Group,
		RequiredAttributes: placement.AttributesFromWire(td.RequiresAttributes),
	}
	for _, p := range spec.TCP {
		spec.Req.HostPorts = append(spec.Req.HostPorts, placement.Port{Number: p, Protocol: placement.TCP})
	}
	for _, p := range spec.UDP {
		spec.Req.HostPorts = append(spec.Req.HostPorts, placement.Port{Number: p, Protocol: placement.UDP})
	}
	if fl != nil {
		if err := fargateRequest(spec, taskCPU, taskMem); err != nil {
			return nil, err
		}
	}
	return spec, nil
}

// supportsEC2 reports whether a task definition may run on container
// instances.
func supportsEC2(td *ecsapi.TaskDefinition) bool {
	if len(td.RequiresCompatibilities) > 0 && !slices.Contains(td.RequiresCompatibilities, ecsapi.CompatibilityEc2) {
		return false
	}
	return len(td.Compatibilities) == 0 || slices.Contains(td.Compatibilities, ecsapi.CompatibilityEc2)
}

// applyOverrides checks overrides against the task definition and returns
// the task-level sizes and the container sizes in force.
func applyOverrides(td *ecsapi.TaskDefinition, o *ecsapi.TaskOverride) (taskCPU, taskMem int, sizes []placement.ContainerSize, err error) {
	byName := map[string]*ecsapi.ContainerOverride{}
	if o != nil {
		for i := range o.ContainerOverrides {
			co := &o.ContainerOverrides[i]
			name := deref(co.Name)
			if name == "" {
				return 0, 0, nil, errs.R(errs.Invalid, reasonInvalidParameter, "Container.name should not be null or empty.")
			}
			if !slices.ContainsFunc(td.ContainerDefinitions, func(c ecsapi.ContainerDefinition) bool { return deref(c.Name) == name }) {
				return 0, 0, nil, errs.R(errs.Invalid, reasonInvalidParameter, "Override for container named %s is not a container in the TaskDefinition.", name)
			}
			if deref(co.Cpu) < 0 || deref(co.Memory) < 0 || deref(co.MemoryReservation) < 0 {
				return 0, 0, nil, errs.R(errs.Invalid, reasonInvalidParameter, "Container overrides for %s must not be negative.", name)
			}
			byName[name] = co
		}
	}
	parse := func(v *string, f func(string) (int, error), what string) (int, error) {
		if deref(v) == "" {
			return 0, nil
		}
		n, err := f(*v)
		if err != nil {
			return 0, errs.R(errs.Invalid, reasonInvalidParameter, "Invalid %s value: %s", what, *v)
		}
		return n, nil
	}
	cpuStr, memStr := td.Cpu, td.Memory
	if o != nil && deref(o.Cpu) != "" {
		cpuStr = o.Cpu
	}
	if o != nil && deref(o.Memory) != "" {
		memStr = o.Memory
	}
	if taskCPU, err = parse(cpuStr, taskdef.ParseCPU, "cpu"); err != nil {
		return 0, 0, nil, err
	}
	if taskMem, err = parse(memStr, taskdef.ParseMemory, "memory"); err != nil {
		return 0, 0, nil, err
	}
	for _, c := range td.ContainerDefinitions {
		sz := placement.ContainerSize{CPU: int(deref(c.Cpu)), Memory: int(deref(c.Memory)), MemoryReservation: int(deref(c.MemoryReservation))}
		if co := byName[deref(c.Name)]; co != nil {
			if co.Cpu != nil {
				sz.CPU = int(*co.Cpu)
			}
			if co.Memory != nil {
				sz.Memory = int(*co.Memory)
			}
			if co.MemoryReservation != nil {
				sz.MemoryReservation = int(*co.MemoryReservation)
			}
		}
		if sz.Memory > 0 && sz.MemoryReservation > sz.Memory {
			return 0, 0, nil, errs.R(errs.Invalid, reasonInvalidParameter,
				"Invalid setting for container '%s'. At least one of 'memory' or 'memoryReservation' must be specified, and 'memory' must be greater than or equal to 'memoryReservation'.", deref(c.Name))
		}
		sizes = append(sizes, sz)
	}
	return taskCPU, taskMem, sizes, nil
}

// hostPorts returns the static host ports (TCP, UDP) a task of td binds
// and how many dynamic host ports it takes. awsvpc and none tasks bind no
// host port; bridge mappings with host port 0 take a dynamic one.
func hostPorts(td *ecsapi.TaskDefinition) (tcp, udp []int, dynamic int) {
	mode := deref(td.NetworkMode)
	if mode == ecsapi.NetworkModeAwsvpc || mode == ecsapi.NetworkModeNone {
		return nil, nil, 0
	}
	for _, c := range td.ContainerDefinitions {
		for _, pm := range c.PortMappings {
			if r := deref(pm.ContainerPortRange); r != "" {
				if mode != ecsapi.NetworkModeHost {
					lo, hi, _ := strings.Cut(r, "-")
					a, err1 := strconv.Atoi(lo)
					b, err2 := strconv.Atoi(hi)
					if err1 == nil && err2 == nil && b >= a {
						dynamic += b - a + 1
					}
				}
				continue
			}
			hp := int(deref(pm.HostPort))
			if mode == ecsapi.NetworkModeHost && hp == 0 {
				hp = int(deref(pm.ContainerPort))
			}
			switch {
			case hp == 0:
				dynamic++
			case deref(pm.Protocol) == ecsapi.TransportProtocolUdp:
				udp = append(udp, hp)
			default:
				tcp = append(tcp, hp)
			}
		}
	}
	return tcp, udp, dynamic
}

// newTask makes the record of a task of spec placed on an instance.
func (s *Service) newTask(cluster string, spec *taskSpec, inst *instanceView, now time.Time) taskRecord {
	id := newID()
	return taskRecord{
		ID:                id,
		ARN:               s.taskARN(cluster, id),
		Cluster:           cluster,
		ClusterARN:        s.clusterARN(cluster),
		TaskDefinitionARN: deref(spec.TD.TaskDefinitionArn),
		InstanceID:        inst.Rec.ID,
		InstanceARN:       inst.Rec.ARN,
		Overrides:         spec.Overrides,
		Group:             spec.Group,
		StartedBy:         spec.StartedBy,
		LaunchType:        launchTypeOf(spec),
		Tags:              spec.Tags,
		CPU:               spec.Req.CPU,
		MemoryMiB:         spec.Req.Memory,
		HostPorts:         spec.TCP,
		HostUDP:           spec.UDP,
		DynamicPorts:      spec.Dynamic,
		CreatedAt:         now,
		AZ:                allAttributes(&inst.Rec)["ecs.availability-zone"],
		DesiredStatus:     DesiredRunning,
		Version:           1,
		LastStatus:        "PROVISIONING",
		Fargate:           taskFargate(spec.Fargate),
		EphemeralGiB:      ephemeralGiB(spec),
		ServiceConnect:    taskSC(spec),
		CapacityProvider:  spec.ASGProvider(),
	}
}

// ephemeralGiB is a Fargate task's ephemeral storage in GiB (0 for EC2).
func ephemeralGiB(spec *taskSpec) int {
	if spec.Fargate == nil {
		return 0
	}
	if o := spec.Overrides; o != nil && o.EphemeralStorage != nil && deref(o.EphemeralStorage.SizeInGiB) > 0 {
		return int(*o.EphemeralStorage.SizeInGiB)
	}
	if es := spec.TD.EphemeralStorage; es != nil && deref(es.SizeInGiB) > 0 {
		return int(*es.SizeInGiB)
	}
	return defaultEphemeralGiB
}

// requestHash identifies a RunTask request for client token idempotency.
func requestHash(in *ecsapi.RunTaskRequest) string {
	c := *in
	c.ClientToken = nil
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// errTokenUsed is returned by RunTask's planner when the client token was
// recorded by a concurrent RunTask.
var errTokenUsed = errs.E(errs.Conflict, "client token used concurrently")

func (s *Service) readClientToken(ctx context.Context, cluster, token string) (*clientTokenRecord, error) {
	kv, err := s.st.Get(ctx, clientTokenKey(cluster, token))
	if errs.Is(err, errs.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r clientTokenRecord
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "decode client token")
	}
	return &r, nil
}

// answerClientToken answers a repeated RunTask with the tasks the first
// one made, as they are now.
func (s *Service) answerClientToken(ctx context.Context, cluster string, in *ecsapi.RunTaskRequest, r *clientTokenRecord) (*ecsapi.RunTaskResponse, error) {
	if r.RequestHash != requestHash(in) {
		return nil, wireErr(errs.Conflict, reasonConflict, ecsapi.ErrConflictException,
			"The RunTask request could not be processed due to conflicts. The provided clientToken %s is already in use with a different RunTask request. The resourceIds are the existing task ARNs which are already associated with the clientToken: %s",
			deref(in.ClientToken), strings.Join(r.TaskARNs, ", "))
	}
	out := &ecsapi.RunTaskResponse{Tasks: []ecsapi.Task{}, Failures: append([]ecsapi.Failure{}, r.Failures...)}
	tds := map[string]*ecsapi.TaskDefinition{}
	for _, a := range r.TaskARNs {
		_, id, err := s.parseTaskARN(a)
		if err != nil {
			continue
		}
		t, _, err := s.getTask(ctx, cluster, id)
		if errs.Is(err, errs.NotFound) {
			out.Failures = append(out.Failures, ecsapi.Failure{Arn: ptr(a), Reason: ptr("MISSING")})
			continue
		}
		if err != nil {
			return nil, err
		}
		out.Tasks = append(out.Tasks, s.taskOut(&t, s.cachedTaskDef(ctx, tds, t.TaskDefinitionARN), true))
	}
	return out, nil
}

// RunTask places and starts count tasks of a task definition. Tasks that
// cannot be placed come back as failures, as on ECS.
func (s *Service) RunTask(ctx context.Context, in *ecsapi.RunTaskRequest) (*ecsapi.RunTaskResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	count := 1
	if in.Count != nil {
		count = int(*in.Count)
	}
	if count < 1 || count > maxRunCount {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "count must be between 1 and %d.", maxRunCount)
	}
	token := deref(in.ClientToken)
	if len(token) > maxClientTokenLen || strings.Contains(token, "/") {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "clientToken must be at most %d characters and contain no '/'.", maxClientTokenLen)
	}
	crec, _, err := s.getCluster(ctx, cluster, false)
	if err != nil {
		return nil, err
	}
	strategy, err := resolveStrategy(&crec, in.LaunchType, in.CapacityProviderStrategy)
	if err != nil {
		return nil, err
	}
	launchType := in.LaunchType
	if strategy != nil && !asgStrategy(strategy) {
		launchType = ptr(ecsapi.LaunchTypeFargate)
	}
	if token != "" {
		r, err := s.readClientToken(ctx, cluster, token)
		if err != nil {
			return nil, err
		}
		if r != nil {
			return s.answerClientToken(ctx, cluster, in, r)
		}
	}
	spec, err := s.buildSpec(ctx, cluster, taskInput{
		TaskDefinition: deref(in.TaskDefinition), Overrides: in.Overrides, Group: deref(in.Group),
		StartedBy: deref(in.StartedBy), Tags: in.Tags, PropagateTags: in.PropagateTags,
		ManagedTags: deref(in.EnableECSManagedTags), LaunchType: launchType,
		PlatformVersion: in.PlatformVersion, Network: in.NetworkConfiguration,
	})
	if err != nil {
		return nil, err
	}
	if strategy != nil {
		items := strategyItems(strategy)
		for _, i := range capacityprovider.Split(items, nil, count) {
			spec.Providers = append(spec.Providers, items[i].Provider)
		}
		if asgStrategy(strategy) { // asgplacement.go
			pools, err := s.strategyPools(ctx, strategy)
			if err != nil {
				return nil, err
			}
			spec.Pins, spec.Providers = pinsOf(spec.Providers, pools), nil
		}
	}
	if spec.Fargate != nil && (len(in.PlacementConstraints) > 0 || len(in.PlacementStrategy) > 0) {
		return nil, errFargateRules()
	}
	tdc, err := placement.TaskDefinitionConstraintsFromWire(spec.TD.PlacementConstraints)
	if err != nil {
		return nil, err
	}
	rc, err := placement.ConstraintsFromWire(in.PlacementConstraints)
	if err != nil {
		return nil, err
	}
	if len(tdc)+len(rc) > placement.MaxConstraints {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "The number of placement constraints exceeds the limit of %d.", placement.MaxConstraints)
	}
	spec.Req.Constraints = append(tdc, rc...)
	if spec.Fargate == nil {
		if spec.Req.Strategies, err = placement.StrategiesFromWire(in.PlacementStrategy); err != nil {
			return nil, err
		}
	} else {
		spec.Req.Constraints = nil // Fargate ignores the task definition's memberOf constraints
	}
	hash := requestHash(in)
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	read := func(ctx context.Context) (*clusterSnapshot, error) { return s.snapshot(ctx, cluster) }
	if spec.Fargate != nil {
		read = s.fargateSnapshot
	}
	p, err := s.applyPlanOn(ctx, cluster, read, func(snap *clusterSnapshot) (*plan, error) {
		if token != "" {
			if r, err := s.readClientToken(ctx, cluster, token); err != nil || r != nil {
				if err == nil {
					err = errTokenUsed
				}
				return nil, err
			}
		}
		var p *plan
		now := s.now().UTC()
		if spec.Fargate != nil {
			var err error
			p, err = s.planFargate(snap, cluster, spec, count, func(insts []placement.Instance, n int) ([]placement.Placement, []placement.Failure) {
				return placement.Place(insts, spec.Req, n, rng)
			})
			if err != nil {
				return nil, err
			}
		} else {
			var err error
			if p, err = s.planEC2(snap, cluster, spec, count, rng); err != nil { // asgplacement.go
				return nil, err
			}
		}
		if token != "" && len(p.Tasks) > 0 {
			tr := clientTokenRecord{RequestHash: hash, Failures: p.Failures, CreatedAt: now}
			for _, t := range p.Tasks {
				tr.TaskARNs = append(tr.TaskARNs, t.Rec.ARN)
			}
			b, _ := json.Marshal(tr)
			key := clientTokenKey(cluster, token)
			p.Cmps = append(p.Cmps, store.Absent(key))
			p.Ops = append(p.Ops, store.Put(key, b))
		}
		return p, nil
	})
	if err == errTokenUsed {
		r, err := s.readClientToken(ctx, cluster, token)
		if err != nil || r == nil {
			return nil, errs.E(errs.Unavailable, "client token %s changed concurrently; retry", token)
		}
		return s.answerClientToken(ctx, cluster, in, r)
	}
	if err != nil {
		return nil, err
	}
	out := &ecsapi.RunTaskResponse{Tasks: []ecsapi.Task{}, Failures: p.Failures}
	for _, t := range p.Tasks {
		out.Tasks = append(out.Tasks, s.taskOut(&t.Rec, &spec.TD, true))
	}
	if len(p.Tasks) > 0 {
		s.log.Info("tasks started", "cluster", cluster, "taskDefinition", deref(spec.TD.TaskDefinitionArn), "count", len(p.Tasks), "failures", len(p.Failures))
	}
	return out, nil
}

// StartTask starts a task on each of the given container instances.
// Placement strategies and constraints play no part; resources, ports,
// attributes and the instance's status and agent do.
func (s *Service) StartTask(ctx context.Context, in *ecsapi.StartTaskRequest) (*ecsapi.StartTaskResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	if len(in.ContainerInstances) == 0 || len(in.ContainerInstances) > maxRunCount {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "containerInstances must contain between 1 and %d entries.", maxRunCount)
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	spec, err := s.buildSpec(ctx, cluster, taskInput{
		TaskDefinition: deref(in.TaskDefinition), Overrides: in.Overrides, Group: deref(in.Group),
		StartedBy: deref(in.StartedBy), Tags: in.Tags, PropagateTags: in.PropagateTags,
		ManagedTags: deref(in.EnableECSManagedTags),
	})
	if err != nil {
		return nil, err
	}
	p, err := s.applyPlan(ctx, cluster, func(snap *clusterSnapshot) (*plan, error) {
		p := &plan{Failures: []ecsapi.Failure{}}
		work := map[string]*placement.Instance{}
		now := s.now().UTC()
		for _, ref := range in.ContainerInstances {
			id, ok := instanceRef(cluster, ref)
			v := snap.ByID[id]
			if !ok || v == nil {
				p.Failures = append(p.Failures, ecsapi.Failure{Arn: ptr(s.instanceFailureARN(cluster, ref)), Reason: ptr("MISSING")})
				continue
			}
			pi := work[id]
			if pi == nil {
				x := v.PlacementInstance()
				pi = &x
				work[id] = pi
			}
			if err := placement.Check(*pi, spec.Req); err != nil {
				f, ok := failureOf(err)
				if !ok {
					return nil, err
				}
				p.Failures = append(p.Failures, f.Wire())
				continue
			}
			t := s.newTask(cluster, spec, v, now)
			reserve(pi, &spec.Req, t.ARN)
			p.Tasks = append(p.Tasks, placedTask{Rec: t, Req: &spec.Req})
		}
		return p, nil
	})
	if err != nil {
		return nil, err
	}
	out := &ecsapi.StartTaskResponse{Tasks: []ecsapi.Task{}, Failures: p.Failures}
	for _, t := range p.Tasks {
		out.Tasks = append(out.Tasks, s.taskOut(&t.Rec, &spec.TD, true))
	}
	return out, nil
}

// taskRef resolves a task reference (ID or ARN) in cluster to an ID.
func taskRef(cluster, ref string) (string, bool) {
	ref = strings.TrimSpace(ref)
	if !arn.IsARN(ref) {
		return ref, ref != "" && !strings.Contains(ref, "/")
	}
	a, err := arn.Parse(ref)
	if err != nil || a.Service != "ecs" || a.ResourceType() != "task" {
		return "", false
	}
	rest := a.ResourceID()
	if c, id, found := strings.Cut(rest, "/"); found {
		return id, c == cluster && id != ""
	}
	return rest, rest != ""
}

// stopTaskRecord sets a task's desired status to STOPPED with a stop code
// and reason, rewriting its assignment in the same transaction. Desired
// status only moves forward: a task already desired STOPPED is returned
// unchanged. NotFound when the task does not exist.
func (s *Service) stopTaskRecord(ctx context.Context, cluster, id string, code ecsapi.TaskStopCode, reason string) (taskRecord, error) {
	return s.stopTaskHeld(ctx, cluster, id, code, reason, nil)
}

// stopTaskHeld is stopTaskRecord with the drain gate (tasklife.GateOps):
// drain, when set, gives how long the task's load balancer targets drain
// before its agent is told to stop it.
func (s *Service) stopTaskHeld(ctx context.Context, cluster, id string, code ecsapi.TaskStopCode, reason string, drain func(*taskRecord) (time.Duration, error)) (taskRecord, error) {
	return s.stopTaskRecordWith(ctx, cluster, id, code, reason, nil, drain)
}

// StopTask asks a task to stop.
func (s *Service) StopTask(ctx context.Context, in *ecsapi.StopTaskRequest) (*ecsapi.StopTaskResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	id, ok := taskRef(cluster, deref(in.Task))
	if !ok {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, reasonTaskNotFound)
	}
	reason := strings.TrimSpace(deref(in.Reason))
	if reason == "" {
		reason = defaultStopReason
	}
	t, err := s.stopTaskHeld(ctx, cluster, id, ecsapi.TaskStopCodeUserInitiated, reason, func(t *taskRecord) (time.Duration, error) {
		return s.serviceDrainDelay(ctx, t)
	})
	if errs.Is(err, errs.NotFound) {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, reasonTaskNotFound)
	}
	if err != nil {
		return nil, err
	}
	out := s.taskOut(&t, s.cachedTaskDef(ctx, map[string]*ecsapi.TaskDefinition{}, t.TaskDefinitionARN), true)
	return &ecsapi.StopTaskResponse{Task: &out}, nil
}

// cachedTaskDef reads a task definition once per call; nil when it is gone.
func (s *Service) cachedTaskDef(ctx context.Context, cache map[string]*ecsapi.TaskDefinition, ref string) *ecsapi.TaskDefinition {
	if td, ok := cache[ref]; ok {
		return td
	}
	var td *ecsapi.TaskDefinition
	if rec, _, err := s.findTaskDef(ctx, ref); err == nil {
		td = &rec.TaskDefinition
	}
	cache[ref] = td
	return td
}

// DescribeTasks describes tasks; unknown ones come back as MISSING
// failures.
func (s *Service) DescribeTasks(ctx context.Context, in *ecsapi.DescribeTasksRequest) (*ecsapi.DescribeTasksResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	if len(in.Tasks) == 0 || len(in.Tasks) > 100 {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "tasks must contain between 1 and 100 entries.")
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	withTags := slices.Contains(in.Include, ecsapi.TaskFieldTags)
	out := &ecsapi.DescribeTasksResponse{Tasks: []ecsapi.Task{}, Failures: []ecsapi.Failure{}}
	tds := map[string]*ecsapi.TaskDefinition{}
	for _, ref := range in.Tasks {
		id, ok := taskRef(cluster, ref)
		var t taskRecord
		if ok {
			t, _, err = s.getTask(ctx, cluster, id)
			if err != nil && !errs.Is(err, errs.NotFound) {
				return nil, err
			}
			ok = err == nil
		}
		if !ok {
			a := ref
			if !arn.IsARN(ref) {
				a = s.taskARN(cluster, ref)
			}
			out.Failures = append(out.Failures, ecsapi.Failure{Arn: ptr(a), Reason: ptr("MISSING")})
			continue
		}
		out.Tasks = append(out.Tasks, s.taskOut(&t, s.cachedTaskDef(ctx, tds, t.TaskDefinitionARN), withTags))
	}
	return out, nil
}

// ListTasks lists task ARNs of a cluster, by default those desired
// RUNNING.
func (s *Service) ListTasks(ctx context.Context, in *ecsapi.ListTasksRequest) (*ecsapi.ListTasksResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	limit, after, err := pagePosition(in.MaxResults, in.NextToken, 100, 100)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	desired := string(ecsapi.DesiredStatusRunning)
	if in.DesiredStatus != nil {
		desired = string(*in.DesiredStatus)
	}
	instanceID, instanceOK := "", true
	if in.ContainerInstance != nil {
		instanceID, instanceOK = instanceRef(cluster, *in.ContainerInstance)
	}
	group := ""
	if in.ServiceName != nil {
		group = "service:" + *in.ServiceName
	}
	lt := deref(in.LaunchType)
	out := &ecsapi.ListTasksResponse{TaskArns: []string{}}
	if !instanceOK || (lt != "" && lt != ecsapi.LaunchTypeEc2 && lt != ecsapi.LaunchTypeFargate) || deref(in.DaemonName) != "" {
		return out, nil
	}
	// Only the fields the filters need are decoded: a cluster's tasks are
	// all read, and a full taskRecord costs several times more. With a
	// service name only that service's tasks are read, through the group
	// index (positions are task ids in both cases).
	prefix := keyTasks + cluster + "/"
	if group != "" {
		prefix = taskGroupPrefix(cluster, group)
	}
	var load func([]store.KV) ([]store.KV, error)
	if group != "" {
		load = func(idx []store.KV) ([]store.KV, error) {
			return s.readIndexed(ctx, idx, func(k string) string { return taskKey(cluster, strings.TrimPrefix(k, prefix)) })
		}
	}
	var t taskListFields
	out.NextToken, err = s.paginateWith(ctx, prefix, after, limit, false, load,
		func(kv store.KV) bool {
			t = taskListFields{}
			if json.Unmarshal(kv.Value, &t) != nil || t.DesiredStatus != desired {
				return false
			}
			switch {
			case instanceID != "" && (t.InstanceID != instanceID || t.LaunchType == string(ecsapi.LaunchTypeFargate)):
				return false
			case lt != "" && ecsapi.LaunchType(t.LaunchType) != lt:
				return false
			case in.Family != nil && taskDefFamily(t.TaskDefinitionARN) != *in.Family:
				return false
			case in.StartedBy != nil && t.StartedBy != *in.StartedBy:
				return false
			case group != "" && t.Group != group:
				return false
			}
			return true
		},
		func(store.KV) { out.TaskArns = append(out.TaskArns, t.ARN) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// taskListFields are the fields of a taskRecord that ListTasks filters on.
type taskListFields struct {
	ARN               string `json:"arn"`
	TaskDefinitionARN string `json:"taskDefinitionArn"`
	InstanceID        string `json:"instanceId"`
	LaunchType        string `json:"launchType"`
	Group             string `json:"group"`
	StartedBy         string `json:"startedBy"`
	DesiredStatus     string `json:"desiredStatus"`
}

// taskDefFamily is the family of a task definition ARN.
func taskDefFamily(tdARN string) string {
	a, err := arn.Parse(tdARN)
	if err != nil {
		return ""
	}
	fam, _, _ := strings.Cut(a.ResourceID(), ":")
	return fam
}

// containerARN is a stable ARN for a task's container.
func (s *Service) containerARN(t *taskRecord, name string) string {
	sum := sha256.Sum256([]byte(t.ID + "/" + name))
	h := hex.EncodeToString(sum[:16])
	return s.arns.ECS(fmt.Sprintf("container/%s/%s/%s-%s-%s-%s-%s", t.Cluster, t.ID, h[0:8], h[8:12], h[12:16], h[16:20], h[20:32]))
}

func timeOut(t *time.Time) *awsproto.Time {
	if t == nil {
		return nil
	}
	return awsproto.NewTime(*t)
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// taskOut shapes a task as ECS's Task. td may be nil when the task
// definition is gone; the containers then come from the reports alone.
func (s *Service) taskOut(t *taskRecord, td *ecsapi.TaskDefinition, withTags bool) ecsapi.Task {
	out := ecsapi.Task{
		TaskArn:              ptr(t.ARN),
		ClusterArn:           ptr(t.ClusterARN),
		TaskDefinitionArn:    ptr(t.TaskDefinitionARN),
		ContainerInstanceArn: optString(t.InstanceARN),
		LastStatus:           ptr(t.LastStatus),
		DesiredStatus:        ptr(t.DesiredStatus),
		LaunchType:           ptr(ecsapi.LaunchType(t.LaunchType)),
		Group:                optString(t.Group),
		StartedBy:            optString(t.StartedBy),
		Version:              ptr(t.Version),
		CreatedAt:            awsproto.NewTime(t.CreatedAt),
		PullStartedAt:        timeOut(t.PullStartedAt),
		PullStoppedAt:        timeOut(t.PullStoppedAt),
		StartedAt:            timeOut(t.StartedAt),
		StoppingAt:           timeOut(t.StoppingAt),
		ExecutionStoppedAt:   timeOut(t.ExecutionStoppedAt),
		StoppedAt:            timeOut(t.StoppedAt),
		ConnectivityAt:       timeOut(t.ConnectivityAt),
		StoppedReason:        optString(t.StoppedReason),
		AvailabilityZone:     optString(t.AZ),
		HealthStatus:         ptr(ecsapi.HealthStatus(orDefault(t.HealthStatus, string(ecsapi.HealthStatusUnknown)))),
		EnableExecuteCommand: ptr(false),
		Attachments:          t.Attachments,
		Attributes:           []ecsapi.Attribute{},
		Tags:                 []ecsapi.Tag{},
		Overrides:            t.Overrides,
	}
	if t.StopCode != "" {
		out.StopCode = ptr(ecsapi.TaskStopCode(t.StopCode))
	}
	if t.CapacityProvider != "" {
		out.CapacityProviderName = ptr(t.CapacityProvider)
	}
	if fl := t.Fargate; fl != nil {
		out.ContainerInstanceArn = nil
		out.PlatformVersion, out.PlatformFamily = ptr(fl.PlatformVersion), ptr(fl.PlatformFamily)
		out.CapacityProviderName = optString(fl.CapacityProvider)
		out.EphemeralStorage = &ecsapi.EphemeralStorage{SizeInGiB: ptr(int32(t.EphemeralGiB))}
	}
	if t.ConnectivityAt != nil {
		out.Connectivity = ptr(ecsapi.ConnectivityConnected)
	}
	if out.Attachments == nil {
		out.Attachments = []ecsapi.Attachment{}
	}
	if withTags && t.Tags != nil {
		out.Tags = t.Tags
	}
	var cpuStr, memStr *string
	if td != nil {
		cpuStr, memStr = td.Cpu, td.Memory
	}
	if t.Overrides != nil {
		if t.Overrides.Cpu != nil {
			cpuStr = t.Overrides.Cpu
		}
		if t.Overrides.Memory != nil {
			memStr = t.Overrides.Memory
		}
	}
	out.Cpu, out.Memory = cpuStr, memStr
	if out.Overrides == nil {
		out.Overrides = &ecsapi.TaskOverride{ContainerOverrides: []ecsapi.ContainerOverride{}}
		if td != nil {
			for _, c := range td.ContainerDefinitions {
				out.Overrides.ContainerOverrides = append(out.Overrides.ContainerOverrides, ecsapi.ContainerOverride{Name: c.Name})
			}
		}
	}
	out.Containers = s.containersOut(t, td)
	return out
}

// containersOut merges the task definition's containers with what the
// agent reported about them.
func (s *Service) containersOut(t *taskRecord, td *ecsapi.TaskDefinition) []ecsapi.Container {
	out := []ecsapi.Container{}
	seen := map[string]bool{}
	overrides := map[string]ecsapi.ContainerOverride{}
	if t.Overrides != nil {
		for _, co := range t.Overrides.ContainerOverrides {
			overrides[deref(co.Name)] = co
		}
	}
	report := func(name string) (int, bool) {
		for i := range t.Containers {
			if t.Containers[i].Name == name {
				return i, true
			}
		}
		return -1, false
	}
	build := func(name string, cd *ecsapi.ContainerDefinition) ecsapi.Container {
		c := ecsapi.Container{
			ContainerArn:      ptr(s.containerARN(t, name)),
			TaskArn:           ptr(t.ARN),
			Name:              ptr(name),
			LastStatus:        ptr("PENDING"),
			NetworkBindings:   []ecsapi.NetworkBinding{},
			NetworkInterfaces: []ecsapi.NetworkInterface{},
			HealthStatus:      ptr(ecsapi.HealthStatusUnknown),
		}
		if cd != nil {
			c.Image = cd.Image
			cpu, mem, res := deref(cd.Cpu), cd.Memory, cd.MemoryReservation
			if co, ok := overrides[name]; ok {
				if co.Cpu != nil {
					cpu = *co.Cpu
				}
				if co.Memory != nil {
					mem = co.Memory
				}
				if co.MemoryReservation != nil {
					res = co.MemoryReservation
				}
			}
			c.Cpu = ptr(strconv.Itoa(int(cpu)))
			if mem != nil {
				c.Memory = ptr(strconv.Itoa(int(*mem)))
			}
			if res != nil {
				c.MemoryReservation = ptr(strconv.Itoa(int(*res)))
			}
		}
		if i, ok := report(name); ok {
			r := &t.Containers[i]
			c.LastStatus = ptr(orDefault(r.KnownStatus, "PENDING"))
			c.ExitCode = r.ExitCode
			c.Reason = optString(r.Reason)
			c.RuntimeId = optString(r.RuntimeID)
			c.ImageDigest = optString(r.ImageDigest)
			if r.HealthStatus != "" {
				c.HealthStatus = ptr(ecsapi.HealthStatus(r.HealthStatus))
			}
			if r.NetworkBindings != nil {
				c.NetworkBindings = r.NetworkBindings
			}
			if r.NetworkInterfaces != nil {
				c.NetworkInterfaces = r.NetworkInterfaces
			}
		}
		return c
	}
	if td != nil {
		for i := range td.ContainerDefinitions {
			cd := &td.ContainerDefinitions[i]
			seen[deref(cd.Name)] = true
			out = append(out, build(deref(cd.Name), cd))
		}
	}
	for _, r := range t.Containers {
		if !seen[r.Name] {
			seen[r.Name] = true
			out = append(out, build(r.Name, nil))
		}
	}
	if t.ServiceConnect != nil && !seen[t.ServiceConnect.ProxyContainerName] {
		out = append(out, build(t.ServiceConnect.ProxyContainerName, nil))
	}
	return out
}
