package berthtest

import (
	"strings"
	"testing"
	"time"
)

// TestWarmCLIMatchesFreshProcess runs the same calls through the warm
// CLI workers and as fresh processes: the same output and exit codes
// (success, a service error, a usage error, a client-side validation
// error).
func TestWarmCLIMatchesFreshProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the AWS CLIs")
	}
	s := Start(t, nil)
	calls := [][]string{
		{"ecs", "create-cluster", "--cluster-name", "warm"},
		{"ecs", "list-clusters"},
		{"ecs", "describe-services", "--cluster", "nope", "--services", "x"},
		{"ecs", "delete-cluster", "--cluster", "missing"},
		{"ecs", "create-cluster", "--bogus-flag"},
		{"ecs", "run-task"},
		{"ecs", "delete-cluster", "help"}, // rendered by child processes (groff)
		{"--debug", "ecs", "list-clusters"},
		{"ecs", "delete-cluster", "--cluster", "missing"}, // after --debug: no debug log
	}
	for _, cli := range CLIs(t) {
		if cliInterpreter(cli.Path) == "" {
			t.Logf("%s is not a Python script: always a fresh process", cli.Name)
			continue
		}
		var fresh, warm time.Duration
		for _, argv := range calls {
			t.Setenv("BERTH_CLI_FRESH", "1")
			t0 := time.Now()
			fo, fe, fc := cli.Run(t, s, argv...)
			fresh += time.Since(t0)
			t.Setenv("BERTH_CLI_FRESH", "")
			t0 = time.Now()
			wo, we, wc := cli.Run(t, s, argv...)
			warm += time.Since(t0)
			if argv[1] == "create-cluster" && fc == 0 { // idempotent: same cluster again
				fo, wo = "", ""
			}
			if argv[0] == "--debug" { // timestamps and thread names
				if !strings.Contains(fe, "DEBUG") || !strings.Contains(we, "DEBUG") || fo != wo || fc != wc {
					t.Errorf("%s %v: fresh %d %q, warm %d %q (stderr %d and %d bytes)", cli.Name, argv, fc, fo, wc, wo, len(fe), len(we))
				}
				continue
			}
			if fo != wo || fe != we || fc != wc {
				t.Errorf("%s %v:\nfresh %d stdout %q stderr %q\nwarm  %d stdout %q stderr %q", cli.Name, argv, fc, fo, fe, wc, wo, we)
			}
		}
		t.Logf("%s: %d calls as processes %s, warm %s (the first warm call starts the worker)", cli.Name, len(calls), fresh.Round(time.Millisecond), warm.Round(time.Millisecond))
	}
}
