package taskrun

import (
	"context"
	"fmt"
	"sync"
	"time"

	docker "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/errs"
)

// The pause pool keeps Config.PausePool network namespace containers
// started ahead of Fargate tasks: a pause container's start (a veth on the
// awsvpc bridge, an address) costs about as much as a whole `docker run`,
// so a Fargate task that finds one ready starts in roughly the time of its
// own container (docs/fargate.md, "Start time").
//
// Crash safety rests on labels, not on memory. A pool container carries
// LabelPausePool and no task ARN, so Adopt never takes it for a task. A
// task's containers created in a pool container's namespace carry
// LabelNetworkContainer with its id, so Adopt finds a claimed one through
// them. At start the pool takes back every running pool container of this
// instance that no container references (one claimed by a task whose
// container was never created, when the agent stopped in between) and
// removes those that are not running. An agent that stops normally
// removes its ready pool containers.

const (
	// LabelPausePool marks a pause container made ahead of any task.
	LabelPausePool = "berth.pause-pool"
	// LabelNetworkContainer is, on a task's container, the id of the
	// network namespace container it joined.
	LabelNetworkContainer = "berth.network-container"
)

// DefaultPausePool is the pool size of an agent offering Fargate
// capacity: enough for tasks started one after another, or two at once;
// a burst beyond it starts its own namespaces as before.
const DefaultPausePool = 2

// Limits of a pool pause container: Fargate's smallest task size (256 CPU
// units, 512 MiB), so never looser than the task that takes it. The
// program holds a few MiB and uses no CPU.
const (
	poolPauseCPU    = 256
	poolPauseMemMiB = 512
)

type poolConfig struct {
	c    *docker.Config
	host *docker.HostConfig
	net  *network.NetworkingConfig
}

type pooledPause struct {
	id   string
	info dockerdriver.ContainerInfo
}

type pausePool struct {
	mu    sync.Mutex
	ready []pooledPause
	kick  chan struct{}
}

// pausePoolFits says whether the runner's task may take a pool container:
// a Fargate awsvpc task without Service Connect (whose namespace holds
// its own /etc/hosts entries and redirects).
func (r *runner) pausePoolFits() bool {
	return r.rt.cfg.PausePool > 0 && r.fargate() && r.mode == "awsvpc" && r.rt.scTask(r.arn) == nil
}

// takePause hands out a ready pool container, if there is one, and asks
// for a replacement.
func (rt *Runtime) takePause() (pooledPause, bool) {
	rt.pool.mu.Lock()
	defer rt.pool.mu.Unlock()
	if len(rt.pool.ready) == 0 {
		rt.kickPool()
		return pooledPause{}, false
	}
	p := rt.pool.ready[0]
	rt.pool.ready = rt.pool.ready[1:]
	rt.kickPool()
	return p, true
}

// dropPause forgets a ready pool container that died (or was removed).
func (rt *Runtime) dropPause(id string) {
	rt.pool.mu.Lock()
	defer rt.pool.mu.Unlock()
	for i, p := range rt.pool.ready {
		if p.id == id {
			rt.pool.ready = append(rt.pool.ready[:i:i], rt.pool.ready[i+1:]...)
			rt.kickPool()
			return
		}
	}
}

func (rt *Runtime) kickPool() {
	select {
	case rt.pool.kick <- struct{}{}:
	default:
	}
}

// runPausePool keeps the pool full until ctx ends. A refill waits a
// moment after a container was taken, so that it does not compete with
// the start of the task that took it.
func (rt *Runtime) runPausePool(ctx context.Context) {
	if rt.cfg.PausePool <= 0 {
		return
	}
	defer rt.emptyPool()
	if err := rt.reclaimPool(ctx); err != nil && ctx.Err() == nil {
		rt.log.Warn("pause pool: look for pool containers of a previous agent", "err", err)
	}
	backoff := time.Second
	first := true
	for ctx.Err() == nil {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-rt.pool.kick:
			case <-time.After(30 * time.Second):
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		first = false
		for ctx.Err() == nil {
			rt.pool.mu.Lock()
			n := len(rt.pool.ready)
			rt.pool.mu.Unlock()
			if n >= rt.cfg.PausePool {
				break
			}
			p, err := rt.makePoolPause(ctx)
			if err != nil {
				if ctx.Err() == nil {
					rt.log.Warn("pause pool: make a namespace container", "err", err, "retry in", backoff)
					select {
					case <-ctx.Done():
					case <-time.After(backoff):
					}
					backoff = min(backoff*2, time.Minute)
				}
				break
			}
			backoff = time.Second
			rt.pool.mu.Lock()
			rt.pool.ready = append(rt.pool.ready, p)
			rt.pool.mu.Unlock()
		}
	}
}

// emptyPool removes the ready pool containers when the agent stops (a
// task's, taken, stays with its task). After a crash the next agent takes
// them back instead (reclaimPool).
func (rt *Runtime) emptyPool() {
	rt.pool.mu.Lock()
	ready := rt.pool.ready
	rt.pool.ready = nil
	rt.pool.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range ready {
		if err := rt.d.RemoveContainer(ctx, p.id, dockerdriver.RemoveOptions{Force: true}); err != nil && !errs.Is(err, errs.NotFound) {
			rt.log.Warn("pause pool: remove a pool container at shutdown", "id", p.id, "err", err)
		}
	}
}

// poolPauseConfig is a pool container's configuration: a Fargate task's
// pause container's, without a task.
func (rt *Runtime) poolPauseConfig(ctx context.Context) (name string, cfg *poolConfig, err error) {
	task := dockerdriver.TaskInfo{Instance: rt.cfg.InstanceARN, NetworkMode: ecsapi.NetworkModeBridge}
	cd := ecsapi.ContainerDefinition{Name: ptr(PauseContainerName), Image: ptr(PauseImage)}
	c, host, netCfg, err := dockerdriver.ContainerConfig(task, cd, dockerdriver.Options{Network: rt.cfg.AwsvpcNetwork,
		Labels: rt.cfg.Labels, DNS: rt.taskDNS(ctx, "awsvpc")})
	if err != nil {
		return "", nil, err
	}
	for _, k := range []string{dockerdriver.LabelECSTaskARN, dockerdriver.LabelTaskARN, dockerdriver.LabelECSTaskFamily,
		dockerdriver.LabelECSTaskDefVersion} {
		delete(c.Labels, k)
	}
	c.Labels[LabelPausePool] = "true"
	host.PortBindings = nil
	if rt.cfg.FargateRuntime != "" {
		host.Runtime = rt.cfg.FargateRuntime
	}
	host.Memory = poolPauseMemMiB << 20
	host.NanoCPUs = poolPauseCPU * 1e9 / 1024
	host.CPUShares = poolPauseCPU
	return fmt.Sprintf("berth-pause-pool-%d", time.Now().UnixNano()), &poolConfig{c, host, netCfg}, nil
}

// makePoolPause creates, starts and inspects one pool container.
func (rt *Runtime) makePoolPause(ctx context.Context) (pooledPause, error) {
	if err := rt.ensureAwsvpc(ctx); err != nil {
		return pooledPause{}, err
	}
	name, cfg, err := rt.poolPauseConfig(ctx)
	if err != nil {
		return pooledPause{}, err
	}
	release, err := rt.startSlot(ctx)
	if err != nil {
		return pooledPause{}, err
	}
	id, err := rt.d.CreateContainer(ctx, name, cfg.c, cfg.host, cfg.net)
	if err == nil {
		err = rt.d.StartContainer(ctx, id)
	}
	release()
	var info dockerdriver.ContainerInfo
	if err == nil {
		info, err = rt.d.InspectContainer(ctx, id)
	}
	if err == nil && !info.Running {
		err = errs.E(errs.Internal, "pool pause container %s exited at once", id)
	}
	if err != nil {
		if id != "" {
			_ = rt.d.RemoveContainer(context.WithoutCancel(ctx), id, dockerdriver.RemoveOptions{Force: true})
		}
		return pooledPause{}, err
	}
	return pooledPause{id: id, info: info}, nil
}

// reclaimPool takes into the pool the running pool containers of this
// instance that no task container references, and removes the others
// that are not running.
func (rt *Runtime) reclaimPool(ctx context.Context) error {
	cs, err := rt.d.ListContainers(ctx, dockerdriver.ListOptions{All: true,
		Labels: map[string]string{dockerdriver.LabelManaged: "true", dockerdriver.LabelInstance: rt.cfg.InstanceARN}})
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, c := range cs {
		if id := c.Labels[LabelNetworkContainer]; id != "" {
			used[id] = true
		}
	}
	for _, c := range cs {
		if c.Labels[LabelPausePool] != "true" || used[c.ID] {
			continue
		}
		if c.State == "running" {
			info, err := rt.d.InspectContainer(ctx, c.ID)
			if err == nil && info.Running {
				rt.pool.mu.Lock()
				full := len(rt.pool.ready) >= rt.cfg.PausePool
				if !full {
					rt.pool.ready = append(rt.pool.ready, pooledPause{id: c.ID, info: info})
				}
				rt.pool.mu.Unlock()
				if !full {
					continue
				}
			}
		}
		if err := rt.d.RemoveContainer(ctx, c.ID, dockerdriver.RemoveOptions{Force: true}); err != nil && !errs.Is(err, errs.NotFound) {
			rt.log.Warn("pause pool: remove a left-over pool container", "id", c.ID, "err", err)
		}
	}
	return nil
}
