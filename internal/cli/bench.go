package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/bench"
)

// benchFunc runs one `berth bench <name>` with the arguments after name.
type benchFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// benchmarks are the `berth bench <name>` subcommands; `berth bench` with
// no name (or flags first) runs the API churn.
var benchmarks = map[string]benchFunc{
	"tasks": benchCommand("tasks", bench.DefaultTasksConfig(), func(fs *flag.FlagSet, cfg *bench.TasksConfig) func() error {
		fs.StringVar(&cfg.Image, "image", cfg.Image, "image in Docker's local cache, taking berth-test/tool's arguments (nothing is pulled)")
		fs.IntVar(&cfg.Singles, "singles", cfg.Singles, "sequential RunTask -> RUNNING samples, each beside docker create+start and docker run -d")
		fs.IntVar(&cfg.Batches, "batches", cfg.Batches, "RunTask calls for the many-tasks run (0: skip it)")
		fs.IntVar(&cfg.BatchSize, "batch-size", cfg.BatchSize, "tasks per RunTask call (1..10)")
		fs.BoolVar(&cfg.Swarm, "swarm", cfg.Swarm, "time docker service create --replicas on a single-node Swarm beside the many-tasks run")
		fs.IntVar(&cfg.AgentMaxStarts, "agent-max-starts", cfg.AgentMaxStarts, "the agent's --max-concurrent-starts (0: its default, -1: unbounded)")
		fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "interleaved rounds of the many-tasks run (Berth, Docker SDK floor, Swarm)")
		floor := fs.String("floor-workers", joinInts(cfg.FloorParallelism), "comma-separated parallelisms the Docker SDK floor tries (its best is the floor)")
		return func() error {
			var err error
			if cfg.FloorParallelism, err = splitInts(*floor); err != nil || len(cfg.FloorParallelism) == 0 {
				return UsageError{"--floor-workers: want comma-separated positive integers"}
			}
			return wantParams(cfg.Singles >= 1 && cfg.Batches >= 0 && cfg.BatchSize >= 1 && cfg.BatchSize <= 10 && cfg.Rounds >= 1)
		}
	}, bench.Tasks),
	"services": benchCommand("services", bench.DefaultServiceDockerConfig(), func(fs *flag.FlagSet, cfg *bench.ServiceDockerConfig) func() error {
		fs.StringVar(&cfg.Image, "image", cfg.Image, "image in Docker's local cache, taking berth-test/tool's arguments (nothing is pulled)")
		fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "tasks of the service timed from CreateService to steady state (0: skip)")
		fs.BoolVar(&cfg.Swarm, "swarm", cfg.Swarm, "time docker service create --replicas on a single-node Swarm beside it")
		fs.IntVar(&cfg.Rolling, "rolling", cfg.Rolling, "tasks moved to a new revision with minimumHealthyPercent 100 / maximumPercent 200 (0: skip it and the kills)")
		fs.DurationVar(&cfg.Every, "every", cfg.Every, "how often the rolling deployment's bounds are sampled")
		fs.IntVar(&cfg.Kills, "kills", cfg.Kills, "docker kill samples: a container of the rolling service killed, timed until replaced")
		fs.IntVar(&cfg.LostTasks, "lost-tasks", cfg.LostTasks, "tasks spread over two agents before the second agent is stopped (0: skip)")
		return func() error {
			return wantParams(cfg.Replicas >= 0 && cfg.Rolling >= 0 && cfg.Kills >= 0 && cfg.Every > 0 && cfg.LostTasks != 1 && cfg.LostTasks >= 0)
		}
	}, bench.ServiceDocker),
	"fargate": benchCommand("fargate", bench.DefaultFargateConfig(), func(fs *flag.FlagSet, cfg *bench.FargateConfig) func() error {
		fs.StringVar(&cfg.Image, "image", cfg.Image, "image in Docker's local cache, taking berth-test/tool's arguments (nothing is pulled)")
		fs.IntVar(&cfg.Singles, "singles", cfg.Singles, "sequential RunTask FARGATE -> RUNNING samples, each beside docker run -d")
		return nil
	}, bench.Fargate),
	"awslogs": benchCommand("awslogs", bench.DefaultAwslogsConfig(), func(fs *flag.FlagSet, cfg *bench.AwslogsConfig) func() error {
		fs.StringVar(&cfg.Image, "image", cfg.Image, "berth-test/tool in Docker's local cache (nothing is pulled)")
		fs.IntVar(&cfg.Stamps, "stamps", cfg.Stamps, "lines timed from the container's write to FilterLogEvents")
		fs.DurationVar(&cfg.Every, "every", cfg.Every, "time between timed lines")
		fs.IntVar(&cfg.Lines, "lines", cfg.Lines, "lines written at full speed for lines/s (beside the same container on json-file only)")
		return func() error { return wantParams(cfg.Stamps >= 1 && cfg.Lines >= 1 && cfg.Every > 0) }
	}, bench.Awslogs),
	"dns": benchCommand("dns", bench.DefaultDNSConfig(), func(fs *flag.FlagSet, cfg *bench.DNSConfig) func() error {
		fs.IntVar(&cfg.Services, "services", cfg.Services, "services in the namespace (3 instances each)")
		fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of each dnsperf run")
		fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "runs per server, alternating")
		fs.IntVar(&cfg.Clients, "clients", cfg.Clients, "dnsperf clients (-c)")
		fs.StringVar(&cfg.ServerCPU, "server-cpu", cfg.ServerCPU, "CPU list the servers are pinned to (taskset)")
		fs.StringVar(&cfg.ClientCPU, "client-cpu", cfg.ClientCPU, "CPU list dnsperf is pinned to (taskset)")
		return func() error {
			self, err := os.Executable()
			cfg.Self = self
			return err
		}
	}, bench.DNS),
	"dns-serve": runBenchDNSServe,
	"alb": benchCommand("alb", bench.DefaultALBConfig(), func(fs *flag.FlagSet, cfg *bench.ALBConfig) func() error {
		fs.StringVar(&cfg.Self, "berth", cfg.Self, "berth binary run as the load balancer (`berth bench alb-serve`; default: this one)")
		nginxWrkFlags(fs, &cfg.NginxWrkConfig)
		return func() error { return wantParams(cfg.Valid()) }
	}, bench.ALB),
	"alb-serve": runBenchALBServe,
	"scproxy": benchCommand("scproxy", bench.DefaultSCProxyConfig(), func(fs *flag.FlagSet, cfg *bench.SCProxyConfig) func() error {
		fs.StringVar(&cfg.Berth, "berth", cfg.Berth, "berth binary run as the proxy (default: this one)")
		nginxWrkFlags(fs, &cfg.NginxWrkConfig)
		fs.DurationVar(&cfg.KillLoad, "kill-duration", cfg.KillLoad, "length of the killed-backend run")
		fs.DurationVar(&cfg.IdleAfter, "idle-after", cfg.IdleAfter, "wait after the load, then read the idle proxy's RSS again (0: skip)")
		return func() error { return wantParams(cfg.Valid() && cfg.KillLoad >= time.Second && cfg.IdleAfter >= 0) }
	}, bench.SCProxy),
	"lbservice": benchCommand("lbservice", bench.DefaultLBServiceConfig(), func(fs *flag.FlagSet, cfg *bench.LBServiceConfig) func() error {
		fs.StringVar(&cfg.Image, "image", cfg.Image, "the test image (in Docker's local cache)")
		fs.IntVar(&cfg.Tasks, "tasks", cfg.Tasks, "tasks of the service")
		fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "client workers sending requests back to back")
		fs.IntVar(&cfg.Kills, "kills", cfg.Kills, "containers killed after the deployment")
		return func() error { return wantParams(cfg.Tasks >= 1 && cfg.Workers >= 1 && cfg.Kills >= 0) }
	}, bench.LBService),
}

// apiChurn is `berth bench` with no benchmark name.
var apiChurn = benchCommand("", bench.ChurnConfig{Duration: 30 * time.Second, WritesPerSec: 20, Readers: 4, RawWrites: 500},
	func(fs *flag.FlagSet, cfg *bench.ChurnConfig) func() error {
		fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long the API churn runs")
		fs.IntVar(&cfg.WritesPerSec, "writes-per-sec", cfg.WritesPerSec, "paced mutating calls per second")
		fs.IntVar(&cfg.Readers, "readers", cfg.Readers, "concurrent readers")
		fs.IntVar(&cfg.RawWrites, "raw-writes", cfg.RawWrites, "raw etcd writes measured as the baseline")
		return func() error { return wantParams(cfg.WritesPerSec >= 1 && cfg.Readers >= 0 && cfg.RawWrites >= 1) }
	}, bench.APIChurn)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if run, ok := benchmarks[args[0]]; ok {
			return run(ctx, args[1:], stdout, stderr)
		}
	}
	return apiChurn(ctx, args, stdout, stderr)
}

// benchCommand makes a benchmark's subcommand: flags declares its flags on
// a copy of the default configuration and returns the check of the parsed
// values (nil: none; it may also complete the configuration), run runs it,
// and its result's report is printed.
func benchCommand[C any, R interface{ Report(io.Writer) }](name string, defaults C, flags func(*flag.FlagSet, *C) func() error,
	run func(context.Context, C) (R, error)) benchFunc {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		fs := flag.NewFlagSet(strings.TrimSpace("berth bench "+name), flag.ContinueOnError)
		fs.SetOutput(stderr)
		cfg := defaults
		check := flags(fs, &cfg)
		if err := fs.Parse(args); err != nil {
			return UsageError{err.Error()}
		}
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		res, err := run(ctx, cfg)
		if err != nil {
			return err
		}
		res.Report(stdout)
		return nil
	}
}

// nginxWrkFlags are the flags of the benchmarks beside nginx under wrk.
func nginxWrkFlags(fs *flag.FlagSet, cfg *bench.NginxWrkConfig) {
	fs.StringVar(&cfg.Nginx, "nginx", cfg.Nginx, "nginx binary (apt-get install -y nginx-light)")
	fs.StringVar(&cfg.Wrk, "wrk", cfg.Wrk, "wrk binary (apt-get install -y wrk)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of each throughput run")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "throughput runs per side, alternating")
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "wrk connections for the throughput runs")
	fs.IntVar(&cfg.Threads, "threads", cfg.Threads, "wrk threads")
	fs.DurationVar(&cfg.LatencyDur, "latency-duration", cfg.LatencyDur, "length of each fixed-rate latency run")
	fs.IntVar(&cfg.LatencyRounds, "latency-rounds", cfg.LatencyRounds, "rounds of the paired probe at each load (half and a quarter of the maximum, 1,000/s, none)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "requests/s of the latency runs (0: half of the proxy's measured maximum)")
}

// wantParams is the usage error of parameters out of range.
func wantParams(ok bool) error {
	if !ok {
		return UsageError{"bad benchmark parameters"}
	}
	return nil
}

func runBenchDNSServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("berth bench dns-serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "UDP and TCP address")
	n := fs.Int("services", bench.DefaultDNSConfig().Services, "services in the namespace")
	if err := fs.Parse(args); err != nil {
		return UsageError{err.Error()}
	}
	return bench.ServeBenchDNS(ctx, *listen, *n)
}

// runBenchALBServe is `berth bench alb-serve`: the data plane `berth bench alb` measures, in a
// process of its own.
func runBenchALBServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("berth bench alb-serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "the listener's address")
	targets := fs.String("targets", "", "the targets, host:port separated by commas")
	if err := fs.Parse(args); err != nil {
		return UsageError{err.Error()}
	}
	if *targets == "" {
		return UsageError{"--targets is required"}
	}
	return bench.ServeBenchALB(ctx, stdout, *listen, strings.Split(*targets, ","))
}

func joinInts(v []int) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func splitInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad integer %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}
