package taskrun

import (
	"slices"
	"testing"

	docker "github.com/moby/moby/api/types/container"

	"github.com/berthdev/berth/internal/agentapi"
)

func TestConfineFargate(t *testing.T) {
	r := &runner{rt: &Runtime{cfg: Config{FargateRuntime: "runsc"}},
		a: agentapi.Assignment{LaunchType: agentapi.LaunchTypeFargate, CPU: 512, MemoryMiB: 1024}}
	h := &docker.HostConfig{Privileged: true, SecurityOpt: []string{"seccomp=unconfined"}, CapAdd: []string{"SYS_PTRACE", "NET_ADMIN", "CAP_SYS_ADMIN"},
		Resources: docker.Resources{Memory: 4 << 30, Devices: []docker.DeviceMapping{{PathOnHost: "/dev/fuse"}}}}
	r.confineFargate(h, false)
	if h.Privileged || h.SecurityOpt != nil || h.Devices != nil || !slices.Equal(h.CapAdd, []string{"SYS_PTRACE"}) {
		t.Fatalf("confinement: %+v", h)
	}
	if h.Memory != 1024<<20 || h.NanoCPUs != 500_000_000 || h.Runtime != "runsc" {
		t.Fatalf("limits: memory %d nanoCPUs %d runtime %q", h.Memory, h.NanoCPUs, h.Runtime)
	}
	// A container's own smaller limit stays.
	h = &docker.HostConfig{Resources: docker.Resources{Memory: 128 << 20}}
	r.confineFargate(h, false)
	if h.Memory != 128<<20 {
		t.Fatalf("own limit: %d", h.Memory)
	}
	// An EC2 task is left alone.
	r.a.LaunchType = ""
	h = &docker.HostConfig{Privileged: true}
	r.confineFargate(h, false)
	if !h.Privileged || h.NanoCPUs != 0 {
		t.Fatalf("EC2 task changed: %+v", h)
	}
}

func TestSandboxRuntimes(t *testing.T) {
	got := SandboxRuntimes([]string{"runc", "io.containerd.runc.v2", "runsc", "kata-runtime", "crun"})
	if !slices.Equal(got, []string{"kata-runtime", "runsc"}) {
		t.Fatalf("%v", got)
	}
}
