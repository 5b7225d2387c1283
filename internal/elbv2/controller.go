package elbv2

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/alb"
	"github.com/berthdev/berth/internal/api/elbv2api"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// The controller: every server runs one. It claims load balancers that
// no live server holds (a key under keyOwners attached to its lease),
// hands the configuration of the ones it holds to its data plane, and
// records each load balancer's state (active once its listeners listen,
// active_impaired with the reason when one cannot). A server that stops
// revokes its lease; one that dies loses it after OwnerTTL; either way
// another server claims its load balancers. A restarted server takes back
// the claims made under its own id at once.

// Run runs the controller until ctx ends.
func (s *Service) Run(ctx context.Context) {
	if s.plane == nil {
		return
	}
	log := s.log.With("component", "elbv2-controller")
	var lease store.LeaseID
	defer func() {
		if lease != 0 {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.st.Revoke(rctx, lease)
			cancel()
		}
	}()
	watch := s.st.Watch(ctx, "/berth/elbv2/", 0)
	resync := time.NewTicker(s.cfg.Resync)
	defer resync.Stop()
	keep := time.NewTicker(s.cfg.OwnerTTL / 3)
	defer keep.Stop()
	failures := 0
	// dirty says the configuration must be applied again. Only changes to
	// the configuration, a wake, the resync and a new lease set it: the
	// keep-alive and the plane's health signal (which every Apply raises)
	// do not, or Apply and the signal would chase each other for ever.
	dirty := true
	for {
		if lease == 0 {
			id, err := s.st.Grant(ctx, s.cfg.OwnerTTL)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("cannot grant the load balancer ownership lease", "err", err)
			} else {
				lease = id
				dirty = true
			}
		}
		if lease != 0 && dirty {
			dirty = false
			if err := s.reconcile(ctx, lease); err != nil && ctx.Err() == nil {
				dirty = true // the resync or the next change tries again
				failures++
				if failures == 1 || failures%30 == 0 {
					log.Warn("load balancer configuration not applied", "err", err, "failures", failures)
				}
			} else if failures > 0 {
				log.Info("load balancer configuration applied again", "after_failures", failures)
				failures = 0
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			dirty = true
		case <-resync.C:
			dirty = true
		case <-keep.C:
			if lease != 0 {
				if err := s.st.KeepAliveOnce(ctx, lease); errs.Is(err, errs.NotFound) {
					lease = 0
				}
			}
			continue
		case <-s.plane.HealthChanges():
			if err := s.recordHealth(ctx); err != nil && ctx.Err() == nil {
				log.Warn("target health not recorded", "err", err)
			}
			continue
		case resp, ok := <-watch:
			if !ok || resp.Err != nil {
				if ctx.Err() != nil {
					return
				}
				time.Sleep(time.Second)
				watch = s.st.Watch(ctx, "/berth/elbv2/", 0)
				dirty = true
			} else if !onlyHealth(resp.Events) {
				dirty = true
			}
		}
	}
}

// reconcile claims free load balancers, applies the held ones' config
// and records their state.
func (s *Service) reconcile(ctx context.Context, lease store.LeaseID) error {
	st, err := loadState(ctx, s.st)
	if err != nil {
		return err
	}
	owners, err := s.st.List(ctx, keyOwners, store.ListOptions{})
	if err != nil {
		return err
	}
	held := map[string]store.KV{}
	for _, kv := range owners.KVs {
		held[strings.TrimPrefix(kv.Key, keyOwners)] = kv
	}
	owned := map[string]bool{}
	for a, lb := range st.lbs {
		kv, ok := held[lb.ID]
		switch {
		case ok && kv.Lease == lease:
			owned[a] = true
		case !ok || string(kv.Value) == s.cfg.ServerID:
			// Free, or held by this server before a restart.
			res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(keyOwners+lb.ID, kv.ModRevision)},
				store.PutWithLease(keyOwners+lb.ID, []byte(s.cfg.ServerID), lease))
			if err != nil {
				return err
			}
			owned[a] = res.Succeeded
		}
	}
	for id, kv := range held {
		if kv.Lease == lease && !st.hasLBID(id) {
			s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(kv.Key, kv.ModRevision)}, store.Delete(kv.Key))
		}
	}
	hres, err := s.st.List(ctx, keyHealth, store.ListOptions{})
	if err != nil {
		return err
	}
	wasHealthy := map[string]bool{} // "<group id>|<id>:<port>"
	for _, kv := range hres.KVs {
		var ids []string
		if json.Unmarshal(kv.Value, &ids) == nil {
			for _, id := range ids {
				wasHealthy[strings.TrimPrefix(kv.Key, keyHealth)+"|"+id] = true
			}
		}
	}
	addr := s.targetAddr(ctx)
	cfg := buildConfig(st, owned, s.cfg.ListenHost, s.certFilesOK, func(tg *tgRecord, t targetRecord) (string, bool, bool) {
		a, ok := addr(tg, t)
		return a, wasHealthy[tg.ID+"|"+t.ID+":"+strconv.Itoa(int(t.Port))], ok
	})
	applyErr := s.plane.Apply(cfg)
	s.mu.Lock()
	s.servedPairs = servedPairs(cfg)
	s.mu.Unlock()
	impaired := map[string]string{} // load balancer ARN -> reason
	var le *alb.ListenError
	if errors.As(applyErr, &le) {
		for _, l := range st.listeners {
			if *l.L.ListenerArn == le.ListenerARN {
				impaired[deref(l.L.LoadBalancerArn)] = le.Error()
			}
		}
	} else if applyErr != nil {
		return applyErr
	}
	return s.recordStates(ctx, st, owned, impaired, applyErr)
}

// servedPairs lists the (load balancer, target group) pairs a
// configuration forwards along.
func servedPairs(cfg alb.Config) []pairKey {
	seen := map[pairKey]bool{}
	var out []pairKey
	add := func(lb string, actions []alb.Action) {
		for _, a := range actions {
			for _, f := range a.Forward {
				k := pairKey{lb: lb, tg: f.ARN}
				if !seen[k] {
					seen[k] = true
					out = append(out, k)
				}
			}
		}
	}
	for _, lb := range cfg.LoadBalancers {
		for _, l := range lb.Listeners {
			add(lb.ARN, l.DefaultActions)
			for _, r := range l.Rules {
				add(lb.ARN, r.Actions)
			}
		}
	}
	return out
}

// onlyHealth reports whether a watch batch holds only health records
// (which need no new configuration).
func onlyHealth(events []store.Event) bool {
	for _, e := range events {
		if !strings.HasPrefix(e.KV.Key, keyHealth) && !strings.HasPrefix(e.KV.Key, keyObserved) {
			return false
		}
	}
	return len(events) > 0
}

// recordHealth writes, for every target group this server's plane
// serves, the targets it sees healthy, when that changed.
func (s *Service) recordHealth(ctx context.Context) error {
	s.mu.Lock()
	pairs := s.servedPairs
	s.mu.Unlock()
	if s.healthSeen == nil {
		s.healthSeen = map[string]string{}
	}
	done := map[string]bool{}
	var errList []error
	for _, k := range pairs {
		if done[k.tg] {
			continue
		}
		done[k.tg] = true
		var ids []string
		states := map[string]ecs.TargetState{}
		for _, h := range s.plane.TargetHealth(k.tg) {
			key := h.ID + ":" + strconv.Itoa(h.Port)
			if h.State == "healthy" {
				ids = append(ids, key)
			}
			states[key] = ecs.TargetState{State: h.State, Reason: h.Reason}
		}
		slices.Sort(ids)
		b, _ := json.Marshal(ids)
		ob, _ := json.Marshal(states)
		id := k.tg[strings.LastIndex(k.tg, "/")+1:]
		if s.healthSeen[id] == string(b) && s.healthSeen[keyObserved+id] == string(ob) {
			continue
		}
		// Written only while the group still exists (DeleteTargetGroup
		// deletes the records in its own commit).
		res, err := s.st.Txn(ctx, []store.Cmp{store.Exists(keyTG + id)}, store.Put(keyHealth+id, b), store.Put(keyObserved+id, ob))
		if err != nil {
			errList = append(errList, err)
			continue
		}
		if res.Succeeded {
			s.healthSeen[id] = string(b)
			s.healthSeen[keyObserved+id] = string(ob)
		}
	}
	return errors.Join(errList...)
}

func (st *state) hasLBID(id string) bool {
	for _, lb := range st.lbs {
		if lb.ID == id {
			return true
		}
	}
	return false
}

// recordStates writes the state of the held load balancers when it changed.
func (s *Service) recordStates(ctx context.Context, seen *state, owned map[string]bool, impaired map[string]string, applyErr error) error {
	want := func(a string) (elbv2api.LoadBalancerStateEnum, string) {
		if r, ok := impaired[a]; ok {
			return elbv2api.LoadBalancerStateEnumActiveImpaired, r
		}
		return elbv2api.LoadBalancerStateEnumActive, ""
	}
	changed := false
	for a := range owned {
		if !owned[a] {
			continue
		}
		code, reason := want(a)
		cur := seen.lbs[a].LB.State
		if cur == nil || deref(cur.Code) != code || deref(cur.Reason) != reason {
			changed = true
		}
	}
	if !changed {
		return applyErr
	}
	err := s.mutate(ctx, func(st *state) error {
		for a, lb := range st.lbs {
			if !owned[a] {
				continue
			}
			code, reason := want(a)
			cur := lb.LB.State
			if cur != nil && deref(cur.Code) == code && deref(cur.Reason) == reason {
				continue
			}
			lb.LB.State = &elbv2api.LoadBalancerState{Code: ptr(code)}
			if reason != "" {
				lb.LB.State.Reason = ptr(reason)
			}
			st.putLB(lb)
		}
		return nil
	})
	return errors.Join(err, applyErr)
}

func (s *Service) certFilesOK(certARN string) (string, string) {
	c, k, err := s.certFiles(certARN)
	if err != nil {
		s.log.Warn("listener certificate not loaded", "certificate", certARN, "err", err)
	}
	return c, k
}

// targetAddr resolves a target to the address the plane dials: an ip
// target's own address, an instance target's host.
func (s *Service) targetAddr(ctx context.Context) func(tg *tgRecord, t targetRecord) (string, bool) {
	return func(tg *tgRecord, t targetRecord) (string, bool) {
		host := t.ID
		if deref(tg.TG.TargetType) == elbv2api.TargetTypeEnumInstance {
			if s.cfg.Instances == nil {
				return "", false
			}
			h, err := s.cfg.Instances(ctx, t.ID)
			if err != nil {
				s.log.Warn("instance target not resolved", "target_group", deref(tg.TG.TargetGroupName), "instance", t.ID, "err", err)
				return "", false
			}
			host = h
		}
		return net.JoinHostPort(host, strconv.Itoa(int(t.Port))), true
	}
}

// buildConfig is the data plane's configuration for the load balancers in
// owned, with the target groups they forward to. Pure.
// targetAddr gives a target's address, whether it was healthy before
// (StartHealthy) and whether it resolves at all.
func buildConfig(st *state, owned map[string]bool, host string, certFiles func(string) (string, string),
	targetAddr func(*tgRecord, targetRecord) (addr string, healthy, ok bool)) alb.Config {
	var cfg alb.Config
	groups := map[string]bool{}
	for _, a := range sortedKeys(st.lbs) {
		if !owned[a] {
			continue
		}
		r := st.lbs[a]
		lb := alb.LoadBalancer{ARN: a, Name: deref(r.LB.LoadBalancerName), Type: string(deref(r.LB.Type))}
		if n, err := strconv.Atoi(r.Attrs["idle_timeout.timeout_seconds"]); err == nil {
			lb.IdleTimeout = time.Duration(n) * time.Second
		}
		for _, la := range sortedKeys(st.listeners) {
			l := st.listeners[la]
			if deref(l.L.LoadBalancerArn) != a {
				continue
			}
			al := alb.Listener{ARN: la, Addr: net.JoinHostPort(host, strconv.Itoa(int(deref(l.L.Port)))),
				Protocol: string(deref(l.L.Protocol)), DefaultActions: albActions(l.L.DefaultActions)}
			if len(l.L.Certificates) > 0 {
				al.CertFile, al.KeyFile = certFiles(deref(l.L.Certificates[0].CertificateArn))
			}
			for _, g := range actionTargetGroups(l.L.DefaultActions) {
				groups[g] = true
			}
			for _, ra := range sortedKeys(st.rules) {
				rule := st.rules[ra]
				if rule.Listener != la {
					continue
				}
				al.Rules = append(al.Rules, alb.Rule{ARN: ra, Priority: prio(rule.R), Conditions: albConditions(rule.R.Conditions), Actions: albActions(rule.R.Actions)})
				for _, g := range actionTargetGroups(rule.R.Actions) {
					groups[g] = true
				}
			}
			lb.Listeners = append(lb.Listeners, al)
		}
		cfg.LoadBalancers = append(cfg.LoadBalancers, lb)
	}
	for _, g := range sortedKeys(groups) {
		r := st.tgs[g]
		if r == nil {
			continue
		}
		cfg.TargetGroups = append(cfg.TargetGroups, albTargetGroup(r, targetAddr))
	}
	return cfg
}

func seconds(attrs map[string]string, key string) time.Duration {
	n, _ := strconv.Atoi(attrs[key])
	return time.Duration(n) * time.Second
}

func albTargetGroup(r *tgRecord, targetAddr func(*tgRecord, targetRecord) (string, bool, bool)) alb.TargetGroup {
	tg := r.TG
	out := alb.TargetGroup{
		ARN: *tg.TargetGroupArn, Name: deref(tg.TargetGroupName), Protocol: string(deref(tg.Protocol)),
		ProtocolVersion:     deref(tg.ProtocolVersion),
		DeregistrationDelay: seconds(r.Attrs, "deregistration_delay.timeout_seconds"),
		SlowStart:           seconds(r.Attrs, "slow_start.duration_seconds"),
		Algorithm:           r.Attrs["load_balancing.algorithm.type"],
		HealthCheck: alb.HealthCheck{
			Enabled: deref(tg.HealthCheckEnabled), Protocol: string(deref(tg.HealthCheckProtocol)), Path: deref(tg.HealthCheckPath),
			Port:               deref(tg.HealthCheckPort),
			Interval:           time.Duration(deref(tg.HealthCheckIntervalSeconds)) * time.Second,
			Timeout:            time.Duration(deref(tg.HealthCheckTimeoutSeconds)) * time.Second,
			HealthyThreshold:   int(deref(tg.HealthyThresholdCount)),
			UnhealthyThreshold: int(deref(tg.UnhealthyThresholdCount)),
		},
	}
	if tg.Matcher != nil {
		out.HealthCheck.Matcher = deref(tg.Matcher.HttpCode)
	}
	if r.Attrs["stickiness.enabled"] == "true" {
		out.Stickiness = seconds(r.Attrs, "stickiness.lb_cookie.duration_seconds")
	}
	for _, t := range r.Targets {
		addr, healthy, ok := targetAddr(r, t)
		if !ok {
			continue
		}
		out.Targets = append(out.Targets, alb.Target{ID: t.ID, Port: int(t.Port), Addr: addr, StartHealthy: healthy})
	}
	return out
}

func albActions(actions []elbv2api.Action) []alb.Action {
	var out []alb.Action
	for _, a := range actions {
		aa := alb.Action{Type: string(deref(a.Type)), Order: int(deref(a.Order))}
		switch deref(a.Type) {
		case elbv2api.ActionTypeEnumForward:
			if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
				for _, g := range a.ForwardConfig.TargetGroups {
					w := int32(1)
					if g.Weight != nil {
						w = *g.Weight
					}
					aa.Forward = append(aa.Forward, alb.WeightedTargetGroup{ARN: deref(g.TargetGroupArn), Weight: int(w)})
				}
				if sc := a.ForwardConfig.TargetGroupStickinessConfig; sc != nil && deref(sc.Enabled) {
					aa.Stickiness = time.Duration(deref(sc.DurationSeconds)) * time.Second
				}
			} else {
				aa.Forward = []alb.WeightedTargetGroup{{ARN: deref(a.TargetGroupArn), Weight: 1}}
			}
		case elbv2api.ActionTypeEnumFixedResponse:
			fr := a.FixedResponseConfig
			code, _ := strconv.Atoi(deref(fr.StatusCode))
			aa.FixedResponse = &alb.FixedResponse{StatusCode: code, ContentType: deref(fr.ContentType), Body: deref(fr.MessageBody)}
		case elbv2api.ActionTypeEnumRedirect:
			rc := a.RedirectConfig
			code := 301
			if deref(rc.StatusCode) == elbv2api.RedirectActionStatusCodeEnumHttp302 {
				code = 302
			}
			aa.Redirect = &alb.Redirect{Protocol: deref(rc.Protocol), Host: deref(rc.Host), Port: deref(rc.Port),
				Path: deref(rc.Path), Query: deref(rc.Query), StatusCode: code}
		}
		out = append(out, aa)
	}
	return out
}

func albConditions(conds []elbv2api.RuleCondition) []alb.Condition {
	var out []alb.Condition
	for _, c := range conds {
		ac := alb.Condition{Field: deref(c.Field)}
		switch ac.Field {
		case "path-pattern":
			ac.Values = c.PathPatternConfig.Values
		case "host-header":
			ac.Values = c.HostHeaderConfig.Values
		case "http-header":
			ac.HeaderName = deref(c.HttpHeaderConfig.HttpHeaderName)
			ac.Values = c.HttpHeaderConfig.Values
		case "http-request-method":
			ac.Values = c.HttpRequestMethodConfig.Values
		case "query-string":
			for _, kv := range c.QueryStringConfig.Values {
				ac.QueryStrings = append(ac.QueryStrings, alb.KeyValue{Key: deref(kv.Key), Value: deref(kv.Value)})
			}
		case "source-ip":
			ac.Values = c.SourceIpConfig.Values
		}
		out = append(out, ac)
	}
	return out
}
