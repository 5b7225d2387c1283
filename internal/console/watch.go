package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Live views of services that have no feed (load balancers' target health,
// metrics, alarms, Cloud Map health, scaling activities, and Berth's own
// reads of local.go) follow read calls
// that the server repeats: the page names the calls once, the server runs
// them through ServeAs every few seconds as the signed-in identity and
// sends an answer only when it differs from the last one sent. One
// connection carries all of a page's calls (a browser opens at most six
// connections to a host over HTTP/1.1).

// Bounds of a watch.
const (
	maxWatchCalls    = 24
	minWatchInterval = time.Second
	maxWatchInterval = time.Minute
	defWatchInterval = 3 * time.Second
	maxWatchWindow   = 15 * 24 * time.Hour
)

// watchCall is one read a watch repeats.
type watchCall struct {
	Service   string          `json:"s"` // signing name
	Operation string          `json:"o"`
	Input     json.RawMessage `json:"i,omitempty"`
	// Window, when set, makes the call's StartTime and EndTime the last
	// Window seconds up to each run (GetMetricData, GetMetricStatistics).
	Window int64 `json:"window,omitempty"`
}

// watchResult is one event of a watch: call I answered Status and Body.
type watchResult struct {
	I      int             `json:"i"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// readOnlyOp tells whether an operation only reads: a watch refuses the
// others, so a page cannot make the server repeat a change.
func readOnlyOp(op string) bool {
	for _, p := range []string{"Describe", "List", "Get"} {
		if strings.HasPrefix(op, p) && len(op) > len(p) && op[len(p)] >= 'A' && op[len(p)] <= 'Z' {
			return true
		}
	}
	return false
}

// parseWatch reads a watch's query: q (a JSON array of calls) and every
// (seconds between runs).
func parseWatch(q string, every string) ([]watchCall, time.Duration, error) {
	var calls []watchCall
	if err := json.Unmarshal([]byte(q), &calls); err != nil {
		return nil, 0, fmt.Errorf("q must be a JSON array of calls: %v", err)
	}
	if len(calls) == 0 || len(calls) > maxWatchCalls {
		return nil, 0, fmt.Errorf("a watch holds 1 to %d calls, not %d", maxWatchCalls, len(calls))
	}
	for i, c := range calls {
		if c.Service == "" || c.Operation == "" || strings.Contains(c.Operation, "/") {
			return nil, 0, fmt.Errorf("call %d names no service and operation", i)
		}
		if !readOnlyOp(c.Operation) {
			return nil, 0, fmt.Errorf("call %d: %s is not a read (Describe…, List…, Get…)", i, c.Operation)
		}
		if len(c.Input) == 0 || string(c.Input) == "null" {
			calls[i].Input = json.RawMessage("{}")
		} else if c.Input[0] != '{' {
			return nil, 0, fmt.Errorf("call %d: the input must be a JSON object", i)
		}
		if c.Window < 0 || time.Duration(c.Window)*time.Second > maxWatchWindow {
			return nil, 0, fmt.Errorf("call %d: window must be 0 to %d seconds", i, int64(maxWatchWindow/time.Second))
		}
	}
	d := defWatchInterval
	if every != "" {
		n, err := strconv.ParseFloat(every, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("every must be a number of seconds")
		}
		d = time.Duration(n * float64(time.Second))
	}
	d = min(max(d, minWatchInterval), maxWatchInterval)
	return calls, d, nil
}

// windowed returns in with StartTime and EndTime set to the window ending
// at now (epoch seconds, which every JSON decoder of the front door reads).
func windowed(in json.RawMessage, window int64, now time.Time) (json.RawMessage, error) {
	if window == 0 {
		return in, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(in, &m); err != nil {
		return nil, err
	}
	end := now.Unix()
	m["StartTime"] = json.RawMessage(strconv.FormatInt(end-window, 10))
	m["EndTime"] = json.RawMessage(strconv.FormatInt(end, 10))
	return json.Marshal(m)
}

// recorder keeps one ServeAs answer.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// watch serves GET /console/api/watch?q=<calls>&every=<seconds>: server-sent
// events named result, one per call whose answer (status and body) changed
// since the last one sent, the first run sending every call's. An answer
// that is not JSON (it always is) is sent as a JSON string.
func (h *Handler) watch(w http.ResponseWriter, r *http.Request, ss *session) {
	calls, every, err := parseWatch(r.URL.Query().Get("q"), r.URL.Query().Get("every"))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "InvalidParameterException", err.Error())
		return
	}
	ctx, cancel := context.WithDeadline(r.Context(), ss.Expires)
	defer cancel()
	out, ok := startSSE(w)
	if !ok {
		return
	}
	last := make([][]byte, len(calls))
	tick := time.NewTicker(every)
	defer tick.Stop()
	idle := time.Now()
	for {
		sent := false
		for i, c := range calls {
			status, body := h.runRead(ctx, r, ss, c)
			if ctx.Err() != nil {
				return
			}
			key := append(strconv.AppendInt(nil, int64(status), 10), body...)
			if last[i] != nil && bytes.Equal(last[i], key) {
				continue
			}
			last[i] = key
			if !json.Valid(body) {
				body, _ = json.Marshal(string(body))
			}
			if err := out.event("result", watchResult{I: i, Status: status, Body: body}); err != nil {
				return
			}
			sent = true
		}
		if !sent && time.Since(idle) >= heartbeat {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			sent = true
		}
		if sent {
			idle = time.Now()
			out.f.Flush()
		}
		select {
		case <-ctx.Done():
			return
		case <-h.stop:
			return
		case <-tick.C:
		}
	}
}

// runRead runs one call through the front door as the session's identity,
// or one of Berth's own reads (local.go).
func (h *Handler) runRead(ctx context.Context, orig *http.Request, ss *session, c watchCall) (int, []byte) {
	if c.Service == LocalService {
		in, err := localInput(c.Input)
		if err != nil {
			return localError(err)
		}
		return h.runLocal(ctx, c.Operation, in)
	}
	in, err := windowed(c.Input, c.Window, h.cfg.Now())
	if err != nil {
		b, _ := json.Marshal(map[string]string{"__type": "InvalidParameterException", "message": err.Error()})
		return http.StatusBadRequest, b
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, Prefix+"api/aws/"+c.Service+"/"+c.Operation, bytes.NewReader(in))
	if err != nil {
		return http.StatusBadRequest, []byte(`{"__type":"InvalidParameterException","message":"bad call"}`)
	}
	req.RemoteAddr = orig.RemoteAddr
	req.Header.Set("User-Agent", orig.UserAgent())
	req.Header.Set("Content-Type", "application/json")
	rec := &recorder{h: http.Header{}}
	h.cfg.API.ServeAs(rec, req, ss.Identity, c.Service, c.Operation)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.status, rec.body.Bytes()
}
