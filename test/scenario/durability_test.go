package scenario

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/berthtest"
)

func runBinary(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(berthtest.Binary(t), args...).CombinedOutput()
	return string(out), err
}

// TestKill9LosesNothingAcknowledged writes through the binary from several
// clients, kills it with SIGKILL right after the last acknowledgement,
// restarts it on the same data directory and finds every write.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	dir := t.TempDir()
	// Throttling off: RegisterTaskDefinition's ECS bucket (20, then 1/s)
	// would refuse most of this burst, and this test is about durability.
	p := berthtest.StartProcess(t, "up", dir, nil, "--throttle=false")
	c := ecs.NewFromConfig(p.AWSConfig())
	cx := ctx(t)

	var mu sync.Mutex
	var acked []string
	var ackedTD []string
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				name := fmt.Sprintf("k9-%d-%d", w, i)
				if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err == nil {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
				in := webTaskDef(fmt.Sprintf("k9fam-%d", w))
				if r, err := c.RegisterTaskDefinition(cx, in); err == nil {
					mu.Lock()
					ackedTD = append(ackedTD, aws.ToString(r.TaskDefinition.TaskDefinitionArn))
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	p.Kill9()
	if len(acked) != 60 || len(ackedTD) != 60 {
		t.Fatalf("only %d/%d writes acknowledged before the kill", len(acked), len(ackedTD))
	}

	p2 := berthtest.StartProcess(t, "up", dir, nil)
	c2 := ecs.NewFromConfig(p2.AWSConfig())
	for i := 0; i < len(acked); i += 100 {
		d, err := c2.DescribeClusters(cx, &ecs.DescribeClustersInput{Clusters: acked[i:min(i+100, len(acked))]})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Failures) > 0 {
			t.Fatalf("lost acknowledged clusters: %+v", d.Failures)
		}
	}
	for _, a := range ackedTD {
		if _, err := c2.DescribeTaskDefinition(cx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(a)}); err != nil {
			t.Fatalf("lost acknowledged task definition %s: %v", a, err)
		}
	}
	if !strings.Contains(p2.Output.String(), "listening") {
		t.Log(p2.Output.String())
	}
}
