package awsproto

import (
	"fmt"
	"io"
	"net/http"

	"github.com/berthdev/berth/internal/iam"
)

// ServeAs serves one operation of a JSON-speaking service for a caller
// that was authenticated by other means than SigV4: the web console's
// session (internal/console), which has already checked its cookie and
// CSRF header and names the identity that signed in. Everything after
// authentication is the API's own path: the operation must exist, the
// caller's key is throttled, the body (the operation's JSON input, as a
// JSON-protocol client sends it) is decoded and validated by the same
// code, the same handler runs, a mutating call is audited under id, and
// the answer (output or error) is written in the service's JSON protocol,
// byte for byte what an SDK would read. A service that speaks only the
// query protocol (ELBv2) is answered in JSON 1.1, with its model's member
// names and error shapes.
func (fd *FrontDoor) ServeAs(w http.ResponseWriter, r *http.Request, id iam.Identity, signingName, operation string) {
	x := fd.newExchange(w, r)
	if fd.observer != nil {
		defer fd.observe(x)
	}
	x.svc = fd.bySigning[signingName]
	x.proto = JSON11
	if x.svc != nil {
		x.proto = x.svc.jsonVersion()
		x.target = x.svc.TargetPrefix
		x.call.Service = x.svc.SigningName
	}
	x.call.Operation = operation
	x.call.Identity = id
	x.scope = Scope{AccessKey: id.AccessKey, Region: fd.region, Service: signingName}
	// The body limit is the API's for a known key (the session is one).
	limit := min(int64(OrdinaryBody), fd.maxBody)
	body, err := readAllLimited(w, r, limit)
	if err != nil {
		fd.writeError(x, &Error{Code: CodeRequestTooLarge, Status: http.StatusRequestEntityTooLarge, Message: err.Error()})
		return
	}
	x.raw, x.body = body, body
	var op *Operation
	if x.svc != nil && !x.svc.Speaks(x.proto) {
		// A query-only service (ELBv2): its generated shapes carry the
		// same member names in json tags, so the console reads it in JSON
		// 1.1 through the same decoder, handlers and errors.
		if op = x.svc.Operations[operation]; op == nil {
			fd.writeError(x, NewError(CodeUnknownOperation, "%s has no operation %q", x.svc.SigningName, operation))
			return
		}
	} else if op = fd.operation(x); op == nil {
		return
	}
	x.op = op.Name
	if !fd.admit(x, op) {
		return
	}
	fd.serve(x, op)
}

func readAllLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("Request body exceeds the maximum allowed size of %d bytes or could not be read", limit)
	}
	return body, nil
}
