package ecs

import (
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/capacityprovider"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
)

func asgARN(pool string) string {
	return "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:0b6d3f9a-1c2e-4f5e-9a7b-1c2d3e4f5a6b:autoScalingGroupName/" + pool
}

func createProvider(t *testing.T, s *Service, name, pool string) {
	t.Helper()
	if _, err := s.CreateCapacityProvider(t.Context(), &ecsapi.CreateCapacityProviderRequest{
		Name: ptr(name), AutoScalingGroupProvider: &ecsapi.AutoScalingGroupProvider{AutoScalingGroupArn: ptr(asgARN(pool))},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestCreateCapacityProviderValidation(t *testing.T) {
	s, _ := newTestService(t)
	createProvider(t, s, "blue", "blue-pool")
	asg := func(a string) *ecsapi.AutoScalingGroupProvider {
		return &ecsapi.AutoScalingGroupProvider{AutoScalingGroupArn: ptr(a)}
	}
	enabled := asg(asgARN("x"))
	enabled.ManagedScaling = &ecsapi.ManagedScaling{Status: ptr(ecsapi.ManagedScalingStatusEnabled)}
	mtp := asg(asgARN("x"))
	mtp.ManagedTerminationProtection = ptr(ecsapi.ManagedTerminationProtectionEnabled)
	md := asg(asgARN("x"))
	md.ManagedDraining = ptr(ecsapi.ManagedDrainingEnabled)
	steps := asg(asgARN("x"))
	steps.ManagedScaling = &ecsapi.ManagedScaling{MinimumScalingStepSize: ptr(int32(20)), MaximumScalingStepSize: ptr(int32(10))}
	for _, c := range []struct {
		name, wantCode, wantMsg string
		in                      ecsapi.CreateCapacityProviderRequest
	}{
		{"reserved prefix", ecsapi.ErrInvalidParameterException, `can't be prefixed with "aws", "ecs", or "fargate"`,
			ecsapi.CreateCapacityProviderRequest{Name: ptr("fargate-x"), AutoScalingGroupProvider: asg(asgARN("x"))}},
		{"bad characters", ecsapi.ErrInvalidParameterException, "Up to 255 letters",
			ecsapi.CreateCapacityProviderRequest{Name: ptr("a b"), AutoScalingGroupProvider: asg(asgARN("x"))}},
		{"no group", ecsapi.ErrInvalidParameterException, "autoScalingGroupProvider must be specified",
			ecsapi.CreateCapacityProviderRequest{Name: ptr("x")}},
		{"bad ARN", ecsapi.ErrInvalidParameterException, "Auto Scaling group ARN is invalid",
			ecsapi.CreateCapacityProviderRequest{Name: ptr("x"), AutoScalingGroupProvider: asg("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x")}},
		{"other region", ecsapi.ErrInvalidParameterException, "this Berth is region us-east-1",
			ecsapi.CreateCapacityProviderRequest{Name: ptr("x"), AutoScalingGroupProvider: asg(strings.Replace(asgARN("x"), "us-east-1", "eu-west-1", 1))}},
		{"managed scaling", ecsapi.ErrInvalidParameterException, "Managed scaling is not available on Berth",
			ecsapi.CreateCapacityProviderRequest{Name: ptr("x"), AutoScalingGroupProvider: enabled}},
		{"termination protection", ecsapi.ErrInvalidParameterException, "Managed termination protection",
			ecsapi.CreateCapacityProviderRequest{Name: ptr("x"), AutoScalingGroupProvider: mtp}},
		{"managed draining", ecsapi.ErrInvalidParameterException, "Managed draining is not available",
			ecsapi.CreateCapacityProviderRequest{Name: ptr("x"), AutoScalingGroupProvider: md}},
		{"step sizes", ecsapi.ErrInvalidParameterException, "minimum scaling step size",
			ecsapi.CreateCapacityProviderRequest{Name: ptr("x"), AutoScalingGroupProvider: steps}},
		{"managed instances", ecsapi.ErrInvalidParameterException, "Managed Instances",
			ecsapi.CreateCapacityProviderRequest{Name: ptr("x"), ManagedInstancesProvider: &ecsapi.CreateManagedInstancesProviderConfiguration{}}},
		{"name taken", ecsapi.ErrClientException, "already exists",
			ecsapi.CreateCapacityProviderRequest{Name: ptr("blue"), AutoScalingGroupProvider: asg(asgARN("other"))}},
		{"group taken", ecsapi.ErrClientException, "already being used by another capacity provider",
			ecsapi.CreateCapacityProviderRequest{Name: ptr("blue2"), AutoScalingGroupProvider: asg(asgARN("blue-pool"))}},
	} {
		_, err := s.CreateCapacityProvider(t.Context(), &c.in)
		we := MapError(err)
		if err == nil || we.Code != c.wantCode || !strings.Contains(we.Message, c.wantMsg) {
			t.Errorf("%s: got %v (%v), want %s %q", c.name, err, we, c.wantCode, c.wantMsg)
		}
	}
	// Nothing was made by the refused calls.
	out, err := s.DescribeCapacityProviders(t.Context(), &ecsapi.DescribeCapacityProvidersRequest{})
	if err != nil || len(out.CapacityProviders) != 3 {
		t.Fatalf("describe: %v %+v", err, out)
	}
	p := out.CapacityProviders[2]
	ag := p.AutoScalingGroupProvider
	if deref(p.Name) != "blue" || deref(p.Type) != ecsapi.CapacityProviderTypeEc2Autoscaling || deref(p.Status) != ecsapi.CapacityProviderStatusActive ||
		deref(ag.ManagedScaling.Status) != ecsapi.ManagedScalingStatusDisabled || deref(ag.ManagedScaling.TargetCapacity) != 100 ||
		deref(ag.ManagedTerminationProtection) != ecsapi.ManagedTerminationProtectionDisabled || deref(ag.ManagedDraining) != ecsapi.ManagedDrainingDisabled ||
		deref(p.UpdateStatus) != ecsapi.CapacityProviderUpdateStatusCreateComplete {
		t.Fatalf("provider %+v %+v", p, ag)
	}
}

func TestDescribeCapacityProvidersPagesAndTags(t *testing.T) {
	s, _ := newTestService(t)
	for _, n := range []string{"c", "a", "b"} {
		createProvider(t, s, n, "pool-"+n)
	}
	arnA := s.providerARN("a")
	if _, err := s.TagResource(t.Context(), &ecsapi.TagResourceRequest{ResourceArn: ptr(arnA), Tags: []ecsapi.Tag{{Key: ptr("team"), Value: ptr("x")}}}); err != nil {
		t.Fatal(err)
	}
	var names []string
	var tok *string
	for range 10 {
		out, err := s.DescribeCapacityProviders(t.Context(), &ecsapi.DescribeCapacityProvidersRequest{MaxResults: ptr(int32(2)), NextToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range out.CapacityProviders {
			names = append(names, deref(p.Name))
			if p.Tags != nil && !managedProvider(deref(p.Name)) {
				t.Errorf("tags without include TAGS: %+v", p)
			}
		}
		if tok = out.NextToken; tok == nil {
			break
		}
	}
	if strings.Join(names, ",") != "FARGATE,FARGATE_SPOT,a,b,c" {
		t.Fatalf("pages: %v", names)
	}
	out, err := s.DescribeCapacityProviders(t.Context(), &ecsapi.DescribeCapacityProvidersRequest{
		CapacityProviders: []string{arnA, "nope"}, Include: []ecsapi.CapacityProviderField{ecsapi.CapacityProviderFieldTags}})
	if err != nil || len(out.CapacityProviders) != 1 || len(out.CapacityProviders[0].Tags) != 1 ||
		len(out.Failures) != 1 || deref(out.Failures[0].Reason) != "MISSING" || deref(out.Failures[0].Arn) != s.providerARN("nope") {
		t.Fatalf("by name: %v %+v", err, out)
	}
	if _, err := s.DescribeCapacityProviders(t.Context(), &ecsapi.DescribeCapacityProvidersRequest{MaxResults: ptr(int32(11))}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("maxResults 11: %v", err)
	}
	// cluster: only the cluster's providers.
	if _, err := s.PutClusterCapacityProviders(t.Context(), &ecsapi.PutClusterCapacityProvidersRequest{Cluster: ptr("c1"),
		CapacityProviders: []string{"b", "FARGATE_SPOT"}, DefaultCapacityProviderStrategy: []ecsapi.CapacityProviderStrategyItem{}}); err != nil {
		t.Fatal(err)
	}
	out, err = s.DescribeCapacityProviders(t.Context(), &ecsapi.DescribeCapacityProvidersRequest{Cluster: ptr("c1")})
	if err != nil || len(out.CapacityProviders) != 2 || deref(out.CapacityProviders[0].Name) != "FARGATE_SPOT" || deref(out.CapacityProviders[1].Name) != "b" {
		t.Fatalf("cluster c1: %v %+v", err, out)
	}
}

func TestCapacityProviderAssociationAndDeletion(t *testing.T) {
	s, _ := newTestService(t)
	ctx := t.Context()
	createProvider(t, s, "blue", "blue")
	put := func(cluster string, providers ...string) error {
		_, err := s.PutClusterCapacityProviders(ctx, &ecsapi.PutClusterCapacityProvidersRequest{
			Cluster: ptr(cluster), CapacityProviders: providers, DefaultCapacityProviderStrategy: []ecsapi.CapacityProviderStrategyItem{}})
		return err
	}
	if err := put("c1", "nope"); err == nil || !strings.Contains(errs.MessageOf(err), "not in an ACTIVE state") {
		t.Fatalf("unknown provider: %v", err)
	}
	if err := put("c1", "blue", "FARGATE"); err != nil {
		t.Fatal(err)
	}
	// One cluster per Auto Scaling group provider.
	if _, err := s.CreateCluster(ctx, &ecsapi.CreateClusterRequest{ClusterName: ptr("c2"), CapacityProviders: []string{"blue"}}); err == nil {
		t.Fatal("second cluster associated blue")
	}
	// ECS refuses a strategy mixing Fargate and ASG providers.
	_, err := s.PutClusterCapacityProviders(ctx, &ecsapi.PutClusterCapacityProvidersRequest{Cluster: ptr("c1"), CapacityProviders: []string{"blue", "FARGATE"},
		DefaultCapacityProviderStrategy: []ecsapi.CapacityProviderStrategyItem{{CapacityProvider: ptr("blue"), Weight: ptr(int32(1))}, {CapacityProvider: ptr("FARGATE"), Weight: ptr(int32(1))}}})
	if err == nil || !strings.Contains(errs.MessageOf(err), "cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers") {
		t.Fatalf("mixed: %v", err)
	}
	// Associated: the delete fails as ECS's does, in updateStatus.
	out, err := s.DeleteCapacityProvider(ctx, &ecsapi.DeleteCapacityProviderRequest{CapacityProvider: ptr("blue")})
	if err != nil || deref(out.CapacityProvider.Status) != ecsapi.CapacityProviderStatusActive ||
		deref(out.CapacityProvider.UpdateStatus) != ecsapi.CapacityProviderUpdateStatusDeleteFailed ||
		deref(out.CapacityProvider.UpdateStatusReason) != "The capacity provider cannot be deleted because it is associated with cluster: c1. Remove the capacity provider from the cluster and try again." {
		t.Fatalf("delete while associated: %v %+v", err, out)
	}
	if err := put("c1", "FARGATE"); err != nil {
		t.Fatal(err)
	}
	out, err = s.DeleteCapacityProvider(ctx, &ecsapi.DeleteCapacityProviderRequest{CapacityProvider: ptr(s.providerARN("blue"))})
	if err != nil || deref(out.CapacityProvider.Status) != ecsapi.CapacityProviderStatusInactive ||
		deref(out.CapacityProvider.UpdateStatus) != ecsapi.CapacityProviderUpdateStatusDeleteComplete {
		t.Fatalf("delete: %v %+v", err, out)
	}
	d, _ := s.DescribeCapacityProviders(ctx, &ecsapi.DescribeCapacityProvidersRequest{CapacityProviders: []string{"blue"}})
	if len(d.CapacityProviders) != 1 || deref(d.CapacityProviders[0].Status) != ecsapi.CapacityProviderStatusInactive {
		t.Fatalf("describe deleted: %+v", d)
	}
	if err := put("c1", "blue"); err == nil {
		t.Fatal("associated an INACTIVE provider")
	}
	if _, err := s.DeleteCapacityProvider(ctx, &ecsapi.DeleteCapacityProviderRequest{CapacityProvider: ptr("FARGATE")}); err == nil {
		t.Fatal("deleted FARGATE")
	}
	// The group is free again, and the name.
	createProvider(t, s, "blue", "blue")
	// Past the retention the INACTIVE provider is gone.
	createProvider(t, s, "green", "green")
	if _, err := s.DeleteCapacityProvider(ctx, &ecsapi.DeleteCapacityProviderRequest{CapacityProvider: ptr("green")}); err != nil {
		t.Fatal(err)
	}
	later := s.now().Add(providerRetention + time.Minute)
	s.SetClock(func() time.Time { return later })
	d, _ = s.DescribeCapacityProviders(ctx, &ecsapi.DescribeCapacityProvidersRequest{CapacityProviders: []string{"green"}})
	if len(d.Failures) != 1 {
		t.Fatalf("green after retention: %+v", d)
	}
}

// TestRunTaskOnPools: a RunTask with an ASG strategy puts each provider's
// share (ECS's base/weight split) on its pool's instances, names the
// provider on the task, and fails a provider whose pool has no instance
// with ECS's reason.
func TestRunTaskOnPools(t *testing.T) {
	s, st := newTestService(t)
	ctx := t.Context()
	createProvider(t, s, "blue", "blue")
	createProvider(t, s, "green", "green")
	createProvider(t, s, "empty", "empty")
	pools := map[string]string{"i1": "blue", "i2": "blue", "i3": "green", "i4": ""}
	for id, pool := range pools {
		rec := instanceRecord{ID: id, ARN: s.instanceARN("c1", id), Cluster: "c1", Status: InstanceActive,
			Registered: agentapiResources(4096, 8192, nil, nil), Attributes: map[string]string{}, Version: 1}
		if pool != "" {
			rec.Attributes[capacityprovider.PoolAttribute] = pool
		}
		putJSON(t, st, instanceKey("c1", id), rec)
		putJSON(t, st, keyAgents+id, map[string]any{})
	}
	if _, err := s.PutClusterCapacityProviders(ctx, &ecsapi.PutClusterCapacityProvidersRequest{Cluster: ptr("c1"),
		CapacityProviders: []string{"blue", "green", "empty"}, DefaultCapacityProviderStrategy: []ecsapi.CapacityProviderStrategyItem{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterTaskDefinition(ctx, &ecsapi.RegisterTaskDefinitionRequest{Family: ptr("app"),
		ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: ptr("app"), Image: ptr("busybox"), Memory: ptr(int32(64))}}}); err != nil {
		t.Fatal(err)
	}
	out, err := s.RunTask(ctx, &ecsapi.RunTaskRequest{Cluster: ptr("c1"), TaskDefinition: ptr("app"), Count: ptr(int32(5)),
		CapacityProviderStrategy: []ecsapi.CapacityProviderStrategyItem{
			{CapacityProvider: ptr("blue"), Base: ptr(int32(1)), Weight: ptr(int32(1))},
			{CapacityProvider: ptr("green"), Weight: ptr(int32(1))}},
		PlacementConstraints: []ecsapi.PlacementConstraint{{Type: ptr(ecsapi.PlacementConstraintTypeDistinctInstance)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// blue base 1 then 1:1 of 4: blue 3, green 2. distinctInstance lets
	// blue's two instances take 2 and green's one take 1.
	got := map[string]int{}
	for _, tk := range out.Tasks {
		p := deref(tk.CapacityProviderName)
		got[p]++
		id := deref(tk.ContainerInstanceArn)[strings.LastIndex(deref(tk.ContainerInstanceArn), "/")+1:]
		if pools[id] != p {
			t.Errorf("task of %s on instance %s of pool %q", p, id, pools[id])
		}
	}
	if got["blue"] != 2 || got["green"] != 1 || len(out.Failures) != 2 {
		t.Fatalf("tasks %v failures %+v", got, out.Failures)
	}
	for _, f := range out.Failures {
		if deref(f.Reason) != placement.ReasonDistinctInstance {
			t.Errorf("failure %+v", f)
		}
	}
	out, err = s.RunTask(ctx, &ecsapi.RunTaskRequest{Cluster: ptr("c1"), TaskDefinition: ptr("app"),
		CapacityProviderStrategy: []ecsapi.CapacityProviderStrategyItem{{CapacityProvider: ptr("empty"), Weight: ptr(int32(1))}}})
	if err != nil || len(out.Tasks) != 0 || len(out.Failures) != 1 || deref(out.Failures[0].Reason) != reasonNoPoolInstances {
		t.Fatalf("empty pool: %v %+v", err, out)
	}
	// The instances show their provider.
	di, err := s.DescribeContainerInstances(ctx, &ecsapi.DescribeContainerInstancesRequest{Cluster: ptr("c1"), ContainerInstances: []string{"i1", "i3", "i4"}})
	if err != nil || deref(di.ContainerInstances[0].CapacityProviderName) != "blue" || deref(di.ContainerInstances[1].CapacityProviderName) != "green" ||
		di.ContainerInstances[2].CapacityProviderName != nil {
		t.Fatalf("instances: %v %+v", err, di)
	}
	// A provider with live tasks cannot leave the cluster.
	if _, err := s.PutClusterCapacityProviders(ctx, &ecsapi.PutClusterCapacityProvidersRequest{Cluster: ptr("c1"),
		CapacityProviders: []string{"green", "empty"}, DefaultCapacityProviderStrategy: []ecsapi.CapacityProviderStrategyItem{}}); err == nil {
		t.Fatal("removed blue while its tasks run")
	}
}

// TestServiceStrategyRules: a service takes an ASG strategy (its own or
// the cluster's default) unless it is DAEMON, shows it instead of a launch
// type, changes it only with forceNewDeployment, and cannot move to
// Fargate; an EC2 service can move to an ASG strategy.
func TestServiceStrategyRules(t *testing.T) {
	s, _ := newTestService(t)
	ctx := t.Context()
	createProvider(t, s, "blue", "blue")
	createProvider(t, s, "green", "green")
	item := func(p string, w int32) ecsapi.CapacityProviderStrategyItem {
		return ecsapi.CapacityProviderStrategyItem{CapacityProvider: ptr(p), Weight: ptr(w)}
	}
	if _, err := s.PutClusterCapacityProviders(ctx, &ecsapi.PutClusterCapacityProvidersRequest{Cluster: ptr("c1"),
		CapacityProviders: []string{"blue", "green", "FARGATE"}, DefaultCapacityProviderStrategy: []ecsapi.CapacityProviderStrategyItem{item("blue", 1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterTaskDefinition(ctx, &ecsapi.RegisterTaskDefinitionRequest{Family: ptr("app"),
		ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: ptr("app"), Image: ptr("busybox"), Memory: ptr(int32(64))}}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateService(ctx, &ecsapi.CreateServiceRequest{Cluster: ptr("c1"), ServiceName: ptr("d"), TaskDefinition: ptr("app"),
		SchedulingStrategy: ptr(ecsapi.SchedulingStrategyDaemon)})
	if err == nil || !strings.Contains(errs.MessageOf(err), "not supported when you create a service using the DAEMON scheduling strategy") {
		t.Fatalf("daemon with the default strategy: %v", err)
	}
	if _, err := s.CreateService(ctx, &ecsapi.CreateServiceRequest{Cluster: ptr("c1"), ServiceName: ptr("d"), TaskDefinition: ptr("app"),
		SchedulingStrategy: ptr(ecsapi.SchedulingStrategyDaemon), LaunchType: ptr(ecsapi.LaunchTypeEc2)}); err != nil {
		t.Fatalf("daemon with launch type EC2: %v", err)
	}
	out, err := s.CreateService(ctx, &ecsapi.CreateServiceRequest{Cluster: ptr("c1"), ServiceName: ptr("web"), TaskDefinition: ptr("app"), DesiredCount: ptr(int32(2))})
	if err != nil || out.Service.LaunchType != nil || len(out.Service.CapacityProviderStrategy) != 1 ||
		deref(out.Service.CapacityProviderStrategy[0].CapacityProvider) != "blue" || out.Service.PlatformVersion != nil {
		t.Fatalf("default strategy: %v %+v", err, out)
	}
	up := func(svc string, force bool, items ...ecsapi.CapacityProviderStrategyItem) (*ecsapi.UpdateServiceResponse, error) {
		return s.UpdateService(ctx, &ecsapi.UpdateServiceRequest{Cluster: ptr("c1"), Service: ptr(svc), CapacityProviderStrategy: items, ForceNewDeployment: ptr(force)})
	}
	if _, err := up("web", false, item("blue", 1), item("green", 1)); err == nil || !strings.Contains(errs.MessageOf(err), "you must force a new deployment") {
		t.Fatalf("change without force: %v", err)
	}
	u, err := up("web", true, item("blue", 1), item("green", 1))
	if err != nil || len(u.Service.CapacityProviderStrategy) != 2 || len(u.Service.Deployments) != 2 {
		t.Fatalf("change with force: %v %+v", err, u)
	}
	if _, err := up("web", true, item("FARGATE", 1)); err == nil || !strings.Contains(errs.MessageOf(err), "cannot move a service from Auto Scaling group capacity providers to Fargate") {
		t.Fatalf("to Fargate: %v", err)
	}
	if _, err := up("web", true, item("blue", 1), item("FARGATE", 1)); err == nil || !strings.Contains(errs.MessageOf(err), "mix") {
		t.Fatalf("mixed: %v", err)
	}
	// An EC2 service moves to an ASG strategy.
	if _, err := s.CreateService(ctx, &ecsapi.CreateServiceRequest{Cluster: ptr("c1"), ServiceName: ptr("ec2"), TaskDefinition: ptr("app"),
		LaunchType: ptr(ecsapi.LaunchTypeEc2), DesiredCount: ptr(int32(0))}); err != nil {
		t.Fatal(err)
	}
	u, err = up("ec2", true, item("green", 1))
	if err != nil || u.Service.LaunchType != nil || deref(u.Service.CapacityProviderStrategy[0].CapacityProvider) != "green" {
		t.Fatalf("EC2 to ASG: %v %+v", err, u)
	}
	// A provider a service's strategy names stays in the cluster.
	if _, err := s.PutClusterCapacityProviders(ctx, &ecsapi.PutClusterCapacityProvidersRequest{Cluster: ptr("c1"),
		CapacityProviders: []string{"blue", "FARGATE"}, DefaultCapacityProviderStrategy: []ecsapi.CapacityProviderStrategyItem{}}); err == nil ||
		!strings.Contains(errs.MessageOf(err), "in use and cannot be removed: green") {
		t.Fatalf("remove green: %v", err)
	}
}
