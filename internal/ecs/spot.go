package ecs

import (
	"context"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
)

// Fargate Spot interruptions (docs/fargate.md). AWS reclaims a
// FARGATE_SPOT task with two minutes' warning: the task gets SIGTERM, is
// stopped (SIGKILL) when the warning runs out, and stops with stopCode
// SpotInterruption; a service replaces it. Berth has no spare capacity to
// reclaim, so an operator (or a test) injects the interruption: `berth
// spot-interrupt`, through the admin API.

// DefaultSpotWarning is AWS's warning before a Spot task is stopped.
const DefaultSpotWarning = 2 * time.Minute

// spotReason is ECS's stoppedReason of an interrupted Spot task.
const spotReason = "Your Spot Task was interrupted."

// InterruptSpotTask interrupts a running FARGATE_SPOT task: its
// containers get SIGTERM now and SIGKILL after warning (whole seconds,
// at least one), and it stops with stopCode SpotInterruption. It returns
// the task's ARN.
func (s *Service) InterruptSpotTask(ctx context.Context, clusterRef, taskRefStr string, warning time.Duration) (string, error) {
	cluster, err := s.clusterName(&clusterRef)
	if err != nil {
		return "", err
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return "", err
	}
	id, ok := taskRef(cluster, taskRefStr)
	if !ok {
		return "", errs.R(errs.Invalid, reasonInvalidParameter, reasonTaskNotFound)
	}
	if warning <= 0 {
		warning = DefaultSpotWarning
	}
	grace := max(1, int(warning/time.Second))
	t, err := s.stopTaskRecordWith(ctx, cluster, id, ecsapi.TaskStopCodeSpotInterruption, spotReason, func(t *taskRecord) error {
		if t.Fargate == nil || t.Fargate.CapacityProvider != ProviderFargateSpot {
			return errs.R(errs.Invalid, reasonInvalidParameter, "Task %s does not run on the FARGATE_SPOT capacity provider: only Spot tasks can be interrupted.", id)
		}
		if t.DesiredStatus == DesiredStopped {
			return errs.R(errs.Conflict, reasonInvalidParameter, "Task %s is already stopping.", id)
		}
		t.StopGraceSeconds = grace
		return nil
	}, nil)
	if err != nil {
		return "", err
	}
	s.log.Info("spot task interrupted", "cluster", cluster, "task", id, "warning", time.Duration(grace)*time.Second)
	return t.ARN, nil
}
