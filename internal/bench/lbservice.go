package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/dockerdriver"
)

// LBServiceConfig shapes the benchmark of an ECS service behind an ALB
// (issue 11 item 3): a rolling deployment of Tasks tasks and killed
// containers under constant load.
type LBServiceConfig struct {
	// Image must be in Docker's local cache (berth-test/tool: its serve
	// step answers HTTP).
	Image string
	Tasks int
	// Workers send requests back to back through the listener.
	Workers int
	// Kills: containers killed one after the other (each replaced before
	// the next).
	Kills int
	Log   *slog.Logger
}

// DefaultLBServiceConfig is what `berth bench lbservice` runs.
func DefaultLBServiceConfig() LBServiceConfig {
	return LBServiceConfig{Image: "berth-test/tool:latest", Tasks: 20, Workers: 8, Kills: 1}
}

// LBServiceResult holds the measurements.
type LBServiceResult struct {
	Tasks, Workers     int
	Ready              time.Duration // CreateService → all targets healthy
	Roll               time.Duration // UpdateService → new deployment COMPLETED, all targets healthy
	RollSent, RollFail int64
	Kill               time.Duration // docker kill → replacement healthy (last kill)
	KillSent, KillFail int64
	FirstError         string
	CPU, DockerVersion string
	When               time.Time
}

// LBService runs the benchmark on an in-process Berth with one agent on
// this machine's Docker.
func LBService(ctx context.Context, cfg LBServiceConfig) (res LBServiceResult, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	res = LBServiceResult{Tasks: cfg.Tasks, Workers: cfg.Workers, CPU: cpuModel(), When: time.Now().UTC()}
	env, err := startDockerEnv(ctx, cfg.Image, "lbservice", cfg.Log)
	if err != nil {
		return res, err
	}
	defer env.close()
	res.DockerVersion = env.dockerVersion
	ag, err := env.startAgent(ctx, "agent", "zone-a")
	if err != nil {
		return res, err
	}
	defer env.removeAgent(context.WithoutCancel(ctx), ag)
	c := env.ecsClient(true)
	creds, _ := env.srv.RootCredentials()
	lbc := elb.NewFromConfig(aws.Config{Region: env.srv.Config().Region, BaseEndpoint: aws.String(env.srv.Endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, "")})

	lbOut, err := lbc.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("bench"), Subnets: []string{"subnet-a"}})
	if err != nil {
		return res, err
	}
	tgOut, err := lbc.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("bench"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(8080),
		TargetType: elbtypes.TargetTypeEnumInstance, VpcId: aws.String("vpc-1"), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
		HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2)})
	if err != nil {
		return res, err
	}
	tg := tgOut.TargetGroups[0].TargetGroupArn
	if _, err := lbc.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: tg,
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("5")}}}); err != nil {
		return res, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if _, err := lbc.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lbOut.LoadBalancers[0].LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(int32(port)), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg}}}); err != nil {
		return res, err
	}
	register := func(first string) (string, error) {
		out, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("lbbench"),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("web"), Image: aws.String(cfg.Image), Memory: aws.Int32(32), StopTimeout: aws.Int32(2),
				Command: []string{first, "serve:8080", "term:0s:0", "sleep:2h"}, PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(8080)}}}}})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
	}
	td1, err := register("print:v1")
	if err != nil {
		return res, err
	}
	td2, err := register("print:v2")
	if err != nil {
		return res, err
	}
	healthy := func() int {
		out, err := lbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tg})
		if err != nil {
			return -1
		}
		n := 0
		for _, d := range out.TargetHealthDescriptions {
			if d.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
				n++
			}
		}
		return n
	}
	describe := func() (types.Service, error) {
		out, err := c.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{"web"}})
		if err != nil || len(out.Services) != 1 {
			return types.Service{}, fmt.Errorf("describe: %v", err)
		}
		return out.Services[0], nil
	}
	waitFor := func(what string, within time.Duration, f func() bool) error {
		deadline := time.Now().Add(within)
		for !f() {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: not within %s", what, within)
			}
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
		return nil
	}
	n := int32(cfg.Tasks)
	t0 := time.Now()
	if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(n),
		LoadBalancers:                 []types.LoadBalancer{{TargetGroupArn: tg, ContainerName: aws.String("web"), ContainerPort: aws.Int32(8080)}},
		DeploymentConfiguration:       &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200)},
		HealthCheckGracePeriodSeconds: aws.Int32(10)}); err != nil {
		return res, err
	}
	defer func() {
		dctx := context.WithoutCancel(ctx)
		c.DeleteService(dctx, &ecs.DeleteServiceInput{Service: aws.String("web"), Force: aws.Bool(true)})
	}()
	if err := waitFor("all targets healthy", 5*time.Minute, func() bool { return healthy() == cfg.Tasks }); err != nil {
		return res, err
	}
	res.Ready = time.Since(t0)

	load := StartLoad(ctx, fmt.Sprintf("http://127.0.0.1:%d/", port), cfg.Workers, 0, 10*time.Second)
	defer load.Stop()

	t1 := time.Now()
	if _, err := c.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("web"), TaskDefinition: aws.String(td2)}); err != nil {
		return res, err
	}
	if err := waitFor("the rolling deployment", 10*time.Minute, func() bool {
		svc, err := describe()
		return err == nil && len(svc.Deployments) == 1 && aws.ToString(svc.Deployments[0].TaskDefinition) == td2 &&
			svc.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted && svc.RunningCount == n && healthy() == cfg.Tasks
	}); err != nil {
		return res, err
	}
	res.Roll = time.Since(t1)
	res.RollSent, res.RollFail = load.Counts()

	for range cfg.Kills {
		cs, err := env.dc.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", dockerdriver.LabelECSTaskFamily+"=lbbench")})
		if err != nil || len(cs.Items) == 0 {
			return res, fmt.Errorf("containers: %v", err)
		}
		t2 := time.Now()
		if _, err := env.dc.ContainerKill(ctx, cs.Items[0].ID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
			return res, err
		}
		if err := waitFor("the killed task replaced", 2*time.Minute, func() bool {
			svc, err := describe()
			ok := err == nil && svc.RunningCount == n && healthy() == cfg.Tasks
			if ok {
				cs2, err := env.dc.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", dockerdriver.LabelECSTaskFamily+"=lbbench")})
				ok = err == nil && len(cs2.Items) == cfg.Tasks
			}
			return ok
		}); err != nil {
			return res, err
		}
		res.Kill = time.Since(t2)
	}
	load.Stop()
	sent, failed := load.Counts()
	res.KillSent, res.KillFail = sent-res.RollSent, failed-res.RollFail
	res.FirstError = load.FirstError()
	return res, nil
}

// Report prints the results.
func (r LBServiceResult) Report(w io.Writer) {
	fmt.Fprintf(w, "ECS service behind an ALB: %d tasks, %d client workers, health checks every 5 s (threshold 2), deregistration delay 5 s\n", r.Tasks, r.Workers)
	fmt.Fprintf(w, "  all targets healthy after CreateService:  %s\n", r.Ready.Round(10*time.Millisecond))
	fmt.Fprintf(w, "  rolling deployment (100%%/200%%):           %s, %d requests, %d failed\n", r.Roll.Round(10*time.Millisecond), r.RollSent, r.RollFail)
	fmt.Fprintf(w, "  killed container replaced and healthy:    %s, %d requests, %d failed\n", r.Kill.Round(10*time.Millisecond), r.KillSent, r.KillFail)
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first failure: %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "  %s, Docker %s, %s\n", r.CPU, r.DockerVersion, r.When.Format(time.RFC3339))
}
