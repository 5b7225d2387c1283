package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/durable"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// One blob store per store.
//
// Blob contents live on the disk of the server that received them, and
// every server runs the garbage collector over the records in the store.
// Two servers on one etcd would each hold half the blobs, answer 404 for
// the other's, and collect each other's records. Until blobs live where
// every server sees them, the registry's store has one owner: the server
// that holds keyOwner, a key attached to a lease the owner keeps alive.
// Another server (another data directory) refuses to start while the
// lease lives; the same data directory restarted takes the key back at
// once. See docs/registry.md and docs/decisions.md.

const keyOwner = "/registry/config/blob-store-owner"

// OwnerTTL is how long the owner key outlives its server's last
// keep-alive (a crashed owner frees the store after this).
const OwnerTTL = 10 * time.Second

// Owner names the server that owns the registry's blob store.
type Owner struct {
	ID       string    `json:"id"` // the data directory's server id
	Address  string    `json:"address"`
	Host     string    `json:"host"`
	DataDir  string    `json:"dataDir"`
	PID      int       `json:"pid"`
	Since    time.Time `json:"since"`
	LeaseTTL string    `json:"leaseTTL"`
}

// ServerID reads the id of the server whose data directory is dir,
// creating it on first use.
func ServerID(dir string) (string, error) {
	p := filepath.Join(dir, "server-id")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := durable.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	return id, nil
}

// OwnerClaim is this server's hold on the blob store.
type OwnerClaim struct {
	st    store.Store
	log   *slog.Logger
	mu    sync.Mutex
	owner Owner
	lease store.LeaseID
	held  bool
	stop  context.CancelFunc
	done  chan struct{}
}

// ErrStoreOwned is the kind of error ClaimBlobStore returns when another
// server owns the store.
var ErrStoreOwned = errors.New("the registry's blob store belongs to another server")

// ClaimBlobStore makes me the owner of the registry on st. While another
// server (another id) holds the key, it waits up to wait for that
// server's lease to lapse (a crashed owner), then fails with a message
// naming the owner. The claim is kept alive until Release.
func ClaimBlobStore(ctx context.Context, st store.Store, me Owner, wait time.Duration, log *slog.Logger) (*OwnerClaim, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	me.LeaseTTL = OwnerTTL.String()
	deadline := time.Now().Add(wait)
	for {
		lease, err := st.Grant(ctx, OwnerTTL)
		if err != nil {
			return nil, err
		}
		ok, cur, err := tryClaim(ctx, st, me, lease)
		if err != nil {
			st.Revoke(context.WithoutCancel(ctx), lease)
			return nil, err
		}
		if ok {
			c := &OwnerClaim{st: st, log: log, owner: me, lease: lease, held: true, done: make(chan struct{})}
			kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			c.stop = cancel
			go c.keepAlive(kctx)
			return c, nil
		}
		st.Revoke(context.WithoutCancel(ctx), lease)
		if time.Now().After(deadline) {
			return nil, errs.Wrap(errs.Conflict, ErrStoreOwned,
				"the registry on this store is owned by another Berth server (address %s, host %s, data directory %s, pid %d, since %s): "+
					"blobs live on the owning server's disk and its garbage collector would delete what another server records, so one store serves one server; "+
					"stop that server (its claim lapses %s after it stops) or give this one its own store",
				cur.Address, cur.Host, cur.DataDir, cur.PID, cur.Since.Format(time.RFC3339), OwnerTTL)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// tryClaim puts the owner key under lease if it is absent or mine.
func tryClaim(ctx context.Context, st store.Store, me Owner, lease store.LeaseID) (bool, Owner, error) {
	var cur Owner
	kv, err := st.Get(ctx, keyOwner)
	cmp := store.Absent(keyOwner)
	switch {
	case errs.Is(err, errs.NotFound):
	case err != nil:
		return false, cur, err
	default:
		if json.Unmarshal(kv.Value, &cur) == nil && cur.ID != me.ID {
			return false, cur, nil
		}
		cmp = store.ModRevisionIs(keyOwner, kv.ModRevision)
	}
	res, err := st.Txn(ctx, []store.Cmp{cmp}, store.PutWithLease(keyOwner, mustJSON(me), lease))
	if err != nil {
		return false, cur, err
	}
	if !res.Succeeded {
		return tryClaim(ctx, st, me, lease)
	}
	return true, me, nil
}

func (c *OwnerClaim) keepAlive(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(OwnerTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		lease, me := c.lease, c.owner
		c.mu.Unlock()
		err := c.st.KeepAliveOnce(ctx, lease)
		if err == nil {
			continue
		}
		if !errs.Is(err, errs.NotFound) {
			c.log.Warn("registry store claim not renewed", "err", err)
			continue
		}
		// The lease lapsed (the store was unreachable longer than its
		// TTL): take the key back unless another server took it.
		nl, err := c.st.Grant(ctx, OwnerTTL)
		if err != nil {
			c.log.Warn("registry store claim lost; retrying", "err", err)
			c.setHeld(false, lease)
			continue
		}
		ok, cur, err := tryClaim(ctx, c.st, me, nl)
		if err != nil || !ok {
			c.st.Revoke(ctx, nl)
			c.setHeld(false, lease)
			if err == nil {
				c.log.Error("registry store now owned by another server: this server stops collecting garbage", "owner", cur.Address, "host", cur.Host)
			}
			continue
		}
		c.setHeld(true, nl)
	}
}

func (c *OwnerClaim) setHeld(held bool, lease store.LeaseID) {
	c.mu.Lock()
	c.held, c.lease = held, lease
	c.mu.Unlock()
}

// Held reports whether this server holds the store (the collector runs
// only then).
func (c *OwnerClaim) Held() bool {
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held
}

// SetAddress records the address the server listens on once known.
func (c *OwnerClaim) SetAddress(ctx context.Context, addr string) error {
	c.mu.Lock()
	c.owner.Address = addr
	me, lease := c.owner, c.lease
	c.mu.Unlock()
	_, err := c.st.Txn(ctx, []store.Cmp{store.Exists(keyOwner)}, store.PutWithLease(keyOwner, mustJSON(me), lease))
	return err
}

// Release stops renewing and frees the store for another server.
func (c *OwnerClaim) Release(ctx context.Context) {
	c.stop()
	<-c.done
	c.mu.Lock()
	lease := c.lease
	c.mu.Unlock()
	c.st.Revoke(ctx, lease)
}
