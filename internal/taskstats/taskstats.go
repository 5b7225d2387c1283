// Package taskstats collects the resource usage of the containers an
// agent runs, once per container, and shares it: the task metadata
// endpoint serves the latest sample of a container (/stats, /task/stats)
// and the agent reports each task's usage to the control plane, which
// turns it into ECS's CloudWatch metrics (package ecsmetrics).
//
// The Collector is a bounded poller: every Interval it lists the running
// containers of the agent's tasks (from the metadata endpoint's task
// snapshots), takes one Docker stats sample of each, at most Parallel at a
// time and each under Timeout, and keeps the last two samples per
// container. A container that is no longer running is dropped at the next
// round, so nothing is sampled after it stops. Docker's one-shot stats
// call returns at once (no second sample), so the "pre" figures of a
// served document come from the collector's previous sample, as Docker's
// own stream fills them.
//
// The arithmetic (CPU units from two samples, memory without the page
// cache, the served document) is pure functions tested by tables.
package taskstats

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/metadata"
)

// Sampler takes one stats sample of a container (*dockerdriver.Driver).
type Sampler interface {
	ContainerStats(ctx context.Context, id string) (dockerdriver.Stats, error)
}

// Config configures a Collector. Zero fields take the documented defaults.
type Config struct {
	Sampler Sampler
	// Tasks returns the agent's tasks (the metadata endpoint's snapshots);
	// their RUNNING containers are sampled.
	Tasks func() []metadata.Task
	// Interval between sampling rounds (default 5s).
	Interval time.Duration
	// Timeout of one Docker stats call (default 5s).
	Timeout time.Duration
	// Parallel bounds the concurrent Docker calls of a round (default 4).
	Parallel int
	Log      *slog.Logger
}

// Collector samples the running containers. Use New.
type Collector struct {
	cfg Config

	mu     sync.Mutex
	series map[string]*series // by Docker ID
}

// series is a container's last two samples.
type series struct {
	task     string // ARN
	cur, pre *sample
}

// sample is one Docker stats document, decoded and raw.
type sample struct {
	st  container.StatsResponse
	raw json.RawMessage
}

// New returns a collector; Run drives it.
func New(cfg Config) *Collector {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Collector{cfg: cfg, series: map[string]*series{}}
}

// target is a running container to sample.
type target struct{ id, task string }

func (c *Collector) targets() []target {
	var out []target
	for _, t := range c.cfg.Tasks() {
		for _, ct := range t.Containers {
			if ct.DockerID != "" && ct.KnownStatus == "RUNNING" {
				out = append(out, target{ct.DockerID, t.TaskARN})
			}
		}
	}
	return out
}

// Run samples every Interval until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		c.Collect(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Collect runs one sampling round: it drops the containers no longer
// running and samples the others.
func (c *Collector) Collect(ctx context.Context) {
	ts := c.targets()
	live := make(map[string]bool, len(ts))
	for _, t := range ts {
		live[t.id] = true
	}
	c.mu.Lock()
	for id := range c.series {
		if !live[id] {
			delete(c.series, id)
		}
	}
	c.mu.Unlock()
	sem := make(chan struct{}, c.cfg.Parallel)
	var wg sync.WaitGroup
	for _, t := range ts {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := c.sample(ctx, t); err != nil && ctx.Err() == nil && !errs.Is(err, errs.NotFound) {
				c.cfg.Log.Debug("container stats", "container", t.id, "err", err)
			}
		}()
	}
	wg.Wait()
}

// sample takes one sample of a container and records it.
func (c *Collector) sample(ctx context.Context, t target) (*series, error) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	st, err := c.cfg.Sampler.ContainerStats(cctx, t.id)
	if err != nil {
		return nil, err
	}
	if st.Read.IsZero() {
		// A stopped container answers an empty document.
		return nil, errs.E(errs.NotFound, "container %s is not running", t.id)
	}
	s := &sample{st: st.StatsResponse, raw: st.Raw}
	c.mu.Lock()
	defer c.mu.Unlock()
	se := c.series[t.id]
	if se == nil {
		se = &series{task: t.task}
		c.series[t.id] = se
	}
	if se.cur == nil || s.st.Read.After(se.cur.st.Read) {
		se.pre, se.cur = se.cur, s
	}
	cp := *se
	return &cp, nil
}

// Stats serves a container's latest sample as the task metadata endpoint
// answers it (a metadata.StatsFunc): Docker's stats document with the
// previous sample in precpu_stats and preread, and network_rate_stats. A
// running container not sampled yet is sampled now.
func (c *Collector) Stats(ctx context.Context, id string) (json.RawMessage, error) {
	c.mu.Lock()
	se, ok := c.series[id]
	var cp series
	if ok {
		cp = *se
	}
	c.mu.Unlock()
	if !ok {
		// Not sampled yet: a container that asks right after it started
		// may not be RUNNING in its task's snapshot yet; any container not
		// known STOPPED is sampled (Docker says whether it runs).
		task := ""
		for _, t := range c.cfg.Tasks() {
			for _, ct := range t.Containers {
				if ct.DockerID == id && ct.KnownStatus != "STOPPED" {
					task = t.TaskARN
				}
			}
		}
		if task == "" {
			return json.RawMessage("null"), nil
		}
		got, err := c.sample(ctx, target{id, task})
		if errs.Is(err, errs.NotFound) {
			return json.RawMessage("null"), nil
		}
		if err != nil {
			return nil, err
		}
		cp = *got
	}
	return Document(cp.pre, cp.cur)
}

// Usage returns the usage of every task with a sampled running container,
// for the control plane.
func (c *Collector) Usage() []agentapi.TaskUsage {
	tasks := c.cfg.Tasks()
	c.mu.Lock()
	byTask := map[string][]series{}
	for _, se := range c.series {
		byTask[se.task] = append(byTask[se.task], *se)
	}
	c.mu.Unlock()
	var out []agentapi.TaskUsage
	for _, t := range tasks {
		ss := byTask[t.TaskARN]
		if len(ss) == 0 {
			continue
		}
		u := TaskUsageOf(ss)
		u.TaskArn, u.ClusterArn, u.Family, u.Group, u.StartedBy = t.TaskARN, t.Cluster, t.Family, t.Group, t.StartedBy
		u.CPUReserved, u.MemoryReservedMiB = t.ReservedCPU, t.ReservedMemoryMiB
		out = append(out, u)
	}
	return out
}
