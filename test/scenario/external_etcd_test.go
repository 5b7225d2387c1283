package scenario

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

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

// TestSecondServerOnSameEtcdExits: the registry's blobs are on the owning
// server's disk, so a second `berth server` on the same etcd (another
// data directory) exits with an error naming the server that holds the
// store, while the first keeps serving.
func TestSecondServerOnSameEtcdExits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and the binary")
	}
	endpoints, _ := storetest.StartExternalEtcd(t)
	flag := "--etcd-endpoints=" + strings.Join(endpoints, ",")
	p := berthtest.StartProcess(t, "server", t.TempDir(), nil, flag)
	env := []string{"BERTH_ACCESS_KEY_ID=" + p.Creds.AccessKeyID, "BERTH_SECRET_ACCESS_KEY=" + p.Creds.SecretAccessKey}
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, berthtest.Binary(t), "server", "--listen", berthtest.FreeAddr(t), "--data-dir", t.TempDir(), flag)
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil || c.Err() != nil {
		t.Fatalf("second server did not exit with an error: %v\n%s", err, out)
	}
	for _, want := range []string{"owned by another Berth server", "address " + strings.TrimPrefix(p.Endpoint, "http://"), "one store serves one server"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := ecs.NewFromConfig(p.AWSConfig()).ListClusters(ctx(t), &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("owner stopped serving: %v", err)
	}
}
