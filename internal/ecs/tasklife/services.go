package tasklife

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/capacityprovider"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
)

// ReasonFargateCapacity is ECS's failure reason when Fargate has no
// capacity for a task.
const ReasonFargateCapacity = "Capacity is unavailable at this time. Please try again later or in a different availability zone"

// StrategyItems converts a wire strategy for the arithmetic.
func StrategyItems(strategy []ecsapi.CapacityProviderStrategyItem) []capacityprovider.Item {
	out := make([]capacityprovider.Item, len(strategy))
	for i, it := range strategy {
		out[i] = capacityprovider.Item{Provider: deref(it.CapacityProvider), Base: int(deref(it.Base)), Weight: int(deref(it.Weight))}
	}
	return out
}

// ProviderCounts are a strategy's providers' task counts among tasks.
func ProviderCounts(strategy []ecsapi.CapacityProviderStrategyItem, tasks []ecsstate.TaskRecord) []int {
	counts := make([]int, len(strategy))
	for i := range tasks {
		t := &tasks[i]
		if t.Fargate == nil || t.DesiredStatus != ecsstate.DesiredRunning {
			continue
		}
		for j, it := range strategy {
			if deref(it.CapacityProvider) == t.Fargate.CapacityProvider {
				counts[j]++
			}
		}
	}
	return counts
}

// NewDeploymentID makes an ECS deployment id: ecs-svc/ and 19 digits.
func NewDeploymentID() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(8e18))
	return fmt.Sprintf("ecs-svc/%019d", n.Int64()+1e18)
}

// NewEventID makes a service event id (a UUID, as ECS's).
func NewEventID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ServiceStrategy is a service's capacity provider strategy (Auto Scaling
// group or Fargate), nil without one.
func ServiceStrategy(r *ecsstate.ServiceRecord) []ecsapi.CapacityProviderStrategyItem {
	switch {
	case r.ASG != nil:
		return r.ASG.Strategy
	case r.Fargate != nil:
		return r.Fargate.Strategy
	}
	return nil
}
