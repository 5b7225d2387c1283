package ecs

import (
	"context"
)

// applyPlan plans on a fresh snapshot of the cluster and commits the plan,
// planning again on fresher state when an instance changed meanwhile, at
// most tasklife.MaxPlanAttempts times. A plan without tasks is returned without
// committing anything.
func (s *Service) applyPlan(ctx context.Context, cluster string, planner func(*clusterSnapshot) (*plan, error)) (*plan, error) {
	return s.applyPlanOn(ctx, cluster, func(ctx context.Context) (*clusterSnapshot, error) { return s.snapshot(ctx, cluster) }, planner)
}
