package agentgw

import (
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/errs"
)

func TestCheckStream(t *testing.T) {
	for _, c := range []struct {
		stream, want string
		kind         errs.Kind
		ok           bool
	}{
		{"web/app/0123", "web/app/0123", 0, true},
		{"web/app/9999", "web/app/0123", errs.Forbidden, false}, // another task's stream
		{strings.Repeat("a", 64), "", 0, true},                  // no prefix: the container id
		{"", "", errs.Invalid, false},
		{"a:b", "", errs.Invalid, false},
		{"a*b", "", errs.Invalid, false},
		{strings.Repeat("a", 513), "", errs.Invalid, false},
	} {
		err := checkStream(c.stream, c.want)
		if (err == nil) != c.ok || (err != nil && !errs.Is(err, c.kind)) {
			t.Errorf("checkStream(%q, %q) = %v", c.stream, c.want, err)
		}
	}
}

func TestLogDestsExpire(t *testing.T) {
	var c logDests
	now := time.Now()
	c.put("k", ecs.AgentLogDestination{Group: "g"}, now)
	if d, ok := c.get("k", now.Add(logDestTTL-time.Second)); !ok || d.Group != "g" {
		t.Fatal("not cached")
	}
	if _, ok := c.get("k", now.Add(logDestTTL+time.Second)); ok {
		t.Fatal("not expired")
	}
}
