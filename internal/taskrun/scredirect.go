package taskrun

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/serviceconnect"
)

// Client alias redirects (docs/service-connect.md, "Client aliases and the
// application's own ports"). A task's proxy serves every client alias of
// the namespace. Listening on VIP:Port itself would make Linux refuse an
// application of the same task that listens on Port with a wildcard address
// (an application on :80 beside an alias on port 80 is the common case), so
// the proxy listens on VIP:ListenPort instead and the task's network
// namespace redirects VIP:Port there: a nat table chain, BERTH-SC, written by
// the agent with the host's iptables (which Docker itself needs) inside the
// namespace of the task's pause container. The rules go when the namespace
// does.

// scRedirectChain is the nat chain of a task's alias redirects.
const scRedirectChain = "BERTH-SC"

// scRedirectTimeout bounds the iptables calls of one task.
const scRedirectTimeout = 15 * time.Second

var scRedirectTools = sync.OnceValue(func() error {
	for _, tool := range []string{"nsenter", "iptables", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			return err
		}
	}
	return nil
})

// scRedirects reports whether this host can redirect client aliases.
func (rt *Runtime) scRedirects() bool {
	if rt.cfg.ServiceConnect != nil && rt.cfg.ServiceConnect.NoRedirect {
		return false
	}
	if err := scRedirectTools(); err != nil {
		rt.sc.redirectWarn.Do(func() {
			rt.log.Warn("Service Connect: client aliases are served on their own ports (an application listening on an alias's port with a wildcard address will not start)", "err", err)
		})
		return false
	}
	return true
}

// scAssignRedirects gives tc's aliases their proxy ports when this host
// redirects, avoiding the task's own container ports.
func (r *runner) scAssignRedirects(tc *serviceconnect.TaskConfig) {
	if len(tc.Outbound) == 0 || r.mode == "" || !r.rt.scRedirects() {
		return
	}
	taken := map[int]bool{}
	for _, cd := range r.a.TaskDefinition.ContainerDefinitions {
		for _, pm := range cd.PortMappings {
			taken[int(deref(pm.ContainerPort))] = true
		}
	}
	serviceconnect.AssignRedirectPorts(tc, taken)
}

// redirectRules is the iptables-restore input of a task's alias
// redirects (nat table, chain BERTH-SC), or "" when there are none.
// Declaring the chain with --noflush empties it first, so applying it
// again replaces the rules.
func redirectRules(outbound []serviceconnect.Outbound) string {
	var b strings.Builder
	n := 0
	for _, o := range outbound {
		if o.ListenPort == 0 || o.ListenPort == o.Port {
			continue
		}
		if n == 0 {
			b.WriteString("*nat\n:" + scRedirectChain + " - [0:0]\n")
		}
		n++
		fmt.Fprintf(&b, "-A %s -d %s/32 -p tcp -m tcp --dport %d -j DNAT --to-destination %s:%d\n",
			scRedirectChain, o.VIP, o.Port, o.VIP, o.ListenPort)
	}
	if n == 0 {
		return ""
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// scRedirect writes the task's alias redirects into its network namespace
// (the pause container's). It can be applied again (after an agent
// restart that found the task running): the chain is replaced and the
// jump to it added only when missing.
func (r *runner) scRedirect(ctx context.Context) error {
	st := r.rt.scTask(r.arn)
	if st == nil || r.pause == nil {
		return nil
	}
	rules := redirectRules(st.cfg.Outbound)
	if rules == "" {
		return nil
	}
	pid := r.pause.info.Pid
	if pid <= 0 {
		return errs.E(errs.Internal, "ServiceConnectError: the task's network namespace has no process to enter")
	}
	if err := applyRedirects(ctx, pid, rules); err != nil {
		return err
	}
	r.log.Debug("client alias redirects applied", "aliases", strings.Count(rules, "\n-A "))
	return nil
}

// applyRedirects loads rules (redirectRules) into the network namespace of
// process pid and makes its OUTPUT chain jump to them once.
func applyRedirects(ctx context.Context, pid int, rules string) error {
	ctx, cancel := context.WithTimeout(ctx, scRedirectTimeout)
	defer cancel()
	jump := fmt.Sprintf("-t nat %%s OUTPUT -d %s -p tcp -j %s", serviceconnect.VIPPrefix, scRedirectChain)
	script := "iptables-restore -w 5 --noflush && { iptables -w 5 " + fmt.Sprintf(jump, "-C") + " 2>/dev/null || iptables -w 5 " + fmt.Sprintf(jump, "-A") + "; }"
	cmd := exec.CommandContext(ctx, "nsenter", "--target", strconv.Itoa(pid), "--net", "--", "sh", "-c", script)
	cmd.Stdin = strings.NewReader(rules)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return errs.E(errs.Unavailable, "ServiceConnectError: redirecting the client aliases timed out after %s", scRedirectTimeout)
		}
		return errs.E(errs.Internal, "ServiceConnectError: redirecting the client aliases in the task's network namespace: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
