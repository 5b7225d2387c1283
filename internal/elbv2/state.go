package elbv2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berthdev/berth/internal/api/elbv2api"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Store layout. Every record is small; the whole ELBv2 state is read at
// once (a few hundred records at most) and every change commits against
// keyVersion, which each change rewrites: one writer at a time, so
// invariants that span records (a port used once per host, a target
// group used by one load balancer, a rule priority used once per
// listener) hold without locks.
const (
	keyState   = "/berth/elbv2/state/"
	keyVersion = keyState + "version"
	keyLB      = keyState + "lb/"
	keyTG      = keyState + "tg/"
	keyLis     = keyState + "listener/"
	keyRule    = keyState + "rule/"
	// keyOwners holds, per load balancer id, the id of the server whose
	// data plane serves it, under that server's lease (controller.go).
	keyOwners = "/berth/elbv2/owners/"
	// keyHealth holds, per target group id, the targets the data plane
	// last saw healthy (observed state, written by the server serving the
	// group on changes only), so that a restarted plane starts them
	// healthy instead of flapping them out of rotation.
	keyHealth = "/berth/elbv2/health/"
	// keyObserved holds, per target group id, every target's state and
	// reason as the data plane serving the group last saw them (written on
	// changes only), for ECS's service controller: a task of a
	// load-balanced service is healthy once its targets are (ecstargets.go).
	keyObserved = "/berth/elbv2/observed/"
)

// lbRecord is a load balancer as stored: the API's shape (State is
// observed state, written by the controller), its attributes and tags.
type lbRecord struct {
	ID    string                `json:"id"`
	LB    elbv2api.LoadBalancer `json:"lb"`
	Attrs map[string]string     `json:"attrs"`
	Tags  []elbv2api.Tag        `json:"tags,omitempty"`
}

// tgRecord is a target group with its registered targets.
type tgRecord struct {
	ID      string               `json:"id"`
	TG      elbv2api.TargetGroup `json:"tg"`
	Attrs   map[string]string    `json:"attrs"`
	Tags    []elbv2api.Tag       `json:"tags,omitempty"`
	Targets []targetRecord       `json:"targets,omitempty"`
}

// targetRecord is one registered target: an id (instance id or IP) and
// a port, as RegisterTargets names it.
type targetRecord struct {
	ID   string `json:"id"`
	Port int32  `json:"port"`
	AZ   string `json:"az,omitempty"`
	// ECSTask is the ARN of the ECS task the ECS target controller
	// registered this target for, and ECSService its service (cluster
	// ARN, "|", name); empty for targets RegisterTargets added.
	ECSTask    string `json:"ecsTask,omitempty"`
	ECSService string `json:"ecsService,omitempty"`
}

type listenerRecord struct {
	ID          string            `json:"id"`
	L           elbv2api.Listener `json:"l"`
	DefaultRule string            `json:"defaultRule"` // the default rule's ARN
	Tags        []elbv2api.Tag    `json:"tags,omitempty"`
}

type ruleRecord struct {
	ID       string         `json:"id"`
	R        elbv2api.Rule  `json:"r"` // Priority as a decimal string
	Listener string         `json:"listener"`
	Tags     []elbv2api.Tag `json:"tags,omitempty"`
}

// state is the whole ELBv2 state read at one revision, and the changes a
// mutation makes to it.
type state struct {
	version   int64                      // ModRevision of keyVersion (0: never written)
	lbs       map[string]*lbRecord       // by ARN
	tgs       map[string]*tgRecord       // by ARN
	listeners map[string]*listenerRecord // by ARN
	rules     map[string]*ruleRecord     // by ARN
	puts      map[string]any             // key -> record to write
	dels      map[string]bool
}

func loadState(ctx context.Context, st store.Store) (*state, error) {
	res, err := st.List(ctx, keyState, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	s := &state{lbs: map[string]*lbRecord{}, tgs: map[string]*tgRecord{}, listeners: map[string]*listenerRecord{},
		rules: map[string]*ruleRecord{}, puts: map[string]any{}, dels: map[string]bool{}}
	for _, kv := range res.KVs {
		var err error
		switch {
		case kv.Key == keyVersion:
			s.version = kv.ModRevision
		case strings.HasPrefix(kv.Key, keyLB):
			r := &lbRecord{}
			if err = json.Unmarshal(kv.Value, r); err == nil {
				s.lbs[*r.LB.LoadBalancerArn] = r
			}
		case strings.HasPrefix(kv.Key, keyTG):
			r := &tgRecord{}
			if err = json.Unmarshal(kv.Value, r); err == nil {
				s.tgs[*r.TG.TargetGroupArn] = r
			}
		case strings.HasPrefix(kv.Key, keyLis):
			r := &listenerRecord{}
			if err = json.Unmarshal(kv.Value, r); err == nil {
				s.listeners[*r.L.ListenerArn] = r
			}
		case strings.HasPrefix(kv.Key, keyRule):
			r := &ruleRecord{}
			if err = json.Unmarshal(kv.Value, r); err == nil {
				s.rules[*r.R.RuleArn] = r
			}
		}
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "decode %s", kv.Key)
		}
	}
	return s, nil
}

func (s *state) putLB(r *lbRecord)             { s.puts[keyLB+r.ID] = r }
func (s *state) putTG(r *tgRecord)             { s.puts[keyTG+r.ID] = r }
func (s *state) putListener(r *listenerRecord) { s.puts[keyLis+r.ID] = r }
func (s *state) putRule(r *ruleRecord)         { s.puts[keyRule+r.ID] = r }

func (s *state) deleteLB(r *lbRecord) {
	delete(s.lbs, *r.LB.LoadBalancerArn)
	s.del(keyLB + r.ID)
}
func (s *state) deleteTG(r *tgRecord) {
	delete(s.tgs, *r.TG.TargetGroupArn)
	s.del(keyTG + r.ID)
	s.del(keyHealth + r.ID)
	s.del(keyObserved + r.ID)
}
func (s *state) deleteListener(r *listenerRecord) {
	delete(s.listeners, *r.L.ListenerArn)
	s.del(keyLis + r.ID)
	for arn, rule := range s.rules {
		if rule.Listener == *r.L.ListenerArn {
			delete(s.rules, arn)
			s.del(keyRule + rule.ID)
		}
	}
}
func (s *state) deleteRule(r *ruleRecord) {
	delete(s.rules, *r.R.RuleArn)
	s.del(keyRule + r.ID)
}
func (s *state) del(key string) {
	delete(s.puts, key)
	s.dels[key] = true
}

// ops returns the writes of the mutation, with the version bump.
func (s *state) ops() ([]store.Op, error) {
	if len(s.puts) == 0 && len(s.dels) == 0 {
		return nil, nil
	}
	ops := []store.Op{store.Put(keyVersion, nil)}
	for k, v := range s.puts {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "encode %s", k)
		}
		ops = append(ops, store.Put(k, b))
	}
	for k := range s.dels {
		ops = append(ops, store.Delete(k))
	}
	return ops, nil
}

// mutate runs f on the current state and commits its changes, retrying
// on a concurrent change. f must only change the state it is given.
func (svc *Service) mutate(ctx context.Context, f func(s *state) error) error {
	for range 20 {
		s, err := loadState(ctx, svc.st)
		if err != nil {
			return err
		}
		if err := f(s); err != nil {
			return err
		}
		ops, err := s.ops()
		if err != nil || ops == nil {
			return err
		}
		if n := store.MaxTxnOps(svc.st); len(ops) > n {
			return errs.E(errs.LimitExceeded, "the change touches %d records, more than one transaction holds (%d)", len(ops), n)
		}
		res, err := svc.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(keyVersion, s.version)}, ops...)
		if err != nil {
			return err
		}
		if res.Succeeded {
			svc.nudge()
			return nil
		}
	}
	return errs.E(errs.Unavailable, "too many concurrent changes to load balancers; retry")
}

// newID returns 16 hex digits, as ELBv2 ids are.
func newID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}
