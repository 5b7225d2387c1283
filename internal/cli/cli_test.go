package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{nil, {"frobnicate"}, {"up", "--no-such-flag"}, {"up", "--log-level", "loud"},
		{"up", "--metrics-period", "500ms"}, {"server", "--metrics-period", "1500ms"}, {"server", "--metrics-period", "0s"},
		{"server", "--disconnect-grace", "0s"}, {"up", "--disconnect-grace", "10s", "--instance-lost-after", "5s"}} {
		err := Run(context.Background(), args, &out, &errOut)
		var ue UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
}

func TestVersionAndEnvWithoutServer(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := Run(context.Background(), []string{"version"}, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "berth ") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	t.Setenv("BERTH_ACCESS_KEY_ID", "")
	err := Run(context.Background(), []string{"env", "--data-dir", t.TempDir()}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "start berth first") {
		t.Fatalf("env without credentials: %v", err)
	}
	t.Setenv("BERTH_ACCESS_KEY_ID", "AKIAX")
	t.Setenv("BERTH_SECRET_ACCESS_KEY", "sek")
	out.Reset()
	if err := Run(context.Background(), []string{"env", "--endpoint", "http://127.0.0.1:9"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "export AWS_ACCESS_KEY_ID=AKIAX\n") || !strings.Contains(out.String(), "AWS_ENDPOINT_URL=http://127.0.0.1:9") {
		t.Fatalf("env output:\n%s", out.String())
	}
}
