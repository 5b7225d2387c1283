package console

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/events"
)

// Berth's own reads: what the console shows that no AWS operation answers
// (the Fargate capacity shared by every cluster, EventBridge's delivery
// records). They are served as GET /console/api/berth/<Operation>?<input>
// and may be named in a watch as service "berth", so a page follows them
// live like any read. They answer JSON, and errors in the AWS JSON error
// shape ({"__type","message"}).

// LocalService is the service name of Berth's own reads in a watch and in
// the path /console/api/berth/<Operation>.
const LocalService = "berth"

// Berth's own read operations.
const (
	// OpFargateCapacity answers ecs.FargateCapacityView.
	OpFargateCapacity = "GetFargateCapacity"
	// OpRuleDeliveries answers {"Deliveries": [events.Delivery...]} for
	// input EventBusName (default: default) and Rule.
	OpRuleDeliveries = "ListRuleDeliveries"
)

// localTimeout bounds one of Berth's own reads.
const localTimeout = 10 * time.Second

// runLocal runs one of Berth's own reads with input (string members).
func (h *Handler) runLocal(ctx context.Context, op string, in map[string]string) (int, []byte) {
	ctx, cancel := context.WithTimeout(ctx, localTimeout)
	defer cancel()
	var out any
	var err error
	switch op {
	case OpFargateCapacity:
		if h.cfg.Fargate == nil {
			return localError(errs.E(errs.Unavailable, "Fargate capacity is not available on this server."))
		}
		out, err = h.cfg.Fargate(ctx)
	case OpRuleDeliveries:
		if h.cfg.Deliveries == nil {
			return localError(errs.E(errs.Unavailable, "EventBridge is not available on this server."))
		}
		if in["Rule"] == "" {
			return localError(errs.E(errs.Invalid, "Rule is required."))
		}
		var ds []events.Delivery
		ds, err = h.cfg.Deliveries(ctx, in["EventBusName"], in["Rule"])
		if ds == nil {
			ds = []events.Delivery{}
		}
		out = map[string]any{"Deliveries": ds}
	default:
		return http.StatusNotFound, mustJSON(map[string]string{"__type": "UnknownOperationException", "message": "Berth has no read " + op})
	}
	if err != nil {
		return localError(err)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(out); err != nil {
		return localError(errs.Wrap(errs.Internal, err, "encoding the answer"))
	}
	return http.StatusOK, bytes.TrimSpace(buf.Bytes())
}

// localError is err in the AWS JSON error shape, with the status the AWS
// services give its kind.
func localError(err error) (int, []byte) {
	status, code := http.StatusInternalServerError, "InternalFailure"
	switch errs.KindOf(err) {
	case errs.NotFound:
		status, code = http.StatusBadRequest, "ResourceNotFoundException"
	case errs.Invalid:
		status, code = http.StatusBadRequest, "ValidationException"
	case errs.Unavailable:
		status, code = http.StatusServiceUnavailable, "ServiceUnavailable"
	case errs.Throttled:
		status, code = http.StatusBadRequest, "ThrottlingException"
	}
	msg := errs.MessageOf(err)
	if status == http.StatusInternalServerError {
		msg = "The server failed to answer: " + msg
	}
	return status, mustJSON(map[string]string{"__type": code, "message": msg})
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// serveLocal answers GET /console/api/berth/<op>?<input>.
func (h *Handler) serveLocal(w http.ResponseWriter, r *http.Request, op string) {
	in := map[string]string{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			in[k] = v[0]
		}
	}
	status, body := h.runLocal(r.Context(), op, in)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// localInput reads a watch call's input for one of Berth's own reads: a
// JSON object of strings.
func localInput(raw json.RawMessage) (map[string]string, error) {
	in := map[string]string{}
	if len(raw) == 0 {
		return in, nil
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, errs.E(errs.Invalid, "the input of a Berth read is a JSON object of strings")
	}
	return in, nil
}
