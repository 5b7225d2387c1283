package cloudmap

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/errs"
)

// ECSFeed is what the controller reads of ECS: its committed tasks and
// services (internal/ecs/feed.go).
type ECSFeed interface {
	WatchTasks(ctx context.Context) <-chan ecs.TaskChange
	WatchServices(ctx context.Context) <-chan ecs.ServiceChange
}

// ownerPrefix marks the instances the ECS controller registered.
const ownerPrefix = "ecs:"

// ECSController registers the tasks of ECS services that have
// serviceRegistries as instances of their Cloud Map service, as ECS
// service discovery does: a task registers when it is RUNNING (and wants
// to be) and deregisters as soon as it is told to stop or stops. It is
// level-based: after every batch of changes it compares the instances the
// tasks call for with the instances it owns in the store, so a restart or
// a missed change is repaired on the next pass.
type ECSController struct {
	reg  *Registry
	feed ECSFeed
	log  *slog.Logger
	// HostIP gives the address of a bridge or host mode task's container
	// instance; default: this machine's first non-loopback IPv4 (berth up
	// runs server and agent on one machine).
	HostIP func(containerInstanceArn string) string
	// Debounce gathers changes before a pass.
	Debounce time.Duration
}

// NewECSController returns a controller; Run runs it.
func NewECSController(reg *Registry, feed ECSFeed, log *slog.Logger) *ECSController {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ECSController{reg: reg, feed: feed, log: log, HostIP: func(string) string { return localIPv4() }, Debounce: 50 * time.Millisecond}
}

func localIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !strings.HasPrefix(ipn.IP.String(), "169.254.") {
			return ipn.IP.String()
		}
	}
	return ""
}

// desired is one instance the tasks call for.
type desired struct {
	serviceID string
	id        string
	owner     string
	attrs     map[string]string
}

// Run follows ECS until ctx ends.
func (c *ECSController) Run(ctx context.Context) {
	tasks := c.feed.WatchTasks(ctx)
	svcs := c.feed.WatchServices(ctx)
	taskState := map[string]ecsapi.Task{}
	svcState := map[string]ecsapi.Service{} // by cluster ARN + "/" + name
	var tasksSynced, svcsSynced bool
	var pendingTasks, pendingSvcs map[string]bool // seen since a relist
	var timer <-chan time.Time
	retry := time.NewTicker(30 * time.Second)
	defer retry.Stop()
	dirty := func() {
		if timer == nil {
			timer = time.After(c.Debounce)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ch, ok := <-tasks:
			if !ok {
				return
			}
			switch ch.Kind {
			case ecs.ChangeRelist:
				pendingTasks = map[string]bool{}
			case ecs.ChangeSynced:
				for k := range taskState {
					if !pendingTasks[k] {
						delete(taskState, k)
					}
				}
				pendingTasks = nil
				tasksSynced = true
			case ecs.ChangeUpsert:
				taskState[deref(ch.Task.TaskArn)] = ch.Task
				if pendingTasks != nil {
					pendingTasks[deref(ch.Task.TaskArn)] = true
				}
			case ecs.ChangeDelete:
				delete(taskState, deref(ch.Task.TaskArn))
			}
			dirty()
		case ch, ok := <-svcs:
			if !ok {
				return
			}
			key := deref(ch.Service.ClusterArn) + "/" + deref(ch.Service.ServiceName)
			switch ch.Kind {
			case ecs.ChangeRelist:
				pendingSvcs = map[string]bool{}
			case ecs.ChangeSynced:
				for k := range svcState {
					if !pendingSvcs[k] {
						delete(svcState, k)
					}
				}
				pendingSvcs = nil
				svcsSynced = true
			case ecs.ChangeUpsert:
				svcState[key] = ch.Service
				if pendingSvcs != nil {
					pendingSvcs[key] = true
				}
			case ecs.ChangeDelete:
				delete(svcState, key)
			}
			dirty()
		case <-retry.C:
			dirty()
		case <-timer:
			timer = nil
			if !tasksSynced || !svcsSynced {
				continue
			}
			if err := c.reconcile(ctx, desiredInstances(taskState, svcState, c.HostIP)); err != nil && ctx.Err() == nil {
				c.log.Warn("service registry pass failed; retrying", "err", err)
				timer = time.After(time.Second)
			}
		}
	}
}

// desiredInstances computes the instances the tasks call for: one per RUNNING task
// (that is not told to stop) of a service with a registry, with ECS's
// attributes. A pure function.
func desiredInstances(tasks map[string]ecsapi.Task, svcs map[string]ecsapi.Service, hostIP func(string) string) []desired {
	var out []desired
	for _, t := range tasks {
		if deref(t.LastStatus) != "RUNNING" || deref(t.DesiredStatus) != "RUNNING" {
			continue
		}
		name, ok := strings.CutPrefix(deref(t.Group), "service:")
		if !ok {
			continue
		}
		sv, ok := svcs[deref(t.ClusterArn)+"/"+name]
		if !ok || deref(sv.Status) != "ACTIVE" {
			continue
		}
		out = append(out, serviceConnectInstances(t, sv, name, hostIP)...)
		for _, r := range sv.ServiceRegistries {
			a, err := arn.Parse(deref(r.RegistryArn))
			if err != nil {
				continue
			}
			_, srvID, _ := strings.Cut(a.Resource, "/")
			attrs, ok := taskAttributes(t, r, hostIP)
			if !ok {
				continue
			}
			attrs["ECS_SERVICE_NAME"] = name
			taskARN := deref(t.TaskArn)
			out = append(out, desired{serviceID: srvID, id: taskARN[strings.LastIndexByte(taskARN, '/')+1:], owner: ownerPrefix + taskARN, attrs: attrs})
		}
	}
	return out
}

// taskAttributes gives a task's address and port for a registry: in awsvpc
// mode the task's own address and the container port (or the registry's
// port); in bridge and host modes the container instance's address and
// the host port bound to the container port.
func taskAttributes(t ecsapi.Task, r ecsapi.ServiceRegistry, hostIP func(string) string) (map[string]string, bool) {
	cluster := deref(t.ClusterArn)
	cluster = cluster[strings.LastIndexByte(cluster, '/')+1:]
	family := deref(t.TaskDefinitionArn)
	family = family[strings.LastIndexByte(family, '/')+1:]
	family, _, _ = strings.Cut(family, ":")
	attrs := map[string]string{
		"ECS_CLUSTER_NAME":           cluster,
		"ECS_TASK_DEFINITION_FAMILY": family,
		"AVAILABILITY_ZONE":          deref(t.AvailabilityZone),
	}
	if a, err := arn.Parse(deref(t.TaskArn)); err == nil {
		attrs["REGION"] = a.Region
	}
	var container *ecsapi.Container
	for i := range t.Containers {
		c := &t.Containers[i]
		if r.ContainerName != nil && deref(c.Name) == *r.ContainerName {
			container = c
		}
	}
	var ip string
	awsvpc := false
	for _, c := range t.Containers {
		for _, ni := range c.NetworkInterfaces {
			if ip == "" || (container != nil && deref(c.Name) == deref(container.Name)) {
				if v := deref(ni.PrivateIpv4Address); v != "" {
					ip, awsvpc = v, true
				}
			}
		}
	}
	port := ""
	switch {
	case r.Port != nil:
		port = strconv.Itoa(int(*r.Port))
	case r.ContainerPort != nil && awsvpc:
		port = strconv.Itoa(int(*r.ContainerPort))
	case r.ContainerPort != nil && container != nil:
		for _, b := range container.NetworkBindings {
			if deref(b.ContainerPort) == *r.ContainerPort && deref(b.HostPort) != 0 {
				port = strconv.Itoa(int(deref(b.HostPort)))
				break
			}
		}
		if port == "" {
			return nil, false // bindings not reported yet
		}
	}
	if !awsvpc {
		ip = hostIP(deref(t.ContainerInstanceArn))
	}
	if ip == "" {
		return nil, false
	}
	attrs[AttrIPv4] = ip
	if port != "" {
		attrs[AttrPort] = port
	}
	return attrs, true
}

// reconcile registers what is wanted and missing (or changed) and
// deregisters what the controller owns and is no longer wanted.
func (c *ECSController) reconcile(ctx context.Context, want []desired) error {
	have, _, err := listJSON[Instance](ctx, c.reg.st, keyInstances)
	if err != nil {
		return err
	}
	owned := map[string]Instance{}
	for _, i := range have {
		if strings.HasPrefix(i.Owner, ownerPrefix) {
			owned[i.ServiceID+"/"+i.ID] = i
		}
	}
	var firstErr error
	wanted := map[string]bool{}
	for _, d := range want {
		key := d.serviceID + "/" + d.id
		wanted[key] = true
		if cur, ok := owned[key]; ok && sameAttrs(cur.Attributes, d.attrs) {
			continue
		}
		_, err := c.reg.RegisterInstance(ctx, Instance{ID: d.id, ServiceID: d.serviceID, Attributes: d.attrs, Created: c.reg.now().UTC(), Owner: d.owner},
			func(s *Service, i *Instance) error {
				if s.CustomHealth {
					i.Attributes[AttrInitHealth] = Healthy
				}
				return CheckInstance(s, i)
			})
		if err != nil {
			if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Invalid) {
				c.log.Warn("task not registered with its service registry", "task", d.owner, "registry", d.serviceID, "err", err)
				continue
			}
			firstErr = cmpOr(firstErr, err)
			continue
		}
		c.log.Info("task registered", "task", strings.TrimPrefix(d.owner, ownerPrefix), "service", d.serviceID, "ip", d.attrs[AttrIPv4], "port", d.attrs[AttrPort])
	}
	for key, i := range owned {
		if wanted[key] {
			continue
		}
		if _, err := c.reg.DeregisterInstance(ctx, i.ServiceID, i.ID); err != nil && !errs.Is(err, errs.NotFound) {
			firstErr = cmpOr(firstErr, err)
			continue
		}
		c.log.Info("task deregistered", "task", strings.TrimPrefix(i.Owner, ownerPrefix), "service", i.ServiceID)
	}
	return firstErr
}

func sameAttrs(have, want map[string]string) bool {
	h := maps.Clone(have)
	delete(h, AttrInitHealth)
	return maps.Equal(h, want)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// RunOperationGC deletes operations older than OperationRetention every
// interval until ctx ends.
func (a *API) RunOperationGC(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := a.reg.PruneOperations(ctx, a.reg.now(), OperationRetention); err != nil {
				a.log.Warn("cloud map operation GC failed", "err", err)
			} else if n > 0 {
				a.log.Info("deleted old cloud map operations", "count", n)
			}
		}
	}
}
