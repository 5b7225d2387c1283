package awsproto

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// A query-only service (ELBv2) answers an empty <OpResult/> for an output
// shape without members, which its SDKs expect; a service whose query
// protocol is one of several (CloudWatch) answers no Result for an
// operation without output, as before.
func TestQueryEmptyResult(t *testing.T) {
	type empty struct{}
	for _, c := range []struct {
		svc  *Service
		want bool
	}{
		{&Service{Protocol: Query, XMLNamespace: "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"}, true},
		{&Service{Protocol: JSON10, Protocols: []Protocol{JSON10, Query}, XMLNamespace: "http://monitoring.amazonaws.com/doc/2010-08-01/"}, false},
	} {
		w := httptest.NewRecorder()
		writeQueryOutput(w, c.svc, "RegisterTargets", "req-1", &empty{})
		body := w.Body.String()
		if got := strings.Contains(body, "<RegisterTargetsResult/>"); got != c.want {
			t.Errorf("%v: Result element %v, want %v: %s", c.svc.Protocol, got, c.want, body)
		}
		if !strings.Contains(body, "<RequestId>req-1</RequestId>") {
			t.Errorf("no request id: %s", body)
		}
	}
}
