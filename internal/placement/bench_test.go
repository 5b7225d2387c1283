package placement

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkPlace places 100 tasks on a cluster of 1,000 instances spread
// over three zones, each already running a few tasks.
func BenchmarkPlace(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	cluster := make([]Instance, 1000)
	for i := range cluster {
		in := node(fmt.Sprintf("%032x", r.Uint64()), 4096, 16384,
			"ecs.availability-zone="+propZones[i%3], "ecs.instance-type="+propTypes[i%3], "ecs.os-type=linux")
		in.Remaining.CPU -= 256 * r.IntN(8)
		in.Remaining.Memory -= 1024 * r.IntN(8)
		for range r.IntN(4) {
			in.Tasks = append(in.Tasks, TaskInfo{Group: propGroups[r.IntN(len(propGroups))]})
			in.RunningTasksCount++
		}
		cluster[i] = in
	}
	for _, bc := range []struct {
		name string
		req  Request
	}{
		{"random", Request{CPU: 256, Memory: 512, DynamicPorts: 1, Group: "service:web"}},
		{"spread-zone-binpack-memory", Request{CPU: 256, Memory: 512, DynamicPorts: 1, Group: "service:web",
			Strategies: []Strategy{{Spread, "attribute:ecs.availability-zone"}, {Binpack, FieldMemory}}}},
		{"spread-instance-memberOf-distinct", Request{CPU: 256, Memory: 512, HostPorts: []Port{{8080, TCP}}, Group: "service:web",
			RequiredAttributes: []Attribute{{Name: "ecs.os-type", Value: "linux"}},
			Constraints:        []Constraint{distinct, memberOf("attribute:ecs.instance-type =~ t2.* and runningTasksCount < 4")},
			Strategies:         []Strategy{{Spread, "attribute:ecs.availability-zone"}, {Spread, FieldInstanceID}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(2, 2))
			for b.Loop() {
				placed, failed := Place(cluster, bc.req, 100, rng)
				if len(placed) != 100 {
					b.Fatalf("placed %d, failures %v", len(placed), failed[:1])
				}
			}
		})
	}
}
