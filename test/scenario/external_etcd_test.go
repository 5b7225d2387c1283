package scenario

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/store/storetest"
)

// TestServerOnExternalEtcd runs `berth server --etcd-endpoints` against
// Debian's etcd-server, restarts it, and finds its state there.
func TestServerOnExternalEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and the binary")
	}
	endpoints, _ := storetest.StartExternalEtcd(t)
	dir := t.TempDir()
	flag := "--etcd-endpoints=" + strings.Join(endpoints, ",")
	p := berthtest.StartProcess(t, "server", dir, nil, flag)
	c := ecs.NewFromConfig(p.AWSConfig())
	if _, err := c.CreateCluster(ctx(t), &ecs.CreateClusterInput{ClusterName: aws.String("on-etcd")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterTaskDefinition(ctx(t), webTaskDef("on-etcd")); err != nil {
		t.Fatal(err)
	}
	p.Kill9()
	// A second server on the same etcd (and another data directory, with
	// the same credentials) sees the state.
	env := []string{"BERTH_ACCESS_KEY_ID=" + p.Creds.AccessKeyID, "BERTH_SECRET_ACCESS_KEY=" + p.Creds.SecretAccessKey}
	p2 := berthtest.StartProcess(t, "server", t.TempDir(), env, flag)
	c2 := ecs.NewFromConfig(p2.AWSConfig())
	d, err := c2.DescribeClusters(ctx(t), &ecs.DescribeClustersInput{Clusters: []string{"on-etcd"}})
	if err != nil || len(d.Clusters) != 1 {
		t.Fatalf("cluster not found on the external etcd: %v %+v", err, d)
	}
	if _, err := c2.DescribeTaskDefinition(ctx(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("on-etcd:1")}); err != nil {
		t.Fatal(err)
	}
}
