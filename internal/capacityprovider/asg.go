package capacityprovider

import (
	"errors"
	"strings"

	"github.com/berthdev/berth/internal/lazyre"
)

// Auto Scaling group capacity providers (docs/capacity-providers.md).
// Berth has no EC2 Auto Scaling: the "Auto Scaling group" of a provider
// is a named pool of Berth agents, each started with
// `berth agent --capacity-pool NAME`, which registers the instance
// attribute PoolAttribute. A provider names its pool through the group's
// name in its autoScalingGroupArn.

// PoolAttribute is the container instance attribute that puts an
// instance in a capacity pool (the Auto Scaling group an ASG provider
// names).
const PoolAttribute = "berth.capacity-pool"

// The AWS-managed providers every cluster may associate.
const (
	Fargate     = "FARGATE"
	FargateSpot = "FARGATE_SPOT"
)

// IsFargate reports whether name is one of the AWS-managed Fargate
// providers.
func IsFargate(name string) bool { return name == Fargate || name == FargateSpot }

// Mixed reports whether a strategy's providers mix Fargate providers with
// Auto Scaling group providers, which ECS refuses.
func Mixed(providers []string) bool {
	fargate, asg := false, false
	for _, p := range providers {
		if IsFargate(p) {
			fargate = true
		} else {
			asg = true
		}
	}
	return fargate && asg
}

var nameRE = lazyre.New(`^[a-zA-Z0-9_-]{1,255}$`)

// CheckName applies ECS's rules to a new capacity provider's name; the
// error's text is ECS's message.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return errors.New("The specified capacity provider name is invalid. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.")
	}
	l := strings.ToLower(name)
	for _, p := range []string{"aws", "ecs", "fargate"} {
		if strings.HasPrefix(l, p) {
			return errors.New(`The specified capacity provider name is invalid. The name can't be prefixed with "aws", "ecs", or "fargate".`)
		}
	}
	return nil
}

// ASGARN is a parsed Auto Scaling group ARN:
// arn:<partition>:autoscaling:<region>:<account>:autoScalingGroup:<id>:autoScalingGroupName/<name>.
type ASGARN struct {
	Partition, Region, Account, ID string
	// Name is the group's name: on Berth, the agents' capacity pool.
	Name string
}

// ParseASGARN parses an Auto Scaling group ARN; the error's text says
// what form Berth expects.
func ParseASGARN(s string) (ASGARN, error) {
	bad := errors.New("The specified Auto Scaling group ARN is invalid: " + s + ". Berth expects arn:aws:autoscaling:<region>:<account>:autoScalingGroup:<id>:autoScalingGroupName/<name>, where <name> is the capacity pool of the Berth agents (berth agent --capacity-pool <name>).")
	parts := strings.SplitN(s, ":", 8)
	if len(parts) != 8 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "autoscaling" ||
		parts[3] == "" || parts[4] == "" || parts[5] != "autoScalingGroup" || parts[6] == "" {
		return ASGARN{}, bad
	}
	name, ok := strings.CutPrefix(parts[7], "autoScalingGroupName/")
	if !ok || !PoolNameOK(name) {
		return ASGARN{}, bad
	}
	return ASGARN{Partition: parts[1], Region: parts[3], Account: parts[4], ID: parts[6], Name: name}, nil
}

// PoolNameOK reports whether name can be a capacity pool (an Auto Scaling
// group's name): 1-255 printable characters.
func PoolNameOK(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// ScaleIn returns the index in items of the provider a service's next
// task to stop should come from, given counts[i] live tasks on items[i]:
// the provider furthest above the split Split would give the remaining
// tasks, so that scale-in keeps the strategy's proportions; -1 when no
// provider has a task.
func ScaleIn(items []Item, counts []int) int {
	total := 0
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return -1
	}
	want := make([]int, len(items))
	for _, i := range Split(items, nil, total-1) {
		want[i]++
	}
	best, bestOver := -1, 0
	for i := range items {
		if counts[i] == 0 {
			continue
		}
		over := counts[i] - want[i]
		if best < 0 || over > bestOver {
			best, bestOver = i, over
		}
	}
	return best
}
