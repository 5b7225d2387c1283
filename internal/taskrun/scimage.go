package taskrun

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/dockerdriver"
)

func copyAll(dst io.Writer, src io.Reader) (int64, error) { return io.Copy(dst, src) }

// imageFile is a file of a one-layer image: its path in the image and on
// this host.
type imageFile struct{ path, from string }

// proxyImageFiles lists what the proxy image holds: the executable as
// /berth and, when it is dynamically linked (cgo), its ELF interpreter and
// shared libraries at their paths (as ldd lists them), so it runs FROM
// scratch.
func proxyImageFiles(ctx context.Context, exe string) ([]imageFile, error) {
	files := []imageFile{{path: "berth", from: exe}}
	f, err := elf.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", exe, err)
	}
	dynamic := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			dynamic = true
		}
	}
	f.Close()
	if !dynamic {
		return files, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ldd", exe).Output()
	if err != nil {
		return nil, fmt.Errorf("%s is dynamically linked and ldd failed: %w", exe, err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"; "linux-vdso.so.1 (0x...)"
		// has no file.
		fs := strings.Fields(line)
		var p string
		switch {
		case len(fs) >= 3 && fs[1] == "=>":
			p = fs[2]
		case len(fs) >= 1 && strings.HasPrefix(fs[0], "/"):
			p = fs[0]
		}
		if !strings.HasPrefix(p, "/") || seen[p] {
			continue
		}
		seen[p] = true
		files = append(files, imageFile{path: strings.TrimPrefix(p, "/"), from: p})
	}
	return files, nil
}

// buildProxyImage writes a `docker save` tarball of a one-layer image
// holding files (entrypoint /berth scproxy) to a temporary file and loads
// it into Docker.
func buildProxyImage(ctx context.Context, d *dockerdriver.Driver, tag, exe string) error {
	files, err := proxyImageFiles(ctx, exe)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "berth-scproxy-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	layerPath := filepath.Join(dir, "layer.tar")
	diff, err := writeLayer(layerPath, files)
	if err != nil {
		return err
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config": map[string]any{"Entrypoint": []string{"/berth", "scproxy"}, "WorkingDir": "/",
			"Labels": map[string]string{dockerdriver.LabelManaged: "true"}},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + diff}},
		"history": []map[string]string{{"created_by": "berth agent: service connect proxy"}},
	})
	cfgSum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(cfgSum[:]) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{tag}, "Layers": []string{"layer/layer.tar"}}})
	imgPath := filepath.Join(dir, "image.tar")
	out, err := os.Create(imgPath)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	tw := tar.NewWriter(bw)
	err = tw.WriteHeader(&tar.Header{Name: "layer/", Mode: 0o755, Typeflag: tar.TypeDir})
	for _, f := range []struct {
		name string
		data []byte
	}{{cfgName, cfg}, {"manifest.json", manifest}} {
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		}
		if err == nil {
			_, err = tw.Write(f.data)
		}
	}
	if err == nil {
		err = addFile(tw, "layer/layer.tar", layerPath, 0o644)
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write the proxy image: %w", err)
	}
	in, err := os.Open(imgPath)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := d.LoadImage(ctx, in); err != nil {
		return fmt.Errorf("load the proxy image: %w", err)
	}
	return nil
}

// writeLayer writes the layer tarball and returns its sha256 (the diff id).
func writeLayer(path string, files []imageFile) (string, error) {
	out, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer out.Close()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(out, h), 1<<20)
	tw := tar.NewWriter(bw)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := filepath.Dir(f.path); d != "." && d != "/" && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range sortedKeys(dirs) {
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return "", err
		}
	}
	for _, f := range files {
		if err := addFile(tw, f.path, f.from, 0o755); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	// Parents before children: shorter paths first.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && (len(out[j]) < len(out[j-1]) || len(out[j]) == len(out[j-1]) && out[j] < out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// addFile adds the file at from (symlinks followed) to tw as name.
func addFile(tw *tar.Writer, name, from string, mode int64) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
