package daemon

import (
	"context"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/autoscaling"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/errs"
)

// ecsScaler is Application Auto Scaling's view of ECS services: it reads
// their counts with DescribeServices and changes their desired count with
// UpdateService, the path every other client takes.
type ecsScaler struct{ svc *ecs.Service }

func (e ecsScaler) Capacity(ctx context.Context, cluster, service string) (autoscaling.Capacity, error) {
	out, err := e.svc.DescribeServices(ctx, &ecsapi.DescribeServicesRequest{Cluster: &cluster, Services: []string{service}})
	if errs.Is(err, errs.NotFound) || err == nil && (len(out.Services) == 0 || out.Services[0].Status == nil || *out.Services[0].Status != "ACTIVE") {
		return autoscaling.Capacity{}, errs.E(errs.NotFound, "ECS service %s in cluster %s not found", service, cluster)
	}
	if err != nil {
		return autoscaling.Capacity{}, err
	}
	sv := out.Services[0]
	return autoscaling.Capacity{Desired: deref32(sv.DesiredCount), Running: deref32(sv.RunningCount)}, nil
}

func (e ecsScaler) SetDesiredCount(ctx context.Context, cluster, service string, n int32) error {
	_, err := e.svc.UpdateService(ctx, &ecsapi.UpdateServiceRequest{Cluster: &cluster, Service: &service, DesiredCount: &n})
	return err
}

func deref32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// alarmPeriod is the period of target tracking alarms: the ECS metrics
// period rounded up to one CloudWatch alarms accept (10, 20, 30 s or a
// multiple of 60), 60 s by default as on AWS.
func alarmPeriod(metrics time.Duration) time.Duration {
	switch {
	case metrics <= 0:
		return time.Minute
	case metrics <= 10*time.Second:
		return 10 * time.Second
	case metrics <= 20*time.Second:
		return 20 * time.Second
	case metrics <= 30*time.Second:
		return 30 * time.Second
	}
	return (metrics + time.Minute - 1) / time.Minute * time.Minute
}
