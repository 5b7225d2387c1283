package awsproto

// The wire encodings a request can arrive in and its answer is written in:
// JSON 1.0/1.1, the query protocol (form in, XML out) and Smithy RPC v2
// CBOR. One set of operations serves all of them: generated operations
// give the front door a new input to decode into (Operation.NewInput), and
// the same Validate, handler and error mapping apply whatever the encoding.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/berthdev/berth/internal/audit"
)

// protoNone marks a request that names no protocol (no X-Amz-Target, no
// Action, no CBOR path).
const protoNone Protocol = -1

// Header values of Smithy RPC v2 CBOR.
const (
	smithyProtocolHeader = "Smithy-Protocol"
	smithyRPCv2CBOR      = "rpc-v2-cbor"
	cborContentType      = "application/cbor"
)

// recogniseProtocol tells the protocol of a request from its path and
// headers, with the service it names (the X-Amz-Target prefix, or the
// service in a CBOR path) and the operation. For the query protocol the
// operation is the form's Action, read later.
func recogniseProtocol(r *http.Request) (p Protocol, service, op string) {
	if strings.HasPrefix(r.URL.Path, "/service/") && strings.EqualFold(r.Header.Get(smithyProtocolHeader), smithyRPCv2CBOR) {
		// /service/<Service>/operation/<Operation>
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/service/"), "/")
		if len(parts) == 3 && parts[1] == "operation" {
			return RPCv2CBOR, parts[0], parts[2]
		}
		return RPCv2CBOR, "", ""
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		p = JSON11
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.0") {
			p = JSON10
		}
		// Target prefixes may hold dots (CloudTrail's does): the operation
		// follows the last one.
		if i := strings.LastIndexByte(target, '.'); i >= 0 {
			return p, target[:i], target[i+1:]
		}
		return p, target, ""
	}
	if isForm(r) || r.URL.Query().Get("Action") != "" {
		return Query, "", ""
	}
	return protoNone, "", ""
}

func isForm(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

func parseForm(r *http.Request, body []byte) (url.Values, error) {
	v := url.Values{}
	for k, vals := range r.URL.Query() {
		v[k] = append(v[k], vals...)
	}
	if isForm(r) {
		fv, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("the form body is malformed: %v", err)
		}
		for k, vals := range fv {
			v[k] = append(v[k], vals...)
		}
	}
	return v, nil
}

// decodeInput decodes and validates the request's input in the protocol it
// came in.
func decodeInput(x *exchange, op *Operation) (any, error) {
	if op.NewInput == nil {
		return op.Decode(x.body, x.form)
	}
	in := op.NewInput()
	var err error
	switch x.proto {
	case Query:
		err = DecodeForm(x.form, in)
	case RPCv2CBOR:
		err = DecodeCBOR(x.body, in)
	default:
		err = DecodeJSON(x.body, in)
	}
	if err != nil {
		return nil, err
	}
	if v, ok := in.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// auditParameters returns a mutating call's parameters for its audit
// record as JSON, sensitive members redacted: the body of a JSON request,
// the decoded input of a query or CBOR one.
func auditParameters(x *exchange, op *Operation, in any) json.RawMessage {
	switch {
	case x.proto != Query && x.proto != RPCv2CBOR:
		return audit.Redact(x.body, op.Sensitive)
	case in != nil && op.NewInput != nil:
		b, err := json.Marshal(in)
		if err == nil {
			return audit.Redact(b, op.Sensitive)
		}
	}
	if x.proto == Query {
		return formJSON(x.form)
	}
	return nil
}

func formJSON(form url.Values) json.RawMessage {
	m := map[string]string{}
	for k, v := range form {
		if k == "Action" || k == "Version" || len(v) == 0 {
			continue
		}
		m[k] = v[0]
	}
	b, _ := json.Marshal(m)
	return audit.Redact(b, nil)
}

// answerProtocol is the protocol to answer in: the request's, else (it
// named none) the service's.
func (x *exchange) answerProtocol() Protocol {
	switch {
	case x.proto != protoNone:
		return x.proto
	case x.svc != nil:
		return x.svc.Protocol
	}
	return JSON11
}

func (x *exchange) jsonContentType() string {
	if x.svc != nil && x.svc.jsonVersion() == JSON10 || x.svc == nil && x.proto == JSON10 {
		return "application/x-amz-json-1.0"
	}
	return "application/x-amz-json-1.1"
}

func (fd *FrontDoor) writeOutput(x *exchange, op *Operation, out any) {
	switch x.answerProtocol() {
	case Query:
		writeQueryOutput(x.w, x.svc, op.Name, x.call.RequestID, out)
		return
	case RPCv2CBOR:
		b, err := EncodeCBOR(out)
		if err != nil {
			fd.log.Error("encode response", "op", op.Name, "err", err)
			fd.writeError(x, DefaultError(err))
			return
		}
		x.w.Header().Set(smithyProtocolHeader, smithyRPCv2CBOR)
		x.w.Header().Set("Content-Type", cborContentType)
		x.w.WriteHeader(http.StatusOK)
		x.w.Write(b)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		fd.log.Error("encode response", "op", op.Name, "err", err)
		fd.writeError(x, DefaultError(err))
		return
	}
	if string(b) == "null" {
		b = []byte("{}")
	}
	x.w.Header().Set("Content-Type", x.jsonContentType())
	x.w.WriteHeader(http.StatusOK)
	x.w.Write(b)
}

// errorBody is the body of a JSON or CBOR error.
type errorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message,omitempty"`
}

func (fd *FrontDoor) writeError(x *exchange, e *Error) {
	e = x.svc.resolve(e)
	proto := x.answerProtocol()
	if proto == Query {
		writeQueryError(x.w, x.svc, x.call.RequestID, e)
		return
	}
	h := x.w.Header()
	if x.svc != nil && x.svc.QueryCompatible {
		h.Set("x-amzn-query-error", queryCode(x.svc, e.Code)+";"+faultType(x.svc, e))
	}
	body := errorBody{Type: errorType(x.svc, e.Code), Message: e.Message}
	if proto == RPCv2CBOR {
		b, _ := EncodeCBOR(body)
		h.Set(smithyProtocolHeader, smithyRPCv2CBOR)
		h.Set("Content-Type", cborContentType)
		x.w.WriteHeader(e.HTTPStatus())
		x.w.Write(b)
		return
	}
	h.Set("Content-Type", x.jsonContentType())
	h.Set("x-amzn-ErrorType", body.Type)
	x.w.WriteHeader(e.HTTPStatus())
	b, _ := json.Marshal(body)
	x.w.Write(b)
}

// clientCode is the error code the client reads, as audit records keep
// it: the query code for query requests and query-compatible services.
func (x *exchange) clientCode(e *Error) string {
	if x.answerProtocol() == Query || x.svc != nil && x.svc.QueryCompatible {
		return queryCode(x.svc, e.Code)
	}
	return e.Code
}

// resolve gives an error of a modeled code the model's HTTP status, unless
// it has one already. e itself is not changed.
func (s *Service) resolve(e *Error) *Error {
	if e.Status != 0 {
		return e
	}
	if m, ok := s.modeled(e.Code); ok && m.Status != 0 {
		c := *e
		c.Status = m.Status
		return &c
	}
	return e
}

// queryCodes are the query protocol's names for the front door's own error
// codes (STS and CloudWatch over query answer these).
var queryCodes = map[string]string{
	CodeMissingAuth:               "MissingAuthenticationToken",
	CodeIncompleteSig:             "IncompleteSignature",
	CodeUnrecognizedClient:        "InvalidClientTokenId",
	CodeInvalidSignature:          "SignatureDoesNotMatch",
	CodeThrottling:                "Throttling",
	CodeUnknownOperation:          CodeInvalidAction,
	CodeSerialization:             "InvalidParameterValue",
	CodeRequestTooLarge:           "RequestEntityTooLarge",
	CodeAccessDenied:              "AccessDenied",
	"ServiceUnavailableException": "ServiceUnavailable",
}

// queryCode is the code an error has in the query protocol (and in the
// x-amzn-query-error header): a modeled error's error.code, the query name
// of a front-door code, else the code itself.
func queryCode(svc *Service, code string) string {
	if m, ok := svc.modeled(code); ok && m.Code != "" {
		return m.Code
	}
	if q, ok := queryCodes[code]; ok {
		return q
	}
	return code
}

// errorType is the __type of a JSON or CBOR error: a modeled error's shape
// name (the query code the handler used maps back to it), else the code.
func errorType(svc *Service, code string) string {
	if m, ok := svc.modeled(code); ok {
		return m.Shape
	}
	return code
}

// faultType is Sender or Receiver: the model's senderFault for modeled
// errors, else by status.
func faultType(svc *Service, e *Error) string {
	if m, ok := svc.modeled(e.Code); ok {
		if m.Sender {
			return "Sender"
		}
		return "Receiver"
	}
	if e.HTTPStatus() >= 500 {
		return "Receiver"
	}
	return "Sender"
}
