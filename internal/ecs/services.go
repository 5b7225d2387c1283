package ecs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/lazyre"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
)

// Services: CreateService, UpdateService, DeleteService, DescribeServices,
// ListServices. The API writes a service's desired state and its
// deployments; the service controller (internal/ecs/servicectl) acts on them
// and writes back counts, rollout states and events. docs/services.md.
//
// Store layout:
//
//	/berth/ecs/services/<cluster>/<name>  serviceRecord

func (s *Service) serviceARN(cluster, name string) string {
	return s.arns.ECS("service/" + cluster + "/" + name)
}

var serviceNameRE = lazyre.New(`^[a-zA-Z0-9_-]{1,255}$`)

// Errors of the service APIs.
func errServiceNotFound() error {
	return wireErr(errs.NotFound, "ecs.service_not_found", ecsapi.ErrServiceNotFoundException, "Service not found.")
}

func errServiceNotActive() error {
	return wireErr(errs.Conflict, "ecs.service_not_active", ecsapi.ErrServiceNotActiveException, "Service was not ACTIVE.")
}

func invalid(format string, args ...any) error {
	return errs.R(errs.Invalid, reasonInvalidParameter, format, args...)
}

// serviceRef resolves a service reference (name or ARN) in cluster.
func serviceRef(cluster, ref string) (string, bool) {
	ref = strings.TrimSpace(ref)
	if !arn.IsARN(ref) {
		return ref, serviceNameRE.MatchString(ref)
	}
	a, err := arn.Parse(ref)
	if err != nil || a.Service != "ecs" || a.ResourceType() != "service" {
		return "", false
	}
	rest := a.ResourceID()
	if c, name, found := strings.Cut(rest, "/"); found {
		return name, c == cluster && serviceNameRE.MatchString(name)
	}
	return rest, serviceNameRE.MatchString(rest)
}

// healthChecked reports whether an essential container of td has a health
// check: then a task is healthy only once HEALTHY.
func healthChecked(td *ecsapi.TaskDefinition) bool {
	for _, c := range td.ContainerDefinitions {
		if (c.Essential == nil || *c.Essential) && c.HealthCheck != nil {
			return true
		}
	}
	return false
}

func checkPlacement(daemon bool, cons []ecsapi.PlacementConstraint, strat []ecsapi.PlacementStrategy) error {
	if _, err := placement.ConstraintsFromWire(cons); err != nil {
		return err
	}
	if len(cons) > placement.MaxConstraints {
		return invalid("The number of placement constraints exceeds the limit of %d.", placement.MaxConstraints)
	}
	if daemon && len(strat) > 0 {
		return invalid("Placement strategies are not supported with DAEMON scheduling strategy.")
	}
	if _, err := placement.StrategiesFromWire(strat); err != nil {
		return err
	}
	return nil
}

// deploymentBounds applies ECS's defaults and checks.
func deploymentBounds(daemon bool, dc *ecsapi.DeploymentConfiguration, curMin, curMax int32) (int32, int32, *ecsapi.DeploymentCircuitBreaker, error) {
	minP, maxP := curMin, curMax
	var cb *ecsapi.DeploymentCircuitBreaker
	if dc != nil {
		if dc.MinimumHealthyPercent != nil {
			minP = *dc.MinimumHealthyPercent
		}
		if dc.MaximumPercent != nil {
			maxP = *dc.MaximumPercent
		}
		cb = dc.DeploymentCircuitBreaker
		if dc.Strategy != nil && *dc.Strategy != "ROLLING" {
			return 0, 0, nil, invalid("Berth supports the ROLLING deployment strategy only.")
		}
	}
	if minP < 0 || minP > 100 {
		return 0, 0, nil, invalid("minimumHealthyPercent must be between 0 and 100.")
	}
	if maxP < 100 && !daemon {
		return 0, 0, nil, invalid("maximumPercent must be at least 100 for a service with the REPLICA scheduling strategy.")
	}
	if maxP <= 0 || maxP < minP {
		return 0, 0, nil, invalid("maximumPercent must be greater than minimumHealthyPercent.")
	}
	if cb != nil && (cb.Enable == nil || cb.Rollback == nil) {
		return 0, 0, nil, invalid("deploymentCircuitBreaker needs enable and rollback.")
	}
	return minP, maxP, cb, nil
}

func unsupportedServiceFeatures(lbs []ecsapi.LoadBalancer, regs []ecsapi.ServiceRegistry, sc *ecsapi.ServiceConnectConfiguration, cps []ecsapi.CapacityProviderStrategyItem, vols []ecsapi.ServiceVolumeConfiguration) error {
	switch {
	case len(lbs) > 0:
		return invalid("Berth does not support load balancers for services yet.")
	case len(regs) > 0:
		return invalid("Berth does not support service registries yet.")
	case len(vols) > 0:
		return invalid("Berth does not support service-managed volumes yet.")
	}
	return nil
}

func serviceRequestHash(in *ecsapi.CreateServiceRequest) string {
	c := *in
	c.ClientToken = nil
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CreateService creates a service and its first deployment.
func (s *Service) CreateService(ctx context.Context, in *ecsapi.CreateServiceRequest) (*ecsapi.CreateServiceResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	name := deref(in.ServiceName)
	if !serviceNameRE.MatchString(name) {
		return nil, invalid("Service name may only contain letters, numbers, hyphens and underscores, and be at most 255 characters.")
	}
	c, clusterRev, err := s.getCluster(ctx, cluster, false)
	if err != nil {
		return nil, err
	}
	if err := checkLaunchType(in.LaunchType); err != nil {
		return nil, err
	}
	if in.DeploymentController != nil && deref(in.DeploymentController.Type) != ecsapi.DeploymentControllerTypeEcs {
		return nil, invalid("Berth supports the ECS deployment controller only.")
	}
	if err := unsupportedServiceFeatures(nil, nil, in.ServiceConnectConfiguration, in.CapacityProviderStrategy, in.VolumeConfigurations); err != nil {
		return nil, err
	}
	sched := string(deref(in.SchedulingStrategy))
	if sched == "" {
		sched = deploy.Replica
	}
	daemon := sched == deploy.Daemon
	desired := int32(0)
	switch {
	case daemon && in.DesiredCount != nil:
		return nil, invalid("The daemon scheduling strategy does not support a desired count for services.")
	case !daemon && in.DesiredCount == nil:
		return nil, invalid("The desiredCount parameter is required for a service with the REPLICA scheduling strategy.")
	case !daemon:
		desired = *in.DesiredCount
		if desired < 0 {
			return nil, invalid("desiredCount must not be negative.")
		}
	}
	defMin, defMax := int32(100), int32(200)
	if daemon {
		defMin, defMax = 0, 100
	}
	minP, maxP, cb, err := deploymentBounds(daemon, in.DeploymentConfiguration, defMin, defMax)
	if err != nil {
		return nil, err
	}
	if err := checkPlacement(daemon, in.PlacementConstraints, in.PlacementStrategy); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	if deref(in.TaskDefinition) == "" {
		return nil, invalid("TaskDefinition must be specified.")
	}
	tdRec, _, err := s.findTaskDef(ctx, deref(in.TaskDefinition))
	if err != nil {
		return nil, err
	}
	td := tdRec.TaskDefinition
	if deref(td.Status) != ecsapi.TaskDefinitionStatusActive {
		return nil, errs.R(errs.Invalid, reasonClient, "TaskDefinition is inactive")
	}
	fl, err := s.serviceLaunchOf(&c, in, &td)
	if err != nil {
		return nil, err
	}
	if err := checkServiceRegistries(in.ServiceRegistries, &td); err != nil {
		return nil, err
	}
	if err := s.checkLoadBalancers(ctx, in.LoadBalancers, &td); err != nil {
		return nil, err
	}
	scDep, err := s.resolveServiceConnect(ctx, &c, in.ServiceConnectConfiguration, &td, s.serviceARN(cluster, name))
	if err != nil {
		return nil, err
	}
	if daemon {
		// A DAEMON service wants one task per eligible instance from the
		// start, so that services-stable is not satisfied by the 0 it
		// would show until the controller's first pass.
		n, err := s.daemonEligible(ctx, cluster, &td, in.PlacementConstraints)
		if err != nil {
			return nil, err
		}
		desired = int32(n)
	}
	token := deref(in.ClientToken)
	hash := serviceRequestHash(in)
	now := s.now().UTC()
	key := serviceKey(cluster, name)
	cur, rev, err := s.getService(ctx, cluster, name)
	switch {
	case errs.Is(err, errs.NotFound):
		rev = 0
	case err != nil:
		return nil, err
	case cur.Status != deploy.ServiceInactive:
		if token != "" && cur.ClientToken == token && cur.RequestHash == hash {
			out := s.serviceOut(&cur, false)
			return &ecsapi.CreateServiceResponse{Service: &out}, nil
		}
		return nil, invalid("Creation of service was not idempotent.")
	}
	dep := deploy.Deployment{
		ID: newDeploymentID(), Status: deploy.StatusPrimary, TaskDefinition: deref(td.TaskDefinitionArn),
		DesiredCount: int(desired), RolloutState: deploy.RolloutInProgress, CreatedAt: now, UpdatedAt: now,
		HealthChecked: healthChecked(&td),
	}
	dep.RolloutStateReason = fmt.Sprintf("ECS deployment %s in progress.", dep.ID)
	rec := serviceRecord{
		Name: name, ARN: s.serviceARN(cluster, name), Cluster: cluster, ClusterARN: c.ARN,
		Status: deploy.ServiceActive, TaskDefinition: dep.TaskDefinition, DesiredCount: desired,
		SchedulingStrategy: sched, MinHealthyPercent: minP, MaxPercent: maxP, CircuitBreaker: cb,
		PlacementConstraints: in.PlacementConstraints, PlacementStrategy: in.PlacementStrategy,
		NetworkConfiguration: in.NetworkConfiguration, HealthCheckGracePeriod: deref(in.HealthCheckGracePeriodSeconds),
		PropagateTags: string(deref(in.PropagateTags)), EnableECSManagedTags: deref(in.EnableECSManagedTags),
		Tags: in.Tags, ClientToken: token, RequestHash: hash, CreatedAt: now, CreatedBy: caller(ctx),
		Deployments: []deploy.Deployment{dep}, Version: 1, RoleARN: s.roleARN(deref(in.Role)),
		ServiceRegistries: in.ServiceRegistries, LoadBalancers: in.LoadBalancers, Fargate: fl,
		ASG: serviceASG(&c, in),
	}
	if scDep != nil {
		rec.SCDeployments = map[string]*scDeployment{dep.ID: scDep}
	}
	b, _ := json.Marshal(rec)
	cmp := store.Absent(key)
	if rev > 0 {
		cmp = store.ModRevisionIs(key, rev)
	}
	// The cluster must be unchanged: DeleteCluster makes it INACTIVE
	// only if no service appeared since it counted them.
	res, err := s.st.Txn(ctx, []store.Cmp{cmp, store.ModRevisionIs(keyClusters+cluster, clusterRev)}, store.Put(key, b))
	if err != nil {
		return nil, err
	}
	if !res.Succeeded {
		if _, r, err := s.getCluster(ctx, cluster, false); err != nil {
			return nil, err
		} else if r != clusterRev {
			return s.CreateService(ctx, in) // the cluster changed (tags, settings): decide again
		}
		return nil, invalid("Creation of service was not idempotent.")
	}
	s.log.Info("service created", "cluster", cluster, "service", name, "taskDefinition", dep.TaskDefinition, "desiredCount", desired)
	out := s.serviceOut(&rec, false)
	return &ecsapi.CreateServiceResponse{Service: &out}, nil
}

// roleARN is the service role as ECS shows it: a role name (with its path,
// if any) becomes the role's ARN in the account.
func (s *Service) roleARN(role string) string {
	if role == "" || arn.IsARN(role) {
		return role
	}
	return "arn:" + s.arns.Partition + ":iam::" + s.arns.Account + ":role/" + strings.TrimPrefix(role, "/")
}

// serviceTarget resolves the cluster (which must exist) and the service
// name a request on one service names.
func (s *Service) serviceTarget(ctx context.Context, clusterRef, service *string) (cluster, name string, err error) {
	if cluster, err = s.clusterName(clusterRef); err != nil {
		return "", "", err
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return "", "", err
	}
	name, ok := serviceRef(cluster, deref(service))
	if !ok {
		return "", "", errServiceNotFound()
	}
	return cluster, name, nil
}

// UpdateService changes a service. A new task definition, new placement
// rules, a new network configuration or forceNewDeployment start a new
// deployment; a desired count or deployment configuration change does not.
func (s *Service) UpdateService(ctx context.Context, in *ecsapi.UpdateServiceRequest) (*ecsapi.UpdateServiceResponse, error) {
	cluster, name, err := s.serviceTarget(ctx, in.Cluster, in.Service)
	if err != nil {
		return nil, err
	}
	if in.DeploymentController != nil && deref(in.DeploymentController.Type) != ecsapi.DeploymentControllerTypeEcs {
		return nil, invalid("Berth supports the ECS deployment controller only.")
	}
	if err := unsupportedServiceFeatures(nil, in.ServiceRegistries, in.ServiceConnectConfiguration, in.CapacityProviderStrategy, in.VolumeConfigurations); err != nil {
		return nil, err
	}
	var td *ecsapi.TaskDefinition
	if ref := deref(in.TaskDefinition); ref != "" {
		tdRec, _, err := s.findTaskDef(ctx, ref)
		if err != nil {
			return nil, err
		}
		if deref(tdRec.TaskDefinition.Status) != ecsapi.TaskDefinitionStatusActive {
			return nil, errs.R(errs.Invalid, reasonClient, "TaskDefinition is inactive")
		}
		td = &tdRec.TaskDefinition
	}
	lbCheck, err := s.updateLoadBalancersCheck(ctx, in.LoadBalancers, td)
	if err != nil {
		return nil, err
	}
	sc, scChange, err := s.updatedServiceConnect(ctx, cluster, name, in.ServiceConnectConfiguration, td)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	rec, err := s.changeService(ctx, cluster, name, func(r *serviceRecord) error {
		if r.Status != deploy.ServiceActive {
			return errServiceNotActive()
		}
		if td != nil {
			if err := checkServiceTaskDef(r, td); err != nil {
				return err
			}
		}
		before := serviceStrategy(r)
		changedStrategy, err := s.updateFargate(ctx, r, in.CapacityProviderStrategy, in.PlatformVersion)
		if err != nil {
			return err
		}
		if !jsonEqual(before, serviceStrategy(r)) && !deref(in.ForceNewDeployment) { // asgplacement.go
			return invalid("When switching from launch type to capacity provider strategy on an existing service, or making a change to a capacity provider strategy on a service that is already using one, you must force a new deployment.")
		}
		daemon := r.SchedulingStrategy == deploy.Daemon
		newDep := deref(in.ForceNewDeployment) || changedStrategy
		if in.DesiredCount != nil {
			if daemon {
				return invalid("The daemon scheduling strategy does not support a desired count for services.")
			}
			if *in.DesiredCount < 0 {
				return invalid("desiredCount must not be negative.")
			}
			r.DesiredCount = *in.DesiredCount
		}
		minP, maxP, cb, err := deploymentBounds(daemon, in.DeploymentConfiguration, r.MinHealthyPercent, r.MaxPercent)
		if err != nil {
			return err
		}
		r.MinHealthyPercent, r.MaxPercent = minP, maxP
		if in.DeploymentConfiguration != nil {
			r.CircuitBreaker = cb
		}
		cons, strat := r.PlacementConstraints, r.PlacementStrategy
		if in.PlacementConstraints != nil {
			cons = in.PlacementConstraints
		}
		if in.PlacementStrategy != nil {
			strat = in.PlacementStrategy
		}
		if err := checkPlacement(daemon, cons, strat); err != nil {
			return err
		}
		if !jsonEqual(cons, r.PlacementConstraints) || !jsonEqual(strat, r.PlacementStrategy) {
			newDep = true
		}
		r.PlacementConstraints, r.PlacementStrategy = cons, strat
		if in.NetworkConfiguration != nil && !jsonEqual(in.NetworkConfiguration, r.NetworkConfiguration) {
			r.NetworkConfiguration = in.NetworkConfiguration
			newDep = true
		}
		if in.HealthCheckGracePeriodSeconds != nil {
			r.HealthCheckGracePeriod = *in.HealthCheckGracePeriodSeconds
		}
		if in.PropagateTags != nil {
			r.PropagateTags = string(*in.PropagateTags)
		}
		if in.EnableECSManagedTags != nil {
			r.EnableECSManagedTags = *in.EnableECSManagedTags
		}
		if changed, err := lbCheck(r); err != nil {
			return err
		} else if changed {
			newDep = true
		}
		hc := len(r.Deployments) > 0 && r.Deployments[0].HealthChecked
		if td != nil && deref(td.TaskDefinitionArn) != r.TaskDefinition {
			r.TaskDefinition = deref(td.TaskDefinitionArn)
			newDep = true
		}
		if td != nil {
			hc = healthChecked(td)
		}
		primarySC := r.PrimarySC()
		if scChange && !scEqual(sc, primarySC) {
			newDep = true
		} else {
			sc = primarySC
		}
		if newDep {
			for i := range r.Deployments {
				r.Deployments[i].Status = deploy.StatusActive
				r.Deployments[i].UpdatedAt = now
			}
			dep := deploy.Deployment{ID: newDeploymentID(), Status: deploy.StatusPrimary, TaskDefinition: r.TaskDefinition,
				DesiredCount: int(r.DesiredCount), RolloutState: deploy.RolloutInProgress, CreatedAt: now, UpdatedAt: now, HealthChecked: hc}
			dep.RolloutStateReason = fmt.Sprintf("ECS deployment %s in progress.", dep.ID)
			r.Deployments = append([]deploy.Deployment{dep}, r.Deployments...)
			r.Steady = false
			r.SetDeploymentSC(dep.ID, sc)
		} else if len(r.Deployments) > 0 && !daemon {
			r.Deployments[0].DesiredCount = int(r.DesiredCount)
			r.Deployments[0].UpdatedAt = now
		}
		return nil
	})
	if errs.Is(err, errs.NotFound) {
		return nil, errServiceNotFound()
	}
	if err != nil {
		return nil, err
	}
	out := s.serviceOut(&rec, false)
	return &ecsapi.UpdateServiceResponse{Service: &out}, nil
}

// DeleteService deletes a service: it becomes DRAINING, its tasks are
// stopped, and it becomes INACTIVE once they are gone. A REPLICA service
// scaled above 0 is refused unless force is set.
func (s *Service) DeleteService(ctx context.Context, in *ecsapi.DeleteServiceRequest) (*ecsapi.DeleteServiceResponse, error) {
	cluster, name, err := s.serviceTarget(ctx, in.Cluster, in.Service)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	rec, err := s.changeService(ctx, cluster, name, func(r *serviceRecord) error {
		switch r.Status {
		case deploy.ServiceInactive:
			return errServiceNotActive()
		case deploy.ServiceDraining:
			return nil
		}
		if r.SchedulingStrategy != deploy.Daemon && r.DesiredCount > 0 && !deref(in.Force) {
			return invalid("The service cannot be stopped while it is scaled above 0.")
		}
		r.Status = deploy.ServiceDraining
		r.DesiredCount = 0
		r.Steady = false
		for i := range r.Deployments {
			r.Deployments[i].DesiredCount = 0
			r.Deployments[i].UpdatedAt = now
		}
		return nil
	})
	if errs.Is(err, errs.NotFound) {
		return nil, errServiceNotFound()
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("service deleted", "cluster", cluster, "service", name)
	out := s.serviceOut(&rec, false)
	return &ecsapi.DeleteServiceResponse{Service: &out}, nil
}

// DescribeServices describes up to 10 services; unknown ones are MISSING
// failures.
func (s *Service) DescribeServices(ctx context.Context, in *ecsapi.DescribeServicesRequest) (*ecsapi.DescribeServicesResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	if len(in.Services) == 0 || len(in.Services) > 10 {
		return nil, invalid("services can have at most 10 items.")
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	withTags := slices.Contains(in.Include, ecsapi.ServiceFieldTags)
	out := &ecsapi.DescribeServicesResponse{Services: []ecsapi.Service{}, Failures: []ecsapi.Failure{}}
	for _, ref := range in.Services {
		name, ok := serviceRef(cluster, ref)
		var rec serviceRecord
		if ok {
			rec, _, err = s.getService(ctx, cluster, name)
			if err != nil && !errs.Is(err, errs.NotFound) {
				return nil, err
			}
			ok = err == nil
		}
		if !ok {
			a := ref
			if !arn.IsARN(ref) {
				a = s.serviceARN(cluster, ref)
			}
			out.Failures = append(out.Failures, ecsapi.Failure{Arn: ptr(a), Reason: ptr("MISSING")})
			continue
		}
		out.Services = append(out.Services, s.serviceOut(&rec, withTags))
	}
	return out, nil
}

// ListServices lists the ARNs of a cluster's services that are not
// INACTIVE, 10 to a page by default.
func (s *Service) ListServices(ctx context.Context, in *ecsapi.ListServicesRequest) (*ecsapi.ListServicesResponse, error) {
	cluster, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	limit, after, err := pagePosition(in.MaxResults, in.NextToken, 10, 100)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.getCluster(ctx, cluster, false); err != nil {
		return nil, err
	}
	out := &ecsapi.ListServicesResponse{ServiceArns: []string{}}
	lt := deref(in.LaunchType)
	sched := string(deref(in.SchedulingStrategy))
	var r serviceRecord
	out.NextToken, err = s.paginate(ctx, keyServices+cluster+"/", after, limit, false,
		func(kv store.KV) bool {
			r = serviceRecord{}
			if json.Unmarshal(kv.Value, &r) != nil || r.Status == deploy.ServiceInactive {
				return false
			}
			return (sched == "" || r.SchedulingStrategy == sched) && (lt == "" || *serviceLaunchType(&r) == lt)
		},
		func(store.KV) { out.ServiceArns = append(out.ServiceArns, r.ARN) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// serviceOut shapes a service as ECS's Service.
func (s *Service) serviceOut(r *serviceRecord, withTags bool) ecsapi.Service {
	out := ecsapi.Service{
		ServiceArn:         ptr(r.ARN),
		ServiceName:        ptr(r.Name),
		ClusterArn:         ptr(r.ClusterARN),
		Status:             ptr(r.Status),
		TaskDefinition:     ptr(r.TaskDefinition),
		DesiredCount:       ptr(r.DesiredCount),
		RunningCount:       ptr(r.RunningCount),
		PendingCount:       ptr(r.PendingCount),
		LaunchType:         ptr(ecsapi.LaunchTypeEc2),
		SchedulingStrategy: ptr(ecsapi.SchedulingStrategy(r.SchedulingStrategy)),
		DeploymentConfiguration: &ecsapi.DeploymentConfiguration{
			MinimumHealthyPercent: ptr(r.MinHealthyPercent),
			MaximumPercent:        ptr(r.MaxPercent),
			DeploymentCircuitBreaker: &ecsapi.DeploymentCircuitBreaker{
				Enable: ptr(r.CircuitBreaker != nil && deref(r.CircuitBreaker.Enable)), Rollback: ptr(r.CircuitBreaker != nil && deref(r.CircuitBreaker.Rollback)),
			},
		},
		DeploymentController:          &ecsapi.DeploymentController{Type: ptr(ecsapi.DeploymentControllerTypeEcs)},
		PlacementConstraints:          r.PlacementConstraints,
		PlacementStrategy:             r.PlacementStrategy,
		NetworkConfiguration:          r.NetworkConfiguration,
		CreatedAt:                     awsproto.NewTime(r.CreatedAt),
		CreatedBy:                     optString(r.CreatedBy),
		EnableECSManagedTags:          ptr(r.EnableECSManagedTags),
		EnableExecuteCommand:          ptr(false),
		LoadBalancers:                 []ecsapi.LoadBalancer{},
		ServiceRegistries:             []ecsapi.ServiceRegistry{},
		Deployments:                   []ecsapi.Deployment{},
		Events:                        []ecsapi.ServiceEvent{},
		Tags:                          []ecsapi.Tag{},
		PropagateTags:                 ptr(ecsapi.PropagateTags(orDefault(r.PropagateTags, string(ecsapi.PropagateTagsNone)))),
		HealthCheckGracePeriodSeconds: ptr(r.HealthCheckGracePeriod),
		RoleArn:                       optString(r.RoleARN),
	}
	if r.ServiceRegistries != nil {
		out.ServiceRegistries = r.ServiceRegistries
	}
	if r.LoadBalancers != nil {
		out.LoadBalancers = r.LoadBalancers
	}
	if out.PlacementConstraints == nil {
		out.PlacementConstraints = []ecsapi.PlacementConstraint{}
	}
	if out.PlacementStrategy == nil {
		out.PlacementStrategy = []ecsapi.PlacementStrategy{}
	}
	for _, d := range r.Deployments {
		scc, scr := scShown(r.SCDeployments[d.ID])
		out.Deployments = append(out.Deployments, ecsapi.Deployment{
			ServiceConnectConfiguration: scc, ServiceConnectResources: scr,
			Id: ptr(d.ID), Status: ptr(d.Status), TaskDefinition: ptr(d.TaskDefinition),
			DesiredCount: ptr(int32(d.DesiredCount)), PendingCount: ptr(int32(d.PendingCount)),
			RunningCount: ptr(int32(d.RunningCount)), FailedTasks: ptr(int32(d.FailedTasks)),
			CreatedAt: awsproto.NewTime(d.CreatedAt), UpdatedAt: awsproto.NewTime(d.UpdatedAt),
			LaunchType: ptr(ecsapi.LaunchTypeEc2), RolloutState: ptr(ecsapi.DeploymentRolloutState(d.RolloutState)),
			RolloutStateReason: optString(d.RolloutStateReason), NetworkConfiguration: r.NetworkConfiguration,
		})
	}
	for _, e := range r.Events {
		out.Events = append(out.Events, ecsapi.ServiceEvent{Id: ptr(e.ID), CreatedAt: awsproto.NewTime(e.CreatedAt), Message: ptr(e.Message)})
	}
	if withTags && r.Tags != nil {
		out.Tags = r.Tags
	}
	fargateServiceOut(r, &out)
	return out
}

type serviceTagger struct{ s *Service }

func (t serviceTagger) names(a arn.ARN) (string, string, error) {
	c, name, ok := strings.Cut(a.ResourceID(), "/")
	if !ok {
		return "", "", errs.R(errs.NotFound, reasonResourceNotFound, "The specified resource could not be found.")
	}
	return c, name, nil
}

func (t serviceTagger) tags(ctx context.Context, a arn.ARN) ([]ecsapi.Tag, error) {
	c, name, err := t.names(a)
	if err != nil {
		return nil, err
	}
	r, _, err := t.s.getService(ctx, c, name)
	if errs.Is(err, errs.NotFound) || (err == nil && r.Status == deploy.ServiceInactive) {
		return nil, errs.R(errs.NotFound, reasonResourceNotFound, "The specified resource could not be found.")
	}
	return r.Tags, err
}

func (t serviceTagger) updateTags(ctx context.Context, a arn.ARN, change func([]ecsapi.Tag) []ecsapi.Tag) error {
	c, name, err := t.names(a)
	if err != nil {
		return err
	}
	_, err = t.s.changeService(ctx, c, name, func(r *serviceRecord) error {
		if r.Status == deploy.ServiceInactive {
			return errs.R(errs.NotFound, reasonResourceNotFound, "The specified resource could not be found.")
		}
		r.Tags = change(r.Tags)
		return validateTags(r.Tags)
	})
	if errs.Is(err, errs.NotFound) {
		return errs.R(errs.NotFound, reasonResourceNotFound, "The specified resource could not be found.")
	}
	return err
}

// daemonEligible counts the instances a DAEMON service of td would run a
// task on: ACTIVE, agent connected, and meeting the task definition's
// required attributes and the constraints (resources aside, as the
// controller counts them).
func (s *Service) daemonEligible(ctx context.Context, cluster string, td *ecsapi.TaskDefinition, cons []ecsapi.PlacementConstraint) (int, error) {
	snap, err := s.snapshot(ctx, cluster)
	if err != nil {
		return 0, err
	}
	svcCons, err := placement.ConstraintsFromWire(cons)
	if err != nil {
		return 0, err
	}
	tdCons, err := placement.TaskDefinitionConstraintsFromWire(td.PlacementConstraints)
	if err != nil {
		return 0, err
	}
	req := placement.Request{RequiredAttributes: placement.AttributesFromWire(td.RequiresAttributes), Constraints: append(tdCons, svcCons...)}
	n := 0
	for _, v := range snap.Instances {
		if v.Rec.Status != InstanceActive || !v.Connected {
			continue
		}
		pi := v.PlacementInstance()
		pi.Tasks = nil
		pi.Remaining = pi.Registered
		pi.DynamicPortsInUse = 0
		if placement.Check(pi, req) == nil {
			n++
		}
	}
	return n, nil
}
