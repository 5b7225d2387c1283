package elbv2

import (
	"context"
	"slices"
	"strconv"

	"github.com/berthdev/berth/internal/api/elbv2api"
	"github.com/berthdev/berth/internal/errs"
)

const (
	maxTargetGroups     = 3000 // AWS: 3000 per region
	maxTargetsPerGroup  = 1000 // AWS: 1000 per target group (ALB)
	protocolHTTP        = elbv2api.ProtocolEnumHttp
	protocolHTTPS       = elbv2api.ProtocolEnumHttps
	protocolTCP         = elbv2api.ProtocolEnumTcp
	healthTrafficPort   = "traffic-port"
	defaultHealthPath   = "/"
	defaultHealthyCount = 5
)

// CreateTargetGroup creates a target group (target types instance and ip;
// protocols HTTP, HTTPS and TCP) with AWS's health check defaults.
func (s *Service) CreateTargetGroup(ctx context.Context, in *elbv2api.CreateTargetGroupInput) (*elbv2api.CreateTargetGroupOutput, error) {
	name := deref(in.Name)
	if err := checkTGName(name); err != nil {
		return nil, err
	}
	tt := deref(in.TargetType)
	if tt == "" {
		tt = elbv2api.TargetTypeEnumInstance
	}
	if tt != elbv2api.TargetTypeEnumInstance && tt != elbv2api.TargetTypeEnumIp {
		return nil, fail(errs.Unsupported, CodeValidationError, "Berth supports target types 'instance' and 'ip', not '%s'", tt)
	}
	if in.Protocol == nil {
		return nil, invalid("A protocol must be specified")
	}
	if in.Port == nil {
		return nil, invalid("A port must be specified")
	}
	proto := *in.Protocol
	if proto != protocolHTTP && proto != protocolHTTPS && proto != protocolTCP {
		return nil, fail(errs.Unsupported, elbv2api.ErrUnsupportedProtocolException, "Berth supports target group protocols HTTP, HTTPS and TCP, not '%s'", proto)
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	tg := elbv2api.TargetGroup{
		TargetGroupName: ptr(name), Protocol: ptr(proto), Port: in.Port, TargetType: ptr(tt), VpcId: in.VpcId,
		IpAddressType: ptr(elbv2api.TargetGroupIpAddressTypeEnumIpv4),
	}
	if in.IpAddressType != nil {
		tg.IpAddressType = in.IpAddressType
	}
	if proto != protocolTCP {
		pv := deref(in.ProtocolVersion)
		if pv == "" {
			pv = "HTTP1"
		}
		if pv != "HTTP1" && pv != "HTTP2" && pv != "GRPC" {
			return nil, invalid("Protocol version '%s' must be one of HTTP1, HTTP2, GRPC", pv)
		}
		tg.ProtocolVersion = ptr(pv)
	} else if in.ProtocolVersion != nil {
		return nil, invalid("A protocol version can only be specified for HTTP and HTTPS target groups")
	}
	if err := applyHealthCheck(&tg, healthInput{
		Enabled: in.HealthCheckEnabled, Interval: in.HealthCheckIntervalSeconds, Path: in.HealthCheckPath, Port: in.HealthCheckPort,
		Protocol: in.HealthCheckProtocol, Timeout: in.HealthCheckTimeoutSeconds, Healthy: in.HealthyThresholdCount,
		Unhealthy: in.UnhealthyThresholdCount, Matcher: in.Matcher,
	}, true); err != nil {
		return nil, err
	}
	var out *tgRecord
	err := s.mutate(ctx, func(st *state) error {
		out = nil
		for _, r := range st.tgs {
			if deref(r.TG.TargetGroupName) != name {
				continue
			}
			if sameTG(r.TG, tg) {
				out = r
				return nil
			}
			return fail(errs.AlreadyExists, elbv2api.ErrDuplicateTargetGroupNameException, "A target group with the same name '%s' exists, but with different settings", name)
		}
		if len(st.tgs) >= maxTargetGroups {
			return fail(errs.LimitExceeded, elbv2api.ErrTooManyTargetGroupsException, "The maximum number of target groups (%d) has been reached", maxTargetGroups)
		}
		id := newID()
		r := &tgRecord{ID: id, TG: tg, Attrs: defaultAttrs(tgAttrRules), Tags: in.Tags}
		r.TG.TargetGroupArn = ptr(s.arns.Service("elasticloadbalancing", "targetgroup/"+name+"/"+id))
		st.putTG(r)
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.CreateTargetGroupOutput{TargetGroups: []elbv2api.TargetGroup{out.TG}}, nil
}

// sameTG reports whether two target groups have the settings
// CreateTargetGroup's idempotence compares.
func sameTG(a, b elbv2api.TargetGroup) bool {
	return deref(a.Protocol) == deref(b.Protocol) && deref(a.Port) == deref(b.Port) &&
		deref(a.TargetType) == deref(b.TargetType) && deref(a.VpcId) == deref(b.VpcId)
}

type healthInput struct {
	Enabled                               *bool
	Interval, Timeout, Healthy, Unhealthy *int32
	Path, Port                            *string
	Protocol                              *elbv2api.ProtocolEnum
	Matcher                               *elbv2api.Matcher
}

// applyHealthCheck sets a target group's health check from the input,
// with AWS's defaults when create is true, and checks the result.
func applyHealthCheck(tg *elbv2api.TargetGroup, h healthInput, create bool) error {
	proto := deref(tg.Protocol)
	if create {
		hp := proto
		if h.Protocol != nil {
			hp = *h.Protocol
		}
		tg.HealthCheckProtocol = ptr(hp)
		tg.HealthCheckEnabled = ptr(true)
		tg.HealthCheckPort = ptr(healthTrafficPort)
		tg.HealthCheckIntervalSeconds = ptr(int32(30))
		tg.HealthyThresholdCount = ptr(int32(defaultHealthyCount))
		tg.UnhealthyThresholdCount = ptr(int32(2))
		if hp == protocolTCP {
			tg.HealthCheckTimeoutSeconds = ptr(int32(10))
		} else {
			tg.HealthCheckTimeoutSeconds = ptr(int32(5))
			tg.HealthCheckPath = ptr(defaultHealthPath)
			tg.Matcher = &elbv2api.Matcher{HttpCode: ptr("200")}
		}
	} else if h.Protocol != nil {
		tg.HealthCheckProtocol = h.Protocol
		if *h.Protocol == protocolTCP {
			tg.HealthCheckPath, tg.Matcher = nil, nil
		} else if tg.HealthCheckPath == nil {
			tg.HealthCheckPath = ptr(defaultHealthPath)
			tg.Matcher = &elbv2api.Matcher{HttpCode: ptr("200")}
		}
	}
	hp := deref(tg.HealthCheckProtocol)
	if hp != protocolHTTP && hp != protocolHTTPS && hp != protocolTCP {
		return fail(errs.Unsupported, CodeValidationError, "Berth supports health check protocols HTTP, HTTPS and TCP, not '%s'", hp)
	}
	if proto != protocolTCP && hp == protocolTCP {
		return invalid("Health check protocol 'TCP' is not supported for target groups with the protocol '%s'", proto)
	}
	if h.Enabled != nil {
		tg.HealthCheckEnabled = h.Enabled
	}
	if h.Interval != nil {
		tg.HealthCheckIntervalSeconds = h.Interval
	}
	if h.Timeout != nil {
		tg.HealthCheckTimeoutSeconds = h.Timeout
	}
	if h.Healthy != nil {
		tg.HealthyThresholdCount = h.Healthy
	}
	if h.Unhealthy != nil {
		tg.UnhealthyThresholdCount = h.Unhealthy
	}
	if h.Port != nil {
		if err := checkHealthCheckPort(*h.Port); err != nil {
			return err
		}
		tg.HealthCheckPort = h.Port
	}
	if h.Path != nil {
		if hp == protocolTCP {
			return invalid("A health check path can only be specified for HTTP and HTTPS health checks")
		}
		if len(*h.Path) == 0 || (*h.Path)[0] != '/' {
			return invalid("Health check path '%s' must begin with '/'", *h.Path)
		}
		tg.HealthCheckPath = h.Path
	}
	if h.Matcher != nil {
		if h.Matcher.GrpcCode != nil && deref(tg.ProtocolVersion) != "GRPC" {
			return invalid("A gRPC matcher can only be specified for GRPC target groups")
		}
		if h.Matcher.HttpCode != nil {
			if hp == protocolTCP {
				return invalid("A matcher can only be specified for HTTP and HTTPS health checks")
			}
			if err := checkMatcher(*h.Matcher.HttpCode); err != nil {
				return err
			}
		}
		tg.Matcher = h.Matcher
	}
	if deref(tg.HealthCheckTimeoutSeconds) >= deref(tg.HealthCheckIntervalSeconds) {
		return invalid("Health check timeout '%d' must be smaller than the interval '%d'",
			deref(tg.HealthCheckTimeoutSeconds), deref(tg.HealthCheckIntervalSeconds))
	}
	return nil
}

// tgLoadBalancers returns the ARNs of the load balancers whose listeners
// or rules forward to the target group.
func (st *state) tgLoadBalancers(tgARN string) []string {
	var out []string
	add := func(lb string) {
		if !slices.Contains(out, lb) {
			out = append(out, lb)
		}
	}
	for _, l := range st.listeners {
		if slices.Contains(actionTargetGroups(l.L.DefaultActions), tgARN) {
			add(deref(l.L.LoadBalancerArn))
		}
	}
	for _, r := range st.rules {
		if slices.Contains(actionTargetGroups(r.R.Actions), tgARN) {
			if l := st.listeners[r.Listener]; l != nil {
				add(deref(l.L.LoadBalancerArn))
			}
		}
	}
	slices.Sort(out)
	return out
}

func (st *state) describeTG(r *tgRecord) elbv2api.TargetGroup {
	tg := r.TG
	tg.LoadBalancerArns = st.tgLoadBalancers(*r.TG.TargetGroupArn)
	if tg.LoadBalancerArns == nil {
		tg.LoadBalancerArns = []string{}
	}
	return tg
}

func (s *Service) DescribeTargetGroups(ctx context.Context, in *elbv2api.DescribeTargetGroupsInput) (*elbv2api.DescribeTargetGroupsOutput, error) {
	n := 0
	for _, set := range []bool{in.LoadBalancerArn != nil, len(in.TargetGroupArns) > 0, len(in.Names) > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, invalid("Only one of load balancer ARN, target group ARNs or names can be specified")
	}
	st, err := loadState(ctx, s.st)
	if err != nil {
		return nil, err
	}
	var all []*tgRecord
	switch {
	case in.LoadBalancerArn != nil:
		if st.lbs[*in.LoadBalancerArn] == nil {
			return nil, notFound(elbv2api.ErrLoadBalancerNotFoundException, "One or more load balancers not found")
		}
		for _, a := range sortedKeys(st.tgs) {
			if slices.Contains(st.tgLoadBalancers(a), *in.LoadBalancerArn) {
				all = append(all, st.tgs[a])
			}
		}
	case len(in.TargetGroupArns) > 0:
		for _, a := range in.TargetGroupArns {
			r := st.tgs[a]
			if r == nil {
				return nil, notFound(elbv2api.ErrTargetGroupNotFoundException, "One or more target groups not found")
			}
			all = append(all, r)
		}
	case len(in.Names) > 0:
		for _, name := range in.Names {
			r := st.tgByName(name)
			if r == nil {
				return nil, notFound(elbv2api.ErrTargetGroupNotFoundException, "One or more target groups not found")
			}
			all = append(all, r)
		}
	default:
		for _, a := range sortedKeys(st.tgs) {
			all = append(all, st.tgs[a])
		}
	}
	page, next, err := paginate(all, in.Marker, in.PageSize, func(r *tgRecord) string { return *r.TG.TargetGroupArn })
	if err != nil {
		return nil, err
	}
	out := &elbv2api.DescribeTargetGroupsOutput{TargetGroups: []elbv2api.TargetGroup{}, NextMarker: next}
	for _, r := range page {
		out.TargetGroups = append(out.TargetGroups, st.describeTG(r))
	}
	return out, nil
}

func (st *state) tgByName(name string) *tgRecord {
	for _, r := range st.tgs {
		if deref(r.TG.TargetGroupName) == name {
			return r
		}
	}
	return nil
}

func (st *state) tg(a string) (*tgRecord, error) {
	r := st.tgs[a]
	if r == nil {
		return nil, notFound(elbv2api.ErrTargetGroupNotFoundException, "One or more target groups not found")
	}
	return r, nil
}

func (s *Service) ModifyTargetGroup(ctx context.Context, in *elbv2api.ModifyTargetGroupInput) (*elbv2api.ModifyTargetGroupOutput, error) {
	var out elbv2api.TargetGroup
	err := s.mutate(ctx, func(st *state) error {
		r, err := st.tg(deref(in.TargetGroupArn))
		if err != nil {
			return err
		}
		tg := r.TG
		if err := applyHealthCheck(&tg, healthInput{
			Enabled: in.HealthCheckEnabled, Interval: in.HealthCheckIntervalSeconds, Path: in.HealthCheckPath, Port: in.HealthCheckPort,
			Protocol: in.HealthCheckProtocol, Timeout: in.HealthCheckTimeoutSeconds, Healthy: in.HealthyThresholdCount,
			Unhealthy: in.UnhealthyThresholdCount, Matcher: in.Matcher,
		}, false); err != nil {
			return err
		}
		r.TG = tg
		st.putTG(r)
		out = st.describeTG(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.ModifyTargetGroupOutput{TargetGroups: []elbv2api.TargetGroup{out}}, nil
}

// DeleteTargetGroup deletes a target group no listener or rule uses.
func (s *Service) DeleteTargetGroup(ctx context.Context, in *elbv2api.DeleteTargetGroupInput) (*elbv2api.DeleteTargetGroupOutput, error) {
	a := deref(in.TargetGroupArn)
	err := s.mutate(ctx, func(st *state) error {
		r, err := st.tg(a)
		if err != nil {
			return err
		}
		if len(st.tgLoadBalancers(a)) > 0 {
			return fail(errs.Conflict, elbv2api.ErrResourceInUseException, "Target group '%s' is currently in use by a listener or a rule", a)
		}
		st.deleteTG(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.DeleteTargetGroupOutput{}, nil
}

func (s *Service) DescribeTargetGroupAttributes(ctx context.Context, in *elbv2api.DescribeTargetGroupAttributesInput) (*elbv2api.DescribeTargetGroupAttributesOutput, error) {
	st, err := loadState(ctx, s.st)
	if err != nil {
		return nil, err
	}
	r, err := st.tg(deref(in.TargetGroupArn))
	if err != nil {
		return nil, err
	}
	return &elbv2api.DescribeTargetGroupAttributesOutput{Attributes: tgAttrList(r.Attrs)}, nil
}

func tgAttrList(attrs map[string]string) []elbv2api.TargetGroupAttribute {
	out := []elbv2api.TargetGroupAttribute{}
	for _, kv := range sortedAttrs(attrs) {
		out = append(out, elbv2api.TargetGroupAttribute{Key: ptr(kv[0]), Value: ptr(kv[1])})
	}
	return out
}

func (s *Service) ModifyTargetGroupAttributes(ctx context.Context, in *elbv2api.ModifyTargetGroupAttributesInput) (*elbv2api.ModifyTargetGroupAttributesOutput, error) {
	var kvs [][2]string
	for _, a := range in.Attributes {
		kvs = append(kvs, [2]string{deref(a.Key), deref(a.Value)})
	}
	var attrs map[string]string
	err := s.mutate(ctx, func(st *state) error {
		r, err := st.tg(deref(in.TargetGroupArn))
		if err != nil {
			return err
		}
		a, err := applyAttrs("Target group", tgAttrRules, r.Attrs, kvs)
		if err != nil {
			return err
		}
		r.Attrs, attrs = a, a
		st.putTG(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.ModifyTargetGroupAttributesOutput{Attributes: tgAttrList(attrs)}, nil
}

// RegisterTargets adds targets to a target group; registering a target
// again changes nothing.
func (s *Service) RegisterTargets(ctx context.Context, in *elbv2api.RegisterTargetsInput) (*elbv2api.RegisterTargetsOutput, error) {
	a := deref(in.TargetGroupArn)
	st, err := loadState(ctx, s.st)
	if err != nil {
		return nil, err
	}
	r, err := st.tg(a)
	if err != nil {
		return nil, err
	}
	targets, err := s.checkTargets(ctx, r, in.Targets)
	if err != nil {
		return nil, err
	}
	err = s.mutate(ctx, func(st *state) error {
		r, err := st.tg(a)
		if err != nil {
			return err
		}
		changed := false
		for _, t := range targets {
			if !slices.ContainsFunc(r.Targets, func(x targetRecord) bool { return x.ID == t.ID && x.Port == t.Port }) {
				r.Targets = append(r.Targets, t)
				changed = true
			}
		}
		if len(r.Targets) > maxTargetsPerGroup {
			return fail(errs.LimitExceeded, elbv2api.ErrTooManyTargetsException, "You cannot register more than %d targets in a target group", maxTargetsPerGroup)
		}
		if changed {
			st.putTG(r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.RegisterTargetsOutput{}, nil
}

// checkTargets checks and completes targets for a group: ip targets must
// be addresses, instance targets known instances; a missing port is the
// group's.
func (s *Service) checkTargets(ctx context.Context, r *tgRecord, in []elbv2api.TargetDescription) ([]targetRecord, error) {
	var out []targetRecord
	var badInstances []string
	for _, t := range in {
		id := deref(t.Id)
		port := deref(r.TG.Port)
		if t.Port != nil {
			port = *t.Port
		}
		if port < 1 || port > 65535 {
			return nil, invalid("Port '%d' must be between 1 and 65535", port)
		}
		switch deref(r.TG.TargetType) {
		case elbv2api.TargetTypeEnumIp:
			if err := checkIPTarget(id, deref(r.TG.IpAddressType) == elbv2api.TargetGroupIpAddressTypeEnumIpv6); err != nil {
				return nil, err
			}
		case elbv2api.TargetTypeEnumInstance:
			if s.cfg.Instances == nil {
				badInstances = append(badInstances, "'"+id+"'")
				break
			}
			if _, err := s.cfg.Instances(ctx, id); err != nil {
				if errs.Is(err, errs.NotFound) {
					badInstances = append(badInstances, "'"+id+"'")
					break
				}
				return nil, err
			}
		}
		out = append(out, targetRecord{ID: id, Port: port, AZ: deref(t.AvailabilityZone)})
	}
	if len(badInstances) > 0 {
		return nil, fail(errs.Invalid, elbv2api.ErrInvalidTargetException, "The following targets are not valid instances: %s", joinList(badInstances))
	}
	return out, nil
}

func joinList(items []string) string {
	s := ""
	for i, it := range items {
		if i > 0 {
			s += ", "
		}
		s += it
	}
	return s
}

// DeregisterTargets removes targets from a target group; the data plane
// drains them for the group's deregistration delay.
func (s *Service) DeregisterTargets(ctx context.Context, in *elbv2api.DeregisterTargetsInput) (*elbv2api.DeregisterTargetsOutput, error) {
	a := deref(in.TargetGroupArn)
	err := s.mutate(ctx, func(st *state) error {
		r, err := st.tg(a)
		if err != nil {
			return err
		}
		var missing []string
		keep := slices.Clone(r.Targets)
		for _, t := range in.Targets {
			id, port := deref(t.Id), deref(r.TG.Port)
			if t.Port != nil {
				port = *t.Port
			}
			i := slices.IndexFunc(keep, func(x targetRecord) bool { return x.ID == id && x.Port == port })
			if i < 0 {
				missing = append(missing, "'"+id+":"+strconv.Itoa(int(port))+"'")
				continue
			}
			keep = slices.Delete(keep, i, i+1)
		}
		if len(missing) > 0 {
			return fail(errs.Invalid, elbv2api.ErrInvalidTargetException, "The following targets are not registered in target group '%s': %s", a, joinList(missing))
		}
		r.Targets = keep
		st.putTG(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.DeregisterTargetsOutput{}, nil
}
