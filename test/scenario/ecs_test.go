// Package scenario drives a real Berth through the AWS SDK for Go v2 and
// the AWS CLIs, the way users hit it.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/berthtest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// apiCode returns the AWS error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected %s, got success", code)
	}
	if got := apiCode(err); got != code {
		t.Fatalf("expected %s, got %s (%v)", code, got, err)
	}
}

func TestClusterLifecycle(t *testing.T) {
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := ctx(t)

	out, err := c.CreateCluster(cx, &ecs.CreateClusterInput{
		ClusterName:            aws.String("web"),
		Tags:                   []types.Tag{{Key: aws.String("team"), Value: aws.String("blue")}},
		Settings:               []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("enabled")}},
		ServiceConnectDefaults: &types.ClusterServiceConnectDefaultsRequest{Namespace: aws.String("web.local")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := out.Cluster
	if got, want := aws.ToString(cl.ClusterArn), "arn:aws:ecs:us-east-1:000000000000:cluster/web"; got != want {
		t.Fatalf("arn %s, want %s", got, want)
	}
	if aws.ToString(cl.Status) != "ACTIVE" || cl.RunningTasksCount != 0 || len(cl.Tags) != 1 {
		t.Fatalf("unexpected cluster %+v", cl)
	}
	// The default namespace is created in Cloud Map (as ECS does) and
	// shown as its ARN.
	if !strings.HasPrefix(aws.ToString(cl.ServiceConnectDefaults.Namespace), "arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-") {
		t.Fatalf("service connect defaults not kept: %+v", cl.ServiceConnectDefaults)
	}

	// Creating it again returns the same cluster, as ECS does.
	again, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("web")})
	if err != nil || aws.ToString(again.Cluster.ClusterArn) != aws.ToString(cl.ClusterArn) {
		t.Fatalf("re-create: %v %+v", err, again)
	}

	// A name-less create makes "default".
	def, err := c.CreateCluster(cx, &ecs.CreateClusterInput{})
	if err != nil || aws.ToString(def.Cluster.ClusterName) != "default" {
		t.Fatalf("default cluster: %v", err)
	}

	// Describe: by name and by ARN, includes, and MISSING failures.
	d, err := c.DescribeClusters(cx, &ecs.DescribeClustersInput{
		Clusters: []string{"web", aws.ToString(cl.ClusterArn), "nope"},
		Include:  []types.ClusterField{types.ClusterFieldTags, types.ClusterFieldSettings},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Clusters) != 2 || len(d.Failures) != 1 {
		t.Fatalf("describe: %d clusters, %d failures", len(d.Clusters), len(d.Failures))
	}
	if aws.ToString(d.Failures[0].Reason) != "MISSING" || aws.ToString(d.Failures[0].Arn) != "arn:aws:ecs:us-east-1:000000000000:cluster/nope" {
		t.Fatalf("failure %+v", d.Failures[0])
	}
	if len(d.Clusters[0].Settings) != 1 || aws.ToString(d.Clusters[0].Settings[0].Value) != "enabled" || len(d.Clusters[0].Tags) != 1 {
		t.Fatalf("includes not honoured: %+v", d.Clusters[0])
	}
	plain, _ := c.DescribeClusters(cx, &ecs.DescribeClustersInput{Clusters: []string{"web"}})
	if len(plain.Clusters[0].Settings) != 0 || len(plain.Clusters[0].Tags) != 0 {
		t.Fatalf("settings/tags returned without include: %+v", plain.Clusters[0])
	}
	// Describe with no clusters describes "default".
	dd, err := c.DescribeClusters(cx, &ecs.DescribeClustersInput{})
	if err != nil || len(dd.Clusters) != 1 || aws.ToString(dd.Clusters[0].ClusterName) != "default" {
		t.Fatalf("describe default: %v %+v", err, dd)
	}

	// Update settings and configuration.
	up, err := c.UpdateClusterSettings(cx, &ecs.UpdateClusterSettingsInput{
		Cluster:  aws.String("web"),
		Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("disabled")}},
	})
	if err != nil || aws.ToString(up.Cluster.Settings[0].Value) != "disabled" {
		t.Fatalf("update settings: %v %+v", err, up)
	}
	_, err = c.UpdateClusterSettings(cx, &ecs.UpdateClusterSettingsInput{
		Cluster:  aws.String("web"),
		Settings: []types.ClusterSetting{{Name: types.ClusterSettingNameContainerInsights, Value: aws.String("sometimes")}},
	})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.UpdateCluster(cx, &ecs.UpdateClusterInput{Cluster: aws.String("ghost")})
	wantCode(t, err, "ClusterNotFoundException")

	// Tags through the tagging API.
	arn := aws.ToString(cl.ClusterArn)
	if _, err := c.TagResource(cx, &ecs.TagResourceInput{ResourceArn: &arn, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("dev")}, {Key: aws.String("team"), Value: aws.String("red")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResource(cx, &ecs.UntagResourceInput{ResourceArn: &arn, TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListTagsForResource(cx, &ecs.ListTagsForResourceInput{ResourceArn: &arn})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "red" {
		t.Fatalf("tags: %v %+v", err, tags)
	}
	_, err = c.TagResource(cx, &ecs.TagResourceInput{ResourceArn: &arn, Tags: []types.Tag{{Key: aws.String("aws:reserved"), Value: aws.String("x")}}})
	wantCode(t, err, "InvalidParameterException")

	// List with pagination: 25 more clusters, pages of 10.
	for i := 0; i < 25; i++ {
		if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String(fmt.Sprintf("c%02d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	var all []string
	p := ecs.NewListClustersPaginator(c, &ecs.ListClustersInput{MaxResults: aws.Int32(10)})
	pages := 0
	for p.HasMorePages() {
		pg, err := p.NextPage(cx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, pg.ClusterArns...)
	}
	if len(all) != 27 || pages != 3 {
		t.Fatalf("listed %d clusters in %d pages", len(all), pages)
	}
	if !slices.IsSorted(all) {
		t.Fatalf("list not sorted: %v", all)
	}
	_, err = c.ListClusters(cx, &ecs.ListClustersInput{NextToken: aws.String("garbage")})
	wantCode(t, err, "InvalidParameterException")

	// Delete: INACTIVE, still describable, no longer listed; re-create works.
	del, err := c.DeleteCluster(cx, &ecs.DeleteClusterInput{Cluster: aws.String("web")})
	if err != nil || aws.ToString(del.Cluster.Status) != "INACTIVE" {
		t.Fatalf("delete: %v %+v", err, del)
	}
	_, err = c.DeleteCluster(cx, &ecs.DeleteClusterInput{Cluster: aws.String("web")})
	wantCode(t, err, "ClusterNotFoundException")
	d, _ = c.DescribeClusters(cx, &ecs.DescribeClustersInput{Clusters: []string{"web"}})
	if len(d.Clusters) != 1 || aws.ToString(d.Clusters[0].Status) != "INACTIVE" {
		t.Fatalf("deleted cluster: %+v", d)
	}
	l, _ := c.ListClusters(cx, &ecs.ListClustersInput{})
	if slices.Contains(l.ClusterArns, arn) {
		t.Fatal("INACTIVE cluster listed")
	}
	re, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("web")})
	if err != nil || aws.ToString(re.Cluster.Status) != "ACTIVE" || len(re.Cluster.Tags) != 0 {
		t.Fatalf("re-create after delete: %v %+v", err, re)
	}
}

func TestDeleteClusterRefusedWhileInUse(t *testing.T) {
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := ctx(t)
	if _, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("busy")}); err != nil {
		t.Fatal(err)
	}
	// Later issues write these records; write them the way they will.
	st := s.Daemon.Store()
	cases := []struct {
		key, value, code string
	}{
		{"/berth/ecs/instances/busy/i-1", `{"status":"ACTIVE"}`, "ClusterContainsContainerInstancesException"},
		{"/berth/ecs/services/busy/web", `{"status":"ACTIVE"}`, "ClusterContainsServicesException"},
		{"/berth/ecs/tasks/busy/t-1", `{"lastStatus":"RUNNING"}`, "ClusterContainsTasksException"},
	}
	for _, tc := range cases {
		if _, err := st.Txn(cx, nil, putOp(tc.key, tc.value)); err != nil {
			t.Fatal(err)
		}
		_, err := c.DeleteCluster(cx, &ecs.DeleteClusterInput{Cluster: aws.String("busy")})
		wantCode(t, err, tc.code)
		if _, err := st.Txn(cx, nil, deleteOp(tc.key)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DeleteCluster(cx, &ecs.DeleteClusterInput{Cluster: aws.String("busy")}); err != nil {
		t.Fatal(err)
	}
}

func TestAccountSettings(t *testing.T) {
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := ctx(t)

	eff, err := c.ListAccountSettings(cx, &ecs.ListAccountSettingsInput{EffectiveSettings: true, Name: types.SettingNameContainerInsights})
	if err != nil || len(eff.Settings) != 1 || aws.ToString(eff.Settings[0].Value) != "disabled" || eff.Settings[0].Type != types.SettingTypeAwsManaged {
		t.Fatalf("effective default: %v %+v", err, eff)
	}
	if _, err := c.PutAccountSettingDefault(cx, &ecs.PutAccountSettingDefaultInput{Name: types.SettingNameContainerInsights, Value: aws.String("enabled")}); err != nil {
		t.Fatal(err)
	}
	// New clusters take the account's containerInsights setting.
	cl, err := c.CreateCluster(cx, &ecs.CreateClusterInput{ClusterName: aws.String("insightful")})
	if err != nil {
		t.Fatal(err)
	}
	if len(cl.Cluster.Settings) != 1 || aws.ToString(cl.Cluster.Settings[0].Value) != "enabled" {
		t.Fatalf("cluster did not take the account default: %+v", cl.Cluster.Settings)
	}
	put, err := c.PutAccountSetting(cx, &ecs.PutAccountSettingInput{Name: types.SettingNameAwsvpcTrunking, Value: aws.String("enabled")})
	if err != nil || aws.ToString(put.Setting.PrincipalArn) != "arn:aws:iam::000000000000:root" {
		t.Fatalf("put: %v %+v", err, put)
	}
	own, err := c.ListAccountSettings(cx, &ecs.ListAccountSettingsInput{})
	if err != nil || len(own.Settings) != 1 || own.Settings[0].Name != types.SettingNameAwsvpcTrunking {
		t.Fatalf("own settings: %v %+v", err, own)
	}
	_, err = c.PutAccountSetting(cx, &ecs.PutAccountSettingInput{Name: types.SettingNameAwsvpcTrunking, Value: aws.String("maybe")})
	wantCode(t, err, "InvalidParameterException")
	del, err := c.DeleteAccountSetting(cx, &ecs.DeleteAccountSettingInput{Name: types.SettingNameAwsvpcTrunking})
	if err != nil || aws.ToString(del.Setting.Value) != "enabled" {
		t.Fatalf("delete: %v", err)
	}
	own, _ = c.ListAccountSettings(cx, &ecs.ListAccountSettingsInput{})
	if len(own.Settings) != 0 {
		t.Fatalf("setting not deleted: %+v", own.Settings)
	}
	// Effective settings paginate (10 per page at most).
	var n int
	p := ecs.NewListAccountSettingsPaginator(c, &ecs.ListAccountSettingsInput{EffectiveSettings: true, MaxResults: 4})
	for p.HasMorePages() {
		pg, err := p.NextPage(cx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(pg.Settings)
	}
	if n != 11 {
		t.Fatalf("effective settings: %d", n)
	}
}
