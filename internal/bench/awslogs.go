package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// AwslogsConfig shapes the awslogs benchmark (issue 10).
type AwslogsConfig struct {
	// Image is berth-test/tool (cached; nothing is pulled).
	Image string
	// Stamps lines are written Every apart for the write -> visible in
	// FilterLogEvents latency, measured from Docker's timestamp of each
	// line (the event's timestamp) to when a poll first returns it.
	Stamps int
	Every  time.Duration
	// Lines are written as fast as the container can, for lines/s.
	Lines int
	Log   *slog.Logger
}

// DefaultAwslogsConfig is what `berth bench awslogs` runs.
func DefaultAwslogsConfig() AwslogsConfig {
	return AwslogsConfig{Image: "berth-test/tool:latest", Stamps: 300, Every: 20 * time.Millisecond, Lines: 100000}
}

// AwslogsResult holds the measurements.
type AwslogsResult struct {
	DockerVersion string
	Stamps        int
	LatP50        time.Duration // container write -> first seen in FilterLogEvents (10 ms polls)
	LatP99        time.Duration
	LatMax        time.Duration
	Lines         int
	BerthPerSec   float64       // lines from container start to the last visible in FilterLogEvents
	BerthRun      time.Duration // how long the awslogs container took to write them
	BerthTotal    time.Duration // container start -> last line visible
	DockerPerSec  float64       // baseline: the same container with json-file only, lines/s Docker took
	DockerRun     time.Duration
	Distinct      int // distinct lines found in the stream after the throughput run
}

// Awslogs starts an in-process Berth and one agent on this machine's
// Docker Engine and measures, in one run: (1) the latency from a
// container's write to the line being visible in FilterLogEvents, for
// Stamps lines written Every apart; (2) Lines lines written at full speed
// by an awslogs container: lines/s through Berth's path (container start
// -> the last line visible), beside (3) the same container with only
// Docker's json-file driver (lines/s Docker accepts: start -> exit).
func Awslogs(ctx context.Context, cfg AwslogsConfig) (res AwslogsResult, err error) {
	def := DefaultAwslogsConfig()
	if cfg.Image == "" {
		cfg.Image = def.Image
	}
	if cfg.Stamps <= 0 {
		cfg.Stamps = def.Stamps
	}
	if cfg.Every <= 0 {
		cfg.Every = def.Every
	}
	if cfg.Lines <= 0 {
		cfg.Lines = def.Lines
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	e, err := startDockerEnv(ctx, cfg.Image, "awslogs", cfg.Log)
	if err != nil {
		return res, err
	}
	defer e.close()
	res.DockerVersion = e.dockerVersion
	ag, err := e.startAgent(ctx, "agent", "")
	if err != nil {
		return res, err
	}
	defer e.removeAgent(context.WithoutCancel(ctx), ag)
	ec := e.ecsClient(true)
	creds, _ := e.srv.RootCredentials()
	lc := cloudwatchlogs.NewFromConfig(aws.Config{Region: e.srv.Config().Region, BaseEndpoint: aws.String(e.srv.Endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")})
	const group = "/berth/bench/awslogs"
	run := func(family string, args []string) (string, error) {
		_, err := ec.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(family),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("main"), Image: aws.String(cfg.Image), Memory: aws.Int32(128),
				Command: args, Essential: aws.Bool(true),
				LogConfiguration: &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{
					"awslogs-group": group, "awslogs-region": e.srv.Config().Region, "awslogs-stream-prefix": family, "awslogs-create-group": "true"}}}}})
		if err != nil {
			return "", err
		}
		r, err := ec.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String(family)})
		if err != nil {
			return "", err
		}
		if len(r.Tasks) != 1 {
			return "", fmt.Errorf("RunTask %s: %+v", family, r.Failures)
		}
		arn := aws.ToString(r.Tasks[0].TaskArn)
		return family + "/main/" + arn[strings.LastIndex(arn, "/")+1:], nil
	}

	// 1. Latency.
	var steps []string
	for i := 0; i < cfg.Stamps; i++ {
		steps = append(steps, fmt.Sprintf("print:stamp %06d", i), "sleep:"+cfg.Every.String())
	}
	stream, err := run("latency", steps)
	if err != nil {
		return res, err
	}
	seen := map[string]bool{}
	var lats []time.Duration
	deadline := time.Now().Add(time.Duration(cfg.Stamps)*cfg.Every + 60*time.Second)
	var from int64
	for len(lats) < cfg.Stamps && time.Now().Before(deadline) {
		in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), LogStreamNames: []string{stream}}
		if from > 0 {
			in.StartTime = aws.Int64(from)
		}
		for {
			out, err := lc.FilterLogEvents(ctx, in)
			if err != nil {
				break // the group or stream is not there yet
			}
			now := time.Now()
			for _, ev := range out.Events {
				msg := aws.ToString(ev.Message)
				if seen[msg] {
					continue
				}
				seen[msg] = true
				if !strings.HasPrefix(msg, "stamp ") {
					continue
				}
				lats = append(lats, now.Sub(time.UnixMilli(aws.ToInt64(ev.Timestamp))))
				from = max(from, aws.ToInt64(ev.Timestamp))
			}
			if out.NextToken == nil {
				break
			}
			in.NextToken = out.NextToken
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(lats) == 0 {
		return res, fmt.Errorf("no stamped line became visible in %s", stream)
	}
	slices.Sort(lats)
	res.Stamps = len(lats)
	res.LatP50, res.LatP99, res.LatMax = pctl(lats, 0.50), pctl(lats, 0.99), lats[len(lats)-1]

	// 2. Throughput through Berth's path: until the last line is visible.
	res.Lines = cfg.Lines
	args := []string{"lines:" + strconv.Itoa(cfg.Lines) + ":0"}
	stream, err = run("throughput", args)
	if err != nil {
		return res, err
	}
	last := fmt.Sprintf("line %06d", cfg.Lines-1)
	deadline = time.Now().Add(3 * time.Minute)
	from = 0
	var visible time.Time
	for visible.IsZero() && time.Now().Before(deadline) {
		// Read what is new since the last poll (FilterLogEvents from the
		// newest timestamp seen), so the polls do not rescan the stream.
		in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), LogStreamNames: []string{stream}}
		if from > 0 {
			in.StartTime = aws.Int64(from)
		}
		for visible.IsZero() {
			out, err := lc.FilterLogEvents(ctx, in)
			if err != nil {
				break
			}
			for _, ev := range out.Events {
				from = max(from, aws.ToInt64(ev.Timestamp))
				if aws.ToString(ev.Message) == last {
					visible = time.Now()
				}
			}
			if out.NextToken == nil {
				break
			}
			in.NextToken = out.NextToken
		}
		time.Sleep(20 * time.Millisecond)
	}
	if visible.IsZero() {
		return res, fmt.Errorf("the last line of %s never became visible", stream)
	}
	started, finished, err := containerTimes(ctx, e.dc, "throughput")
	if err != nil {
		return res, err
	}
	res.BerthRun = finished.Sub(started)
	res.BerthTotal = visible.Sub(started)
	res.BerthPerSec = float64(cfg.Lines) / res.BerthTotal.Seconds()
	distinct := map[string]bool{}
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), LogStreamNames: []string{stream}}
	for {
		out, err := lc.FilterLogEvents(ctx, in)
		if err != nil {
			return res, err
		}
		for _, ev := range out.Events {
			distinct[aws.ToString(ev.Message)] = true
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	res.Distinct = len(distinct)

	// 3. Baseline: the same container, json-file only.
	name := "berth-bench-awslogs-baseline"
	e.dc.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true})
	cr, err := e.dc.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
		Config:     &container.Config{Image: cfg.Image, Cmd: args, Labels: map[string]string{"berth.bench": "awslogs"}},
		HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file"}}})
	if err != nil {
		return res, err
	}
	defer e.dc.ContainerRemove(context.WithoutCancel(ctx), cr.ID, client.ContainerRemoveOptions{Force: true})
	if _, err := e.dc.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		return res, err
	}
	wait := e.dc.ContainerWait(ctx, cr.ID, client.ContainerWaitOptions{})
	select {
	case <-wait.Result:
	case err := <-wait.Error:
		return res, err
	}
	ins, err := e.dc.ContainerInspect(ctx, cr.ID, client.ContainerInspectOptions{})
	if err != nil {
		return res, err
	}
	s, _ := time.Parse(time.RFC3339Nano, ins.Container.State.StartedAt)
	f, _ := time.Parse(time.RFC3339Nano, ins.Container.State.FinishedAt)
	res.DockerRun = f.Sub(s)
	res.DockerPerSec = float64(cfg.Lines) / res.DockerRun.Seconds()
	return res, nil
}

// containerTimes finds the agent's container of a task family and returns
// when it started and finished.
func containerTimes(ctx context.Context, dc *client.Client, family string) (time.Time, time.Time, error) {
	l, err := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "com.amazonaws.ecs.task-definition-family="+family)})
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if len(l.Items) == 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("no container of %s", family)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		ins, err := dc.ContainerInspect(ctx, l.Items[0].ID, client.ContainerInspectOptions{})
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		s, _ := time.Parse(time.RFC3339Nano, ins.Container.State.StartedAt)
		f, _ := time.Parse(time.RFC3339Nano, ins.Container.State.FinishedAt)
		if !ins.Container.State.Running && f.After(s) {
			return s, f, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, time.Time{}, fmt.Errorf("container of %s still running", family)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func pctl(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

// Report prints an awslogs result.
func (r AwslogsResult) Report(w io.Writer) {
	fmt.Fprintf(w, "machine: %d cores, %s/%s, Docker %s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		r.DockerVersion, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "awslogs, container write -> visible in FilterLogEvents (%d lines, 10 ms polls):\n", r.Stamps)
	fmt.Fprintf(w, "  p50 %s  p99 %s  max %s (goal p99 <= 1 s)\n", ms(r.LatP50), ms(r.LatP99), ms(r.LatMax))
	fmt.Fprintf(w, "%d lines written at full speed:\n", r.Lines)
	fmt.Fprintf(w, "  Berth awslogs: %.0f lines/s (container start -> last line visible %s; the container wrote them in %s); %d distinct lines in the stream\n",
		r.BerthPerSec, ms(r.BerthTotal), ms(r.BerthRun), r.Distinct)
	fmt.Fprintf(w, "  Docker json-file only (baseline): %.0f lines/s (start -> exit %s)\n", r.DockerPerSec, ms(r.DockerRun))
	if r.DockerPerSec > 0 {
		fmt.Fprintf(w, "  ratio Berth/Docker: %.2f\n", r.BerthPerSec/r.DockerPerSec)
	}
}
