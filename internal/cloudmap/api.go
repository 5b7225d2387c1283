// Package cloudmap is Berth's AWS Cloud Map (servicediscovery, JSON 1.1):
// namespaces, services and instances in the store (registry.go), the API
// over them (this file), a catalog that follows them into an immutable
// snapshot (catalog.go) for the data planes, a DNS server answering the
// private DNS namespaces from that snapshot (dns.go), and the controller
// that registers the tasks of ECS services with serviceRegistries
// (ecs.go).
package cloudmap

import (
	"cmp"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	sd "github.com/berthdev/berth/internal/api/servicediscoveryapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/lazyre"
	"github.com/berthdev/berth/internal/store"
)

// Config configures the Cloud Map service.
type Config struct {
	Partition string // default "aws"
	Region    string
	Account   string
}

// API implements the Cloud Map API over a Registry.
type API struct {
	reg  *Registry
	cfg  Config
	arns arn.Builder
	log  *slog.Logger
}

// New returns the Cloud Map service over st.
func New(st store.Store, cfg Config, log *slog.Logger) *API {
	if cfg.Partition == "" {
		cfg.Partition = "aws"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{reg: NewRegistry(st), cfg: cfg, log: log,
		arns: arn.Builder{Partition: cfg.Partition, Region: cfg.Region, Account: cfg.Account}}
}

// Registry returns the registry under the API (the ECS controller
// registers through it).
func (a *API) Registry() *Registry { return a.reg }

// SetClock replaces the clock (tests).
func (a *API) SetClock(now func() time.Time) { a.reg.now = now }

// Service returns the Cloud Map service for the front door.
func (a *API) Service() *awsproto.Service {
	h := &sd.Handlers{
		CreateHttpNamespace:              a.CreateHttpNamespace,
		CreatePrivateDnsNamespace:        a.CreatePrivateDnsNamespace,
		GetNamespace:                     a.GetNamespace,
		ListNamespaces:                   a.ListNamespaces,
		UpdateHttpNamespace:              a.UpdateHttpNamespace,
		UpdatePrivateDnsNamespace:        a.UpdatePrivateDnsNamespace,
		DeleteNamespace:                  a.DeleteNamespace,
		CreateService:                    a.CreateService,
		GetService:                       a.GetService,
		ListServices:                     a.ListServices,
		UpdateService:                    a.UpdateService,
		DeleteService:                    a.DeleteService,
		GetServiceAttributes:             a.GetServiceAttributes,
		UpdateServiceAttributes:          a.UpdateServiceAttributes,
		DeleteServiceAttributes:          a.DeleteServiceAttributes,
		RegisterInstance:                 a.RegisterInstance,
		DeregisterInstance:               a.DeregisterInstance,
		GetInstance:                      a.GetInstance,
		ListInstances:                    a.ListInstances,
		DiscoverInstances:                a.DiscoverInstances,
		DiscoverInstancesRevision:        a.DiscoverInstancesRevision,
		GetInstancesHealthStatus:         a.GetInstancesHealthStatus,
		UpdateInstanceCustomHealthStatus: a.UpdateInstanceCustomHealthStatus,
		GetOperation:                     a.GetOperation,
		ListOperations:                   a.ListOperations,
		TagResource:                      a.TagResource,
		UntagResource:                    a.UntagResource,
		ListTagsForResource:              a.ListTagsForResource,
	}
	svc := h.Service()
	svc.ValidationCode = sd.ErrInvalidInput
	svc.MapError = MapError
	return svc
}

var errorMap = awsproto.ErrorMap{
	Reasons: map[string]string{
		ReasonNamespaceNotFound:   sd.ErrNamespaceNotFound,
		ReasonServiceNotFound:     sd.ErrServiceNotFound,
		ReasonInstanceNotFound:    sd.ErrInstanceNotFound,
		ReasonOperationNotFound:   sd.ErrOperationNotFound,
		ReasonResourceNotFound:    sd.ErrResourceNotFoundException,
		ReasonNamespaceExists:     sd.ErrNamespaceAlreadyExists,
		ReasonServiceExists:       sd.ErrServiceAlreadyExists,
		ReasonInUse:               sd.ErrResourceInUse,
		ReasonDuplicateRequest:    sd.ErrDuplicateRequest,
		ReasonCustomHealthMissing: sd.ErrCustomHealthNotFound,
		ReasonTooManyTags:         sd.ErrTooManyTagsException,
	},
	Kinds: map[errs.Kind]string{
		errs.Invalid:       sd.ErrInvalidInput,
		errs.NotFound:      sd.ErrResourceNotFoundException,
		errs.AlreadyExists: sd.ErrInvalidInput,
		errs.Conflict:      sd.ErrDuplicateRequest,
		errs.LimitExceeded: sd.ErrResourceLimitExceeded,
		errs.Unsupported:   sd.ErrInvalidInput,
	},
	ServerCode: "InternalFailure",
}

// MapError maps domain errors to Cloud Map's wire errors.
func MapError(err error) *awsproto.Error { return errorMap.Map(err) }

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func invalid(format string, args ...any) error { return errs.E(errs.Invalid, format, args...) }

func (a *API) now() time.Time { return a.reg.now().UTC() }

// --- namespaces ---

const maxTags = 50

func tagMap(tags []sd.Tag) (map[string]string, error) {
	if len(tags) > maxTags {
		return nil, errs.R(errs.LimitExceeded, ReasonTooManyTags, "A resource can have no more than %d tags.", maxTags)
	}
	if len(tags) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, t := range tags {
		m[deref(t.Key)] = deref(t.Value)
	}
	return m, nil
}

// dnsLabel checks a DNS name of labels of letters, digits and hyphens.
var dnsLabel = lazyre.New(`^[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?$`)

func checkDNSName(name string) error {
	n := strings.TrimSuffix(name, ".")
	if n == "" || len(n) > 253 {
		return invalid("Namespace name %s is not a valid DNS name.", name)
	}
	for _, l := range strings.Split(n, ".") {
		if !dnsLabel.MatchString(l) {
			return invalid("Namespace name %s is not a valid DNS name.", name)
		}
	}
	return nil
}

func (a *API) CreateHttpNamespace(ctx context.Context, in *sd.CreateHttpNamespaceRequest) (*sd.CreateHttpNamespaceResponse, error) {
	tags, err := tagMap(in.Tags)
	if err != nil {
		return nil, err
	}
	id := newNamespaceID()
	op, err := a.reg.CreateNamespace(ctx, Namespace{ID: id, ARN: a.arns.Service("servicediscovery", "namespace/"+id), Name: deref(in.Name), Type: TypeHTTP,
		Description: deref(in.Description), CreatorRequestID: deref(in.CreatorRequestId), Created: a.now(), Tags: tags})
	if err != nil {
		return nil, err
	}
	return &sd.CreateHttpNamespaceResponse{OperationId: &op}, nil
}

func (a *API) CreatePrivateDnsNamespace(ctx context.Context, in *sd.CreatePrivateDnsNamespaceRequest) (*sd.CreatePrivateDnsNamespaceResponse, error) {
	if err := checkDNSName(deref(in.Name)); err != nil {
		return nil, err
	}
	tags, err := tagMap(in.Tags)
	if err != nil {
		return nil, err
	}
	ttl := int64(defaultSOATTL)
	if in.Properties != nil && in.Properties.DnsProperties != nil && in.Properties.DnsProperties.SOA != nil {
		ttl = deref(in.Properties.DnsProperties.SOA.TTL)
	}
	id := newNamespaceID()
	op, err := a.reg.CreateNamespace(ctx, Namespace{ID: id, ARN: a.arns.Service("servicediscovery", "namespace/"+id), Name: strings.TrimSuffix(deref(in.Name), "."),
		Type: TypeDNSPrivate, Description: deref(in.Description), CreatorRequestID: deref(in.CreatorRequestId), VPC: deref(in.Vpc),
		HostedZoneID: "Z" + strings.ToUpper(randomID(20)), SOATTL: ttl, Created: a.now(), Tags: tags})
	if err != nil {
		return nil, err
	}
	return &sd.CreatePrivateDnsNamespaceResponse{OperationId: &op}, nil
}

func (a *API) wireNamespace(ns Namespace, count int) *sd.Namespace {
	typ := sd.NamespaceType(ns.Type)
	out := &sd.Namespace{Arn: ptr(ns.ARN), Id: ptr(ns.ID), Name: ptr(ns.Name), Type: &typ, CreateDate: awsproto.NewTime(ns.Created),
		ResourceOwner: ptr(a.cfg.Account), ServiceCount: ptr(int32(count)),
		Properties: &sd.NamespaceProperties{HttpProperties: &sd.HttpProperties{HttpName: ptr(ns.Name)}}}
	if ns.Description != "" {
		out.Description = ptr(ns.Description)
	}
	if ns.CreatorRequestID != "" {
		out.CreatorRequestId = ptr(ns.CreatorRequestID)
	}
	if ns.IsDNS() {
		out.Properties.DnsProperties = &sd.DnsProperties{HostedZoneId: ptr(ns.HostedZoneID), SOA: &sd.SOA{TTL: ptr(ns.SOATTL)}}
	}
	return out
}

func (a *API) serviceCounts(ctx context.Context) (map[string]int, error) {
	svcs, err := a.reg.Services(ctx)
	if err != nil {
		return nil, err
	}
	n := map[string]int{}
	for _, s := range svcs {
		n[s.NamespaceID]++
	}
	return n, nil
}

func (a *API) GetNamespace(ctx context.Context, in *sd.GetNamespaceRequest) (*sd.GetNamespaceResponse, error) {
	ns, _, err := a.reg.Namespace(ctx, deref(in.Id))
	if err != nil {
		return nil, err
	}
	n, err := a.serviceCounts(ctx)
	if err != nil {
		return nil, err
	}
	return &sd.GetNamespaceResponse{Namespace: a.wireNamespace(ns, n[ns.ID])}, nil
}

// matchFilter applies an EQ, IN or BEGINS_WITH filter to value.
func matchFilter(cond string, values []string, value string) bool {
	switch cond {
	case "", "EQ":
		return len(values) > 0 && values[0] == value
	case "IN":
		return slices.Contains(values, value)
	case "BEGINS_WITH":
		return len(values) > 0 && strings.HasPrefix(value, values[0])
	}
	return false
}

func checkCondition(name, cond string, allowed ...string) error {
	if cond == "" || slices.Contains(allowed, cond) {
		return nil
	}
	return invalid("The %s filter does not support the %s condition; use %s.", name, cond, strings.Join(allowed, " or "))
}

// page cuts a list sorted by key after the position in token.
func page[T any](items []T, key func(T) string, token *string, max *int32) ([]T, *string, error) {
	var after string
	if token != nil {
		if err := awsproto.DecodeToken(*token, &after); err != nil {
			return nil, nil, invalid("The specified NextToken is not valid.")
		}
	}
	slices.SortFunc(items, func(x, y T) int { return cmp.Compare(key(x), key(y)) })
	if after != "" {
		i, _ := slices.BinarySearchFunc(items, after, func(x T, k string) int { return cmp.Compare(key(x), k) })
		for i < len(items) && key(items[i]) <= after {
			i++
		}
		items = items[i:]
	}
	n := int(deref(max))
	if n <= 0 {
		n = 100
	}
	if len(items) > n {
		return items[:n], ptr(awsproto.EncodeToken(key(items[n-1]))), nil
	}
	return items, nil, nil
}

func (a *API) ListNamespaces(ctx context.Context, in *sd.ListNamespacesRequest) (*sd.ListNamespacesResponse, error) {
	for _, f := range in.Filters {
		name := string(deref(f.Name))
		cond := string(deref(f.Condition))
		switch name {
		case "TYPE", "RESOURCE_OWNER":
			if err := checkCondition(name, cond, "EQ", "IN"); err != nil {
				return nil, err
			}
		default:
			if err := checkCondition(name, cond, "EQ", "BEGINS_WITH"); err != nil {
				return nil, err
			}
		}
	}
	all, err := a.reg.Namespaces(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := a.serviceCounts(ctx)
	if err != nil {
		return nil, err
	}
	var keep []Namespace
next:
	for _, ns := range all {
		for _, f := range in.Filters {
			v := ns.Name
			switch deref(f.Name) {
			case "TYPE":
				v = ns.Type
			case "RESOURCE_OWNER":
				v = a.cfg.Account
			}
			if !matchFilter(string(deref(f.Condition)), f.Values, v) {
				continue next
			}
		}
		keep = append(keep, ns)
	}
	keep, tok, err := page(keep, func(n Namespace) string { return n.ID }, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &sd.ListNamespacesResponse{Namespaces: []sd.NamespaceSummary{}, NextToken: tok}
	for _, ns := range keep {
		w := a.wireNamespace(ns, counts[ns.ID])
		out.Namespaces = append(out.Namespaces, sd.NamespaceSummary{Arn: w.Arn, CreateDate: w.CreateDate, Description: w.Description, Id: w.Id,
			Name: w.Name, Properties: w.Properties, ResourceOwner: w.ResourceOwner, ServiceCount: w.ServiceCount, Type: w.Type})
	}
	return out, nil
}

func (a *API) updateNamespace(ctx context.Context, id string, want string, change func(*Namespace)) (string, error) {
	return a.reg.UpdateNamespace(ctx, id, func(ns *Namespace) error {
		if ns.Type != want {
			return invalid("Namespace %s is of type %s, not %s.", id, ns.Type, want)
		}
		change(ns)
		return nil
	})
}

func (a *API) UpdateHttpNamespace(ctx context.Context, in *sd.UpdateHttpNamespaceRequest) (*sd.UpdateHttpNamespaceResponse, error) {
	op, err := a.updateNamespace(ctx, deref(in.Id), TypeHTTP, func(ns *Namespace) { ns.Description = deref(in.Namespace.Description) })
	if err != nil {
		return nil, err
	}
	return &sd.UpdateHttpNamespaceResponse{OperationId: &op}, nil
}

func (a *API) UpdatePrivateDnsNamespace(ctx context.Context, in *sd.UpdatePrivateDnsNamespaceRequest) (*sd.UpdatePrivateDnsNamespaceResponse, error) {
	ch := in.Namespace
	if ch.Description == nil && ch.Properties == nil {
		return nil, invalid("Specify at least one of Description and Properties.")
	}
	op, err := a.updateNamespace(ctx, deref(in.Id), TypeDNSPrivate, func(ns *Namespace) {
		if ch.Description != nil {
			ns.Description = *ch.Description
		}
		if ch.Properties != nil && ch.Properties.DnsProperties != nil && ch.Properties.DnsProperties.SOA != nil {
			ns.SOATTL = deref(ch.Properties.DnsProperties.SOA.TTL)
		}
	})
	if err != nil {
		return nil, err
	}
	return &sd.UpdatePrivateDnsNamespaceResponse{OperationId: &op}, nil
}

func (a *API) DeleteNamespace(ctx context.Context, in *sd.DeleteNamespaceRequest) (*sd.DeleteNamespaceResponse, error) {
	op, err := a.reg.DeleteNamespace(ctx, deref(in.Id))
	if err != nil {
		return nil, err
	}
	return &sd.DeleteNamespaceResponse{OperationId: &op}, nil
}

// --- services ---

// checkRecords validates a service's record set as Cloud Map does: one
// record per type, CNAME alone, and no CNAME with WEIGHTED... routing.
func checkRecords(recs []sd.DnsRecord) ([]DNSRecord, error) {
	if len(recs) == 0 {
		return nil, invalid("DnsRecords must contain at least one record.")
	}
	var out []DNSRecord
	seen := map[string]bool{}
	for _, r := range recs {
		t := string(deref(r.Type))
		if seen[t] {
			return nil, invalid("DnsRecords contains more than one record of type %s.", t)
		}
		seen[t] = true
		out = append(out, DNSRecord{Type: t, TTL: deref(r.TTL)})
	}
	if seen["CNAME"] && len(recs) > 1 {
		return nil, invalid("A CNAME record can't be combined with other record types.")
	}
	return out, nil
}

func (a *API) CreateService(ctx context.Context, in *sd.CreateServiceRequest) (*sd.CreateServiceResponse, error) {
	nsID := deref(in.NamespaceId)
	if nsID == "" && in.DnsConfig != nil {
		nsID = deref(in.DnsConfig.NamespaceId)
	}
	if nsID == "" {
		return nil, invalid("NamespaceId is required.")
	}
	if in.HealthCheckConfig != nil && in.HealthCheckCustomConfig != nil {
		return nil, invalid("HealthCheckConfig and HealthCheckCustomConfig can't both be specified.")
	}
	if in.DnsConfig != nil && deref(in.Type) == sd.ServiceTypeOptionHttp {
		return nil, invalid("A service of type HTTP can't have a DnsConfig.")
	}
	ns, _, err := a.reg.Namespace(ctx, nsID)
	if err != nil {
		return nil, err
	}
	if in.HealthCheckConfig != nil && ns.Type != TypeDNSPublic {
		return nil, invalid("HealthCheckConfig is supported only in public DNS namespaces; use HealthCheckCustomConfig.")
	}
	tags, err := tagMap(in.Tags)
	if err != nil {
		return nil, err
	}
	id := newServiceID()
	svc := Service{ID: id, ARN: a.arns.Service("servicediscovery", "service/"+id), Name: deref(in.Name), NamespaceID: nsID, Type: "HTTP",
		Description: deref(in.Description), CreatorRequestID: deref(in.CreatorRequestId), Created: a.now(), Tags: tags}
	if in.DnsConfig != nil {
		if !ns.IsDNS() {
			return nil, invalid("DnsConfig can't be specified for a service in the HTTP namespace %s.", nsID)
		}
		recs, err := checkRecords(in.DnsConfig.DnsRecords)
		if err != nil {
			return nil, err
		}
		svc.Records = recs
		svc.Type = "DNS_HTTP"
		svc.RoutingPolicy = string(deref(in.DnsConfig.RoutingPolicy))
		if svc.RoutingPolicy == "" {
			svc.RoutingPolicy = "MULTIVALUE"
		}
		if svc.HasRecord("CNAME") && svc.RoutingPolicy != "WEIGHTED" {
			return nil, invalid("A CNAME record requires the WEIGHTED routing policy.")
		}
	}
	if in.HealthCheckCustomConfig != nil {
		svc.CustomHealth = true
		svc.FailureThreshold = deref(in.HealthCheckCustomConfig.FailureThreshold)
	}
	svc, err = a.reg.CreateService(ctx, svc)
	if err != nil {
		return nil, err
	}
	return &sd.CreateServiceResponse{Service: a.wireService(svc, 0)}, nil
}

func (a *API) wireService(s Service, count int) *sd.Service {
	typ := sd.ServiceType(s.Type)
	out := &sd.Service{Arn: ptr(s.ARN), Id: ptr(s.ID), Name: ptr(s.Name), NamespaceId: ptr(s.NamespaceID), Type: &typ,
		CreateDate: awsproto.NewTime(s.Created), CreatedByAccount: ptr(a.cfg.Account), ResourceOwner: ptr(a.cfg.Account), InstanceCount: ptr(int32(count))}
	if s.Description != "" {
		out.Description = ptr(s.Description)
	}
	if s.CreatorRequestID != "" {
		out.CreatorRequestId = ptr(s.CreatorRequestID)
	}
	if len(s.Records) > 0 {
		pol := sd.RoutingPolicy(s.RoutingPolicy)
		dc := &sd.DnsConfig{NamespaceId: ptr(s.NamespaceID), RoutingPolicy: &pol, DnsRecords: []sd.DnsRecord{}}
		for _, r := range s.Records {
			dc.DnsRecords = append(dc.DnsRecords, sd.DnsRecord{Type: ptr(sd.RecordType(r.Type)), TTL: ptr(r.TTL)})
		}
		out.DnsConfig = dc
	}
	if s.CustomHealth {
		out.HealthCheckCustomConfig = &sd.HealthCheckCustomConfig{}
		if s.FailureThreshold != 0 {
			out.HealthCheckCustomConfig.FailureThreshold = ptr(s.FailureThreshold)
		}
	}
	return out
}

func (a *API) instanceCounts(ctx context.Context) (map[string]int, error) {
	res, err := a.reg.st.List(ctx, keyInstances, store.ListOptions{KeysOnly: true})
	if err != nil {
		return nil, err
	}
	n := map[string]int{}
	for _, kv := range res.KVs {
		svc, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, keyInstances), "/")
		n[svc]++
	}
	return n, nil
}

func (a *API) GetService(ctx context.Context, in *sd.GetServiceRequest) (*sd.GetServiceResponse, error) {
	s, _, err := a.reg.Service(ctx, deref(in.Id))
	if err != nil {
		return nil, err
	}
	insts, _, err := a.reg.Instances(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	return &sd.GetServiceResponse{Service: a.wireService(s, len(insts))}, nil
}

func (a *API) ListServices(ctx context.Context, in *sd.ListServicesRequest) (*sd.ListServicesResponse, error) {
	for _, f := range in.Filters {
		if err := checkCondition(string(deref(f.Name)), string(deref(f.Condition)), "EQ", "IN"); err != nil {
			return nil, err
		}
	}
	all, err := a.reg.Services(ctx)
	if err != nil {
		return nil, err
	}
	counts, err := a.instanceCounts(ctx)
	if err != nil {
		return nil, err
	}
	var keep []Service
next:
	for _, s := range all {
		for _, f := range in.Filters {
			v := s.NamespaceID
			if deref(f.Name) == "RESOURCE_OWNER" {
				v = a.cfg.Account
			}
			if !matchFilter(string(deref(f.Condition)), f.Values, v) {
				continue next
			}
		}
		keep = append(keep, s)
	}
	keep, tok, err := page(keep, func(s Service) string { return s.ID }, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &sd.ListServicesResponse{Services: []sd.ServiceSummary{}, NextToken: tok}
	for _, s := range keep {
		w := a.wireService(s, counts[s.ID])
		out.Services = append(out.Services, sd.ServiceSummary{Arn: w.Arn, CreateDate: w.CreateDate, CreatedByAccount: w.CreatedByAccount, Description: w.Description,
			DnsConfig: w.DnsConfig, HealthCheckCustomConfig: w.HealthCheckCustomConfig, Id: w.Id, InstanceCount: w.InstanceCount, Name: w.Name,
			ResourceOwner: w.ResourceOwner, Type: w.Type})
	}
	return out, nil
}

func (a *API) UpdateService(ctx context.Context, in *sd.UpdateServiceRequest) (*sd.UpdateServiceResponse, error) {
	ch := in.Service
	op, err := a.reg.UpdateService(ctx, deref(in.Id), true, func(s *Service) error {
		if ch.HealthCheckConfig != nil {
			return invalid("HealthCheckConfig is supported only in public DNS namespaces.")
		}
		if ch.Description != nil {
			s.Description = *ch.Description
		}
		if ch.DnsConfig != nil {
			if len(s.Records) == 0 {
				return invalid("Service %s has no DnsConfig to update.", s.ID)
			}
			recs, err := checkRecords(ch.DnsConfig.DnsRecords)
			if err != nil {
				return err
			}
			old := slices.Sorted(func(yield func(string) bool) {
				for _, r := range s.Records {
					yield(r.Type)
				}
			})
			now := slices.Sorted(func(yield func(string) bool) {
				for _, r := range recs {
					yield(r.Type)
				}
			})
			if !slices.Equal(old, now) {
				return invalid("The record types of a service can't be changed; only their TTLs.")
			}
			s.Records = recs
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &sd.UpdateServiceResponse{OperationId: &op}, nil
}

func (a *API) DeleteService(ctx context.Context, in *sd.DeleteServiceRequest) (*sd.DeleteServiceResponse, error) {
	return &sd.DeleteServiceResponse{}, a.reg.DeleteService(ctx, deref(in.Id))
}

const maxServiceAttributes = 30

func (a *API) GetServiceAttributes(ctx context.Context, in *sd.GetServiceAttributesRequest) (*sd.GetServiceAttributesResponse, error) {
	s, _, err := a.reg.Service(ctx, deref(in.ServiceId))
	if err != nil {
		return nil, err
	}
	attrs := cloneMap(s.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	return &sd.GetServiceAttributesResponse{ServiceAttributes: &sd.ServiceAttributes{ServiceArn: ptr(s.ARN), ResourceOwner: ptr(a.cfg.Account), Attributes: attrs}}, nil
}

func (a *API) UpdateServiceAttributes(ctx context.Context, in *sd.UpdateServiceAttributesRequest) (*sd.UpdateServiceAttributesResponse, error) {
	_, err := a.reg.UpdateService(ctx, deref(in.ServiceId), false, func(s *Service) error {
		if s.Attributes == nil {
			s.Attributes = map[string]string{}
		}
		for k, v := range in.Attributes {
			s.Attributes[k] = v
		}
		if len(s.Attributes) > maxServiceAttributes {
			return errs.R(errs.LimitExceeded, "", "A service can have at most %d attributes.", maxServiceAttributes)
		}
		return nil
	})
	return &sd.UpdateServiceAttributesResponse{}, err
}

func (a *API) DeleteServiceAttributes(ctx context.Context, in *sd.DeleteServiceAttributesRequest) (*sd.DeleteServiceAttributesResponse, error) {
	_, err := a.reg.UpdateService(ctx, deref(in.ServiceId), false, func(s *Service) error {
		for _, k := range in.Attributes {
			delete(s.Attributes, k)
		}
		return nil
	})
	return &sd.DeleteServiceAttributesResponse{}, err
}

// --- instances ---

// CheckInstance validates an instance's attributes against its service's
// records, and sets its initial health.
func CheckInstance(s *Service, inst *Instance) error {
	at := inst.Attributes
	if len(at) > 30 {
		return invalid("An instance can have at most 30 attributes.")
	}
	if v, ok := at[AttrIPv4]; ok {
		if ip, err := netip.ParseAddr(v); err != nil || !ip.Is4() {
			return invalid("AWS_INSTANCE_IPV4 %q is not a valid IPv4 address.", v)
		}
	}
	if v, ok := at[AttrIPv6]; ok {
		if ip, err := netip.ParseAddr(v); err != nil || !ip.Is6() {
			return invalid("AWS_INSTANCE_IPV6 %q is not a valid IPv6 address.", v)
		}
	}
	if v, ok := at[AttrPort]; ok {
		if p, err := strconv.Atoi(v); err != nil || p < 0 || p > 65535 {
			return invalid("AWS_INSTANCE_PORT %q is not a valid port (0-65535).", v)
		}
	}
	need := func(rec, attr string) error {
		if s.HasRecord(rec) && at[attr] == "" {
			return invalid("Service %s has a DnsConfig with a %s record; the instance must have the %s attribute.", s.ID, rec, attr)
		}
		return nil
	}
	if _, alias := at[AttrAlias]; !alias {
		if err := cmp.Or(need("A", AttrIPv4), need("AAAA", AttrIPv6), need("SRV", AttrPort), need("CNAME", AttrCNAME)); err != nil {
			return err
		}
		if s.HasRecord("SRV") && at[AttrIPv4] == "" && at[AttrIPv6] == "" {
			return invalid("Service %s has an SRV record; the instance must have AWS_INSTANCE_IPV4 or AWS_INSTANCE_IPV6.", s.ID)
		}
	}
	inst.Health = Unknown
	if init, ok := at[AttrInitHealth]; ok {
		if !s.CustomHealth {
			return invalid("AWS_INIT_HEALTH_STATUS is valid only for a service with HealthCheckCustomConfig.")
		}
		if init != Healthy && init != Unhealthy {
			return invalid("AWS_INIT_HEALTH_STATUS must be HEALTHY or UNHEALTHY.")
		}
		inst.Health = init
	} else if s.CustomHealth {
		inst.Health = Healthy
	}
	return nil
}

func (a *API) RegisterInstance(ctx context.Context, in *sd.RegisterInstanceRequest) (*sd.RegisterInstanceResponse, error) {
	op, err := a.reg.RegisterInstance(ctx, Instance{ID: deref(in.InstanceId), ServiceID: deref(in.ServiceId), CreatorRequestID: deref(in.CreatorRequestId),
		Attributes: cloneMap(in.Attributes), Created: a.now()}, CheckInstance)
	if err != nil {
		return nil, err
	}
	return &sd.RegisterInstanceResponse{OperationId: &op}, nil
}

func (a *API) DeregisterInstance(ctx context.Context, in *sd.DeregisterInstanceRequest) (*sd.DeregisterInstanceResponse, error) {
	op, err := a.reg.DeregisterInstance(ctx, deref(in.ServiceId), deref(in.InstanceId))
	if err != nil {
		return nil, err
	}
	return &sd.DeregisterInstanceResponse{OperationId: &op}, nil
}

func (a *API) GetInstance(ctx context.Context, in *sd.GetInstanceRequest) (*sd.GetInstanceResponse, error) {
	inst, _, err := a.reg.Instance(ctx, deref(in.ServiceId), deref(in.InstanceId))
	if err != nil {
		return nil, err
	}
	out := &sd.Instance{Id: ptr(inst.ID), Attributes: cloneMap(inst.Attributes), CreatedByAccount: ptr(a.cfg.Account)}
	if inst.CreatorRequestID != "" {
		out.CreatorRequestId = ptr(inst.CreatorRequestID)
	}
	return &sd.GetInstanceResponse{Instance: out, ResourceOwner: ptr(a.cfg.Account)}, nil
}

func (a *API) ListInstances(ctx context.Context, in *sd.ListInstancesRequest) (*sd.ListInstancesResponse, error) {
	if _, _, err := a.reg.Service(ctx, deref(in.ServiceId)); err != nil {
		return nil, err
	}
	insts, _, err := a.reg.Instances(ctx, deref(in.ServiceId))
	if err != nil {
		return nil, err
	}
	insts, tok, err := page(insts, func(i Instance) string { return i.ID }, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &sd.ListInstancesResponse{Instances: []sd.InstanceSummary{}, NextToken: tok, ResourceOwner: ptr(a.cfg.Account)}
	for _, i := range insts {
		out.Instances = append(out.Instances, sd.InstanceSummary{Id: ptr(i.ID), Attributes: cloneMap(i.Attributes), CreatedByAccount: ptr(a.cfg.Account)})
	}
	return out, nil
}

// healthy says whether DNS and HEALTHY discovery return the instance:
// instances without a health check (UNKNOWN) count as healthy, as in
// Cloud Map.
func healthy(status string) bool { return status != Unhealthy }

func (a *API) discoverService(ctx context.Context, nsName, svcName string) (Namespace, Service, error) {
	ns, err := a.reg.NamespaceByName(ctx, nsName)
	if err != nil {
		return ns, Service{}, err
	}
	s, err := a.reg.ServiceByName(ctx, ns.ID, svcName)
	return ns, s, err
}

func (a *API) DiscoverInstances(ctx context.Context, in *sd.DiscoverInstancesRequest) (*sd.DiscoverInstancesResponse, error) {
	ns, s, err := a.discoverService(ctx, deref(in.NamespaceName), deref(in.ServiceName))
	if err != nil {
		return nil, err
	}
	insts, rev, err := a.reg.Instances(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	filter := deref(in.HealthStatus)
	if filter == "" {
		filter = sd.HealthStatusFilterHealthy
	}
	match := func(i Instance, params map[string]string) bool {
		for k, v := range params {
			if i.Attributes[k] != v {
				return false
			}
		}
		return true
	}
	var sel []Instance
	for _, i := range insts {
		if match(i, in.QueryParameters) {
			sel = append(sel, i)
		}
	}
	byHealth := func(want func(string) bool) []Instance {
		var out []Instance
		for _, i := range sel {
			if want(i.Health) {
				out = append(out, i)
			}
		}
		return out
	}
	switch filter {
	case sd.HealthStatusFilterHealthy:
		sel = byHealth(healthy)
	case sd.HealthStatusFilterUnhealthy:
		sel = byHealth(func(h string) bool { return h == Unhealthy })
	case sd.HealthStatusFilterHealthyOrElseAll:
		if h := byHealth(healthy); len(h) > 0 {
			sel = h
		}
	}
	if len(in.OptionalParameters) > 0 {
		var opt []Instance
		for _, i := range sel {
			if match(i, in.OptionalParameters) {
				opt = append(opt, i)
			}
		}
		if len(opt) > 0 {
			sel = opt
		}
	}
	max := int(deref(in.MaxResults))
	if max <= 0 {
		max = 100
	}
	if len(sel) > max {
		sel = sel[:max]
	}
	out := &sd.DiscoverInstancesResponse{Instances: []sd.HttpInstanceSummary{}, InstancesRevision: ptr(rev)}
	for _, i := range sel {
		out.Instances = append(out.Instances, sd.HttpInstanceSummary{InstanceId: ptr(i.ID), NamespaceName: ptr(ns.Name), ServiceName: ptr(s.Name),
			HealthStatus: ptr(sd.HealthStatus(i.Health)), Attributes: cloneMap(i.Attributes)})
	}
	return out, nil
}

func (a *API) DiscoverInstancesRevision(ctx context.Context, in *sd.DiscoverInstancesRevisionRequest) (*sd.DiscoverInstancesRevisionResponse, error) {
	_, s, err := a.discoverService(ctx, deref(in.NamespaceName), deref(in.ServiceName))
	if err != nil {
		return nil, err
	}
	rev, err := a.reg.InstancesRevision(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	return &sd.DiscoverInstancesRevisionResponse{InstancesRevision: ptr(rev)}, nil
}

func (a *API) GetInstancesHealthStatus(ctx context.Context, in *sd.GetInstancesHealthStatusRequest) (*sd.GetInstancesHealthStatusResponse, error) {
	s, _, err := a.reg.Service(ctx, deref(in.ServiceId))
	if err != nil {
		return nil, err
	}
	insts, _, err := a.reg.Instances(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	if len(in.Instances) > 0 {
		byID := map[string]Instance{}
		for _, i := range insts {
			byID[i.ID] = i
		}
		var sel []Instance
		for _, id := range in.Instances {
			i, ok := byID[id]
			if !ok {
				return nil, errInstanceNotFound(s.ID, id)
			}
			sel = append(sel, i)
		}
		insts = sel
	}
	insts, tok, err := page(insts, func(i Instance) string { return i.ID }, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &sd.GetInstancesHealthStatusResponse{Status: map[string]sd.HealthStatus{}, NextToken: tok}
	for _, i := range insts {
		out.Status[i.ID] = sd.HealthStatus(i.Health)
	}
	return out, nil
}

func (a *API) UpdateInstanceCustomHealthStatus(ctx context.Context, in *sd.UpdateInstanceCustomHealthStatusRequest) (*sd.UpdateInstanceCustomHealthStatusResponse, error) {
	s, _, err := a.reg.Service(ctx, deref(in.ServiceId))
	if err != nil {
		return nil, err
	}
	if !s.CustomHealth {
		return nil, errs.R(errs.NotFound, ReasonCustomHealthMissing, "Service %s has no HealthCheckCustomConfig.", s.ID)
	}
	return nil, a.reg.SetHealth(ctx, s.ID, deref(in.InstanceId), string(deref(in.Status)))
}

// --- operations ---

func (a *API) wireOperation(op Operation) *sd.Operation {
	out := &sd.Operation{Id: ptr(op.ID), Type: ptr(sd.OperationType(op.Type)), Status: ptr(sd.OperationStatus(op.Status)),
		CreateDate: awsproto.NewTime(op.Created), UpdateDate: awsproto.NewTime(op.Updated), OwnerAccount: ptr(a.cfg.Account),
		Targets: map[sd.OperationTargetType]string{}}
	for k, v := range op.Targets {
		out.Targets[sd.OperationTargetType(k)] = v
	}
	if op.ErrorCode != "" {
		out.ErrorCode = ptr(op.ErrorCode)
		out.ErrorMessage = ptr(op.ErrorMessage)
	}
	return out
}

func (a *API) GetOperation(ctx context.Context, in *sd.GetOperationRequest) (*sd.GetOperationResponse, error) {
	op, err := a.reg.Operation(ctx, deref(in.OperationId))
	if err != nil {
		return nil, err
	}
	return &sd.GetOperationResponse{Operation: a.wireOperation(op)}, nil
}

func (a *API) ListOperations(ctx context.Context, in *sd.ListOperationsRequest) (*sd.ListOperationsResponse, error) {
	for _, f := range in.Filters {
		name := string(deref(f.Name))
		cond := string(deref(f.Condition))
		if name == "UPDATE_DATE" {
			if cond != "BETWEEN" {
				return nil, invalid("The UPDATE_DATE filter requires the BETWEEN condition.")
			}
			if len(f.Values) != 2 {
				return nil, invalid("The UPDATE_DATE filter takes two values, a start and an end date.")
			}
		} else if err := checkCondition(name, cond, "EQ", "IN"); err != nil {
			return nil, err
		}
	}
	all, err := a.reg.Operations(ctx)
	if err != nil {
		return nil, err
	}
	var keep []Operation
next:
	for _, op := range all {
		for _, f := range in.Filters {
			var v string
			switch deref(f.Name) {
			case "NAMESPACE_ID":
				v = op.Targets["NAMESPACE"]
			case "SERVICE_ID":
				v = op.Targets["SERVICE"]
			case "STATUS":
				v = op.Status
			case "TYPE":
				v = op.Type
			case "UPDATE_DATE":
				from, err1 := parseEpoch(f.Values[0])
				to, err2 := parseEpoch(f.Values[1])
				if err1 != nil || err2 != nil {
					return nil, invalid("UPDATE_DATE values must be epoch seconds.")
				}
				if op.Updated.Before(from) || op.Updated.After(to) {
					continue next
				}
				continue
			}
			if !matchFilter(string(deref(f.Condition)), f.Values, v) {
				continue next
			}
		}
		keep = append(keep, op)
	}
	keep, tok, err := page(keep, func(o Operation) string { return o.ID }, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := &sd.ListOperationsResponse{Operations: []sd.OperationSummary{}, NextToken: tok}
	for _, op := range keep {
		out.Operations = append(out.Operations, sd.OperationSummary{Id: ptr(op.ID), Status: ptr(sd.OperationStatus(op.Status))})
	}
	return out, nil
}

func parseEpoch(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, int64(f*1e9)), nil
}

// --- tags ---

// resource resolves a namespace or service ARN of this account.
func (a *API) resource(ctx context.Context, resourceARN string) (kind, id string, tags map[string]string, err error) {
	p, perr := arn.Parse(resourceARN)
	if perr != nil || p.Service != "servicediscovery" {
		return "", "", nil, invalid("%s is not a valid Cloud Map resource ARN.", resourceARN)
	}
	notFound := errs.R(errs.NotFound, ReasonResourceNotFound, "Resource %s not found.", resourceARN)
	if p.Account != a.cfg.Account || p.Region != a.cfg.Region {
		return "", "", nil, notFound
	}
	kind, id, _ = strings.Cut(p.Resource, "/")
	switch kind {
	case "namespace":
		ns, _, err := a.reg.Namespace(ctx, id)
		if errs.Is(err, errs.NotFound) {
			return "", "", nil, notFound
		}
		return kind, id, ns.Tags, err
	case "service":
		s, _, err := a.reg.Service(ctx, id)
		if errs.Is(err, errs.NotFound) {
			return "", "", nil, notFound
		}
		return kind, id, s.Tags, err
	}
	return "", "", nil, notFound
}

func (a *API) changeTags(ctx context.Context, resourceARN string, change func(map[string]string) error) error {
	kind, id, _, err := a.resource(ctx, resourceARN)
	if err != nil {
		return err
	}
	if kind == "namespace" {
		return a.reg.UpdateNamespaceTags(ctx, id, change)
	}
	_, err = a.reg.UpdateService(ctx, id, false, func(s *Service) error {
		if s.Tags == nil {
			s.Tags = map[string]string{}
		}
		return change(s.Tags)
	})
	return err
}

func (a *API) TagResource(ctx context.Context, in *sd.TagResourceRequest) (*sd.TagResourceResponse, error) {
	return &sd.TagResourceResponse{}, a.changeTags(ctx, deref(in.ResourceARN), func(tags map[string]string) error {
		for _, t := range in.Tags {
			tags[deref(t.Key)] = deref(t.Value)
		}
		if len(tags) > maxTags {
			return errs.R(errs.LimitExceeded, ReasonTooManyTags, "A resource can have no more than %d tags.", maxTags)
		}
		return nil
	})
}

func (a *API) UntagResource(ctx context.Context, in *sd.UntagResourceRequest) (*sd.UntagResourceResponse, error) {
	return &sd.UntagResourceResponse{}, a.changeTags(ctx, deref(in.ResourceARN), func(tags map[string]string) error {
		for _, k := range in.TagKeys {
			delete(tags, k)
		}
		return nil
	})
}

func (a *API) ListTagsForResource(ctx context.Context, in *sd.ListTagsForResourceRequest) (*sd.ListTagsForResourceResponse, error) {
	_, _, tags, err := a.resource(ctx, deref(in.ResourceARN))
	if err != nil {
		return nil, err
	}
	out := &sd.ListTagsForResourceResponse{Tags: []sd.Tag{}}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range tags {
			if !yield(k) {
				return
			}
		}
	}) {
		out.Tags = append(out.Tags, sd.Tag{Key: ptr(k), Value: ptr(tags[k])})
	}
	return out, nil
}
