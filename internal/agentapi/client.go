package agentapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/serviceconnect"
	"github.com/berthdev/berth/internal/sigv4"
)

// Client is the agent's side of the protocol.
type Client struct {
	Endpoint        string // http://127.0.0.1:4566
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	HTTP            *http.Client // nil: a client without an overall timeout (streams)
}

// Error is an error answered by the control plane.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message) }

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, sign bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Endpoint, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if sign {
		sigv4.Sign(req, body, c.AccessKeyID, c.SecretAccessKey, c.Region, SigningService, time.Now())
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "agent protocol %s %s", method, path)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb struct{ Code, Message string }
		json.Unmarshal(b, &eb)
		e := &Error{Status: resp.StatusCode, Code: eb.Code, Message: eb.Message}
		kind := errs.Unavailable
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			kind = errs.Unauthenticated
		case resp.StatusCode == http.StatusForbidden:
			kind = errs.Forbidden
		case resp.StatusCode == http.StatusNotFound:
			kind = errs.NotFound
		case resp.StatusCode == http.StatusBadRequest:
			kind = errs.Invalid
		}
		return nil, &errs.Error{Kind: kind, Msg: e.Error(), Err: e}
	}
	return resp, nil
}

// Join registers a container instance with a join token (unsigned).
func (c *Client) Join(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	b, _ := json.Marshal(req)
	resp, err := c.do(ctx, http.MethodPost, PathJoin, b, false)
	if err != nil {
		return JoinResponse{}, err
	}
	defer resp.Body.Close()
	var out JoinResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return JoinResponse{}, errs.Wrap(errs.Unavailable, err, "decode join response")
	}
	return out, nil
}

// Report sends observed state.
func (c *Client) Report(ctx context.Context, rep Report) error {
	b, _ := json.Marshal(rep)
	resp, err := c.do(ctx, http.MethodPost, PathReport, b, true)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// PutLogs sends a batch of container output (or, with no events,
// prepares its log stream). Errors of kind NotFound, Invalid and Forbidden
// are final: sending the same batch again cannot succeed.
func (c *Client) PutLogs(ctx context.Context, req LogsRequest) error {
	b, _ := json.Marshal(req)
	resp, err := c.do(ctx, http.MethodPost, PathLogs, b, true)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Stats sends the resource usage of the instance's tasks.
func (c *Client) Stats(ctx context.Context, rep StatsReport) error {
	b, _ := json.Marshal(rep)
	resp, err := c.do(ctx, http.MethodPost, PathStats, b, true)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Assignments opens the assignment stream from revision since (0: from a
// full sync) and calls fn for each event until the stream ends, ctx ends,
// fn fails, or no event (heartbeats included) arrives for three heartbeat
// intervals. It always returns a non-nil error saying why it ended.
func (c *Client) Assignments(ctx context.Context, since int64, fn func(Event) error) error {
	return follow(ctx, c, PathAssignments+"?since="+strconv.FormatInt(since, 10), "assignment", fn)
}

// ServiceConnect follows the Service Connect directory of one namespace
// (PathServiceConnect): it calls fn with each directory line until the
// stream ends, ctx ends, fn fails, or nothing (heartbeats included)
// arrives for three heartbeat intervals. It always returns a non-nil
// error saying why it ended.
func (c *Client) ServiceConnect(ctx context.Context, namespaceArn string, fn func(serviceconnect.Directory) error) error {
	return follow(ctx, c, PathServiceConnect+"?namespace="+url.QueryEscape(namespaceArn), "service connect directory", fn)
}

// follow reads the NDJSON stream at path, calling fn with each line
// decoded as a T (blank lines are heartbeats), until the stream ends, ctx
// ends, fn fails, or nothing arrives for three heartbeat intervals. what
// names the stream in errors. It always returns a non-nil error.
func follow[T any](ctx context.Context, c *Client, path, what string, fn func(T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, path, nil, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Watchdog: a silent stream is a dead one.
	alive := make(chan struct{}, 1)
	go func() {
		t := time.NewTimer(3 * HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-alive:
				if !t.Stop() {
					<-t.C
				}
				t.Reset(3 * HeartbeatInterval)
			case <-t.C:
				cancel()
				return
			}
		}
	}()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		select {
		case alive <- struct{}{}:
		default:
		}
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 { // heartbeat
			continue
		}
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return errs.Wrap(errs.Unavailable, err, "malformed %s line", what)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return errs.Wrap(errs.Unavailable, err, "%s stream broken", what)
	}
	return errs.E(errs.Unavailable, "%s stream closed by the server", what)
}
