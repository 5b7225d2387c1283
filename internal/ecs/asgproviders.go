package ecs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/capacityprovider"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Auto Scaling group capacity providers (docs/capacity-providers.md).
// Berth has no EC2 Auto Scaling; the "Auto Scaling group" of a provider
// is a capacity pool of Berth agents: the container instances whose
// agent registered the attribute capacityprovider.PoolAttribute with the
// group's name (`berth agent --capacity-pool NAME`). A cluster associates
// the provider (PutClusterCapacityProviders, CreateCluster); a strategy
// of such providers (RunTask, CreateService, UpdateService, the cluster's
// default) places each task, by the base/weight arithmetic of
// internal/capacityprovider, on the cluster's instances of the chosen
// provider's pool, with the task's placement constraints and strategies
// applying within the pool (asgplacement.go). Managed scaling, managed termination
// protection and managed draining are refused: Berth cannot add, protect
// or drain instances of a pool on its own.
//
// Store layout:
//
//	/berth/ecs/capacityproviders/<name>   providerRecord (ACTIVE; INACTIVE for
//	                                      providerRetention after deletion)
//	/berth/ecs/capacitypools/<pool>       the ACTIVE provider's name: one
//	                                      provider per pool, as ECS allows one
//	                                      provider per Auto Scaling group
const (
	keyCapacityProviders = "/berth/ecs/capacityproviders/"
	keyCapacityPools     = "/berth/ecs/capacitypools/"

	// providerRetention is how long a deleted provider stays describable
	// as INACTIVE.
	providerRetention = time.Hour
	// maxDescribeProviders bounds a DescribeCapacityProviders page.
	maxDescribeProviders = 10
)

// providerRecord is an Auto Scaling group capacity provider as stored.
type providerRecord struct {
	Name   string `json:"name"`
	ARN    string `json:"arn"`
	ASGARN string `json:"autoScalingGroupArn"`
	// Pool is the Auto Scaling group's name: the agents' capacity pool.
	Pool string `json:"pool"`
	// ManagedScaling is what the request said, with status DISABLED and
	// ECS's defaults filled in.
	ManagedScaling     ecsapi.ManagedScaling `json:"managedScaling"`
	Status             string                `json:"status"` // ACTIVE | INACTIVE
	UpdateStatus       string                `json:"updateStatus"`
	UpdateStatusReason string                `json:"updateStatusReason,omitempty"`
	Tags               []ecsapi.Tag          `json:"tags,omitempty"`
	CreatedAt          time.Time             `json:"createdAt"`
	InactiveAt         *time.Time            `json:"inactiveAt,omitempty"`
}

// asgLaunch is a service's Auto Scaling group provider strategy
// (serviceRecord.ASG).
type asgLaunch = ecsstate.ASGLaunch

func providerKey(name string) string { return keyCapacityProviders + name }
func poolKey(pool string) string     { return keyCapacityPools + url.PathEscape(pool) }

func (s *Service) providerARN(name string) string { return s.arns.ECS("capacity-provider/" + name) }

// providerRef resolves a provider's name or ARN to its name.
func providerRef(ref string) string {
	if arn.IsARN(ref) {
		if a, err := arn.Parse(ref); err == nil && a.Service == "ecs" && a.ResourceType() == "capacity-provider" {
			return a.ResourceID()
		}
	}
	return ref
}

// visible reports whether a provider is still shown (ACTIVE, or INACTIVE
// for providerRetention).
func (p *providerRecord) visible(now time.Time) bool {
	return p.Status == "ACTIVE" || (p.InactiveAt != nil && now.Sub(*p.InactiveAt) < providerRetention)
}

// getProvider reads a provider record; NotFound (ClientException) when
// there is none or it is INACTIVE.
func (s *Service) getProvider(ctx context.Context, name string) (providerRecord, int64, error) {
	var rec providerRecord
	kv, err := s.st.Get(ctx, providerKey(name))
	if err == nil && json.Unmarshal(kv.Value, &rec) == nil && rec.Status == "ACTIVE" {
		return rec, kv.ModRevision, nil
	}
	if err != nil && !errs.Is(err, errs.NotFound) {
		return rec, 0, err
	}
	return rec, kv.ModRevision, errs.R(errs.NotFound, reasonClient,
		"The specified capacity provider does not exist. Specify a valid name or ARN and try again.")
}

// listProviders reads every provider record.
func (s *Service) listProviders(ctx context.Context) ([]providerRecord, []int64, error) {
	res, err := s.st.List(ctx, keyCapacityProviders, store.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	var out []providerRecord
	var revs []int64
	for _, kv := range res.KVs {
		var rec providerRecord
		if json.Unmarshal(kv.Value, &rec) == nil {
			out = append(out, rec)
			revs = append(revs, kv.ModRevision)
		}
	}
	return out, revs, nil
}

// checkManaged applies Berth's answer to the managed features: managed
// scaling, managed termination protection and managed draining each need
// Berth to add, protect or drain a pool's instances, which it cannot, so
// ENABLED is refused. It returns the managed scaling settings to record.
func checkManaged(cur *ecsapi.ManagedScaling, ms *ecsapi.ManagedScaling, mtp *ecsapi.ManagedTerminationProtection, md *ecsapi.ManagedDraining) (ecsapi.ManagedScaling, error) {
	out := ecsapi.ManagedScaling{
		Status: ptr(ecsapi.ManagedScalingStatusDisabled), TargetCapacity: ptr(int32(100)),
		MinimumScalingStepSize: ptr(int32(1)), MaximumScalingStepSize: ptr(int32(10000)), InstanceWarmupPeriod: ptr(int32(300)),
	}
	if cur != nil {
		out = *cur
	}
	if ms != nil {
		if deref(ms.Status) == ecsapi.ManagedScalingStatusEnabled {
			return out, errs.R(errs.Invalid, reasonInvalidParameter,
				"Managed scaling is not available on Berth: a capacity provider's Auto Scaling group is a pool of Berth agents, which Berth cannot add to or remove from. Set managedScaling status DISABLED (or leave managedScaling out) and add capacity by starting agents with `berth agent --capacity-pool <name>`.")
		}
		if ms.TargetCapacity != nil {
			out.TargetCapacity = ms.TargetCapacity
		}
		if ms.MinimumScalingStepSize != nil {
			out.MinimumScalingStepSize = ms.MinimumScalingStepSize
		}
		if ms.MaximumScalingStepSize != nil {
			out.MaximumScalingStepSize = ms.MaximumScalingStepSize
		}
		if ms.InstanceWarmupPeriod != nil {
			out.InstanceWarmupPeriod = ms.InstanceWarmupPeriod
		}
		if deref(out.MinimumScalingStepSize) > deref(out.MaximumScalingStepSize) {
			return out, errs.R(errs.Invalid, reasonInvalidParameter, "The minimum scaling step size must be less than or equal to the maximum scaling step size.")
		}
	}
	if deref(mtp) == ecsapi.ManagedTerminationProtectionEnabled {
		return out, errs.R(errs.Invalid, reasonInvalidParameter,
			"Managed termination protection can only be enabled with managed scaling, which is not available on Berth (no Auto Scaling terminates a pool's agents). Set managedTerminationProtection DISABLED.")
	}
	if deref(md) == ecsapi.ManagedDrainingEnabled {
		return out, errs.R(errs.Invalid, reasonInvalidParameter,
			"Managed draining is not available on Berth: no Auto Scaling terminates a pool's agents, so there is no termination to drain before. Set managedDraining DISABLED and drain an instance yourself with UpdateContainerInstancesState.")
	}
	return out, nil
}

// CreateCapacityProvider creates an Auto Scaling group capacity provider
// whose group is the capacity pool named by autoScalingGroupArn.
func (s *Service) CreateCapacityProvider(ctx context.Context, in *ecsapi.CreateCapacityProviderRequest) (*ecsapi.CreateCapacityProviderResponse, error) {
	name := deref(in.Name)
	if err := capacityprovider.CheckName(name); err != nil {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "%s", err.Error())
	}
	if in.ManagedInstancesProvider != nil {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter,
			"Amazon ECS Managed Instances are not available on Berth. Create an Auto Scaling group capacity provider (autoScalingGroupProvider), whose group is a pool of Berth agents.")
	}
	if in.Cluster != nil {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter,
			"The cluster parameter is only valid for Amazon ECS Managed Instances capacity providers. Associate an Auto Scaling group capacity provider with a cluster with PutClusterCapacityProviders.")
	}
	asg := in.AutoScalingGroupProvider
	if asg == nil {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "autoScalingGroupProvider must be specified.")
	}
	a, err := capacityprovider.ParseASGARN(deref(asg.AutoScalingGroupArn))
	if err != nil {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "%s", err.Error())
	}
	if a.Region != s.arns.Region || a.Account != s.arns.Account {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter,
			"The specified Auto Scaling group ARN is invalid: it names region %s and account %s; this Berth is region %s, account %s.", a.Region, a.Account, s.arns.Region, s.arns.Account)
	}
	ms, err := checkManaged(nil, asg.ManagedScaling, asg.ManagedTerminationProtection, asg.ManagedDraining)
	if err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	rec := providerRecord{
		Name: name, ARN: s.providerARN(name), ASGARN: deref(asg.AutoScalingGroupArn), Pool: a.Name,
		ManagedScaling: ms, Status: "ACTIVE", UpdateStatus: string(ecsapi.CapacityProviderUpdateStatusCreateComplete),
		Tags: in.Tags, CreatedAt: now,
	}
	b, _ := json.Marshal(rec)
	kv, err := s.st.Get(ctx, providerKey(name))
	if err != nil && !errs.Is(err, errs.NotFound) {
		return nil, err
	}
	var cur providerRecord
	if err == nil && json.Unmarshal(kv.Value, &cur) == nil && cur.Status == "ACTIVE" {
		return nil, errs.R(errs.Conflict, reasonClient,
			"The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider.")
	}
	res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(providerKey(name), kv.ModRevision), store.Absent(poolKey(a.Name))},
		store.Put(providerKey(name), b), store.Put(poolKey(a.Name), []byte(name)))
	if err != nil {
		return nil, err
	}
	if !res.Succeeded {
		if _, err := s.st.Get(ctx, poolKey(a.Name)); err == nil {
			return nil, errs.R(errs.Conflict, reasonClient,
				"The specified Auto Scaling group ARN is already being used by another capacity provider. Specify a unique Auto Scaling group ARN and try again.")
		}
		return nil, errs.R(errs.Conflict, reasonClient,
			"The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider.")
	}
	s.purgeProviders(ctx, now)
	s.log.Info("capacity provider created", "capacityProvider", name, "pool", a.Name)
	out := s.providerOut(&rec, true)
	return &ecsapi.CreateCapacityProviderResponse{CapacityProvider: &out}, nil
}

// purgeProviders deletes the INACTIVE provider records past their
// retention (best effort; a later create purges what this one missed).
func (s *Service) purgeProviders(ctx context.Context, now time.Time) {
	res, err := s.st.List(ctx, keyCapacityProviders, store.ListOptions{})
	if err != nil {
		return
	}
	for _, kv := range res.KVs {
		var rec providerRecord
		if json.Unmarshal(kv.Value, &rec) == nil && !rec.visible(now) {
			_, _ = s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(kv.Key, kv.ModRevision)}, store.Delete(kv.Key))
		}
	}
}

// fargateProviderOut is one of the AWS-managed providers as ECS shows it.
func (s *Service) fargateProviderOut(name string) ecsapi.CapacityProvider {
	t := ecsapi.CapacityProviderTypeFargate
	if name == ProviderFargateSpot {
		t = ecsapi.CapacityProviderTypeFargateSpot
	}
	return ecsapi.CapacityProvider{
		CapacityProviderArn: ptr(s.providerARN(name)), Name: ptr(name),
		Status: ptr(ecsapi.CapacityProviderStatusActive), Type: ptr(t), Tags: []ecsapi.Tag{},
	}
}

// providerOut shapes a provider as ECS's CapacityProvider.
func (s *Service) providerOut(p *providerRecord, withTags bool) ecsapi.CapacityProvider {
	ms := p.ManagedScaling
	out := ecsapi.CapacityProvider{
		CapacityProviderArn: ptr(p.ARN), Name: ptr(p.Name),
		Status: ptr(ecsapi.CapacityProviderStatus(p.Status)), Type: ptr(ecsapi.CapacityProviderTypeEc2Autoscaling),
		UpdateStatus:       ptr(ecsapi.CapacityProviderUpdateStatus(p.UpdateStatus)),
		UpdateStatusReason: optString(p.UpdateStatusReason),
		AutoScalingGroupProvider: &ecsapi.AutoScalingGroupProvider{
			AutoScalingGroupArn:          ptr(p.ASGARN),
			ManagedScaling:               &ms,
			ManagedTerminationProtection: ptr(ecsapi.ManagedTerminationProtectionDisabled),
			ManagedDraining:              ptr(ecsapi.ManagedDrainingDisabled),
		},
	}
	if withTags {
		out.Tags = p.Tags
		if out.Tags == nil {
			out.Tags = []ecsapi.Tag{}
		}
	}
	return out
}

// DescribeCapacityProviders describes the named providers (unknown ones
// are MISSING failures), or pages through all of them: FARGATE,
// FARGATE_SPOT, then the Auto Scaling group providers by name.
func (s *Service) DescribeCapacityProviders(ctx context.Context, in *ecsapi.DescribeCapacityProvidersRequest) (*ecsapi.DescribeCapacityProvidersResponse, error) {
	if len(in.CapacityProviders) > 100 {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "capacityProviders can have at most 100 items.")
	}
	limit := maxDescribeProviders
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxDescribeProviders {
			return nil, errs.R(errs.Invalid, reasonInvalidParameter, "maxResults must be between 1 and %d.", maxDescribeProviders)
		}
		limit = int(*in.MaxResults)
	}
	after := ""
	if tok := deref(in.NextToken); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) == 0 {
			return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Invalid nextToken.")
		}
		after = string(b)
	}
	var inCluster []string
	if in.Cluster != nil {
		name, err := s.clusterName(in.Cluster)
		if err != nil {
			return nil, err
		}
		c, _, err := s.getCluster(ctx, name, false)
		if err != nil {
			return nil, err
		}
		inCluster = c.CapacityProviders
		if inCluster == nil {
			inCluster = []string{}
		}
	}
	withTags := slices.Contains(in.Include, ecsapi.CapacityProviderFieldTags)
	recs, _, err := s.listProviders(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	byName := map[string]*providerRecord{}
	for i := range recs {
		if recs[i].visible(now) {
			byName[recs[i].Name] = &recs[i]
		}
	}
	one := func(name string) (ecsapi.CapacityProvider, bool) {
		if inCluster != nil && !slices.Contains(inCluster, name) {
			return ecsapi.CapacityProvider{}, false
		}
		if managedProvider(name) {
			return s.fargateProviderOut(name), true
		}
		if p := byName[name]; p != nil {
			return s.providerOut(p, withTags), true
		}
		return ecsapi.CapacityProvider{}, false
	}
	out := &ecsapi.DescribeCapacityProvidersResponse{CapacityProviders: []ecsapi.CapacityProvider{}, Failures: []ecsapi.Failure{}}
	if len(in.CapacityProviders) > 0 {
		for _, ref := range in.CapacityProviders {
			if cp, ok := one(providerRef(ref)); ok {
				out.CapacityProviders = append(out.CapacityProviders, cp)
			} else {
				a := ref
				if !arn.IsARN(ref) {
					a = s.providerARN(ref)
				}
				out.Failures = append(out.Failures, ecsapi.Failure{Arn: ptr(a), Reason: ptr("MISSING")})
			}
		}
		return out, nil
	}
	// The listing's order: the managed providers first ("\x00" and "\x01"
	// sort before any name), then by name.
	order := []string{ProviderFargate, ProviderFargateSpot}
	var names []string
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	order = append(order, names...)
	start := 0
	if after != "" {
		start = slices.Index(order, after) + 1
		if start == 0 {
			// The token's provider is gone: continue after it by name.
			start = len(order)
			for i, n := range order {
				if !managedProvider(n) && n > after {
					start = i
					break
				}
			}
		}
	}
	for i := start; i < len(order); i++ {
		cp, ok := one(order[i])
		if !ok {
			continue
		}
		if len(out.CapacityProviders) == limit {
			out.NextToken = ptr(base64.RawURLEncoding.EncodeToString([]byte(order[i-1])))
			break
		}
		out.CapacityProviders = append(out.CapacityProviders, cp)
	}
	return out, nil
}

// UpdateCapacityProvider changes a provider's managed settings (which
// Berth keeps DISABLED; see checkManaged).
func (s *Service) UpdateCapacityProvider(ctx context.Context, in *ecsapi.UpdateCapacityProviderRequest) (*ecsapi.UpdateCapacityProviderResponse, error) {
	name := providerRef(deref(in.Name))
	if managedProvider(name) {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "The %s capacity provider is reserved and cannot be updated.", name)
	}
	if in.ManagedInstancesProvider != nil {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Amazon ECS Managed Instances are not available on Berth.")
	}
	if in.AutoScalingGroupProvider == nil {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "autoScalingGroupProvider must be specified.")
	}
	for {
		rec, rev, err := s.getProvider(ctx, name)
		if err != nil {
			return nil, err
		}
		u := in.AutoScalingGroupProvider
		ms, err := checkManaged(&rec.ManagedScaling, u.ManagedScaling, u.ManagedTerminationProtection, u.ManagedDraining)
		if err != nil {
			return nil, err
		}
		rec.ManagedScaling = ms
		rec.UpdateStatus, rec.UpdateStatusReason = string(ecsapi.CapacityProviderUpdateStatusUpdateComplete), ""
		b, _ := json.Marshal(rec)
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(providerKey(name), rev)}, store.Put(providerKey(name), b))
		if err != nil {
			return nil, err
		}
		if res.Succeeded {
			out := s.providerOut(&rec, true)
			return &ecsapi.UpdateCapacityProviderResponse{CapacityProvider: &out}, nil
		}
	}
}

// DeleteCapacityProvider deletes a provider no ACTIVE cluster associates.
// As on ECS, a provider a cluster still associates is not deleted: the
// answer (and DescribeCapacityProviders) shows it ACTIVE with
// updateStatus DELETE_FAILED and the reason.
func (s *Service) DeleteCapacityProvider(ctx context.Context, in *ecsapi.DeleteCapacityProviderRequest) (*ecsapi.DeleteCapacityProviderResponse, error) {
	name := providerRef(deref(in.CapacityProvider))
	if managedProvider(name) {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter,
			"The %s capacity provider is reserved and cannot be deleted. Remove it from a cluster with PutClusterCapacityProviders.", name)
	}
	for {
		rec, rev, err := s.getProvider(ctx, name)
		if err != nil {
			return nil, err
		}
		clusters, err := s.st.List(ctx, keyClusters, store.ListOptions{})
		if err != nil {
			return nil, err
		}
		holder := ""
		for _, kv := range clusters.KVs {
			var c clusterRecord
			if json.Unmarshal(kv.Value, &c) == nil && c.Status == "ACTIVE" && slices.Contains(c.CapacityProviders, name) {
				holder = c.Name
				break
			}
		}
		cmps := []store.Cmp{store.ModRevisionIs(providerKey(name), rev)}
		var ops []store.Op
		if holder != "" {
			rec.UpdateStatus = string(ecsapi.CapacityProviderUpdateStatusDeleteFailed)
			rec.UpdateStatusReason = "The capacity provider cannot be deleted because it is associated with cluster: " + holder +
				". Remove the capacity provider from the cluster and try again."
		} else {
			now := s.now().UTC()
			rec.Status, rec.InactiveAt = "INACTIVE", &now
			rec.UpdateStatus, rec.UpdateStatusReason = string(ecsapi.CapacityProviderUpdateStatusDeleteComplete), ""
			cmps = append(cmps, store.PrefixUnchangedSince(keyClusters, clusters.Revision))
			ops = append(ops, store.Delete(poolKey(rec.Pool)))
		}
		b, _ := json.Marshal(rec)
		ops = append(ops, store.Put(providerKey(name), b))
		res, err := s.st.Txn(ctx, cmps, ops...)
		if err != nil {
			return nil, err
		}
		if res.Succeeded {
			if holder == "" {
				s.log.Info("capacity provider deleted", "capacityProvider", name)
			}
			out := s.providerOut(&rec, true)
			return &ecsapi.DeleteCapacityProviderResponse{CapacityProvider: &out}, nil
		}
	}
}

// checkASGProviders checks a cluster's Auto Scaling group providers: each
// must be ACTIVE and associated with no other ACTIVE cluster (an Auto
// Scaling group's provider serves one cluster). It returns the compares
// that keep the answer true until the association commits.
func (s *Service) checkASGProviders(ctx context.Context, cluster string, providers []string) ([]store.Cmp, error) {
	var cmps []store.Cmp
	var asg []string
	for _, p := range providers {
		if managedProvider(p) {
			continue
		}
		_, rev, err := s.getProvider(ctx, p)
		if errs.Is(err, errs.NotFound) {
			return nil, errs.R(errs.Invalid, reasonInvalidParameter,
				"The specified capacity provider '%s' is not in an ACTIVE state. Specify a valid capacity provider and try again.", p)
		}
		if err != nil {
			return nil, err
		}
		cmps = append(cmps, store.ModRevisionIs(providerKey(p), rev))
		asg = append(asg, p)
	}
	if len(asg) == 0 {
		return nil, nil
	}
	res, err := s.st.List(ctx, keyClusters, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, kv := range res.KVs {
		var c clusterRecord
		if json.Unmarshal(kv.Value, &c) != nil || c.Status != "ACTIVE" || c.Name == cluster {
			continue
		}
		for _, p := range asg {
			if slices.Contains(c.CapacityProviders, p) {
				return nil, errs.R(errs.Invalid, reasonInvalidParameter,
					"The specified capacity provider '%s' is already associated with cluster %s. An Auto Scaling group capacity provider can be associated with one cluster only.", p, c.Name)
			}
		}
	}
	return append(cmps, store.PrefixUnchangedSince(keyClusters, res.Revision)), nil
}

// putClusterProviders sets a cluster's providers and default strategy
// under the compares of checkASGProviders (retrying the whole check when
// anything it read changed).
func (s *Service) putClusterProviders(ctx context.Context, name string, in *ecsapi.PutClusterCapacityProvidersRequest) (ecsapi.Cluster, error) {
	for {
		c, rev, err := s.getCluster(ctx, name, false)
		if err != nil {
			return ecsapi.Cluster{}, err
		}
		cmps, err := s.checkASGProviders(ctx, name, in.CapacityProviders)
		if err != nil {
			return ecsapi.Cluster{}, err
		}
		c.CapacityProviders = slices.Clone(in.CapacityProviders)
		c.DefaultStrategy = slices.Clone(in.DefaultCapacityProviderStrategy)
		b, _ := json.Marshal(c)
		key := keyClusters + name
		res, err := s.st.Txn(ctx, append(cmps, store.ModRevisionIs(key, rev)), store.Put(key, b))
		if err != nil {
			return ecsapi.Cluster{}, err
		}
		if res.Succeeded {
			return s.clusterOut(ctx, c, allClusterFields)
		}
	}
}

// markInstanceProviders sets capacityProviderName on the described
// instances of a provider's pool, as ECS shows it on an instance of an
// Auto Scaling group provider's group.
func (s *Service) markInstanceProviders(ctx context.Context, out []ecsapi.ContainerInstance) error {
	var pools map[string]string
	for i := range out {
		pool := ""
		for _, a := range out[i].Attributes {
			if deref(a.Name) == capacityprovider.PoolAttribute {
				pool = deref(a.Value)
			}
		}
		if pool == "" {
			continue
		}
		if pools == nil {
			recs, _, err := s.listProviders(ctx)
			if err != nil {
				return err
			}
			pools = map[string]string{}
			for _, r := range recs {
				if r.Status == "ACTIVE" {
					pools[r.Pool] = r.Name
				}
			}
		}
		out[i].CapacityProviderName = optString(pools[pool])
	}
	return nil
}

// providerTagger tags Auto Scaling group capacity providers.
type providerTagger struct{ s *Service }

func (t providerTagger) tags(ctx context.Context, a arn.ARN) ([]ecsapi.Tag, error) {
	if managedProvider(a.ResourceID()) {
		return nil, nil
	}
	rec, _, err := t.s.getProvider(ctx, a.ResourceID())
	if errs.Is(err, errs.NotFound) {
		return nil, errs.R(errs.NotFound, reasonResourceNotFound, "The specified resource could not be found.")
	}
	return rec.Tags, err
}

func (t providerTagger) updateTags(ctx context.Context, a arn.ARN, change func([]ecsapi.Tag) []ecsapi.Tag) error {
	name := a.ResourceID()
	if managedProvider(name) {
		return errs.R(errs.Invalid, reasonInvalidParameter, "The %s capacity provider is reserved and cannot be tagged.", name)
	}
	for {
		rec, rev, err := t.s.getProvider(ctx, name)
		if errs.Is(err, errs.NotFound) {
			return errs.R(errs.NotFound, reasonResourceNotFound, "The specified resource could not be found.")
		}
		if err != nil {
			return err
		}
		rec.Tags = change(rec.Tags)
		if err := validateTags(rec.Tags); err != nil {
			return err
		}
		b, _ := json.Marshal(rec)
		res, err := t.s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(providerKey(name), rev)}, store.Put(providerKey(name), b))
		if err != nil {
			return err
		}
		if res.Succeeded {
			return nil
		}
	}
}
