package elbv2

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/elbv2api"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
)

// maxLoadBalancers bounds the load balancers of an account (AWS: 50 per
// region by default).
const maxLoadBalancers = 50

// CreateLoadBalancer creates an application (or network) load balancer.
// As on AWS it is idempotent: the same name with the same settings returns
// the existing one.
func (s *Service) CreateLoadBalancer(ctx context.Context, in *elbv2api.CreateLoadBalancerInput) (*elbv2api.CreateLoadBalancerOutput, error) {
	name := deref(in.Name)
	if err := checkLBName(name); err != nil {
		return nil, err
	}
	typ := deref(in.Type)
	if typ == "" {
		typ = elbv2api.LoadBalancerTypeEnumApplication
	}
	if typ != elbv2api.LoadBalancerTypeEnumApplication && typ != elbv2api.LoadBalancerTypeEnumNetwork {
		return nil, fail(errs.Unsupported, CodeValidationError, "Berth does not support load balancers of type '%s'", typ)
	}
	scheme := deref(in.Scheme)
	if scheme == "" {
		scheme = elbv2api.LoadBalancerSchemeEnumInternetFacing
	}
	ipType := deref(in.IpAddressType)
	if ipType == "" {
		ipType = elbv2api.IpAddressTypeIpv4
	}
	if ipType != elbv2api.IpAddressTypeIpv4 {
		return nil, fail(errs.Unsupported, CodeValidationError, "Berth load balancers listen on IPv4 only; IP address type '%s' is not supported", ipType)
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	subnets := slices.Clone(in.Subnets)
	for _, m := range in.SubnetMappings {
		subnets = append(subnets, deref(m.SubnetId))
	}
	var out *lbRecord
	err := s.mutate(ctx, func(st *state) error {
		out = nil
		for _, r := range st.lbs {
			if deref(r.LB.LoadBalancerName) != name {
				continue
			}
			if deref(r.LB.Type) == typ && deref(r.LB.Scheme) == scheme {
				out = r
				return nil
			}
			return fail(errs.AlreadyExists, elbv2api.ErrDuplicateLoadBalancerNameException, "A load balancer with the same name '%s' exists, but with different settings", name)
		}
		if len(st.lbs) >= maxLoadBalancers {
			return fail(errs.LimitExceeded, elbv2api.ErrTooManyLoadBalancersException, "The maximum number of load balancers (%d) has been reached", maxLoadBalancers)
		}
		id := newID()
		short := "app"
		if typ == elbv2api.LoadBalancerTypeEnumNetwork {
			short = "net"
		}
		dns := fmt.Sprintf("%s-%s.%s.elb.localhost", name, id[:10], s.cfg.Region)
		if scheme == elbv2api.LoadBalancerSchemeEnumInternal {
			dns = "internal-" + dns
		}
		var azs []elbv2api.AvailabilityZone
		for i, sn := range subnets {
			azs = append(azs, elbv2api.AvailabilityZone{SubnetId: ptr(sn), ZoneName: ptr(s.cfg.Region + string(rune('a'+i%6)))})
		}
		r := &lbRecord{ID: id, Attrs: defaultAttrs(lbAttrRules), Tags: in.Tags, LB: elbv2api.LoadBalancer{
			LoadBalancerArn:       ptr(s.arns.Service("elasticloadbalancing", "loadbalancer/"+short+"/"+name+"/"+id)),
			LoadBalancerName:      ptr(name),
			DNSName:               ptr(dns),
			CanonicalHostedZoneId: ptr(hostedZone(typ)),
			CreatedTime:           awsproto.NewTime(s.now()),
			Scheme:                ptr(scheme),
			Type:                  ptr(typ),
			IpAddressType:         ptr(ipType),
			State:                 &elbv2api.LoadBalancerState{Code: ptr(elbv2api.LoadBalancerStateEnumProvisioning)},
			AvailabilityZones:     azs,
			SecurityGroups:        slices.Clone(in.SecurityGroups),
		}}
		if typ == elbv2api.LoadBalancerTypeEnumNetwork {
			r.LB.SecurityGroups = nil
			delete(r.Attrs, "idle_timeout.timeout_seconds")
		}
		st.putLB(r)
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.CreateLoadBalancerOutput{LoadBalancers: []elbv2api.LoadBalancer{out.LB}}, nil
}

// hostedZone is the Route 53 zone id AWS gives us-east-1 load balancers of
// the type; Berth has no Route 53, so it is only echoed.
func hostedZone(typ elbv2api.LoadBalancerTypeEnum) string {
	if typ == elbv2api.LoadBalancerTypeEnumNetwork {
		return "Z26RNL4JYFTOTI"
	}
	return "Z35SXDOTRQ7X7K"
}

// DescribeLoadBalancers lists load balancers by ARN, by name, or all.
func (s *Service) DescribeLoadBalancers(ctx context.Context, in *elbv2api.DescribeLoadBalancersInput) (*elbv2api.DescribeLoadBalancersOutput, error) {
	if len(in.LoadBalancerArns) > 0 && len(in.Names) > 0 {
		return nil, invalid("Load balancer names and load balancer ARNs cannot be specified at the same time")
	}
	st, err := loadState(ctx, s.st)
	if err != nil {
		return nil, err
	}
	var all []*lbRecord
	switch {
	case len(in.LoadBalancerArns) > 0:
		for _, a := range in.LoadBalancerArns {
			r := st.lbs[a]
			if r == nil {
				return nil, notFound(elbv2api.ErrLoadBalancerNotFoundException, "One or more load balancers not found")
			}
			all = append(all, r)
		}
	case len(in.Names) > 0:
		var missing []string
		for _, n := range in.Names {
			r := st.lbByName(n)
			if r == nil {
				missing = append(missing, "'"+n+"'")
				continue
			}
			all = append(all, r)
		}
		if len(missing) > 0 {
			return nil, notFound(elbv2api.ErrLoadBalancerNotFoundException, "Load balancers '[%s]' not found", strings.Join(missing, ", "))
		}
	default:
		for _, a := range sortedKeys(st.lbs) {
			all = append(all, st.lbs[a])
		}
	}
	page, next, err := paginate(all, in.Marker, in.PageSize, func(r *lbRecord) string { return *r.LB.LoadBalancerArn })
	if err != nil {
		return nil, err
	}
	out := &elbv2api.DescribeLoadBalancersOutput{LoadBalancers: []elbv2api.LoadBalancer{}, NextMarker: next}
	for _, r := range page {
		out.LoadBalancers = append(out.LoadBalancers, r.LB)
	}
	return out, nil
}

func (st *state) lbByName(name string) *lbRecord {
	for _, r := range st.lbs {
		if deref(r.LB.LoadBalancerName) == name {
			return r
		}
	}
	return nil
}

// paginate pages items by an opaque marker holding the last key returned.
func paginate[T any](items []T, marker *string, pageSize *int32, key func(T) string) ([]T, *string, error) {
	start := 0
	if marker != nil {
		var last string
		if err := awsproto.DecodeToken(*marker, &last); err != nil {
			return nil, nil, invalid("The marker '%s' is not valid", *marker)
		}
		start = len(items)
		for i, it := range items {
			if key(it) > last {
				start = i
				break
			}
		}
	}
	n := 400
	if pageSize != nil {
		n = int(*pageSize)
	}
	if start+n >= len(items) {
		return items[start:], nil, nil
	}
	page := items[start : start+n]
	return page, ptr(awsproto.EncodeToken(key(page[len(page)-1]))), nil
}

// DeleteLoadBalancer deletes a load balancer with its listeners and rules.
// As on AWS, deleting one that does not exist succeeds.
func (s *Service) DeleteLoadBalancer(ctx context.Context, in *elbv2api.DeleteLoadBalancerInput) (*elbv2api.DeleteLoadBalancerOutput, error) {
	a := deref(in.LoadBalancerArn)
	err := s.mutate(ctx, func(st *state) error {
		r := st.lbs[a]
		if r == nil {
			return nil
		}
		if r.Attrs["deletion_protection.enabled"] == "true" {
			return fail(errs.Conflict, elbv2api.ErrOperationNotPermittedException, "Load balancer '%s' cannot be deleted because deletion protection is enabled", a)
		}
		for _, l := range st.listeners {
			if deref(l.L.LoadBalancerArn) == a {
				st.deleteListener(l)
			}
		}
		st.deleteLB(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.DeleteLoadBalancerOutput{}, nil
}

func (s *Service) DescribeLoadBalancerAttributes(ctx context.Context, in *elbv2api.DescribeLoadBalancerAttributesInput) (*elbv2api.DescribeLoadBalancerAttributesOutput, error) {
	st, err := loadState(ctx, s.st)
	if err != nil {
		return nil, err
	}
	r := st.lbs[deref(in.LoadBalancerArn)]
	if r == nil {
		return nil, notFound(elbv2api.ErrLoadBalancerNotFoundException, "One or more load balancers not found")
	}
	return &elbv2api.DescribeLoadBalancerAttributesOutput{Attributes: lbAttrList(r.Attrs)}, nil
}

func lbAttrList(attrs map[string]string) []elbv2api.LoadBalancerAttribute {
	out := []elbv2api.LoadBalancerAttribute{}
	for _, kv := range sortedAttrs(attrs) {
		out = append(out, elbv2api.LoadBalancerAttribute{Key: ptr(kv[0]), Value: ptr(kv[1])})
	}
	return out
}

func (s *Service) ModifyLoadBalancerAttributes(ctx context.Context, in *elbv2api.ModifyLoadBalancerAttributesInput) (*elbv2api.ModifyLoadBalancerAttributesOutput, error) {
	var kvs [][2]string
	for _, a := range in.Attributes {
		kvs = append(kvs, [2]string{deref(a.Key), deref(a.Value)})
	}
	var attrs map[string]string
	err := s.mutate(ctx, func(st *state) error {
		r := st.lbs[deref(in.LoadBalancerArn)]
		if r == nil {
			return notFound(elbv2api.ErrLoadBalancerNotFoundException, "One or more load balancers not found")
		}
		rules := lbAttrRules
		if deref(r.LB.Type) == elbv2api.LoadBalancerTypeEnumNetwork {
			rules = map[string]attrRule{}
			for k, v := range lbAttrRules {
				if k != "idle_timeout.timeout_seconds" {
					rules[k] = v
				}
			}
		}
		a, err := applyAttrs("Load balancer", rules, r.Attrs, kvs)
		if err != nil {
			return err
		}
		r.Attrs, attrs = a, a
		st.putLB(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.ModifyLoadBalancerAttributesOutput{Attributes: lbAttrList(attrs)}, nil
}
