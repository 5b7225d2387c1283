package events

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Store layout (all values JSON):
//
//	/berth/events/buses/<bus>                 busRecord (the default bus only once tagged)
//	/berth/events/rules/<bus>/<rule>          ruleRecord, targets included
//	/berth/events/connections/<name>          connRecord (credentials included)
//	/berth/events/destinations/<name>         destRecord
//	/berth/events/outbox/<id>                 outboxRecord: an accepted event not yet dispatched
//	/berth/events/retries/<id>                retryRecord: one target's failed delivery awaiting retry
//	/berth/events/deliveries/<bus>/<rule>/<id> Delivery: one attempt's outcome (deliveries.go)
//	/berth/events/ecs/<kind>/<resource id>    ecsCursor: what the ECS events controller emitted
const (
	keyRoot         = "/berth/events/"
	keyBuses        = keyRoot + "buses/"
	keyRules        = keyRoot + "rules/"
	keyConnections  = keyRoot + "connections/"
	keyDestinations = keyRoot + "destinations/"
	keyOutbox       = keyRoot + "outbox/"
	keyRetries      = keyRoot + "retries/"
	keyDeliveries   = keyRoot + "deliveries/"
	keyECS          = keyRoot + "ecs/"
)

func busKey(name string) string { return keyBuses + name }

// rulesPrefix escapes the bus: bus names may hold "/", and bus "a"'s
// prefix must not hold bus "a/b"'s rules (names without "/" are unchanged).
func rulesPrefix(bus string) string   { return keyRules + url.QueryEscape(bus) + "/" }
func ruleKey(bus, name string) string { return rulesPrefix(bus) + name }
func connKey(name string) string      { return keyConnections + name }
func destKey(name string) string      { return keyDestinations + name }

type busRecord struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Created     time.Time       `json:"created"`
	Modified    time.Time       `json:"modified"`
	Tags        []eventsapi.Tag `json:"tags,omitempty"`
}

type ruleRecord struct {
	Name        string             `json:"name"`
	Bus         string             `json:"bus"`
	Pattern     string             `json:"pattern,omitempty"`
	Schedule    string             `json:"schedule,omitempty"`
	State       string             `json:"state"`
	Description string             `json:"description,omitempty"`
	RoleArn     string             `json:"roleArn,omitempty"`
	Created     time.Time          `json:"created"`
	Tags        []eventsapi.Tag    `json:"tags,omitempty"`
	Targets     []eventsapi.Target `json:"targets,omitempty"`
}

func (r *ruleRecord) enabled() bool { return r.State != string(eventsapi.RuleStateDisabled) }

type connRecord struct {
	Name        string                                          `json:"name"`
	UUID        string                                          `json:"uuid"`
	Description string                                          `json:"description,omitempty"`
	AuthType    string                                          `json:"authType"`
	Auth        eventsapi.CreateConnectionAuthRequestParameters `json:"auth"`
	Created     time.Time                                       `json:"created"`
	Modified    time.Time                                       `json:"modified"`
}

type destRecord struct {
	Name        string    `json:"name"`
	UUID        string    `json:"uuid"`
	Description string    `json:"description,omitempty"`
	Connection  string    `json:"connectionArn"`
	Method      string    `json:"method"`
	Endpoint    string    `json:"endpoint"`
	RateLimit   int32     `json:"rateLimit,omitempty"`
	Created     time.Time `json:"created"`
	Modified    time.Time `json:"modified"`
}

// getJSON reads key into v; it returns the key's ModRevision, and
// (0, nil) when the key is absent.
func getJSON(ctx context.Context, st store.Store, key string, v any) (int64, error) {
	kv, err := st.Get(ctx, key)
	if errs.Is(err, errs.NotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return 0, errs.Wrap(errs.Internal, err, "corrupt record %s", key)
	}
	return kv.ModRevision, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // records are plain data
	}
	return b
}

// listJSON reads every record under prefix.
func listJSON[T any](ctx context.Context, st store.Store, prefix string) ([]T, int64, error) {
	res, err := st.List(ctx, prefix, store.ListOptions{})
	if err != nil {
		return nil, 0, err
	}
	out := make([]T, 0, len(res.KVs))
	for _, kv := range res.KVs {
		var v T
		if json.Unmarshal(kv.Value, &v) == nil {
			out = append(out, v)
		}
	}
	return out, res.Revision, nil
}

// commit runs one transaction and turns a failed comparison into a
// ConcurrentModificationException.
func commit(ctx context.Context, st store.Store, cmps []store.Cmp, ops ...store.Op) error {
	res, err := st.Txn(ctx, cmps, ops...)
	if err != nil {
		return err
	}
	if !res.Succeeded {
		return errs.E(errs.Conflict, "Another request changed the resource at the same time; try again.")
	}
	return nil
}

// busName resolves an EventBusName member (a name or an ARN).
func (s *Service) busName(p *string) string {
	n := deref(p)
	if n == "" {
		return DefaultBus
	}
	if strings.HasPrefix(n, "arn:") {
		if i := strings.Index(n, ":event-bus/"); i >= 0 {
			return n[i+len(":event-bus/"):]
		}
	}
	return n
}
