package taskrun

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	docker "github.com/moby/moby/api/types/container"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/errs"
)

// Fargate tasks (docs/fargate.md). An assignment with LaunchType FARGATE
// runs like an awsvpc task (its own network namespace and address, held
// by the pause container) and is confined further:
//
//   - the pause container gets the task's size as its cgroup limits, and
//     every container of the task gets the task's size as its ceiling
//     (memory: its own hard limit when smaller; CPU: the task's vCPUs as a
//     CFS quota), so no container outgrows the task;
//   - no privileged mode, no devices, no Docker security options: Docker's
//     default seccomp profile and AppArmor/SELinux confinement apply;
//   - Docker's default capability set, which is Fargate's, with SYS_PTRACE
//     the only one a definition may add (anything else is dropped here
//     even if validation let it through);
//   - the sandboxed runtime (gVisor's runsc, Kata) when the agent was told
//     to use one and it proved to work (ProbeRuntime).

// fargateAddable are the capabilities a Fargate container may add.
var fargateAddable = []string{"SYS_PTRACE", "CAP_SYS_PTRACE"}

func (r *runner) fargate() bool { return r.a.LaunchType == agentapi.LaunchTypeFargate }

// confineFargate applies Fargate's confinement to a container's host
// configuration. pause is true for the task's network namespace holder.
func (r *runner) confineFargate(host *docker.HostConfig, pause bool) {
	if !r.fargate() {
		return
	}
	host.Privileged = false
	host.SecurityOpt = nil
	host.Devices = nil
	host.CapAdd = slices.DeleteFunc(slices.Clone(host.CapAdd), func(c string) bool {
		return !slices.Contains(fargateAddable, strings.ToUpper(c))
	})
	if rt := r.rt.cfg.FargateRuntime; rt != "" {
		host.Runtime = rt
	}
	mem := int64(r.a.MemoryMiB) << 20
	if mem > 0 && (host.Memory == 0 || host.Memory > mem) {
		host.Memory = mem
		if host.MemoryReservation > mem {
			host.MemoryReservation = mem
		}
	}
	if r.a.CPU > 0 {
		host.NanoCPUs = int64(r.a.CPU) * 1e9 / 1024
	}
	if pause {
		host.CPUShares = int64(max(r.a.CPU, 2))
	}
}

// SandboxRuntimes are the names of the sandboxed OCI runtimes Berth
// recognises in Docker's configuration.
func SandboxRuntimes(configured []string) []string {
	var out []string
	for _, n := range configured {
		if n == "runsc" || strings.HasPrefix(n, "kata") || strings.HasPrefix(n, "io.containerd.kata") || strings.HasPrefix(n, "io.containerd.runsc") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// ProbeRuntime checks that Docker can run a container with the OCI
// runtime name: it starts the pause image under it once and removes it.
// Docker lists runtimes it cannot actually use (gVisor without the
// kernel features it needs, Kata without nested virtualisation), so
// Berth only uses a runtime that passed this.
func ProbeRuntime(ctx context.Context, d *dockerdriver.Driver, name string) error {
	ok, err := d.ImageExists(ctx, PauseImage)
	if err != nil {
		return err
	}
	if !ok {
		tarball, err := pauseImageTar(runtime.GOARCH)
		if err != nil {
			return err
		}
		if err := d.LoadImage(ctx, bytes.NewReader(tarball)); err != nil {
			return fmt.Errorf("load the pause image: %w", err)
		}
	}
	cname := fmt.Sprintf("berth-runtime-probe-%d", time.Now().UnixNano())
	id, err := d.CreateContainer(ctx, cname, &docker.Config{Image: PauseImage, Labels: map[string]string{dockerdriver.LabelManaged: "true"}},
		&docker.HostConfig{Runtime: name, NetworkMode: "none"}, nil)
	if err != nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = d.RemoveContainer(rctx, id, dockerdriver.RemoveOptions{Force: true})
	}()
	if err := d.StartContainer(ctx, id); err != nil {
		return err
	}
	info, err := d.InspectContainer(ctx, id)
	if err != nil {
		return err
	}
	if !info.Running {
		return errs.E(errs.Unavailable, "a container under runtime %s exited at once (exit code %d)", name, info.ExitCode)
	}
	return nil
}
