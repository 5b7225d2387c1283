package dockerdriver

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/client"
)

// LogsOptions select a container's output.
type LogsOptions struct {
	// Since starts at the messages Docker timestamped at or after it; zero:
	// from the first.
	Since time.Time
	// Follow keeps the stream open while the container runs; Docker ends
	// it once the container has stopped and everything was sent.
	Follow bool
}

// ContainerLogs opens a container's stdout and stderr, every message
// prefixed with Docker's RFC 3339 timestamp and a space. Unless the
// container has a TTY, the stream is multiplexed (8-byte frame headers:
// stream, 0, 0, 0, big-endian length), one frame per message. Opening is
// bounded by Timeouts.LogsConnect; reading a followed stream is bounded by
// ctx only, so the caller cancels it. The caller closes the stream.
func (d *Driver) ContainerLogs(ctx context.Context, id string, opts LogsOptions) (io.ReadCloser, error) {
	lo := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: opts.Follow}
	if !opts.Since.IsZero() {
		lo.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	sctx, cancel := context.WithCancel(ctx)
	connectTimer := time.AfterFunc(d.t.LogsConnect, cancel)
	rc, err := d.cli.ContainerLogs(sctx, id, lo)
	connected := connectTimer.Stop()
	if err != nil {
		cancel()
		if !connected && ctx.Err() == nil {
			err = fmt.Errorf("log stream not open after %s: %w", d.t.LogsConnect, err)
		}
		return nil, mapErr(ctx, nil, "logs of container "+id, d.t.LogsConnect, err)
	}
	return &cancelCloser{ReadCloser: rc, cancel: cancel}, nil
}

type cancelCloser struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelCloser) Close() error {
	c.cancel()
	return c.ReadCloser.Close()
}
