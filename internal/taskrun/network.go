package taskrun

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"runtime"

	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/errs"
)

// PauseImage is the image of awsvpc tasks' network namespace containers.
// The agent builds it locally (no registry involved): one static program
// of a few hundred bytes that sleeps until it is killed.
const PauseImage = "berth.local/pause:1"

// ensureAwsvpc creates the awsvpc bridge network (once) and the pause
// image (once).
func (rt *Runtime) ensureAwsvpc(ctx context.Context) error {
	rt.netMu.Lock()
	defer rt.netMu.Unlock()
	if rt.awsvpcGW == "" {
		name := rt.cfg.AwsvpcNetwork
		n, err := rt.d.InspectNetwork(ctx, name)
		if errs.Is(err, errs.NotFound) {
			gw := firstHost(rt.cfg.AwsvpcSubnet)
			_, err = rt.d.CreateNetwork(ctx, name, dockerdriver.NetworkOptions{Subnet: rt.cfg.AwsvpcSubnet, Gateway: gw,
				Labels: map[string]string{dockerdriver.LabelManaged: "true"}})
			if err != nil && !errs.Is(err, errs.AlreadyExists) {
				return fmt.Errorf("create network %s: %w", name, err)
			}
			n, err = rt.d.InspectNetwork(ctx, name)
		}
		if err != nil {
			return fmt.Errorf("network %s: %w", name, err)
		}
		if len(n.Subnets) == 0 {
			return errs.E(errs.Internal, "network %s has no subnet", name)
		}
		rt.awsvpcNet = n.Subnets[0]
		rt.awsvpcGW = firstHost(n.Subnets[0])
	}
	if !rt.pauseOK {
		ok, err := rt.d.ImageExists(ctx, PauseImage)
		if err != nil {
			return err
		}
		if !ok {
			tarball, err := pauseImageTar(runtime.GOARCH)
			if err != nil {
				return err
			}
			if err := rt.d.LoadImage(ctx, bytes.NewReader(tarball)); err != nil {
				return fmt.Errorf("load the pause image: %w", err)
			}
		}
		rt.pauseOK = true
	}
	return nil
}

// firstHost is the first address of a CIDR ("10.213.0.0/16" ->
// "10.213.0.1"), Docker's default gateway.
func firstHost(cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return ""
	}
	return p.Masked().Addr().Next().String()
}

// pauseProgram returns a static Linux ELF executable for arch whose only
// code loops on a blocking system call: pause(2) on amd64, ppoll(2) with no
// descriptors and no timeout on arm64 (which has no pause).
func pauseProgram(arch string) ([]byte, error) {
	var machine uint16
	var code []byte
	switch arch {
	case "amd64":
		machine = 62 // EM_X86_64
		code = []byte{
			0xb8, 0x22, 0x00, 0x00, 0x00, // mov eax, 34 (pause)
			0x0f, 0x05, // syscall
			0xeb, 0xf7, // jmp back 9 bytes
		}
	case "arm64":
		machine = 183 // EM_AARCH64
		for _, ins := range []uint32{
			0xd2800928, // movz x8, #73 (ppoll)
			0xd2800000, // movz x0, #0
			0xd2800001, // movz x1, #0
			0xd2800002, // movz x2, #0
			0xd2800003, // movz x3, #0
			0xd4000001, // svc #0
			0x17fffffa, // b back 6 instructions
		} {
			code = binary.LittleEndian.AppendUint32(code, ins)
		}
	default:
		return nil, errs.E(errs.Unsupported, "awsvpc network mode: no pause program for %s", arch)
	}
	const base, ehsize, phsize = 0x400000, 64, 56
	total := uint64(ehsize + phsize + len(code))
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	w := func(v any) { _ = binary.Write(&b, le, v) }
	w(uint16(2))                      // ET_EXEC
	w(machine)                        // e_machine
	w(uint32(1))                      // e_version
	w(uint64(base + ehsize + phsize)) // e_entry
	w(uint64(ehsize))                 // e_phoff
	w(uint64(0))                      // e_shoff
	w(uint32(0))                      // e_flags
	w(uint16(ehsize))                 // e_ehsize
	w(uint16(phsize))                 // e_phentsize
	w(uint16(1))                      // e_phnum
	w(uint16(0))                      // e_shentsize
	w(uint16(0))                      // e_shnum
	w(uint16(0))                      // e_shstrndx
	// The one PT_LOAD segment: the whole file, read + execute.
	w(uint32(1))
	w(uint32(5))
	w(uint64(0))
	w(uint64(base))
	w(uint64(base))
	w(total)
	w(total)
	w(uint64(0x1000))
	b.Write(code)
	return b.Bytes(), nil
}

// pauseImageTar builds PauseImage as a `docker save` tarball.
func pauseImageTar(arch string) ([]byte, error) {
	prog, err := pauseProgram(arch)
	if err != nil {
		return nil, err
	}
	return imageTar(PauseImage, arch, "pause", prog, nil, []string{"/pause"})
}

// imageTar builds a one-layer image tagged tag, holding the executable
// prog at /name and the empty directories dirs, as a `docker save`
// tarball for Driver.LoadImage.
func imageTar(tag, arch, name string, prog []byte, dirs, entrypoint []string) ([]byte, error) {
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	for _, d := range dirs {
		if err := lw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o1777, Typeflag: tar.TypeDir}); err != nil {
			return nil, err
		}
	}
	if err := lw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(prog)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := lw.Write(prog); err != nil {
		return nil, err
	}
	if err := lw.Close(); err != nil {
		return nil, err
	}
	diff := sha256.Sum256(layer.Bytes())
	cfg, _ := json.Marshal(map[string]any{
		"architecture": arch,
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": entrypoint, "Labels": map[string]string{dockerdriver.LabelManaged: "true"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diff[:])}},
		"history":      []map[string]string{{"created_by": "berth agent"}},
	})
	cfgSum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{tag}, "Layers": []string{"layer/layer.tar"}}})
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	if err := tw.WriteHeader(&tar.Header{Name: "layer/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{cfgName, cfg}, {"layer/layer.tar", layer.Bytes()}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
