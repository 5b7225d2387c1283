package awslogs

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthdev/berth/internal/errs"
)

// Checkpoint is what the agent keeps per container: where to resume.
type Checkpoint struct {
	// At is the position of the last record acknowledged by the control
	// plane (zero: nothing yet).
	At Position `json:"at"`
	// Done: the container stopped and everything it wrote was shipped.
	Done bool `json:"done,omitempty"`
}

// Checkpoints keeps checkpoints in a directory, one file per container.
type Checkpoints struct{ dir string }

// NewCheckpoints uses dir (created 0700).
func NewCheckpoints(dir string) (*Checkpoints, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "awslogs checkpoint directory")
	}
	return &Checkpoints{dir: dir}, nil
}

func (c *Checkpoints) path(id string) string {
	return filepath.Join(c.dir, strings.NewReplacer("/", "_", ".", "_").Replace(id)+".json")
}

// Load returns a container's checkpoint (the zero one if none).
func (c *Checkpoints) Load(id string) (Checkpoint, error) {
	b, err := os.ReadFile(c.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return Checkpoint{}, errs.Wrap(errs.Internal, err, "read awslogs checkpoint")
	}
	var cp Checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		// A torn write: start over (at least once: lines repeat).
		return Checkpoint{}, nil
	}
	return cp, nil
}

// Save writes a container's checkpoint: a new file renamed over the old
// one, synced, so a crash leaves the old or the new one.
func (c *Checkpoints) Save(id string, cp Checkpoint) error {
	b, _ := json.Marshal(cp)
	tmp := c.path(id) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "write awslogs checkpoint")
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.path(id))
	}
	if err != nil {
		return errs.Wrap(errs.Internal, err, "write awslogs checkpoint")
	}
	return nil
}

// Remove forgets a container's checkpoint (its container was removed).
func (c *Checkpoints) Remove(id string) error {
	err := os.Remove(c.path(id))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return errs.Wrap(errs.Internal, err, "remove awslogs checkpoint")
	}
	return nil
}
