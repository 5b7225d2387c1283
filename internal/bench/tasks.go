package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/store"
)

// TasksConfig shapes the tasks-on-Docker benchmark (issue 3).
type TasksConfig struct {
	// Image must be in Docker's local cache: nothing is pulled. Its
	// arguments are berth-test/tool's steps ("term:0s:0", "sleep:1h"):
	// exit 0 at once on SIGTERM, else sleep.
	Image string
	Args  []string
	// Singles: sequential RunTask → RUNNING measurements, each beside one
	// Docker SDK create+start and one `docker run -d` of the same image.
	Singles int
	// Batches × BatchSize tasks are started with RunTask count=BatchSize
	// and timed until all are RUNNING, beside a Swarm service with as many
	// replicas. BatchSize <= 10 (RunTask's limit).
	Batches, BatchSize int
	Swarm              bool // run the Swarm baseline
	// Rounds of the many-task part: each round runs Berth, the Docker SDK
	// floor and Swarm one after the other, so that all see the same machine.
	Rounds int
	// FloorParallelism are the parallelisms the Docker SDK floor tries
	// (workers creating and starting containers); the floor of a round is
	// the best of them.
	FloorParallelism []int
	// AgentMaxStarts is the agent's MaxConcurrentStarts (0: its default,
	// -1: unbounded).
	AgentMaxStarts int
	Log            *slog.Logger
}

// DefaultTasksConfig is what `berth bench tasks` runs.
func DefaultTasksConfig() TasksConfig {
	return TasksConfig{Image: "berth-test/tool:latest", Args: []string{"term:0s:0", "sleep:1h"},
		Singles: 50, Batches: 10, BatchSize: 10, Swarm: true, Rounds: 3, FloorParallelism: []int{2, 4, 8, 32}}
}

// TasksResult holds the measured times.
type TasksResult struct {
	Image            string
	DockerVersion    string
	Singles          int
	BerthP50         time.Duration // RunTask → DescribeTasks says RUNNING
	BerthP99         time.Duration
	SDKP50, SDKP99   time.Duration // ContainerCreate + ContainerStart → inspect says running
	CLIP50, CLIP99   time.Duration // wall time of `docker run -d`
	Many             int
	Batches, Batch   int
	Rounds           []ManyRound
	SwarmErr         string // why the Swarm baseline did not run
	SwarmCreatedHere bool
}

// ManyRound is one interleaved round of the many-task part.
type ManyRound struct {
	BerthMany     time.Duration // first RunTask → all RUNNING
	BerthManyStop time.Duration // StopTask of all → all STOPPED
	// Floor is the Docker SDK floor: the same number of containers created
	// and started straight through the SDK by FloorBest workers, the best
	// of the parallelisms tried; FloorByParallelism has each one.
	Floor              time.Duration
	FloorBest          int
	FloorByParallelism map[int]time.Duration
	SwarmMany          time.Duration // `docker service create` → all replicas running
}

// Tasks starts an in-process Berth (embedded etcd in a temp dir) and one
// real node agent on this machine's Docker Engine, then measures, in the
// same run:
//
//  1. Singles × (RunTask, then DescribeTasks every 20 ms until RUNNING, then
//     stop it), beside Docker SDK create+start until inspect says running and
//     the wall time of `docker run -d`, all with the same image and args,
//     interleaved so that both see the same machine.
//  2. Batches × RunTask(count=BatchSize) until all are RUNNING, beside
//     `docker service create --replicas Batches*BatchSize` on a single-node
//     Swarm until that many are running.
//
// Every container, service and swarm it creates is removed.
func Tasks(ctx context.Context, cfg TasksConfig) (res TasksResult, err error) {
	def := DefaultTasksConfig()
	if cfg.Image == "" {
		cfg.Image = def.Image
	}
	if len(cfg.Args) == 0 {
		cfg.Args = def.Args
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > 10 {
		return res, fmt.Errorf("batch size must be 1..10 (RunTask count)")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	res.Image, res.Singles, res.Many = cfg.Image, cfg.Singles, cfg.Batches*cfg.BatchSize
	res.Batches, res.Batch = cfg.Batches, cfg.BatchSize

	env, err := startDockerEnv(ctx, cfg.Image, "tasks", log)
	if err != nil {
		return res, err
	}
	defer env.close()
	env.maxStarts = cfg.AgentMaxStarts
	res.DockerVersion = env.dockerVersion
	dc := env.dc
	ag, err := env.startAgent(ctx, "agent", "")
	if err != nil {
		return res, err
	}
	instanceARN := ag.State().ContainerInstanceArn
	defer env.removeAgent(context.WithoutCancel(ctx), ag)
	c := env.ecsClient(false)
	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("bench-tasks"),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String(cfg.Image), Command: cfg.Args,
			MemoryReservation: aws.Int32(8), Cpu: 0, StopTimeout: aws.Int32(2),
		}},
	}); err != nil {
		return res, err
	}
	const baseLabel = "berth.bench=tasks"
	defer removeLabelled(context.WithoutCancel(ctx), dc, baseLabel)

	// Warm-up, not measured: first task and first container of each kind.
	if _, err := berthOne(ctx, c, true); err != nil {
		return res, fmt.Errorf("warm-up task: %w", err)
	}
	if _, err := sdkOne(ctx, dc, cfg); err != nil {
		return res, fmt.Errorf("warm-up docker create/start: %w", err)
	}
	if _, err := cliOne(ctx, cfg); err != nil {
		return res, fmt.Errorf("warm-up docker run: %w", err)
	}
	removeLabelled(ctx, dc, baseLabel)

	var berthLat, sdkLat, cliLat []time.Duration
	for i := 0; i < cfg.Singles; i++ {
		d, err := berthOne(ctx, c, true)
		if err != nil {
			return res, fmt.Errorf("task %d: %w", i, err)
		}
		berthLat = append(berthLat, d)
		if d, err = sdkOne(ctx, dc, cfg); err != nil {
			return res, err
		}
		sdkLat = append(sdkLat, d)
		if d, err = cliOne(ctx, cfg); err != nil {
			return res, err
		}
		cliLat = append(cliLat, d)
		// Keep the host as empty for every sample as for the first.
		removeLabelled(ctx, dc, baseLabel)
	}
	res.BerthP50, res.BerthP99 = store.Percentile(berthLat, 50), store.Percentile(berthLat, 99)
	res.SDKP50, res.SDKP99 = store.Percentile(sdkLat, 50), store.Percentile(sdkLat, 99)
	res.CLIP50, res.CLIP99 = store.Percentile(cliLat, 50), store.Percentile(cliLat, 99)
	removeLabelled(ctx, dc, dockerdriver.LabelInstance+"="+instanceARN)

	rounds := max(cfg.Rounds, 1)
	for i := 0; res.Many > 0 && i < rounds; i++ {
		var r ManyRound
		r.BerthMany, r.BerthManyStop, err = berthMany(ctx, c, cfg)
		removeLabelled(ctx, dc, dockerdriver.LabelInstance+"="+instanceARN)
		if err != nil {
			return res, err
		}
		r.FloorByParallelism = map[int]time.Duration{}
		for _, p := range cfg.FloorParallelism {
			d, err := sdkMany(ctx, dc, cfg, res.Many, p)
			removeLabelled(ctx, dc, baseLabel)
			if err != nil {
				return res, fmt.Errorf("docker SDK floor, %d workers: %w", p, err)
			}
			r.FloorByParallelism[p] = d
			if r.Floor == 0 || d < r.Floor {
				r.Floor, r.FloorBest = d, p
			}
		}
		if cfg.Swarm && res.SwarmErr == "" {
			var created bool
			r.SwarmMany, created, err = swarmMany(ctx, cfg, res.Many)
			res.SwarmCreatedHere = res.SwarmCreatedHere || created
			if err != nil {
				res.SwarmErr = err.Error()
			}
		}
		log.Info("bench tasks: round done", "round", i+1, "berth", r.BerthMany, "floor", r.Floor, "floorWorkers", r.FloorBest, "swarm", r.SwarmMany)
		res.Rounds = append(res.Rounds, r)
	}
	return res, nil
}

// sdkMany is the floor for n tasks on this machine: n containers, each
// configured like sdkOne's, created and started straight through the Docker
// SDK by p workers, timed until the last start returned (Docker answers a
// start once the container runs).
func sdkMany(ctx context.Context, dc *client.Client, cfg TasksConfig, n, p int) (time.Duration, error) {
	work := make(chan int, n)
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	errc := make(chan error, p)
	start := time.Now()
	for w := 0; w < p; w++ {
		go func() {
			for range work {
				cr, err := dc.ContainerCreate(ctx, client.ContainerCreateOptions{
					Config: &container.Config{Image: cfg.Image, Cmd: cfg.Args, Labels: map[string]string{"berth.bench": "tasks"}},
					HostConfig: &container.HostConfig{Resources: container.Resources{MemoryReservation: 8 << 20},
						NetworkMode: "bridge"},
				})
				if err == nil {
					_, err = dc.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{})
				}
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	var first error
	for w := 0; w < p; w++ {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return time.Since(start), first
}

// berthOne runs one task, polls every 20 ms until RUNNING and returns that
// time; then it stops the task and waits for STOPPED (not timed).
func berthOne(ctx context.Context, c *ecs.Client, stop bool) (time.Duration, error) {
	start := time.Now()
	r, err := c.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("bench-tasks")})
	if err != nil {
		return 0, err
	}
	if len(r.Tasks) != 1 {
		return 0, fmt.Errorf("RunTask failures: %s", failures(r.Failures))
	}
	arn := aws.ToString(r.Tasks[0].TaskArn)
	var d time.Duration
	if err := pollTasks(ctx, c, []string{arn}, 20*time.Millisecond, time.Minute, "RUNNING"); err != nil {
		return 0, err
	}
	d = time.Since(start)
	if stop {
		if _, err := c.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(arn)}); err != nil {
			return 0, err
		}
		if err := pollTasks(ctx, c, []string{arn}, 20*time.Millisecond, time.Minute, "STOPPED"); err != nil {
			return 0, err
		}
	}
	return d, nil
}

// pollTasks polls DescribeTasks (100 at a time) until every task's
// lastStatus is want. A task that STOPPED while RUNNING is wanted fails.
func pollTasks(ctx context.Context, c *ecs.Client, arns []string, every, within time.Duration, want string) error {
	deadline := time.Now().Add(within)
	pending := arns
	for {
		var still []string
		for i := 0; i < len(pending); i += 100 {
			batch := pending[i:min(i+100, len(pending))]
			d, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: batch})
			if err != nil {
				return err
			}
			seen := map[string]bool{}
			for _, t := range d.Tasks {
				arn := aws.ToString(t.TaskArn)
				seen[arn] = true
				st := aws.ToString(t.LastStatus)
				if st == want {
					continue
				}
				if st == "STOPPED" {
					return fmt.Errorf("task %s stopped: %s %s", arn, t.StopCode, aws.ToString(t.StoppedReason))
				}
				still = append(still, arn)
			}
			for _, a := range batch {
				if !seen[a] {
					still = append(still, a)
				}
			}
		}
		if len(still) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d tasks not %s within %s", len(still), len(arns), want, within)
		}
		pending = still
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

func failures(fs []types.Failure) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, aws.ToString(f.Reason))
	}
	return strings.Join(parts, ", ")
}

// sdkOne is Docker's own fast path: ContainerCreate + ContainerStart with
// the SDK, until inspect says the container is running.
func sdkOne(ctx context.Context, dc *client.Client, cfg TasksConfig) (time.Duration, error) {
	start := time.Now()
	cr, err := dc.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: cfg.Image, Cmd: cfg.Args, Labels: map[string]string{"berth.bench": "tasks"}},
		HostConfig: &container.HostConfig{Resources: container.Resources{MemoryReservation: 8 << 20},
			NetworkMode: "bridge"},
	})
	if err != nil {
		return 0, err
	}
	if _, err := dc.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		return 0, err
	}
	for {
		in, err := dc.ContainerInspect(ctx, cr.ID, client.ContainerInspectOptions{})
		if err != nil {
			return 0, err
		}
		if in.Container.State != nil && in.Container.State.Running {
			return time.Since(start), nil
		}
		if time.Since(start) > time.Minute {
			return 0, errors.New("docker container not running within 1m")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cliOne is the wall time of `docker run -d` (which returns once the
// container has started).
func cliOne(ctx context.Context, cfg TasksConfig) (time.Duration, error) {
	args := append([]string{"run", "-d", "--label", "berth.bench=tasks", "--memory-reservation", "8m", cfg.Image}, cfg.Args...)
	start := time.Now()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("docker run: %v: %s", err, out)
	}
	return d, nil
}

// berthMany starts Batches × RunTask(count=BatchSize) back to back and
// times them until all are RUNNING; then stops them all and times that.
func berthMany(ctx context.Context, c *ecs.Client, cfg TasksConfig) (up, down time.Duration, err error) {
	var arns []string
	start := time.Now()
	for b := 0; b < cfg.Batches; b++ {
		r, err := c.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("bench-tasks"), Count: aws.Int32(int32(cfg.BatchSize))})
		if err != nil {
			return 0, 0, err
		}
		if len(r.Failures) > 0 {
			return 0, 0, fmt.Errorf("RunTask count %d: failures: %s", cfg.BatchSize, failures(r.Failures))
		}
		for _, t := range r.Tasks {
			arns = append(arns, aws.ToString(t.TaskArn))
		}
	}
	if err := pollTasks(ctx, c, arns, 50*time.Millisecond, 5*time.Minute, "RUNNING"); err != nil {
		return 0, 0, err
	}
	up = time.Since(start)
	start = time.Now()
	for _, a := range arns {
		if _, err := c.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(a)}); err != nil {
			return up, 0, err
		}
	}
	if err := pollTasks(ctx, c, arns, 50*time.Millisecond, 5*time.Minute, "STOPPED"); err != nil {
		return up, 0, err
	}
	return up, time.Since(start), nil
}

// swarmMany times `docker service create --replicas n` on a single-node
// Swarm (initialised here if this engine is not a manager, and left again
// afterwards) until `docker service ls` shows n/n.
func swarmMany(ctx context.Context, cfg TasksConfig, n int) (d time.Duration, created bool, err error) {
	docker := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return strings.TrimSpace(string(out)), nil
	}
	state, err := docker("info", "--format", "{{.Swarm.LocalNodeState}}/{{.Swarm.ControlAvailable}}")
	if err != nil {
		return 0, false, err
	}
	switch state {
	case "active/true":
	case "inactive/false":
		// swarm init makes docker_gwbridge, which leaving keeps: remove it
		// too unless it was there before.
		_, gwErr := docker("network", "inspect", "docker_gwbridge")
		if _, err := docker("swarm", "init", "--advertise-addr", "127.0.0.1"); err != nil {
			return 0, false, err
		}
		created = true
		defer func() {
			docker("swarm", "leave", "--force")
			if gwErr != nil {
				docker("network", "rm", "docker_gwbridge")
			}
		}()
	default:
		return 0, false, fmt.Errorf("this engine's swarm state is %s: not a manager, not touching it", state)
	}
	name := fmt.Sprintf("berth-bench-%d", time.Now().UnixNano())
	args := append([]string{"service", "create", "--detach", "--quiet", "--no-resolve-image", "--name", name,
		"--replicas", fmt.Sprint(n), "--reserve-memory", "8m", "--restart-condition", "none", cfg.Image}, cfg.Args...)
	start := time.Now()
	if _, err := docker(args...); err != nil {
		return 0, created, err
	}
	defer func() {
		docker("service", "rm", name)
		// Wait for Swarm to remove the service's containers.
		for i := 0; i < 300; i++ {
			out, err := docker("ps", "-aq", "--filter", "label=com.docker.swarm.service.name="+name)
			if err == nil && out == "" {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	want := fmt.Sprintf("%d/%d", n, n)
	for {
		out, err := docker("service", "ls", "--filter", "name="+name, "--format", "{{.Replicas}}")
		if err != nil {
			return 0, created, err
		}
		if strings.HasPrefix(out, want) {
			return time.Since(start), created, nil
		}
		if time.Since(start) > 5*time.Minute {
			return 0, created, fmt.Errorf("swarm: %s replicas after 5m", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeLabelled force-removes every container with the label k=v.
func removeLabelled(ctx context.Context, dc *client.Client, label string, more ...string) {
	l, err := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", append([]string{label}, more...)...)})
	if err != nil {
		return
	}
	for _, s := range l.Items {
		dc.ContainerRemove(ctx, s.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
}

// Report prints a tasks result.
func (r TasksResult) Report(w io.Writer) {
	fmt.Fprintf(w, "machine: %d cores, %s/%s, Docker %s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		r.DockerVersion, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "Tasks on Docker, image %s (cached), %d single tasks:\n", r.Image, r.Singles)
	fmt.Fprintf(w, "  Berth RunTask -> RUNNING (20ms polls)    p50 %9s  p99 %9s\n", ms(r.BerthP50), ms(r.BerthP99))
	fmt.Fprintf(w, "  Docker SDK create+start -> running       p50 %9s  p99 %9s\n", ms(r.SDKP50), ms(r.SDKP99))
	fmt.Fprintf(w, "  docker run -d (CLI wall time)            p50 %9s  p99 %9s\n", ms(r.CLIP50), ms(r.CLIP99))
	if r.CLIP50 > 0 && r.SDKP50 > 0 {
		fmt.Fprintf(w, "  ratio Berth/docker run: p50 %.2fx p99 %.2fx (goal p50 <= 1.3x); Berth/SDK: p50 %.2fx p99 %.2fx\n",
			ratio(r.BerthP50, r.CLIP50), ratio(r.BerthP99, r.CLIP99), ratio(r.BerthP50, r.SDKP50), ratio(r.BerthP99, r.SDKP99))
	}
	if r.Many > 0 {
		fmt.Fprintf(w, "%d tasks on one node (Berth: RunTask count %d x %d -> all RUNNING; floor: Docker SDK create+start, best workers; Swarm: service create --replicas %d -> %d/%d):\n",
			r.Many, r.Batch, r.Batches, r.Many, r.Many, r.Many)
		for i, m := range r.Rounds {
			var tried []string
			for _, p := range slices.Sorted(maps.Keys(m.FloorByParallelism)) {
				tried = append(tried, fmt.Sprintf("%d:%s", p, ms(m.FloorByParallelism[p])))
			}
			fmt.Fprintf(w, "  round %d: Berth %9s (stop all %s)  floor %9s (%d workers; %s)  Swarm %9s\n",
				i+1, ms(m.BerthMany), ms(m.BerthManyStop), ms(m.Floor), m.FloorBest, strings.Join(tried, " "), ms(m.SwarmMany))
			fmt.Fprintf(w, "           Berth/floor %.2fx (goal <= 1.2x)  Berth/Swarm %.2fx (goal <= 0.6x)\n",
				ratio(m.BerthMany, m.Floor), ratio(m.BerthMany, m.SwarmMany))
		}
		if r.SwarmErr != "" {
			fmt.Fprintf(w, "  Swarm baseline did not run: %s\n", r.SwarmErr)
		} else if r.SwarmCreatedHere {
			fmt.Fprintf(w, "  (single-node swarm initialised for the run and left)\n")
		}
	}
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
