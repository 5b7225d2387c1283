package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/dockerdriver"
)

// ServiceDockerConfig shapes the services-on-Docker benchmark (issue 4).
type ServiceDockerConfig struct {
	// Image must be in Docker's local cache: nothing is pulled. Its
	// arguments are berth-test/tool's steps; a new revision for the rolling
	// deployment gets "sleep:2h" instead of the last step.
	Image string
	Args  []string
	// Replicas: one REPLICA service of this many tasks, CreateService →
	// steady, beside `docker service create --replicas` on a single-node
	// Swarm (when Swarm is set). 0 skips it.
	Replicas int
	Swarm    bool
	// Rolling: a service of this many tasks (minimumHealthyPercent 100,
	// maximumPercent 200) is moved to a new task definition revision while
	// the API and Docker are sampled every Every. 0 skips it (and Kills).
	Rolling int
	Every   time.Duration
	// Kills: `docker kill` of one of the rolling service's containers,
	// timed until its replacement is RUNNING, this many times.
	Kills int
	// LostTasks: a service of this many tasks spread over two agents; the
	// second agent is stopped and the time until its tasks are RUNNING on
	// the first is measured. 0 skips it.
	LostTasks int
	Log       *slog.Logger
}

// DefaultServiceDockerConfig is what `berth bench services` runs.
func DefaultServiceDockerConfig() ServiceDockerConfig {
	return ServiceDockerConfig{Image: "berth-test/tool:latest", Args: []string{"term:0s:0", "sleep:1h"},
		Replicas: 100, Swarm: true, Rolling: 20, Every: 20 * time.Millisecond, Kills: 3, LostTasks: 6}
}

// ServiceDockerResult holds the measured times and bounds.
type ServiceDockerResult struct {
	Image, DockerVersion string

	Replicas         int
	CreateRunning    time.Duration // CreateService → runningCount == desired first seen
	CreateSteady     time.Duration // → one deployment, running == desired, nothing pending
	CreateContainers int           // running containers of the service once steady
	DeleteGone       time.Duration // DeleteService force → no container left (not compared)
	SwarmCreate      time.Duration // `docker service create` → n/n
	SwarmErr         string
	SwarmCreatedHere bool

	Rolling       int
	RollCreate    time.Duration // CreateService → steady for the rolling service
	RollDuration  time.Duration // UpdateService → new deployment COMPLETED and alone, running == desired
	RollNewUp     time.Duration // UpdateService → all new tasks RUNNING (first seen)
	MinHealthyAPI int           // fewest tasks desired and observed RUNNING (ListTasks + DescribeTasks)
	MaxNotStopped int           // most tasks not yet STOPPED (DescribeTasks)
	MaxRunPending int           // most runningCount + pendingCount (DescribeServices)
	MinDocker     int           // fewest running containers of the family (Docker)
	MaxDocker     int           // most running containers of the family (Docker)
	Samples       map[string]int
	Violations    []string

	Kills []time.Duration // docker kill → replacement RUNNING

	LostTasks int // tasks on the stopped agent
	Lost      time.Duration
	LostErr   string
}

// ServiceDocker starts an in-process Berth (embedded etcd in a temp dir)
// and a real node agent on this machine's Docker Engine and measures, in
// the same run: a Replicas-task service from CreateService to steady state
// beside a Swarm service of as many replicas; a rolling deployment of
// Rolling tasks (100 % / 200 %) sampled from the API and from Docker; the
// replacement of `docker kill`ed containers; and the replacement of the
// tasks of a second agent that is stopped. Every container, service and
// swarm it creates is removed.
func ServiceDocker(ctx context.Context, cfg ServiceDockerConfig) (res ServiceDockerResult, err error) {
	def := DefaultServiceDockerConfig()
	if cfg.Image == "" {
		cfg.Image = def.Image
	}
	if len(cfg.Args) == 0 {
		cfg.Args = def.Args
	}
	if cfg.Every <= 0 {
		cfg.Every = def.Every
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	res.Image = cfg.Image

	env, err := startDockerEnv(ctx, cfg.Image, "services", log)
	if err != nil {
		return res, err
	}
	defer env.close()
	res.DockerVersion = env.dockerVersion
	dc := env.dc
	cleanCtx := context.WithoutCancel(ctx)
	region := env.srv.Config().Region
	ag, err := env.startAgent(ctx, "agent-a", region+"a")
	if err != nil {
		return res, err
	}
	defer env.removeAgent(cleanCtx, ag)
	// The SDK's standard retryer (as a real client has): a poll that fails
	// on a dropped keep-alive connection is retried.
	c := env.ecsClient(true)
	// Families unique to this run, so that containers can be counted (and
	// removed) by the family label on a shared Docker host.
	suffix := fmt.Sprintf("%06d", rand.IntN(1000000))
	family := func(n string) string { return "bench-" + n + "-" + suffix }
	register := func(fam string, args []string) (string, error) {
		out, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String(fam),
			ContainerDefinitions: []types.ContainerDefinition{{
				Name: aws.String("main"), Image: aws.String(cfg.Image), Command: args,
				MemoryReservation: aws.Int32(8), StopTimeout: aws.Int32(2),
			}},
		})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
	}
	for _, n := range []string{"many", "roll", "lost"} {
		defer removeLabelled(cleanCtx, dc, dockerdriver.LabelECSTaskFamily+"="+family(n))
	}
	sv := &svcBench{c: c, dc: dc, every: cfg.Every}

	if cfg.Replicas > 0 {
		res.Replicas = cfg.Replicas
		td, err := register(family("many"), cfg.Args)
		if err != nil {
			return res, err
		}
		start := time.Now()
		if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{ServiceName: aws.String("many"), TaskDefinition: aws.String(td),
			DesiredCount: aws.Int32(int32(cfg.Replicas))}); err != nil {
			return res, err
		}
		res.CreateRunning, res.CreateSteady, err = sv.waitSteady(ctx, "many", "", start, 5*time.Minute)
		if err != nil {
			return res, err
		}
		res.CreateContainers, _ = sv.running(ctx, family("many"))
		if res.DeleteGone, err = sv.deleteAndDrain(ctx, "many", family("many")); err != nil {
			return res, err
		}
		if cfg.Swarm {
			res.SwarmCreate, res.SwarmCreatedHere, err = swarmMany(ctx, TasksConfig{Image: cfg.Image, Args: cfg.Args}, cfg.Replicas)
			if err != nil {
				res.SwarmErr = err.Error()
			}
		}
	}

	if cfg.Rolling > 0 {
		if err := sv.rolling(ctx, cfg, &res, register, family("roll")); err != nil {
			return res, err
		}
		if _, err := sv.deleteAndDrain(ctx, "roll", family("roll")); err != nil {
			return res, err
		}
	}

	if cfg.LostTasks > 0 {
		res.Lost, res.LostTasks, err = sv.lostInstance(ctx, cfg, register, family("lost"), ag.State().ContainerInstanceArn,
			func() (*daemon.Agent, error) { return env.startAgent(ctx, "agent-b", region+"b") })
		if err != nil {
			res.LostErr = err.Error()
		}
	}
	return res, nil
}

type svcBench struct {
	c     *ecs.Client
	dc    *client.Client
	every time.Duration
}

func (s *svcBench) describe(ctx context.Context, name string) (types.Service, error) {
	out, err := s.c.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{name}})
	if err != nil {
		return types.Service{}, err
	}
	if len(out.Services) != 1 {
		return types.Service{}, fmt.Errorf("describe %s: %s", name, failures(out.Failures))
	}
	return out.Services[0], nil
}

// waitSteady polls DescribeServices every s.every until the service has
// one deployment (dep, when given, COMPLETED) and runningCount ==
// desiredCount with nothing pending. It returns the time since start at
// which runningCount == desiredCount was first seen and the steady time.
func (s *svcBench) waitSteady(ctx context.Context, name, dep string, start time.Time, within time.Duration) (running, steady time.Duration, err error) {
	errs := 0
	for {
		svc, err := s.describe(ctx, name)
		if err != nil {
			// Tolerate a few failed polls; the deadline still holds.
			if errs++; errs > 10 {
				return 0, 0, err
			}
			if err := sleepCtx(ctx, s.every); err != nil {
				return 0, 0, err
			}
			continue
		}
		now := time.Since(start)
		if running == 0 && svc.RunningCount == svc.DesiredCount {
			running = now
		}
		if len(svc.Deployments) == 1 && svc.RunningCount == svc.DesiredCount && svc.PendingCount == 0 &&
			(dep == "" || aws.ToString(svc.Deployments[0].Id) == dep && svc.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted) {
			return running, now, nil
		}
		if now > within {
			return 0, 0, fmt.Errorf("service %s not steady within %s: running %d pending %d desired %d, %d deployments",
				name, within, svc.RunningCount, svc.PendingCount, svc.DesiredCount, len(svc.Deployments))
		}
		if err := sleepCtx(ctx, s.every); err != nil {
			return 0, 0, err
		}
	}
}

// running counts the running containers of a task definition family.
func (s *svcBench) running(ctx context.Context, fam string) (int, error) {
	l, err := s.dc.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", dockerdriver.LabelECSTaskFamily+"="+fam)})
	if err != nil {
		return 0, err
	}
	return len(l.Items), nil
}

// tasks lists and describes the service's tasks (desired RUNNING and
// STOPPED, each once).
func (s *svcBench) tasks(ctx context.Context, name string) ([]types.Task, error) {
	var arns []string
	seen := map[string]bool{}
	for _, ds := range []types.DesiredStatus{types.DesiredStatusRunning, types.DesiredStatusStopped} {
		p := ecs.NewListTasksPaginator(s.c, &ecs.ListTasksInput{ServiceName: aws.String(name), DesiredStatus: ds, MaxResults: aws.Int32(100)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, a := range out.TaskArns {
				if !seen[a] {
					seen[a] = true
					arns = append(arns, a)
				}
			}
		}
	}
	var ts []types.Task
	for len(arns) > 0 {
		n := min(len(arns), 100)
		out, err := s.c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: arns[:n]})
		if err != nil {
			return nil, err
		}
		ts = append(ts, out.Tasks...)
		arns = arns[n:]
	}
	return ts, nil
}

func live(ts []types.Task) []types.Task {
	var out []types.Task
	for _, t := range ts {
		if aws.ToString(t.DesiredStatus) == "RUNNING" && aws.ToString(t.LastStatus) == "RUNNING" {
			out = append(out, t)
		}
	}
	return out
}

// deleteAndDrain deletes a service with force and waits until none of its
// family's containers is left.
func (s *svcBench) deleteAndDrain(ctx context.Context, name, fam string) (time.Duration, error) {
	start := time.Now()
	if _, err := s.c.DeleteService(ctx, &ecs.DeleteServiceInput{Service: aws.String(name), Force: aws.Bool(true)}); err != nil {
		return 0, err
	}
	for {
		n, err := s.running(ctx, fam)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > 3*time.Minute {
			return 0, fmt.Errorf("service %s: %d containers still running 3m after DeleteService", name, n)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// rolling creates the rolling service, moves it to a new revision with
// UpdateService and samples the bounds meanwhile; then it times Kills
// docker kills.
func (s *svcBench) rolling(ctx context.Context, cfg ServiceDockerConfig, res *ServiceDockerResult,
	register func(string, []string) (string, error), fam string) error {
	n := cfg.Rolling
	res.Rolling = n
	td1, err := register(fam, cfg.Args)
	if err != nil {
		return err
	}
	args2 := append([]string(nil), cfg.Args...)
	args2[len(args2)-1] = "sleep:2h"
	td2, err := register(fam, args2)
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err := s.c.CreateService(ctx, &ecs.CreateServiceInput{ServiceName: aws.String("roll"), TaskDefinition: aws.String(td1),
		DesiredCount:            aws.Int32(int32(n)),
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200)}}); err != nil {
		return err
	}
	if _, res.RollCreate, err = s.waitSteady(ctx, "roll", "", start, 3*time.Minute); err != nil {
		return err
	}
	// Every container of td1 RUNNING and reported before sampling starts.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if k, err := s.running(ctx, fam); err == nil && k == n {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rolling service: Docker does not show %d running containers", n)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}

	b := newBoundSampler(n, 2*n)
	b.loop(s.every, func() {
		k, err := s.running(ctx, fam)
		if err == nil {
			b.record("docker running", k, true)
		}
	})
	b.loop(s.every, func() {
		if svc, err := s.describe(ctx, "roll"); err == nil {
			b.record("DescribeServices running+pending", int(svc.RunningCount+svc.PendingCount), false)
		}
	})
	b.loop(s.every, func() {
		ts, err := s.tasks(ctx, "roll")
		if err != nil {
			return
		}
		notStopped := 0
		for _, t := range ts {
			if aws.ToString(t.LastStatus) != "STOPPED" {
				notStopped++
			}
		}
		b.record("DescribeTasks not STOPPED", notStopped, false)
		b.record("DescribeTasks healthy", len(live(ts)), true)
	})
	time.Sleep(5 * s.every) // a few samples before the update
	start = time.Now()
	up, err := s.c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("roll"), TaskDefinition: aws.String(td2)})
	if err != nil {
		b.stop()
		return err
	}
	dep := aws.ToString(up.Service.Deployments[0].Id)
	newUp := make(chan time.Duration, 1)
	go func() { // when were all new tasks RUNNING (first seen)?
		for time.Since(start) < 3*time.Minute {
			if svc, err := s.describe(ctx, "roll"); err == nil {
				for _, d := range svc.Deployments {
					if aws.ToString(d.Id) == dep && int(d.RunningCount) == n {
						newUp <- time.Since(start)
						return
					}
				}
			}
			if sleepCtx(ctx, s.every) != nil {
				break
			}
		}
		newUp <- 0
	}()
	_, res.RollDuration, err = s.waitSteady(ctx, "roll", dep, start, 3*time.Minute)
	res.RollNewUp = <-newUp
	// Keep sampling until Docker, too, shows only the new containers.
	for deadline := time.Now().Add(30 * time.Second); err == nil && time.Now().Before(deadline); {
		if k, e := s.running(ctx, fam); e == nil && k == n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(5 * s.every)
	b.stop()
	res.Samples, res.Violations = b.samples, b.errs
	res.MinHealthyAPI, res.MaxNotStopped = b.minSeen["DescribeTasks healthy"], b.maxSeen["DescribeTasks not STOPPED"]
	res.MaxRunPending = b.maxSeen["DescribeServices running+pending"]
	res.MinDocker, res.MaxDocker = b.minSeen["docker running"], b.maxSeen["docker running"]
	if err != nil {
		return err
	}

	for i := 0; i < cfg.Kills; i++ {
		d, err := s.killOne(ctx, n)
		if err != nil {
			return fmt.Errorf("docker kill %d: %w", i, err)
		}
		res.Kills = append(res.Kills, d)
		if _, _, err := s.waitSteady(ctx, "roll", "", time.Now(), time.Minute); err != nil {
			return err
		}
		time.Sleep(time.Second)
	}
	return nil
}

// killOne kills the container of one RUNNING task of the rolling service
// and times until n tasks are RUNNING again without it.
func (s *svcBench) killOne(ctx context.Context, n int) (time.Duration, error) {
	ts, err := s.tasks(ctx, "roll")
	if err != nil {
		return 0, err
	}
	l := live(ts)
	if len(l) == 0 || len(l[0].Containers) == 0 {
		return 0, errors.New("no live task")
	}
	victim := aws.ToString(l[0].TaskArn)
	start := time.Now()
	if out, err := exec.CommandContext(ctx, "docker", "kill", aws.ToString(l[0].Containers[0].RuntimeId)).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("docker kill: %v: %s", err, out)
	}
	for {
		ts, err := s.tasks(ctx, "roll")
		if err != nil {
			return 0, err
		}
		l := live(ts)
		ok := len(l) == n
		for _, t := range l {
			if aws.ToString(t.TaskArn) == victim {
				ok = false
			}
		}
		if ok {
			return time.Since(start), nil
		}
		if time.Since(start) > time.Minute {
			return 0, fmt.Errorf("killed task not replaced within 1m (%d live)", len(l))
		}
		if err := sleepCtx(ctx, s.every); err != nil {
			return 0, err
		}
	}
}

// lostInstance starts a second agent, spreads a service of cfg.LostTasks
// tasks over both, stops the second agent and times until as many tasks
// are RUNNING on the first.
func (s *svcBench) lostInstance(ctx context.Context, cfg ServiceDockerConfig, register func(string, []string) (string, error),
	fam, keepInstance string, start2 func() (*daemon.Agent, error)) (time.Duration, int, error) {
	ag2, err := start2()
	if err != nil {
		return 0, 0, err
	}
	cleanCtx := context.WithoutCancel(ctx)
	inst2 := ag2.State().ContainerInstanceArn
	closed := false
	defer func() {
		if !closed {
			ag2.Close()
		}
		removeLabelled(cleanCtx, s.dc, dockerdriver.LabelInstance+"="+inst2)
	}()
	td, err := register(fam, cfg.Args)
	if err != nil {
		return 0, 0, err
	}
	n := cfg.LostTasks
	if _, err := s.c.CreateService(ctx, &ecs.CreateServiceInput{ServiceName: aws.String("lost"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(int32(n))}); err != nil {
		return 0, 0, err
	}
	defer func() {
		s.c.DeleteService(cleanCtx, &ecs.DeleteServiceInput{Service: aws.String("lost"), Force: aws.Bool(true)})
		s.deleteWait(cleanCtx, fam, keepInstance)
	}()
	if _, _, err := s.waitSteady(ctx, "lost", "", time.Now(), 2*time.Minute); err != nil {
		return 0, 0, err
	}
	ts, err := s.tasks(ctx, "lost")
	if err != nil {
		return 0, 0, err
	}
	onLost := 0
	for _, t := range live(ts) {
		if aws.ToString(t.ContainerInstanceArn) == inst2 {
			onLost++
		}
	}
	if onLost == 0 {
		return 0, 0, errors.New("no task was placed on the second agent")
	}
	start := time.Now()
	ag2.Close() // its connection drops at once, as with kill -9; its containers keep running
	closed = true
	for {
		ts, err := s.tasks(ctx, "lost")
		if err != nil {
			return 0, onLost, err
		}
		k := 0
		for _, t := range live(ts) {
			if aws.ToString(t.ContainerInstanceArn) == keepInstance {
				k++
			}
		}
		if k == n {
			return time.Since(start), onLost, nil
		}
		if time.Since(start) > 2*time.Minute {
			return 0, onLost, fmt.Errorf("%d of %d tasks RUNNING on the remaining agent after 2m", k, n)
		}
		if err := sleepCtx(ctx, s.every); err != nil {
			return 0, onLost, err
		}
	}
}

// deleteWait waits (up to 30 s) until no container of fam made by the
// agent of inst runs.
func (s *svcBench) deleteWait(ctx context.Context, fam, inst string) {
	for i := 0; i < 600; i++ {
		l, err := s.dc.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.
			Add("label", dockerdriver.LabelECSTaskFamily+"="+fam).Add("label", dockerdriver.LabelInstance+"="+inst)})
		if err != nil || len(l.Items) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// boundSampler records, per source, the fewest and most tasks seen and
// every sample outside [min, max].
type boundSampler struct {
	lo, hi  int
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples map[string]int
	minSeen map[string]int
	maxSeen map[string]int
	errs    []string
}

func newBoundSampler(lo, hi int) *boundSampler {
	return &boundSampler{lo: lo, hi: hi, done: make(chan struct{}),
		samples: map[string]int{}, minSeen: map[string]int{}, maxSeen: map[string]int{}}
}

func (b *boundSampler) record(src string, n int, checkMin bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m, ok := b.minSeen[src]; !ok || n < m {
		b.minSeen[src] = n
	}
	b.maxSeen[src] = max(b.maxSeen[src], n)
	b.samples[src]++
	at := time.Now().Format("15:04:05.000")
	if n > b.hi {
		b.errs = append(b.errs, fmt.Sprintf("%s: %d > maximum %d at %s", src, n, b.hi, at))
	}
	if checkMin && n < b.lo {
		b.errs = append(b.errs, fmt.Sprintf("%s: %d < minimum healthy %d at %s", src, n, b.lo, at))
	}
}

func (b *boundSampler) loop(every time.Duration, f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			f()
			select {
			case <-b.done:
				return
			case <-time.After(every):
			}
		}
	}()
}

func (b *boundSampler) stop() {
	close(b.done)
	b.wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Report prints a services result.
func (r ServiceDockerResult) Report(w io.Writer) {
	fmt.Fprintf(w, "machine: %d cores, %s/%s, Docker %s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		r.DockerVersion, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "Services on Docker, image %s (cached), one node:\n", r.Image)
	if r.Replicas > 0 {
		fmt.Fprintf(w, "%d-replica service:\n", r.Replicas)
		fmt.Fprintf(w, "  Berth CreateService -> running == %d       %9s\n", r.Replicas, ms(r.CreateRunning))
		fmt.Fprintf(w, "  Berth CreateService -> steady (1 deployment) %9s  (%d containers running; DeleteService force -> none left %s)\n",
			ms(r.CreateSteady), r.CreateContainers, ms(r.DeleteGone))
		if r.SwarmErr != "" {
			fmt.Fprintf(w, "  Swarm baseline did not run: %s\n", r.SwarmErr)
		} else if r.SwarmCreate > 0 {
			fmt.Fprintf(w, "  docker service create --replicas %d -> %d/%d %9s  (swarm initialised here: %v)\n",
				r.Replicas, r.Replicas, r.Replicas, ms(r.SwarmCreate), r.SwarmCreatedHere)
			fmt.Fprintf(w, "  ratio Berth steady / Swarm: %.2fx (goal <= 1)\n", ratio(r.CreateSteady, r.SwarmCreate))
		}
	}
	if r.Rolling > 0 {
		fmt.Fprintf(w, "rolling deployment of %d tasks (minimumHealthyPercent 100, maximumPercent 200):\n", r.Rolling)
		fmt.Fprintf(w, "  create -> steady %s; UpdateService -> all new RUNNING %s, -> deployment COMPLETED and alone %s\n",
			ms(r.RollCreate), ms(r.RollNewUp), ms(r.RollDuration))
		fmt.Fprintf(w, "  min healthy (API) %d, min running containers (Docker) %d (bound >= %d)\n", r.MinHealthyAPI, r.MinDocker, r.Rolling)
		fmt.Fprintf(w, "  max running+pending (DescribeServices) %d, max not STOPPED (DescribeTasks) %d, max running containers (Docker) %d (bound <= %d)\n",
			r.MaxRunPending, r.MaxNotStopped, r.MaxDocker, 2*r.Rolling)
		fmt.Fprintf(w, "  samples %v; violations %d\n", r.Samples, len(r.Violations))
		for _, v := range r.Violations {
			fmt.Fprintf(w, "    %s\n", v)
		}
	}
	for i, d := range r.Kills {
		fmt.Fprintf(w, "docker kill %d -> replacement RUNNING %9s\n", i+1, ms(d))
	}
	if r.LostErr != "" {
		fmt.Fprintf(w, "lost instance: %s\n", r.LostErr)
	} else if r.LostTasks > 0 {
		fmt.Fprintf(w, "lost instance (second agent stopped, %d of its tasks) -> all RUNNING on the other agent %9s\n", r.LostTasks, ms(r.Lost))
	}
}
