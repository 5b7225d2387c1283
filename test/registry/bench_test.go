package registry

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/berthtest"
)

// TestBenchRegistryAgainstDistribution compares Berth's registry with
// Debian's docker-registry (distribution 2.8) on the same machine, disk
// and client: push and pull of one 200 MB image, and of 100 small images
// with 8 concurrent clients. Run it with
//
//	BERTH_BENCH=1 go test ./test/registry -run BenchRegistry -v -count=1 -timeout 20m
//
// (needs `apt-get install -y docker-registry`). It prints the times and
// the ratios distribution/Berth (above 1: Berth is faster).
func TestBenchRegistryAgainstDistribution(t *testing.T) {
	if os.Getenv("BERTH_BENCH") != "1" {
		t.Skip("set BERTH_BENCH=1 to run the registry benchmark")
	}
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry is not installed: apt-get install -y docker-registry")
	}
	s := berthtest.Start(t, nil)
	createRepo(t, s, "bench/big")
	for i := 0; i < 100; i++ {
		createRepo(t, s, fmt.Sprintf("bench/small%d", i))
	}
	berth := &client{t: t, base: s.Endpoint, pass: password(t, s)}

	dir := t.TempDir()
	addr := berthtest.FreeAddr(t)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644)
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := berthtest.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	dist := &client{t: t, base: "http://" + addr}
	for i := 0; ; i++ {
		if res, err := http.Get(dist.base + "/v2/"); err == nil {
			res.Body.Close()
			break
		}
		if i > 100 {
			t.Fatal("docker-registry did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}

	big := randBytes(200 << 20)
	small := make([][]byte, 100)
	for i := range small {
		small[i] = randBytes(256 << 10)
	}
	type result struct {
		name        string
		berth, dist time.Duration
	}
	var results []result
	run := func(name string, f func(c *client) error) {
		var took [2]time.Duration
		for k, c := range []*client{berth, dist} {
			start := time.Now()
			if err := f(c); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			took[k] = time.Since(start)
		}
		results = append(results, result{name, took[0], took[1]})
	}
	run("push 200 MB image", func(c *client) error { return benchPush(c, "bench/big", "v1", big) })
	run("pull 200 MB image", func(c *client) error { return benchPull(c, "bench/big", "v1") })
	run("push 100 small images, 8 clients", func(c *client) error {
		return parallel(100, 8, func(i int) error { return benchPush(c, fmt.Sprintf("bench/small%d", i), "v1", small[i]) })
	})
	run("pull 100 small images, 8 clients", func(c *client) error {
		return parallel(100, 8, func(i int) error { return benchPull(c, fmt.Sprintf("bench/small%d", i), "v1") })
	})
	for _, r := range results {
		t.Logf("%-36s berth %8.3fs  distribution %8.3fs  ratio %.2f", r.name, r.berth.Seconds(), r.dist.Seconds(), r.dist.Seconds()/r.berth.Seconds())
	}
}

func parallel(n, workers int, f func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	ch := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ch {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		ch <- i
	}
	close(ch)
	wg.Wait()
	return first
}

func benchReq(c *client, method, url string, body []byte, ct string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if c.pass != "" {
		req.SetBasicAuth("AWS", c.pass)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return http.DefaultClient.Do(req)
}

func benchBlob(c *client, repo string, b []byte) (string, error) {
	res, err := benchReq(c, "POST", c.base+"/v2/"+repo+"/blobs/uploads/", nil, "")
	if err != nil {
		return "", err
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	if loc[0] == '/' {
		loc = c.base + loc
	}
	d := digestOf(b)
	sep := "?"
	if bytes.ContainsRune([]byte(loc), '?') {
		sep = "&"
	}
	res, err = benchReq(c, "PUT", loc+sep+"digest="+d, b, "application/octet-stream")
	if err != nil {
		return "", err
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		return "", fmt.Errorf("blob upload: %d", res.StatusCode)
	}
	return d, nil
}

func benchPush(c *client, repo, tag string, layer []byte) error {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","created":"%s"}`, repo))
	cd, err := benchBlob(c, repo, cfg)
	if err != nil {
		return err
	}
	ld, err := benchBlob(c, repo, layer)
	if err != nil {
		return err
	}
	res, err := benchReq(c, "PUT", c.base+"/v2/"+repo+"/manifests/"+tag, []byte(imageManifest(cd, len(cfg), ld, len(layer))), "application/vnd.docker.distribution.manifest.v2+json")
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		return fmt.Errorf("manifest: %d", res.StatusCode)
	}
	return nil
}

func benchPull(c *client, repo, tag string) error {
	req, _ := http.NewRequest("GET", c.base+"/v2/"+repo+"/manifests/"+tag, nil)
	if c.pass != "" {
		req.SetBasicAuth("AWS", c.pass)
	}
	// distribution 2.8 rewrites schema 2 to schema 1 for clients that do
	// not accept it.
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		res.Body.Close()
		return fmt.Errorf("manifest: %d", res.StatusCode)
	}
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	err = jsonDecode(res.Body, &m)
	res.Body.Close()
	if err != nil {
		return err
	}
	if len(m.Layers) != 1 {
		return fmt.Errorf("manifest has %d layers", len(m.Layers))
	}
	for _, d := range []string{m.Config.Digest, m.Layers[0].Digest} {
		res, err := benchReq(c, "GET", c.base+"/v2/"+repo+"/blobs/"+d, nil, "")
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("blob: %d", res.StatusCode)
		}
	}
	return nil
}
