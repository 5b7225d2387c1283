package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/taskrun"
)

// FargateConfig shapes the Fargate start-time benchmark (issue 15, item
// 5): a FARGATE task from RunTask to RUNNING beside `docker run -d` of the
// same image, interleaved.
type FargateConfig struct {
	Image   string   // in Docker's local cache; berth-test/tool's steps
	Args    []string // default: exit at once on SIGTERM, else sleep
	Singles int      // samples of each
	Log     *slog.Logger
}

// DefaultFargateConfig is what `berth bench fargate` runs.
func DefaultFargateConfig() FargateConfig {
	return FargateConfig{Image: "berth-test/tool:latest", Args: []string{"term:0s:0", "sleep:1h"}, Singles: 30}
}

// FargateResult holds the measured times.
type FargateResult struct {
	Image, DockerVersion string
	Singles              int
	FargateP50           time.Duration // RunTask FARGATE → DescribeTasks says RUNNING
	FargateP99           time.Duration
	CLIP50, CLIP99       time.Duration // wall time of `docker run -d`
	// Steps are the medians of where a task's start went: "api" (the
	// RunTask call), the runner's own steps in order (taskrun's debug
	// "task start steps": "assignment" is from the task's creation to the
	// agent's runner having it), and "report" (from the runner's RUNNING
	// to DescribeTasks answering RUNNING, polled every 20 ms).
	Steps []StepTime
}

// Fargate starts an in-process Berth and one agent offering Fargate
// capacity on this machine's Docker Engine, registers a Fargate task
// definition (awsvpc, 256 CPU units, 512 MiB) of the image, and measures
// Singles × (RunTask with launch type FARGATE, DescribeTasks every 20 ms
// until RUNNING, then stop it) beside the wall time of `docker run -d`
// of the same image and arguments. A Fargate task's start includes what a
// plain `docker run` does not: its own network namespace (the pause
// container) and the task's limits.
func Fargate(ctx context.Context, cfg FargateConfig) (res FargateResult, err error) {
	def := DefaultFargateConfig()
	if cfg.Image == "" {
		cfg.Image = def.Image
	}
	if len(cfg.Args) == 0 {
		cfg.Args = def.Args
	}
	if cfg.Singles < 1 {
		cfg.Singles = def.Singles
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	steps := newStartSteps(log.Handler())
	log = slog.New(steps)
	res.Image, res.Singles = cfg.Image, cfg.Singles
	env, err := startDockerEnv(ctx, cfg.Image, "fargate", log)
	if err != nil {
		return res, err
	}
	defer env.close()
	env.fargate = true
	res.DockerVersion = env.dockerVersion
	ag, err := env.startAgent(ctx, "agent", "")
	if err != nil {
		return res, err
	}
	defer env.removeAgent(context.WithoutCancel(ctx), ag)
	c := env.ecsClient(false)
	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("bench-fargate"), NetworkMode: types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate}, Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("main"), Image: aws.String(cfg.Image), Command: cfg.Args, StopTimeout: aws.Int32(2)}},
	}); err != nil {
		return res, err
	}
	const baseLabel = "berth.bench=tasks"
	defer removeLabelled(context.WithoutCancel(ctx), env.dc, baseLabel)
	tcfg := TasksConfig{Image: cfg.Image, Args: cfg.Args}
	instance := dockerdriver.LabelInstance + "=" + ag.State().ContainerInstanceArn

	// Warm-up, not measured (the awsvpc network and pause image are made
	// on the first task).
	if _, err := fargateOne(ctx, c); err != nil {
		return res, fmt.Errorf("warm-up task: %w", err)
	}
	if _, err := cliOne(ctx, tcfg); err != nil {
		return res, fmt.Errorf("warm-up docker run: %w", err)
	}
	removeLabelled(ctx, env.dc, baseLabel)
	var fg, cli []time.Duration
	var samples []map[string]time.Duration
	var orders [][]string
	for i := range cfg.Singles {
		s, err := fargateOne(ctx, c)
		if err != nil {
			return res, fmt.Errorf("task %d: %w", i, err)
		}
		fg = append(fg, s.running.Sub(s.start))
		if ts, ok := steps.get(s.arn); ok {
			m := map[string]time.Duration{"api": s.answered.Sub(s.start), "report": s.running.Sub(ts.running)}
			for k, v := range ts.steps {
				m[k] = v
			}
			samples = append(samples, m)
			orders = append(orders, append(append([]string{"api"}, ts.order...), "report"))
		}
		// The agent refills its pause pool after a task took one: let it
		// finish, so that it does not run beside the `docker run`.
		waitPool(ctx, env.dc, ag.State().ContainerInstanceArn)
		d, err := cliOne(ctx, tcfg)
		if err != nil {
			return res, err
		}
		cli = append(cli, d)
		removeLabelled(ctx, env.dc, baseLabel)
		removeLabelled(ctx, env.dc, instance, dockerdriver.LabelTaskARN) // the tasks' containers, not the agent's pause pool
	}
	res.FargateP50, res.FargateP99 = store.Percentile(fg, 50), store.Percentile(fg, 99)
	res.CLIP50, res.CLIP99 = store.Percentile(cli, 50), store.Percentile(cli, 99)
	res.Steps = medians(samples, orders)
	return res, nil
}

// fargateSample is one timed task: when RunTask was called and answered,
// and when DescribeTasks first said RUNNING.
type fargateSample struct {
	arn                      string
	start, answered, running time.Time
}

// fargateOne runs one FARGATE task and times it until RUNNING; then stops
// it and waits for STOPPED (not timed).
func fargateOne(ctx context.Context, c *ecs.Client) (s fargateSample, err error) {
	s.start = time.Now()
	r, err := c.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String("bench-fargate"), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-bench"}}}})
	if err != nil {
		return s, err
	}
	s.answered = time.Now()
	if len(r.Tasks) != 1 {
		return s, fmt.Errorf("RunTask failures: %s", failures(r.Failures))
	}
	s.arn = aws.ToString(r.Tasks[0].TaskArn)
	if err := pollTasks(ctx, c, []string{s.arn}, 20*time.Millisecond, time.Minute, "RUNNING"); err != nil {
		return s, err
	}
	s.running = time.Now()
	if _, err := c.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(s.arn)}); err != nil {
		return s, err
	}
	return s, pollTasks(ctx, c, []string{s.arn}, 20*time.Millisecond, time.Minute, "STOPPED")
}

// Report writes the result.
func (r FargateResult) Report(w io.Writer) {
	fmt.Fprintf(w, "Fargate task start, %d samples, image %s, Docker %s\n", r.Singles, r.Image, r.DockerVersion)
	fmt.Fprintf(w, "  RunTask FARGATE -> RUNNING (DescribeTasks) p50 %9s  p99 %9s\n", ms(r.FargateP50), ms(r.FargateP99))
	fmt.Fprintf(w, "  docker run -d (CLI wall time)            p50 %9s  p99 %9s\n", ms(r.CLIP50), ms(r.CLIP99))
	fmt.Fprintf(w, "  ratio Fargate/docker run: p50 %.2fx p99 %.2fx (goal p50 <= 1.3x)\n", ratio(r.FargateP50, r.CLIP50), ratio(r.FargateP99, r.CLIP99))
	if len(r.Steps) > 0 {
		fmt.Fprintf(w, "  where a Fargate task's start went (p50 of each step; steps overlap nothing unless named so):\n")
		for _, s := range r.Steps {
			fmt.Fprintf(w, "    %-22s %9s  (%d samples)\n", s.Step, ms(s.P50), s.N)
		}
	}
}

// waitPool waits (up to 10 s) until the agent of instance has its pause
// pool full again: taskrun.DefaultPausePool running pool containers
// (a task's taken one is removed at its stop).
func waitPool(ctx context.Context, dc *client.Client, instance string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		l, err := dc.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label",
			taskrun.LabelPausePool+"=true", dockerdriver.LabelInstance+"="+instance).Add("status", "running")})
		if err == nil && len(l.Items) >= taskrun.DefaultPausePool {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
