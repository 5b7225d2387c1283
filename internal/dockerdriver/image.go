package dockerdriver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errs"
)

// RegistryAuth is a registry login for a pull. ServerAddress is the
// registry host ("registry.example.com:5000"); Docker uses it to match the
// credentials with the image's registry.
type RegistryAuth struct {
	Username      string
	Password      string
	ServerAddress string
}

// encode returns the X-Registry-Auth header value Docker expects:
// base64url-encoded JSON.
func (a *RegistryAuth) encode() (string, error) {
	if a == nil {
		return "", nil
	}
	b, err := json.Marshal(struct {
		Username      string `json:"username,omitempty"`
		Password      string `json:"password,omitempty"`
		ServerAddress string `json:"serveraddress,omitempty"`
	}{a.Username, a.Password, a.ServerAddress})
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// Errors that end a pull early, as the cause of its context.
var (
	errPullBegin      = errors.New("pull did not begin")
	errPullInactivity = errors.New("pull made no progress")
	errPullTotal      = errors.New("pull took too long")
)

// PullImage pulls ref from its registry. The pull is cancelled when the
// daemon does not answer within Timeouts.PullBegin, when no progress message
// arrives for Timeouts.PullInactivity, or after Timeouts.Pull in all. Any
// failure but the caller's own cancellation is an error with reason
// ReasonCannotPull whose message starts with "CannotPullContainerError: ";
// its kind is NotFound for an image or repository the registry does not
// have, Unauthenticated for refused credentials, Invalid for a malformed
// reference and Unavailable otherwise (registry or daemon unreachable,
// timeouts).
func (d *Driver) PullImage(ctx context.Context, ref string, auth *RegistryAuth) error {
	header, err := auth.encode()
	if err != nil {
		return errs.Wrap(errs.Invalid, err, "registry credentials for %s", ref)
	}
	tctx, cancelTotal := context.WithTimeoutCause(ctx, d.t.Pull, errPullTotal)
	defer cancelTotal()
	pctx, cancel := context.WithCancelCause(tctx)
	defer cancel(nil)
	var begun atomic.Bool
	watchdog := time.AfterFunc(d.t.PullBegin, func() {
		if begun.Load() {
			cancel(errPullInactivity)
		} else {
			cancel(errPullBegin)
		}
	})
	defer watchdog.Stop()

	resp, err := d.cli.ImagePull(pctx, ref, client.ImagePullOptions{RegistryAuth: header})
	if err != nil {
		return d.pullErr(ctx, pctx, ref, err)
	}
	defer resp.Close()
	begun.Store(true)
	watchdog.Reset(d.t.PullInactivity)
	dec := json.NewDecoder(resp)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return d.pullErr(ctx, pctx, ref, err)
		}
		watchdog.Reset(d.t.PullInactivity)
		if m.Error != nil {
			return cannotPull(kindOfPullMessage(m.Error.Message), m.Error.Message)
		}
	}
	if !watchdog.Stop() && pctx.Err() != nil {
		return d.pullErr(ctx, pctx, ref, pctx.Err())
	}
	return nil
}

// pullErr explains why a pull ended early.
func (d *Driver) pullErr(parent, pctx context.Context, ref string, err error) error {
	if parent.Err() != nil {
		return errs.Wrap(errs.Unavailable, err, "docker pull %s: %v", ref, context.Cause(parent))
	}
	switch context.Cause(pctx) {
	case errPullBegin:
		return cannotPull(errs.Unavailable, fmt.Sprintf("docker did not start pulling %s within %s", ref, d.t.PullBegin))
	case errPullInactivity:
		return cannotPull(errs.Unavailable, fmt.Sprintf("pull of %s made no progress for %s", ref, d.t.PullInactivity))
	case errPullTotal:
		return cannotPull(errs.Unavailable, fmt.Sprintf("pull of %s did not finish within %s", ref, d.t.Pull))
	}
	kind := kindOfDocker(err)
	switch {
	case client.IsErrConnectionFailed(err), isNetErr(err):
		kind = errs.Unavailable
	case kind == errs.Other:
		if k := kindOfPullMessage(err.Error()); k != errs.Unavailable {
			kind = k
		} else if strings.Contains(err.Error(), "invalid reference format") {
			kind = errs.Invalid
		} else {
			kind = errs.Unavailable
		}
	}
	return cannotPull(kind, err.Error())
}

// kindOfPullMessage classifies a registry error Docker relays as text.
func kindOfPullMessage(msg string) errs.Kind {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "manifest unknown"), strings.Contains(m, "not found"),
		strings.Contains(m, "does not exist"), strings.Contains(m, "name unknown"):
		return errs.NotFound
	case strings.Contains(m, "unauthorized"), strings.Contains(m, "authentication required"),
		strings.Contains(m, "access denied"), strings.Contains(m, "denied"):
		return errs.Unauthenticated
	}
	return errs.Unavailable
}

func cannotPull(kind errs.Kind, detail string) error {
	return &errs.Error{Kind: kind, Reason: ReasonCannotPull, Msg: "CannotPullContainerError: " + detail}
}

// ImageInfo describes a local image.
type ImageInfo struct {
	ID           string // "sha256:..."
	RepoTags     []string
	RepoDigests  []string
	Created      time.Time
	Size         int64
	OS           string
	Architecture string
}

// InspectImage describes the local image ref; NotFound if there is none.
func (d *Driver) InspectImage(ctx context.Context, ref string) (ImageInfo, error) {
	r, err := call(ctx, "inspect image "+ref, d.t.ImageInspect, func(ctx context.Context) (client.ImageInspectResult, error) {
		return d.cli.ImageInspect(ctx, ref)
	})
	if err != nil {
		return ImageInfo{}, err
	}
	created, _ := time.Parse(time.RFC3339Nano, r.Created)
	return ImageInfo{ID: r.ID, RepoTags: r.RepoTags, RepoDigests: r.RepoDigests, Created: created,
		Size: r.Size, OS: r.Os, Architecture: r.Architecture}, nil
}

// ImageExists reports whether the image ref is present locally.
func (d *Driver) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := d.InspectImage(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case errs.Is(err, errs.NotFound):
		return false, nil
	}
	return false, err
}

// RemoveImage removes the local image ref (force: even if containers use
// it). NotFound if there is none.
func (d *Driver) RemoveImage(ctx context.Context, ref string, force bool) error {
	_, err := call(ctx, "remove image "+ref, d.t.ImageRemove, func(ctx context.Context) (client.ImageRemoveResult, error) {
		return d.cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: force, PruneChildren: true})
	})
	return err
}

// LoadImage loads an image tarball (docker save format), e.g. a bundled
// network-namespace ("pause") image.
func (d *Driver) LoadImage(ctx context.Context, tarball io.Reader) error {
	_, err := call(ctx, "load image", d.t.ImageLoad, func(ctx context.Context) (struct{}, error) {
		r, err := d.cli.ImageLoad(ctx, tarball, client.ImageLoadWithQuiet(true))
		if err != nil {
			return struct{}{}, err
		}
		defer r.Close()
		dec := json.NewDecoder(r)
		for {
			var m jsonstream.Message
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					return struct{}{}, nil
				}
				return struct{}{}, err
			}
			if m.Error != nil {
				return struct{}{}, errs.E(errs.Invalid, "docker load image: %s", m.Error.Message)
			}
		}
	})
	return err
}

// PullBehavior says when EnsureImage pulls, like ECS_IMAGE_PULL_BEHAVIOR.
type PullBehavior string

const (
	// PullDefault pulls; if the pull fails, a cached image is used.
	PullDefault PullBehavior = "default"
	// PullAlways pulls; if the pull fails, so does EnsureImage.
	PullAlways PullBehavior = "always"
	// PullOnce pulls only if this agent has not pulled the image before
	// (per its PullRecord) or the image is gone; a failed pull fails.
	PullOnce PullBehavior = "once"
	// PullPreferCached pulls only if the image is not present locally.
	PullPreferCached PullBehavior = "prefer-cached"
)

// ParsePullBehavior parses an ECS_IMAGE_PULL_BEHAVIOR value ("" is
// PullDefault).
func ParsePullBehavior(s string) (PullBehavior, error) {
	switch b := PullBehavior(strings.ToLower(strings.TrimSpace(s))); b {
	case "":
		return PullDefault, nil
	case PullDefault, PullAlways, PullOnce, PullPreferCached:
		return b, nil
	}
	return "", errs.E(errs.Invalid, "image pull behavior %q: want default, always, once or prefer-cached", s)
}

// PullRecord remembers which images this agent has pulled (for PullOnce).
// An agent that survives restarts keeps the record in its state.
type PullRecord interface {
	Pulled(ref string) bool
	MarkPulled(ref string)
}

// NewPullRecord returns an in-memory PullRecord.
func NewPullRecord() PullRecord { return &memPullRecord{refs: map[string]bool{}} }

type memPullRecord struct {
	mu   sync.Mutex
	refs map[string]bool
}

func (r *memPullRecord) Pulled(ref string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refs[ref]
}

func (r *memPullRecord) MarkPulled(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs[ref] = true
}

// EnsureImage makes the image ref present locally according to behavior
// and reports whether it pulled it. A failed pull that EnsureImage does not
// tolerate returns PullImage's CannotPullContainerError.
func (d *Driver) EnsureImage(ctx context.Context, ref string, behavior PullBehavior, auth *RegistryAuth) (pulled bool, err error) {
	if behavior == "" {
		behavior = PullDefault
	}
	switch behavior {
	case PullPreferCached, PullOnce:
		exists, err := d.ImageExists(ctx, ref)
		if err != nil {
			return false, err
		}
		if exists && (behavior == PullPreferCached || d.pulled.Pulled(ref)) {
			return false, nil
		}
	case PullDefault, PullAlways:
	default:
		return false, errs.E(errs.Invalid, "image pull behavior %q", behavior)
	}
	perr := d.PullImage(ctx, ref, auth)
	if perr == nil {
		d.pulled.MarkPulled(ref)
		return true, nil
	}
	if behavior != PullDefault || ctx.Err() != nil {
		return false, perr
	}
	exists, err := d.ImageExists(ctx, ref)
	if err != nil || !exists {
		return false, perr
	}
	d.log.Warn("image pull failed; using the cached image", "image", ref, "err", perr)
	return false, nil
}
