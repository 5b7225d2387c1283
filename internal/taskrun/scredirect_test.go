package taskrun

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/serviceconnect"
)

func TestRedirectRules(t *testing.T) {
	out := []serviceconnect.Outbound{
		{DNSName: "a", Port: 80, VIP: "127.255.0.1", ListenPort: 15200},
		{DNSName: "b", Port: 9090, VIP: "127.255.0.2"}, // no port of its own: not redirected
		{DNSName: "c", Port: 8080, VIP: "127.255.0.3", ListenPort: 15201},
	}
	want := "*nat\n:BERTH-SC - [0:0]\n" +
		"-A BERTH-SC -d 127.255.0.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.255.0.1:15200\n" +
		"-A BERTH-SC -d 127.255.0.3/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 127.255.0.3:15201\n" +
		"COMMIT\n"
	if got := redirectRules(out); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := redirectRules(out[1:2]); got != "" {
		t.Fatalf("no redirect wanted, got %q", got)
	}
}

// TestApplyRedirects loads the rules into a network namespace of its own
// (a process started with `unshare --net`) twice: the chain holds the rules
// once, and OUTPUT jumps to it once.
func TestApplyRedirects(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range []string{"unshare", "nsenter", "iptables", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " is missing")
		}
	}
	ns := exec.Command("unshare", "--net", "sleep", "60")
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Process.Kill(); _ = ns.Wait() })
	time.Sleep(100 * time.Millisecond) // unshare has exec'd sleep in the new namespace
	rules := redirectRules([]serviceconnect.Outbound{{Port: 80, VIP: "127.255.0.1", ListenPort: 15200}})
	for range 2 {
		if err := applyRedirects(context.Background(), ns.Process.Pid, rules); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("nsenter", "--target", strconv.Itoa(ns.Process.Pid), "--net", "iptables", "-w", "5", "-t", "nat", "-S").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	if strings.Count(s, "--to-destination 127.255.0.1:15200") != 1 || strings.Count(s, "-A OUTPUT -d 127.255.0.0/16 -p tcp -j BERTH-SC") != 1 {
		t.Fatalf("nat table after two applies:\n%s", s)
	}
	// The host's own nat table is untouched.
	if host, _ := exec.Command("iptables", "-w", "5", "-t", "nat", "-S").CombinedOutput(); strings.Contains(string(host), "BERTH-SC") {
		t.Fatalf("the host's nat table has the task's chain:\n%s", host)
	}
}
