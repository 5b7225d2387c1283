package ecs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Join tokens and agent credentials: see docs/agent.md, "Identity".

// DefaultJoinTokenTTL is how long a join token is valid by default.
const DefaultJoinTokenTTL = time.Hour

type joinTokenRecord struct {
	ExpiresAt time.Time `json:"expiresAt"`
	// Cluster binds the token: an agent joining with it lands in this
	// cluster and may not ask for another. Empty: any cluster.
	Cluster string `json:"cluster,omitempty"`
	// SingleUse tokens are deleted by the join that uses them, in the
	// transaction that registers the instance.
	SingleUse bool `json:"singleUse,omitempty"`
}

// JoinTokenOptions shape a new join token.
type JoinTokenOptions struct {
	TTL       time.Duration // default DefaultJoinTokenTTL
	Cluster   string        // bind the token to this cluster (which must exist)
	SingleUse bool          // good for one join only
}

// agentCredRecord is an agent's credential, bound to one instance. The
// secret is sealed (SealedSecret) when the service has a sealer; Secret
// in clear is what records written without one hold.
type agentCredRecord struct {
	Secret       string `json:"secret,omitempty"`
	SealedSecret string `json:"sealedSecret,omitempty"`
	InstanceID   string `json:"instanceId"`
	Cluster      string `json:"cluster"`
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// CreateJoinToken makes a join token valid for ttl. Only its hash is
// stored, under a lease, so it expires by itself.
func (s *Service) CreateJoinToken(ctx context.Context, opts JoinTokenOptions) (string, time.Time, error) {
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = DefaultJoinTokenTTL
	}
	if ttl < 10*time.Second || ttl > 7*24*time.Hour {
		return "", time.Time{}, errs.E(errs.Invalid, "join token lifetime must be between 10s and 168h")
	}
	if opts.Cluster != "" && opts.Cluster != FargatePool {
		if _, _, err := s.getCluster(ctx, opts.Cluster, false); err != nil {
			return "", time.Time{}, err
		}
	}
	token := "bjt_" + base64.RawURLEncoding.EncodeToString(randomBytes(32))
	exp := s.now().Add(ttl).UTC()
	lease, err := s.st.Grant(ctx, ttl)
	if err != nil {
		return "", time.Time{}, err
	}
	b, _ := json.Marshal(joinTokenRecord{ExpiresAt: exp, Cluster: opts.Cluster, SingleUse: opts.SingleUse})
	if _, err := s.st.Txn(ctx, nil, store.PutWithLease(keyJoinTokens+tokenHash(token), b, lease)); err != nil {
		return "", time.Time{}, err
	}
	return token, exp, nil
}

// errBadJoinToken is the answer to an unknown, expired or used token.
func errBadJoinToken() error {
	return errs.R(errs.Unauthenticated, "agent.bad_token", "The join token is not valid or has expired.")
}

// joinToken is a checked join token: its record and the key and revision
// a single-use join compares on and deletes.
type joinToken struct {
	rec joinTokenRecord
	key string
	rev int64
}

// checkJoinToken verifies a join token is known and unexpired. A printed
// token may still carry its CA pin after a dot: only the secret counts.
func (s *Service) checkJoinToken(ctx context.Context, token string) (joinToken, error) {
	token, _, _ = strings.Cut(token, ".")
	if token == "" {
		return joinToken{}, errBadJoinToken()
	}
	key := keyJoinTokens + tokenHash(token)
	kv, err := s.st.Get(ctx, key)
	if errs.Is(err, errs.NotFound) {
		return joinToken{}, errBadJoinToken()
	}
	if err != nil {
		return joinToken{}, err
	}
	var rec joinTokenRecord
	if json.Unmarshal(kv.Value, &rec) != nil || !s.now().Before(rec.ExpiresAt) {
		return joinToken{}, errBadJoinToken()
	}
	return joinToken{rec: rec, key: key, rev: kv.ModRevision}, nil
}

// AgentCredential is what an agent's access key stands for.
type AgentCredential struct {
	AccessKeyID string
	Secret      string
	InstanceID  string
	Cluster     string
}

// agentCredCache remembers agent credentials read from the store. A
// credential never changes once made and is removed only with its
// instance, when the garbage collector purges it (package taskgc): that server
// drops its entry then; another server drops it when the credential's
// instance record is found gone (OpenAssignments).
type agentCredCache struct {
	mu sync.Mutex
	m  map[string]AgentCredential
	// sealer encrypts agent secrets in the store (SetSecretSealer).
	sealer Sealer
}

// Sealer encrypts secrets with a key kept outside the store (package
// seal); context binds a sealed value to its record.
type Sealer interface {
	Seal(plain, context string) string
	Open(sealed, context string) (string, error)
}

// SetSecretSealer makes the service seal the agent secrets it writes and
// open the sealed ones it reads. Call it before serving.
func (s *Service) SetSecretSealer(b Sealer) { s.creds.sealer = b }

// newAgentCredRecord makes the record of a new agent credential.
func (s *Service) newAgentCredRecord(accessKey, secret, instanceID, cluster string) agentCredRecord {
	rec := agentCredRecord{InstanceID: instanceID, Cluster: cluster}
	if s.creds.sealer != nil {
		rec.SealedSecret = s.creds.sealer.Seal(secret, keyAgentCreds+accessKey)
	} else {
		rec.Secret = secret
	}
	return rec
}

// AgentCredential looks up an agent access key.
func (s *Service) AgentCredential(ctx context.Context, accessKey string) (AgentCredential, bool, error) {
	s.creds.mu.Lock()
	c, ok := s.creds.m[accessKey]
	s.creds.mu.Unlock()
	if ok {
		return c, true, nil
	}
	kv, err := s.st.Get(ctx, keyAgentCreds+accessKey)
	if errs.Is(err, errs.NotFound) {
		return AgentCredential{}, false, nil
	}
	if err != nil {
		return AgentCredential{}, false, err
	}
	var rec agentCredRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return AgentCredential{}, false, errs.Wrap(errs.Internal, err, "decode agent credential")
	}
	secret := rec.Secret
	if rec.SealedSecret != "" {
		if s.creds.sealer == nil {
			return AgentCredential{}, false, errs.E(errs.Internal, "agent credential %s is sealed and this server has no secret key", accessKey)
		}
		if secret, err = s.creds.sealer.Open(rec.SealedSecret, keyAgentCreds+accessKey); err != nil {
			return AgentCredential{}, false, errs.Wrap(errs.Internal, err, "agent credential %s", accessKey)
		}
	}
	c = AgentCredential{AccessKeyID: accessKey, Secret: secret, InstanceID: rec.InstanceID, Cluster: rec.Cluster}
	s.creds.mu.Lock()
	if s.creds.m == nil {
		s.creds.m = map[string]AgentCredential{}
	}
	s.creds.m[accessKey] = c
	s.creds.mu.Unlock()
	return c, true, nil
}

// forgetAgentCredential drops a cached credential (its instance purged).
func (s *Service) forgetAgentCredential(accessKey string) {
	s.creds.mu.Lock()
	delete(s.creds.m, accessKey)
	s.creds.mu.Unlock()
}

// InstancePurged drops what this server keeps in memory of a container
// instance the garbage collector purged (package taskgc): its agent's
// cached credential and last heartbeat.
func (s *Service) InstancePurged(instanceID, accessKey string) {
	s.forgetAgentCredential(accessKey)
	s.seen.Delete(instanceID)
}
