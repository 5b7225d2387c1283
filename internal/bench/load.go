package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Load sends GET requests to one URL from several workers, each back to
// back (with an optional pause between its requests), and counts them and
// the failures: a transport error or a status other than 200. A request
// cut short by the end of the load is counted as neither. The lbservice
// and alb benchmarks and the ALB scenario test run it under a rolling
// deployment, a killed target or backend.
type Load struct {
	sent, failed atomic.Int64
	firstErr     atomic.Pointer[string]
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

// StartLoad starts workers sending to url until ctx ends or Stop; each
// worker has its own connections and a per-request timeout.
func StartLoad(ctx context.Context, url string, workers int, pause, timeout time.Duration) *Load {
	ctx, cancel := context.WithCancel(ctx)
	l := &Load{cancel: cancel}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: timeout}
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				err := get(ctx, c, url)
				if ctx.Err() != nil {
					return
				}
				l.sent.Add(1)
				if err != nil {
					l.failed.Add(1)
					msg := err.Error()
					l.firstErr.CompareAndSwap(nil, &msg)
				}
				if pause > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(pause):
					}
				}
			}
		}()
	}
	return l
}

func get(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Counts returns the requests sent and failed so far.
func (l *Load) Counts() (sent, failed int64) { return l.sent.Load(), l.failed.Load() }

// FirstError is the first failure's message ("" if none).
func (l *Load) FirstError() string {
	if p := l.firstErr.Load(); p != nil {
		return *p
	}
	return ""
}

// Stop ends the load and waits for the workers; it may be called again.
func (l *Load) Stop() {
	l.cancel()
	l.wg.Wait()
}
