package ecs

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/lazyre"
	"github.com/berthdev/berth/internal/store"
)

// DefaultCluster is the cluster used when a request names none.
const DefaultCluster = "default"

var clusterNameRE = lazyre.New(`^[a-zA-Z0-9_-]{1,255}$`)

// clusterName resolves a cluster reference (name, ARN or empty) to a name.
func (s *Service) clusterName(ref *string) (string, error) {
	r := strings.TrimSpace(deref(ref))
	if r == "" {
		return DefaultCluster, nil
	}
	if arn.IsARN(r) {
		a, err := arn.Parse(r)
		if err != nil || a.Service != "ecs" || a.ResourceType() != "cluster" || a.ResourceID() == "" {
			return "", errs.R(errs.Invalid, reasonInvalidParameter, "Invalid cluster ARN: %s", r)
		}
		if a.Account != s.arns.Account || a.Region != s.arns.Region {
			return "", errs.R(errs.NotFound, reasonClusterNotFound, "Cluster not found.")
		}
		return a.ResourceID(), nil
	}
	return r, nil
}

func (s *Service) clusterARN(name string) string { return s.arns.ECS("cluster/" + name) }

// getCluster reads a cluster; ClusterNotFound when absent or INACTIVE
// unless allowInactive.
func (s *Service) getCluster(ctx context.Context, name string, allowInactive bool) (clusterRecord, int64, error) {
	kv, err := s.st.Get(ctx, keyClusters+name)
	if errs.Is(err, errs.NotFound) {
		return clusterRecord{}, 0, errs.R(errs.NotFound, reasonClusterNotFound, "Cluster not found.")
	}
	if err != nil {
		return clusterRecord{}, 0, err
	}
	var c clusterRecord
	if err := json.Unmarshal(kv.Value, &c); err != nil {
		return clusterRecord{}, 0, errs.Wrap(errs.Internal, err, "decode cluster %s", name)
	}
	if c.Status != "ACTIVE" && !allowInactive {
		return clusterRecord{}, 0, errs.R(errs.NotFound, reasonClusterNotFound, "Cluster not found.")
	}
	return c, kv.ModRevision, nil
}

// putCluster writes c if the stored cluster still has revision rev.
func (s *Service) putCluster(ctx context.Context, c clusterRecord, rev int64, extra ...store.Cmp) (bool, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return false, errs.Wrap(errs.Internal, err, "encode cluster")
	}
	key := keyClusters + c.Name
	res, err := s.st.Txn(ctx, append(extra, store.ModRevisionIs(key, rev)), store.Put(key, b))
	if err != nil {
		return false, err
	}
	return res.Succeeded, nil
}

func validateClusterSettings(settings []ecsapi.ClusterSetting) error {
	seen := map[string]bool{}
	for _, st := range settings {
		name := string(deref(st.Name))
		val := deref(st.Value)
		if name != string(ecsapi.ClusterSettingNameContainerInsights) {
			return errs.R(errs.Invalid, reasonInvalidParameter, "Unsupported cluster setting name: %s", name)
		}
		if seen[name] {
			return errs.R(errs.Invalid, reasonInvalidParameter, "Duplicate cluster setting: %s", name)
		}
		seen[name] = true
		switch val {
		case "enabled", "disabled", "enhanced":
		default:
			return errs.R(errs.Invalid, reasonInvalidParameter, "Invalid value for containerInsights setting: '%s'. Valid values are enabled, enhanced and disabled.", val)
		}
	}
	return nil
}

// mergeSettings overlays updates on current settings by name.
func mergeSettings(cur, upd []ecsapi.ClusterSetting) []ecsapi.ClusterSetting {
	out := slices.Clone(cur)
	for _, u := range upd {
		i := slices.IndexFunc(out, func(c ecsapi.ClusterSetting) bool { return deref(c.Name) == deref(u.Name) })
		if i >= 0 {
			out[i] = u
		} else {
			out = append(out, u)
		}
	}
	return out
}

// CreateCluster creates a cluster, or returns the ACTIVE one of that name
// unchanged, as ECS does.
func (s *Service) CreateCluster(ctx context.Context, in *ecsapi.CreateClusterRequest) (*ecsapi.CreateClusterResponse, error) {
	name := deref(in.ClusterName)
	if name == "" {
		name = DefaultCluster
	}
	if !clusterNameRE.MatchString(name) {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Cluster name must be 1 to 255 letters (uppercase and lowercase), numbers, underscores and hyphens.")
	}
	if err := checkClusterProviders(in.CapacityProviders, in.DefaultCapacityProviderStrategy); err != nil {
		return nil, err
	}
	if err := validateClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	settings := in.Settings
	if !slices.ContainsFunc(settings, func(c ecsapi.ClusterSetting) bool {
		return deref(c.Name) == ecsapi.ClusterSettingNameContainerInsights
	}) {
		v, err := s.effectiveSetting(ctx, caller(ctx), string(ecsapi.SettingNameContainerInsights))
		if err != nil {
			return nil, err
		}
		settings = append(slices.Clone(settings), ecsapi.ClusterSetting{Name: ptr(ecsapi.ClusterSettingNameContainerInsights), Value: ptr(v)})
	}
	c := clusterRecord{
		Name:          name,
		ARN:           s.clusterARN(name),
		Status:        "ACTIVE",
		CreatedAt:     s.now().UTC(),
		Settings:      settings,
		Configuration: in.Configuration,
		Tags:          in.Tags,

		CapacityProviders: in.CapacityProviders,
		DefaultStrategy:   in.DefaultCapacityProviderStrategy,
	}
	if in.ServiceConnectDefaults != nil {
		d, err := s.clusterSCDefaults(ctx, deref(in.ServiceConnectDefaults.Namespace))
		if err != nil {
			return nil, err
		}
		c.ServiceConnectDefaults = d
	}
	for {
		cur, rev, err := s.getCluster(ctx, name, true)
		if err == nil && cur.Status == "ACTIVE" {
			out, err := s.clusterOut(ctx, cur, allClusterFields)
			return &ecsapi.CreateClusterResponse{Cluster: &out}, err
		}
		if err != nil && !errs.Is(err, errs.NotFound) {
			return nil, err
		}
		cmps, err := s.checkASGProviders(ctx, name, in.CapacityProviders) // asgproviders.go
		if err != nil {
			return nil, err
		}
		ok, err := s.putCluster(ctx, c, rev, cmps...)
		if err != nil {
			return nil, err
		}
		if ok {
			s.log.Info("cluster created", "cluster", name)
			out, err := s.clusterOut(ctx, c, allClusterFields)
			return &ecsapi.CreateClusterResponse{Cluster: &out}, err
		}
	}
}

var allClusterFields = []ecsapi.ClusterField{ecsapi.ClusterFieldSettings, ecsapi.ClusterFieldConfigurations, ecsapi.ClusterFieldTags}

// clusterCounts are a cluster's live counters.
type clusterCounts struct {
	instances, running, pending, services int32
	// The Fargate ones among running, pending and services.
	fgRunning, fgPending, fgServices int32
	// revision is the store revision the first count was read at: a
	// decision on the counts holds if nothing under the cluster's
	// prefixes changed since (clusterPrefixes).
	revision int64
}

// clusterPrefixes are the key prefixes of what a cluster holds.
func clusterPrefixes(name string) []string {
	return []string{keyInstances + name + "/", keyServices + name + "/", keyTasks + name + "/"}
}

// statusPeek reads the status fields of records written by other packages.
type statusPeek struct {
	Status     string          `json:"status"`
	LastStatus string          `json:"lastStatus"`
	Fargate    json.RawMessage `json:"fargate,omitempty"` // tasks and services on Fargate
}

func (s *Service) countCluster(ctx context.Context, name string) (clusterCounts, error) {
	var n clusterCounts
	count := func(prefix string, f func(statusPeek)) error {
		res, err := s.st.List(ctx, prefix+name+"/", store.ListOptions{})
		if err != nil {
			return err
		}
		if n.revision == 0 {
			n.revision = res.Revision
		}
		for _, kv := range res.KVs {
			var p statusPeek
			if json.Unmarshal(kv.Value, &p) == nil {
				f(p)
			}
		}
		return nil
	}
	if err := count(keyInstances, func(p statusPeek) {
		if p.Status == "ACTIVE" || p.Status == "DRAINING" || p.Status == "REGISTERING" {
			n.instances++
		}
	}); err != nil {
		return n, err
	}
	if err := count(keyServices, func(p statusPeek) {
		if p.Status == "ACTIVE" || p.Status == "DRAINING" {
			n.services++
			if len(p.Fargate) > 0 {
				n.fgServices++
			}
		}
	}); err != nil {
		return n, err
	}
	err := count(keyTasks, func(p statusPeek) {
		fg := len(p.Fargate) > 0
		switch p.LastStatus {
		case "RUNNING":
			n.running++
			if fg {
				n.fgRunning++
			}
		case "STOPPED", "DELETED":
		default:
			n.pending++
			if fg {
				n.fgPending++
			}
		}
	})
	return n, err
}

func (s *Service) clusterOut(ctx context.Context, c clusterRecord, include []ecsapi.ClusterField) (ecsapi.Cluster, error) {
	out := ecsapi.Cluster{
		ClusterArn:                        ptr(c.ARN),
		ClusterName:                       ptr(c.Name),
		Status:                            ptr(c.Status),
		RegisteredContainerInstancesCount: ptr(int32(0)),
		RunningTasksCount:                 ptr(int32(0)),
		PendingTasksCount:                 ptr(int32(0)),
		ActiveServicesCount:               ptr(int32(0)),
		Statistics:                        []ecsapi.KeyValuePair{},
		Tags:                              []ecsapi.Tag{},
		CapacityProviders:                 []string{},
		DefaultCapacityProviderStrategy:   []ecsapi.CapacityProviderStrategyItem{},
		ServiceConnectDefaults:            c.ServiceConnectDefaults,
	}
	if c.CapacityProviders != nil {
		out.CapacityProviders = c.CapacityProviders
	}
	if c.DefaultStrategy != nil {
		out.DefaultCapacityProviderStrategy = c.DefaultStrategy
	}
	if c.Status == "ACTIVE" {
		n, err := s.countCluster(ctx, c.Name)
		if err != nil {
			return out, err
		}
		out.RegisteredContainerInstancesCount = ptr(n.instances)
		out.RunningTasksCount = ptr(n.running)
		out.PendingTasksCount = ptr(n.pending)
		out.ActiveServicesCount = ptr(n.services)
		if slices.Contains(include, ecsapi.ClusterFieldStatistics) {
			out.Statistics = []ecsapi.KeyValuePair{
				{Name: ptr("runningEC2TasksCount"), Value: ptr(itoa(n.running - n.fgRunning))},
				{Name: ptr("runningFargateTasksCount"), Value: ptr(itoa(n.fgRunning))},
				{Name: ptr("pendingEC2TasksCount"), Value: ptr(itoa(n.pending - n.fgPending))},
				{Name: ptr("pendingFargateTasksCount"), Value: ptr(itoa(n.fgPending))},
				{Name: ptr("activeEC2ServiceCount"), Value: ptr(itoa(n.services - n.fgServices))},
				{Name: ptr("activeFargateServiceCount"), Value: ptr(itoa(n.fgServices))},
				{Name: ptr("drainingEC2ServiceCount"), Value: ptr("0")},
				{Name: ptr("drainingFargateServiceCount"), Value: ptr("0")},
			}
		}
	}
	if slices.Contains(include, ecsapi.ClusterFieldTags) && c.Tags != nil {
		out.Tags = c.Tags
	}
	if slices.Contains(include, ecsapi.ClusterFieldSettings) {
		out.Settings = c.Settings
		if out.Settings == nil {
			out.Settings = []ecsapi.ClusterSetting{}
		}
	}
	if slices.Contains(include, ecsapi.ClusterFieldConfigurations) {
		out.Configuration = c.Configuration
	}
	if slices.Contains(include, ecsapi.ClusterFieldAttachments) {
		out.Attachments = []ecsapi.Attachment{}
	}
	return out, nil
}

// DescribeClusters describes clusters; unknown ones come back as MISSING
// failures, never as an error.
func (s *Service) DescribeClusters(ctx context.Context, in *ecsapi.DescribeClustersRequest) (*ecsapi.DescribeClustersResponse, error) {
	refs := in.Clusters
	if len(refs) == 0 {
		refs = []string{DefaultCluster}
	}
	if len(refs) > 100 {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "The clusters parameter accepts at most 100 entries.")
	}
	out := &ecsapi.DescribeClustersResponse{Clusters: []ecsapi.Cluster{}, Failures: []ecsapi.Failure{}}
	for _, ref := range refs {
		name, err := s.clusterName(&ref)
		if err == nil {
			var c clusterRecord
			c, _, err = s.getCluster(ctx, name, true)
			if err == nil {
				cl, err := s.clusterOut(ctx, c, in.Include)
				if err != nil {
					return nil, err
				}
				out.Clusters = append(out.Clusters, cl)
				continue
			}
		}
		if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Invalid) {
			a := ref
			if !arn.IsARN(ref) {
				a = s.clusterARN(ref)
			}
			out.Failures = append(out.Failures, ecsapi.Failure{Arn: ptr(a), Reason: ptr("MISSING")})
			continue
		}
		return nil, err
	}
	return out, nil
}

// listPage is the position of a paginated list.
type listPage struct {
	After string `json:"a"`
}

// pagePosition reads a list request's page size (def when absent, at
// most hi) and the position its nextToken resumes after.
func pagePosition(max *int32, token *string, def, hi int32) (int64, string, error) {
	limit, err := pageLimit(max, def, hi)
	if err != nil {
		return 0, "", err
	}
	after, err := startAfter(token)
	return limit, after, err
}

func pageLimit(max *int32, def, hi int32) (int64, error) {
	if max == nil {
		return int64(def), nil
	}
	if *max < 1 || *max > hi {
		return 0, errs.R(errs.Invalid, reasonInvalidParameter, "maxResults must be between 1 and %d.", hi)
	}
	return int64(*max), nil
}

func startAfter(token *string) (string, error) {
	if deref(token) == "" {
		return "", nil
	}
	var p listPage
	if err := awsproto.DecodeToken(*token, &p); err != nil {
		return "", errs.R(errs.Invalid, reasonInvalidParameter, "Invalid nextToken.")
	}
	return p.After, nil
}

// paginate walks the keys under prefix in order, after the key suffix
// `after`, taking those that match until limit are taken. It returns the
// token for the next page, or nil when no further key matches.
func (s *Service) paginate(ctx context.Context, prefix, after string, limit int64, desc bool,
	match func(store.KV) bool, take func(store.KV)) (*string, error) {
	return s.paginateWith(ctx, prefix, after, limit, desc, nil, match, take)
}

// paginateWith is paginate with load, when not nil, applied to each page
// of keys read before matching: it returns the KVs to match in their
// place, keeping each key (positions are keys under prefix); a key it
// leaves out is skipped.
func (s *Service) paginateWith(ctx context.Context, prefix, after string, limit int64, desc bool,
	load func([]store.KV) ([]store.KV, error), match func(store.KV) bool, take func(store.KV)) (*string, error) {
	from := ""
	if after != "" {
		from = prefix + after
	}
	var n int64
	last := ""
	page := int64(200)
	if load != nil {
		page = min(page, limit+1) // each key costs a read: read what a full page needs
	}
	for {
		res, err := s.st.List(ctx, prefix, store.ListOptions{StartAfter: from, Limit: page, Descend: desc})
		if err != nil {
			return nil, err
		}
		kvs := res.KVs
		if load != nil && len(kvs) > 0 {
			if kvs, err = load(kvs); err != nil {
				return nil, err
			}
		}
		for _, kv := range kvs {
			if !match(kv) {
				continue
			}
			if n == limit {
				return ptr(awsproto.EncodeToken(listPage{After: strings.TrimPrefix(last, prefix)})), nil
			}
			take(kv)
			n++
			last = kv.Key
		}
		if !res.More {
			return nil, nil
		}
		from = res.KVs[len(res.KVs)-1].Key // the next page starts after this one, whatever load kept
	}
}

// ListClusters lists ACTIVE clusters' ARNs.
func (s *Service) ListClusters(ctx context.Context, in *ecsapi.ListClustersRequest) (*ecsapi.ListClustersResponse, error) {
	limit, after, err := pagePosition(in.MaxResults, in.NextToken, 100, 100)
	if err != nil {
		return nil, err
	}
	out := &ecsapi.ListClustersResponse{ClusterArns: []string{}}
	var c clusterRecord
	out.NextToken, err = s.paginate(ctx, keyClusters, after, limit, false,
		func(kv store.KV) bool {
			c = clusterRecord{}
			return json.Unmarshal(kv.Value, &c) == nil && c.Status == "ACTIVE"
		},
		func(store.KV) { out.ClusterArns = append(out.ClusterArns, c.ARN) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// updateCluster applies change to an ACTIVE cluster with optimistic
// concurrency and returns the new cluster with every field.
func (s *Service) updateCluster(ctx context.Context, ref *string, change func(*clusterRecord) error) (ecsapi.Cluster, error) {
	name, err := s.clusterName(ref)
	if err != nil {
		return ecsapi.Cluster{}, err
	}
	for {
		c, rev, err := s.getCluster(ctx, name, false)
		if err != nil {
			return ecsapi.Cluster{}, err
		}
		if err := change(&c); err != nil {
			return ecsapi.Cluster{}, err
		}
		ok, err := s.putCluster(ctx, c, rev)
		if err != nil {
			return ecsapi.Cluster{}, err
		}
		if ok {
			return s.clusterOut(ctx, c, allClusterFields)
		}
	}
}

// UpdateCluster changes a cluster's settings, configuration and Service
// Connect defaults.
func (s *Service) UpdateCluster(ctx context.Context, in *ecsapi.UpdateClusterRequest) (*ecsapi.UpdateClusterResponse, error) {
	if err := validateClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	var scDefaults *ecsapi.ClusterServiceConnectDefaults
	if in.ServiceConnectDefaults != nil && deref(in.ServiceConnectDefaults.Namespace) != "" {
		if _, err := s.clusterName(in.Cluster); err != nil {
			return nil, err
		}
		d, err := s.clusterSCDefaults(ctx, deref(in.ServiceConnectDefaults.Namespace))
		if err != nil {
			return nil, err
		}
		scDefaults = d
	}
	c, err := s.updateCluster(ctx, in.Cluster, func(c *clusterRecord) error {
		if in.Settings != nil {
			c.Settings = mergeSettings(c.Settings, in.Settings)
		}
		if in.Configuration != nil {
			c.Configuration = in.Configuration
		}
		if in.ServiceConnectDefaults != nil {
			if deref(in.ServiceConnectDefaults.Namespace) == "" {
				c.ServiceConnectDefaults = nil
			} else {
				c.ServiceConnectDefaults = scDefaults
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.UpdateClusterResponse{Cluster: &c}, nil
}

// UpdateClusterSettings changes a cluster's settings.
func (s *Service) UpdateClusterSettings(ctx context.Context, in *ecsapi.UpdateClusterSettingsRequest) (*ecsapi.UpdateClusterSettingsResponse, error) {
	if err := validateClusterSettings(in.Settings); err != nil {
		return nil, err
	}
	c, err := s.updateCluster(ctx, in.Cluster, func(c *clusterRecord) error {
		c.Settings = mergeSettings(c.Settings, in.Settings)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.UpdateClusterSettingsResponse{Cluster: &c}, nil
}

// DeleteCluster marks a cluster INACTIVE. ECS refuses while container
// instances, services or tasks remain in it.
func (s *Service) DeleteCluster(ctx context.Context, in *ecsapi.DeleteClusterRequest) (*ecsapi.DeleteClusterResponse, error) {
	name, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	for {
		c, rev, err := s.getCluster(ctx, name, false)
		if err != nil {
			return nil, err
		}
		n, err := s.countCluster(ctx, name)
		if err != nil {
			return nil, err
		}
		switch {
		case n.instances > 0:
			return nil, errs.R(errs.Conflict, reasonClusterInstances, "The Cluster cannot be deleted while Container Instances are active or draining.")
		case n.services > 0:
			return nil, errs.R(errs.Conflict, reasonClusterServices, "The Cluster cannot be deleted while Services are active.")
		case n.running+n.pending > 0:
			return nil, errs.R(errs.Conflict, reasonClusterTasks, "The Cluster cannot be deleted while Tasks are active.")
		}
		c.Status = "INACTIVE"
		c.InactiveAt = ptr(s.now().UTC())
		// The counts must still hold when the cluster goes INACTIVE: a
		// service, instance or task created since they were read makes the
		// commit fail and the check run again (CreateService, for its part,
		// commits only if the cluster is unchanged).
		cmps := []store.Cmp{store.ModRevisionIs(keyClusters+name, rev)}
		for _, p := range clusterPrefixes(name) {
			cmps = append(cmps, store.PrefixUnchangedSince(p, n.revision))
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "encode cluster")
		}
		res, err := s.st.Txn(ctx, cmps, store.Put(keyClusters+name, b))
		if err != nil {
			return nil, err
		}
		ok := res.Succeeded
		if ok {
			s.log.Info("cluster deleted", "cluster", name)
			out, err := s.clusterOut(ctx, c, allClusterFields)
			return &ecsapi.DeleteClusterResponse{Cluster: &out}, err
		}
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func encodeAfter(after string) string { return awsproto.EncodeToken(listPage{After: after}) }
