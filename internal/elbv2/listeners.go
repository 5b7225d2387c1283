package elbv2

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/api/elbv2api"
	"github.com/berthdev/berth/internal/errs"
)

const (
	maxListenersPerLB = 50
	maxRulesPerLis    = 100
)

// certFiles resolves a certificate ARN by Berth's convention (there is no
// ACM): arn:aws:acm:<region>:<account>:certificate/<id> names
// <CertDir>/<id>/cert.pem and key.pem; file:///abs/dir names
// /abs/dir/cert.pem and key.pem. The pair must load.
func (s *Service) certFiles(certARN string) (certFile, keyFile string, err error) {
	var dir string
	switch {
	case strings.HasPrefix(certARN, "file://"):
		dir = strings.TrimPrefix(certARN, "file://")
	case strings.HasPrefix(certARN, "arn:") && strings.Contains(certARN, ":acm:") && strings.Contains(certARN, ":certificate/"):
		id := certARN[strings.LastIndex(certARN, "/")+1:]
		if id == "" || id == "." || id == ".." || s.cfg.CertDir == "" {
			dir = ""
		} else {
			dir = filepath.Join(s.cfg.CertDir, id)
		}
	}
	if dir == "" || !filepath.IsAbs(dir) {
		return "", "", fail(errs.NotFound, elbv2api.ErrCertificateNotFoundException,
			"Certificate '%s' not found: Berth takes arn:aws:acm:<region>:<account>:certificate/<id> (PEM files <data dir>/certificates/<id>/cert.pem and key.pem) or file:///<directory> (cert.pem and key.pem in it)", certARN)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		return "", "", fail(errs.NotFound, elbv2api.ErrCertificateNotFoundException, "Certificate '%s' not found: %v", certARN, err)
	}
	return certFile, keyFile, nil
}

// checkListener checks a listener (new or modified) against the state:
// protocol for the load balancer's type, the port free on this load
// balancer and on the host address every listener shares, certificates,
// actions and their target groups.
func (s *Service) checkListener(st *state, lb *lbRecord, l *elbv2api.Listener) error {
	typ := deref(lb.LB.Type)
	proto := deref(l.Protocol)
	switch {
	case typ == elbv2api.LoadBalancerTypeEnumApplication && proto != protocolHTTP && proto != protocolHTTPS,
		typ == elbv2api.LoadBalancerTypeEnumNetwork && proto != protocolTCP:
		return fail(errs.Invalid, elbv2api.ErrUnsupportedProtocolException, "Protocol '%s' is not supported for load balancers of type '%s'", proto, typ)
	}
	port := deref(l.Port)
	for _, other := range st.listeners {
		if *other.L.ListenerArn == *l.ListenerArn || deref(other.L.Port) != port {
			continue
		}
		if deref(other.L.LoadBalancerArn) == *lb.LB.LoadBalancerArn {
			return fail(errs.AlreadyExists, elbv2api.ErrDuplicateListenerException, "A listener already exists on this port for this load balancer '%s'", *lb.LB.LoadBalancerArn)
		}
		otherLB := st.lbs[deref(other.L.LoadBalancerArn)]
		return fail(errs.Conflict, elbv2api.ErrInvalidConfigurationRequestException,
			"Port %d is already used on %s by listener '%s' of load balancer '%s': every Berth load balancer listens on %s, so two cannot share a port",
			port, s.cfg.ListenHost, *other.L.ListenerArn, deref(otherLB.LB.LoadBalancerName), s.cfg.ListenHost)
	}
	if proto == protocolHTTPS {
		if len(l.Certificates) == 0 {
			return fail(errs.Invalid, elbv2api.ErrCertificateNotFoundException, "A certificate must be specified for HTTPS listeners")
		}
		if _, _, err := s.certFiles(deref(l.Certificates[0].CertificateArn)); err != nil {
			return err
		}
	} else if len(l.Certificates) > 0 {
		return invalid("Certificates can only be specified for HTTPS and TLS listeners")
	}
	actions, err := checkActions(l.DefaultActions)
	if err != nil {
		return err
	}
	l.DefaultActions = actions
	return st.checkActionGroups(lb, actions)
}

// checkActionGroups checks that the target groups an action set forwards
// to exist, suit the load balancer's type and are used by no other load
// balancer.
func (st *state) checkActionGroups(lb *lbRecord, actions []elbv2api.Action) error {
	lbARN := *lb.LB.LoadBalancerArn
	var limit []string
	for _, a := range actionTargetGroups(actions) {
		tg := st.tgs[a]
		if tg == nil {
			return notFound(elbv2api.ErrTargetGroupNotFoundException, "Target group '%s' not found", a)
		}
		tgProto := deref(tg.TG.Protocol)
		if (deref(lb.LB.Type) == elbv2api.LoadBalancerTypeEnumNetwork) != (tgProto == protocolTCP) {
			return fail(errs.Invalid, elbv2api.ErrIncompatibleProtocolsException,
				"The target group '%s' has the protocol '%s', which load balancers of type '%s' cannot forward to", a, tgProto, deref(lb.LB.Type))
		}
		for _, other := range st.tgLoadBalancers(a) {
			if other != lbARN {
				limit = append(limit, a)
				break
			}
		}
	}
	if len(limit) > 0 {
		return fail(errs.Conflict, elbv2api.ErrTargetGroupAssociationLimitException,
			"The following target groups cannot be associated with more than one load balancer: %s", strings.Join(limit, ", "))
	}
	return nil
}

// canListen asks the data plane whether the listener's address is free
// on this host (not held by another program).
func (s *Service) canListen(listenerARN string, port int32) error {
	if s.plane == nil {
		return nil
	}
	addr := s.listenAddr(port)
	if err := s.plane.CanListen(listenerARN, addr); err != nil {
		return fail(errs.Conflict, elbv2api.ErrInvalidConfigurationRequestException, "Berth cannot listen on %s (port %d) for this listener: %v", addr, port, err)
	}
	return nil
}

func (s *Service) CreateListener(ctx context.Context, in *elbv2api.CreateListenerInput) (*elbv2api.CreateListenerOutput, error) {
	if in.Port == nil {
		return nil, invalid("A listener port must be specified")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	id := newID()
	var out *listenerRecord
	var lisARN string
	build := func(st *state) (*listenerRecord, error) {
		lb := st.lbs[deref(in.LoadBalancerArn)]
		if lb == nil {
			return nil, notFound(elbv2api.ErrLoadBalancerNotFoundException, "One or more load balancers not found")
		}
		proto := deref(in.Protocol)
		if proto == "" {
			proto = protocolHTTP
			if deref(lb.LB.Type) == elbv2api.LoadBalancerTypeEnumNetwork {
				proto = protocolTCP
			}
		}
		_, prefix, _ := strings.Cut(*lb.LB.LoadBalancerArn, ":loadbalancer/") // app/<name>/<id>
		lisARN = s.arns.Service("elasticloadbalancing", "listener/"+prefix+"/"+id)
		r := &listenerRecord{ID: id, Tags: in.Tags, L: elbv2api.Listener{
			ListenerArn: ptr(lisARN), LoadBalancerArn: lb.LB.LoadBalancerArn, Port: in.Port, Protocol: ptr(proto),
			Certificates: in.Certificates, DefaultActions: in.DefaultActions,
		}}
		r.DefaultRule = s.arns.Service("elasticloadbalancing", "listener-rule/"+prefix+"/"+id+"/"+newID())
		if proto == protocolHTTPS {
			r.L.SslPolicy = ptr(deref(in.SslPolicy))
			if *r.L.SslPolicy == "" {
				r.L.SslPolicy = ptr("ELBSecurityPolicy-2016-08")
			}
		}
		if err := s.checkListener(st, lb, &r.L); err != nil {
			return nil, err
		}
		n := 0
		for _, l := range st.listeners {
			if deref(l.L.LoadBalancerArn) == *lb.LB.LoadBalancerArn {
				n++
			}
		}
		if n >= maxListenersPerLB {
			return nil, fail(errs.LimitExceeded, elbv2api.ErrTooManyListenersException, "A load balancer can have at most %d listeners", maxListenersPerLB)
		}
		return r, nil
	}
	// Check the host port before committing (a port held by another
	// program), then commit with every check run again.
	st, err := loadState(ctx, s.st)
	if err != nil {
		return nil, err
	}
	if _, err := build(st); err != nil {
		return nil, err
	}
	if err := s.canListen(lisARN, *in.Port); err != nil {
		return nil, err
	}
	err = s.mutate(ctx, func(st *state) error {
		r, err := build(st)
		if err != nil {
			return err
		}
		st.putListener(r)
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.CreateListenerOutput{Listeners: []elbv2api.Listener{out.L}}, nil
}

func (s *Service) DescribeListeners(ctx context.Context, in *elbv2api.DescribeListenersInput) (*elbv2api.DescribeListenersOutput, error) {
	if in.LoadBalancerArn == nil && len(in.ListenerArns) == 0 {
		return nil, invalid("You must specify either listener ARNs or a load balancer ARN")
	}
	if in.LoadBalancerArn != nil && len(in.ListenerArns) > 0 {
		return nil, invalid("Listener ARNs and a load balancer ARN cannot be specified at the same time")
	}
	st, err := loadState(ctx, s.st)
	if err != nil {
		return nil, err
	}
	var all []*listenerRecord
	if in.LoadBalancerArn != nil {
		if st.lbs[*in.LoadBalancerArn] == nil {
			return nil, notFound(elbv2api.ErrLoadBalancerNotFoundException, "One or more load balancers not found")
		}
		for _, a := range sortedKeys(st.listeners) {
			if deref(st.listeners[a].L.LoadBalancerArn) == *in.LoadBalancerArn {
				all = append(all, st.listeners[a])
			}
		}
	}
	for _, a := range in.ListenerArns {
		r := st.listeners[a]
		if r == nil {
			return nil, notFound(elbv2api.ErrListenerNotFoundException, "One or more listeners not found")
		}
		all = append(all, r)
	}
	page, next, err := paginate(all, in.Marker, in.PageSize, func(r *listenerRecord) string { return *r.L.ListenerArn })
	if err != nil {
		return nil, err
	}
	out := &elbv2api.DescribeListenersOutput{Listeners: []elbv2api.Listener{}, NextMarker: next}
	for _, r := range page {
		out.Listeners = append(out.Listeners, r.L)
	}
	return out, nil
}

func (s *Service) ModifyListener(ctx context.Context, in *elbv2api.ModifyListenerInput) (*elbv2api.ModifyListenerOutput, error) {
	a := deref(in.ListenerArn)
	if in.Port != nil {
		st, err := loadState(ctx, s.st)
		if err != nil {
			return nil, err
		}
		if r := st.listeners[a]; r != nil && deref(r.L.Port) != *in.Port {
			if err := s.canListen(a, *in.Port); err != nil {
				return nil, err
			}
		}
	}
	var out elbv2api.Listener
	err := s.mutate(ctx, func(st *state) error {
		r := st.listeners[a]
		if r == nil {
			return notFound(elbv2api.ErrListenerNotFoundException, "One or more listeners not found")
		}
		l := r.L
		if in.Port != nil {
			l.Port = in.Port
		}
		if in.Protocol != nil {
			l.Protocol = in.Protocol
			if *in.Protocol != protocolHTTPS {
				l.Certificates, l.SslPolicy = nil, nil
			} else if l.SslPolicy == nil {
				l.SslPolicy = ptr("ELBSecurityPolicy-2016-08")
			}
		}
		if in.Certificates != nil {
			l.Certificates = in.Certificates
		}
		if in.SslPolicy != nil {
			l.SslPolicy = in.SslPolicy
		}
		if in.DefaultActions != nil {
			l.DefaultActions = in.DefaultActions
		}
		if err := s.checkListener(st, st.lbs[deref(l.LoadBalancerArn)], &l); err != nil {
			return err
		}
		r.L = l
		st.putListener(r)
		out = l
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.ModifyListenerOutput{Listeners: []elbv2api.Listener{out}}, nil
}

func (s *Service) DeleteListener(ctx context.Context, in *elbv2api.DeleteListenerInput) (*elbv2api.DeleteListenerOutput, error) {
	err := s.mutate(ctx, func(st *state) error {
		r := st.listeners[deref(in.ListenerArn)]
		if r == nil {
			return notFound(elbv2api.ErrListenerNotFoundException, "One or more listeners not found")
		}
		st.deleteListener(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.DeleteListenerOutput{}, nil
}

// --- rules ---

// listenerRules returns the listener's rules by priority, default last.
func (st *state) listenerRules(l *listenerRecord) []elbv2api.Rule {
	var out []elbv2api.Rule
	for _, r := range st.rules {
		if r.Listener == *l.L.ListenerArn {
			out = append(out, r.R)
		}
	}
	slices.SortFunc(out, func(a, b elbv2api.Rule) int { return prio(a) - prio(b) })
	return append(out, defaultRule(l))
}

func prio(r elbv2api.Rule) int {
	n, _ := strconv.Atoi(deref(r.Priority))
	return n
}

func defaultRule(l *listenerRecord) elbv2api.Rule {
	return elbv2api.Rule{RuleArn: ptr(l.DefaultRule), Priority: ptr("default"), IsDefault: ptr(true),
		Conditions: []elbv2api.RuleCondition{}, Actions: l.L.DefaultActions}
}

// ruleByARN finds a rule, the default rule of a listener included.
func (st *state) ruleByARN(a string) (*ruleRecord, *listenerRecord, error) {
	if r := st.rules[a]; r != nil {
		return r, st.listeners[r.Listener], nil
	}
	for _, l := range st.listeners {
		if l.DefaultRule == a {
			return nil, l, nil
		}
	}
	return nil, nil, notFound(elbv2api.ErrRuleNotFoundException, "One or more rules not found")
}

func (s *Service) CreateRule(ctx context.Context, in *elbv2api.CreateRuleInput) (*elbv2api.CreateRuleOutput, error) {
	if len(in.Transforms) > 0 {
		return nil, fail(errs.Unsupported, CodeValidationError, "Berth does not support rule transforms")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	conds, err := checkConditions(in.Conditions)
	if err != nil {
		return nil, err
	}
	actions, err := checkActions(in.Actions)
	if err != nil {
		return nil, err
	}
	p := int(deref(in.Priority))
	var out elbv2api.Rule
	err = s.mutate(ctx, func(st *state) error {
		l := st.listeners[deref(in.ListenerArn)]
		if l == nil {
			return notFound(elbv2api.ErrListenerNotFoundException, "One or more listeners not found")
		}
		current := map[string]int{}
		for _, r := range st.rules {
			if r.Listener == *l.L.ListenerArn {
				current[*r.R.RuleArn] = prio(r.R)
			}
		}
		if len(current) >= maxRulesPerLis {
			return fail(errs.LimitExceeded, elbv2api.ErrTooManyRulesException, "A listener can have at most %d rules besides its default rule", maxRulesPerLis)
		}
		id := newID()
		arn := l.DefaultRule[:strings.LastIndex(l.DefaultRule, "/")+1] + id
		if err := checkPriorities(current, map[string]int{arn: p}); err != nil {
			return err
		}
		if err := st.checkActionGroups(st.lbs[deref(l.L.LoadBalancerArn)], actions); err != nil {
			return err
		}
		r := &ruleRecord{ID: id, Listener: *l.L.ListenerArn, Tags: in.Tags, R: elbv2api.Rule{
			RuleArn: ptr(arn), Priority: ptr(strconv.Itoa(p)), IsDefault: ptr(false), Conditions: conds, Actions: actions,
		}}
		st.putRule(r)
		out = r.R
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.CreateRuleOutput{Rules: []elbv2api.Rule{out}}, nil
}

func (s *Service) DescribeRules(ctx context.Context, in *elbv2api.DescribeRulesInput) (*elbv2api.DescribeRulesOutput, error) {
	if in.ListenerArn == nil && len(in.RuleArns) == 0 {
		return nil, invalid("You must specify either listener rule ARNs or a listener ARN")
	}
	st, err := loadState(ctx, s.st)
	if err != nil {
		return nil, err
	}
	var all []elbv2api.Rule
	if in.ListenerArn != nil {
		l := st.listeners[*in.ListenerArn]
		if l == nil {
			return nil, notFound(elbv2api.ErrListenerNotFoundException, "One or more listeners not found")
		}
		all = st.listenerRules(l)
	}
	for _, a := range in.RuleArns {
		r, l, err := st.ruleByARN(a)
		if err != nil {
			return nil, err
		}
		if r != nil {
			all = append(all, r.R)
		} else {
			all = append(all, defaultRule(l))
		}
	}
	// Pages follow the order above; the marker holds the count returned.
	page, next, err := paginate(indexed(all), in.Marker, in.PageSize, func(r indexedRule) string { return r.key })
	if err != nil {
		return nil, err
	}
	out := &elbv2api.DescribeRulesOutput{Rules: []elbv2api.Rule{}, NextMarker: next}
	for _, r := range page {
		out.Rules = append(out.Rules, r.rule)
	}
	return out, nil
}

type indexedRule struct {
	key  string
	rule elbv2api.Rule
}

// indexed keys rules by position so paginate's ordering holds.
func indexed(rules []elbv2api.Rule) []indexedRule {
	out := make([]indexedRule, len(rules))
	for i, r := range rules {
		out[i] = indexedRule{key: strconv.Itoa(100000 + i), rule: r}
	}
	return out
}

func (s *Service) ModifyRule(ctx context.Context, in *elbv2api.ModifyRuleInput) (*elbv2api.ModifyRuleOutput, error) {
	if len(in.Transforms) > 0 {
		return nil, fail(errs.Unsupported, CodeValidationError, "Berth does not support rule transforms")
	}
	var conds []elbv2api.RuleCondition
	var actions []elbv2api.Action
	var err error
	if in.Conditions != nil {
		if conds, err = checkConditions(in.Conditions); err != nil {
			return nil, err
		}
	}
	if in.Actions != nil {
		if actions, err = checkActions(in.Actions); err != nil {
			return nil, err
		}
	}
	var out elbv2api.Rule
	err = s.mutate(ctx, func(st *state) error {
		r, l, err := st.ruleByARN(deref(in.RuleArn))
		if err != nil {
			return err
		}
		lb := st.lbs[deref(l.L.LoadBalancerArn)]
		if actions != nil {
			if err := st.checkActionGroups(lb, actions); err != nil {
				return err
			}
		}
		if r == nil { // the default rule: its actions are the listener's
			if conds != nil {
				return fail(errs.Invalid, elbv2api.ErrOperationNotPermittedException, "The conditions of a default rule cannot be modified")
			}
			if actions != nil {
				l.L.DefaultActions = actions
				st.putListener(l)
			}
			out = defaultRule(l)
			return nil
		}
		if conds != nil {
			r.R.Conditions = conds
		}
		if actions != nil {
			r.R.Actions = actions
		}
		st.putRule(r)
		out = r.R
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.ModifyRuleOutput{Rules: []elbv2api.Rule{out}}, nil
}

func (s *Service) DeleteRule(ctx context.Context, in *elbv2api.DeleteRuleInput) (*elbv2api.DeleteRuleOutput, error) {
	err := s.mutate(ctx, func(st *state) error {
		r, _, err := st.ruleByARN(deref(in.RuleArn))
		if err != nil {
			return err
		}
		if r == nil {
			return fail(errs.Invalid, elbv2api.ErrOperationNotPermittedException, "Default rule '%s' cannot be deleted", deref(in.RuleArn))
		}
		st.deleteRule(r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.DeleteRuleOutput{}, nil
}

// SetRulePriorities changes the priorities of rules of one listener at once.
func (s *Service) SetRulePriorities(ctx context.Context, in *elbv2api.SetRulePrioritiesInput) (*elbv2api.SetRulePrioritiesOutput, error) {
	var out []elbv2api.Rule
	err := s.mutate(ctx, func(st *state) error {
		out = nil
		changes := map[string]int{}
		listener := ""
		for _, pair := range in.RulePriorities {
			a := deref(pair.RuleArn)
			r, _, err := st.ruleByARN(a)
			if err != nil {
				return err
			}
			if r == nil {
				return fail(errs.Invalid, elbv2api.ErrOperationNotPermittedException, "Default rule '%s' priority cannot be modified", a)
			}
			if listener != "" && r.Listener != listener {
				return invalid("All rules must belong to the same listener")
			}
			listener = r.Listener
			if _, dup := changes[a]; dup {
				return invalid("Rule '%s' is specified more than once", a)
			}
			changes[a] = int(deref(pair.Priority))
		}
		current := map[string]int{}
		for _, r := range st.rules {
			if r.Listener == listener {
				current[*r.R.RuleArn] = prio(r.R)
			}
		}
		if err := checkPriorities(current, changes); err != nil {
			return err
		}
		for _, a := range sortedKeys(changes) {
			r := st.rules[a]
			r.R.Priority = ptr(strconv.Itoa(changes[a]))
			st.putRule(r)
			out = append(out, r.R)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.SetRulePrioritiesOutput{Rules: out}, nil
}
