package dockerdriver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
)

func TestDockerVersionAndInfo(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	ctx := context.Background()
	v, err := d.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("docker %s, daemon API %s (min %s), driver speaks %s", v.Version, v.APIVersion, v.MinAPIVersion, v.ClientAPI)
	if v.ClientAPI == "" || v.APIVersion == "1.41" && v.ClientAPI != "1.41" {
		t.Errorf("client API %q not negotiated down to the daemon's %q", v.ClientAPI, v.APIVersion)
	}
	info, err := d.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.CPUs < 1 || info.MemoryBytes <= 0 {
		t.Errorf("Info = %+v, want CPUs and memory", info)
	}
}

func TestDaemonDownIsUnavailableQuickly(t *testing.T) {
	t.Parallel()
	d, err := New(Config{Host: "unix:///nonexistent/berth/docker.sock"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	start := time.Now()
	for name, err := range map[string]error{
		"ping":    d.Ping(ctx),
		"inspect": func() error { _, err := d.InspectContainer(ctx, "x"); return err }(),
		"pull":    d.PullImage(ctx, "busybox:latest", nil),
	} {
		if !errs.Is(err, errs.Unavailable) {
			t.Errorf("%s: err = %v (kind %v), want Unavailable", name, err, errs.KindOf(err))
		}
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("took %s, want fast failure", el)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	ctx := context.Background()
	if _, err := d.InspectContainer(ctx, "berth-no-such-container-"+randHex(4)); !errs.Is(err, errs.NotFound) {
		t.Errorf("InspectContainer: err = %v, want NotFound", err)
	}
	if _, err := d.InspectImage(ctx, "berth-test/no-such-image:"+randHex(4)); !errs.Is(err, errs.NotFound) {
		t.Errorf("InspectImage: err = %v, want NotFound", err)
	}
	if ok, err := d.ImageExists(ctx, toolImage); err != nil || !ok {
		t.Errorf("ImageExists(%s) = %v, %v", toolImage, ok, err)
	}
	task := testTask(t)
	cfg, host, _, _ := ContainerConfig(task, ecsapi.ContainerDefinition{Name: ptr("x"), Image: ptr("berth-test/absent:" + randHex(4))}, Options{})
	if _, err := d.CreateContainer(ctx, "", cfg, host, nil); !errs.Is(err, errs.NotFound) {
		t.Errorf("CreateContainer with a missing image: err = %v, want NotFound", err)
	}
}

func TestPullFromUnreachableRegistryFailsFast(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	start := time.Now()
	err := d.PullImage(context.Background(), "127.0.0.1:1/nope:latest", nil)
	if err == nil {
		t.Fatal("pull succeeded")
	}
	if !strings.HasPrefix(err.Error(), "CannotPullContainerError: ") || errs.ReasonOf(err) != ReasonCannotPull {
		t.Errorf("err = %q (reason %q), want a CannotPullContainerError", err, errs.ReasonOf(err))
	}
	if !errs.Is(err, errs.Unavailable) {
		t.Errorf("kind = %v, want Unavailable", errs.KindOf(err))
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("took %s", el)
	}
	t.Logf("error: %v", err)
}

// stallingRegistry is a registry that asks for Basic credentials, serves
// a manifest for any image, and then never sends a blob: a pull that
// stalls mid-download. stallManifest makes it stall on the manifest
// instead, before Docker has said anything.
func stallingRegistry(t *testing.T, stallManifest bool) (addr string, sawAuth *atomic.Value) {
	t.Helper()
	sawAuth = &atomic.Value{}
	sawAuth.Store("")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	digest := func(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1000,"digest":%q},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":100000,"digest":%q}]}`,
		digest('a'), digest('b'))
	done := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "" {
			sawAuth.Store(a)
		}
		switch {
		case r.Header.Get("Authorization") == "":
			w.Header().Set("WWW-Authenticate", `Basic realm="berth-test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		case r.URL.Path == "/v2/" || r.URL.Path == "/v2":
			w.WriteHeader(http.StatusOK)
			return
		case strings.Contains(r.URL.Path, "/manifests/") && !stallManifest:
			w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
			fmt.Fprint(w, manifest)
			return
		}
		select { // stall
		case <-r.Context().Done():
		case <-done:
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { close(done); srv.Close() })
	return ln.Addr().String(), sawAuth
}

func TestPullStalls(t *testing.T) {
	t.Parallel()
	needDocker(t)
	for _, c := range []struct {
		name          string
		stallManifest bool
		timeouts      Timeouts
		want          string
	}{
		{"mid-download", false, Timeouts{PullBegin: 30 * time.Second, PullInactivity: 2 * time.Second}, "made no progress for 2s"},
		{"before-any-output", true, Timeouts{PullBegin: 2 * time.Second, PullInactivity: time.Minute}, "did not start pulling"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr, sawAuth := stallingRegistry(t, c.stallManifest)
			d, err := New(Config{Timeouts: c.timeouts})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			start := time.Now()
			err = d.PullImage(context.Background(), addr+"/stall:"+randHex(4),
				&RegistryAuth{Username: "berth", Password: "s3cret", ServerAddress: addr})
			el := time.Since(start)
			if err == nil || errs.ReasonOf(err) != ReasonCannotPull || !strings.HasPrefix(err.Error(), "CannotPullContainerError: ") {
				t.Fatalf("err = %v, want CannotPullContainerError", err)
			}
			if !strings.Contains(err.Error(), c.want) || !errs.Is(err, errs.Unavailable) {
				t.Errorf("err = %v (kind %v), want %q, Unavailable", err, errs.KindOf(err), c.want)
			}
			if el > 8*time.Second {
				t.Errorf("stalled pull took %s to fail", el)
			}
			if a, _ := sawAuth.Load().(string); !strings.HasPrefix(a, "Basic ") {
				t.Errorf("registry saw Authorization %q, want the Basic credentials", a)
			}
			t.Logf("after %s: %v", el, err)
		})
	}
}

func TestEnsureImageBehaviours(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	ctx := context.Background()
	// A tag on a registry nobody listens on: every pull fails at once.
	ref := "127.0.0.1:1/berth-test/tool:" + randHex(4)
	if _, err := d.cli.ImageTag(ctx, client.ImageTagOptions{Source: toolImage, Target: ref}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.RemoveImage(context.Background(), ref, false) })
	absent := "127.0.0.1:1/berth-test/absent:" + randHex(4)

	cases := []struct {
		behavior   PullBehavior
		ref        string
		markPulled bool
		wantErr    bool
	}{
		{PullPreferCached, ref, false, false}, // present: no pull
		{PullDefault, ref, false, false},      // pull fails, cached image used
		{PullAlways, ref, false, true},        // pull fails, so does EnsureImage
		{PullOnce, ref, false, true},          // never pulled by us: pulls, fails
		{PullOnce, ref, true, false},          // pulled before and present: no pull
		{PullPreferCached, absent, false, true},
		{PullDefault, absent, false, true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%v/%v", c.behavior, c.ref == ref, c.markPulled), func(t *testing.T) {
			rec := NewPullRecord()
			if c.markPulled {
				rec.MarkPulled(c.ref)
			}
			d.pulled = rec // each case runs alone
			pulled, err := d.EnsureImage(ctx, c.ref, c.behavior, nil)
			if pulled {
				t.Errorf("pulled = true from an unreachable registry")
			}
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if err != nil && errs.ReasonOf(err) != ReasonCannotPull {
				t.Errorf("err = %v, want CannotPullContainerError", err)
			}
		})
	}
}

func TestContainerLifecycleWithSIGTERM(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	ctx := context.Background()
	task := testTask(t)
	evs, errc := d.Events(ctx, EventOptions{Since: time.Now().Add(-time.Second), Labels: map[string]string{LabelTaskARN: task.TaskARN}})
	cd := ecsapi.ContainerDefinition{
		Name:         ptr("web"),
		Command:      steps("term:1s:0", "serve:8080", "sleep:1h"),
		Environment:  []ecsapi.KeyValuePair{{Name: ptr("GREETING"), Value: ptr("hi")}},
		DockerLabels: map[string]string{"team": "berth"},
		PortMappings: []ecsapi.PortMapping{{ContainerPort: ptr(int32(8080))}},
		StopTimeout:  ptr(int32(10)),
	}
	id := runContainer(t, d, task, cd, Options{}, true)
	startEv := waitEvent(t, evs, errc, 10*time.Second, func(e Event) bool { return e.ContainerID == id && e.Action == EventStart })

	info, err := d.InspectContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Running || info.StartedAt.IsZero() || info.Pid == 0 {
		t.Errorf("after start: %+v", info)
	}
	for k, v := range map[string]string{LabelECSTaskARN: task.TaskARN, LabelECSContainerName: "web", LabelInstance: task.Instance,
		LabelECSTaskDefVersion: "1", "team": "berth"} {
		if info.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, info.Labels[k], v)
		}
	}
	if len(info.Ports) == 0 || info.Ports[0].ContainerPort != 8080 || info.Ports[0].HostPort == 0 || info.Ports[0].Protocol != "tcp" {
		t.Fatalf("ports = %+v, want 8080/tcp bound to an ephemeral host port", info.Ports)
	}
	body := httpGetRetry(t, fmt.Sprintf("http://127.0.0.1:%d/", info.Ports[0].HostPort))
	if strings.TrimSpace(body) != "ok" {
		t.Errorf("GET = %q", body)
	}

	start := time.Now()
	if err := d.StopContainer(ctx, id, StopTimeout(cd, 0)); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if el < 900*time.Millisecond || el > 8*time.Second {
		t.Errorf("stop took %s, want about the 1s the SIGTERM handler waits", el)
	}
	info = waitExited(t, d, id, 5*time.Second)
	if info.ExitCode != 0 || info.OOMKilled || info.FinishedAt.Before(info.StartedAt) {
		t.Errorf("after stop: exit %d oom %v started %s finished %s", info.ExitCode, info.OOMKilled, info.StartedAt, info.FinishedAt)
	}
	e := waitEvent(t, evs, errc, 10*time.Second, func(e Event) bool { return e.ContainerID == id && e.Action == EventDie })
	if e.ExitCode != 0 || e.Attributes[LabelContainerName] != "web" || e.Time.IsZero() {
		t.Errorf("die event = %+v", e)
	}
	// A consumer that lost its stream resumes from a timestamp.
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	revs, rerrc := d.Events(rctx, EventOptions{Since: startEv.Time, Labels: map[string]string{LabelTaskARN: task.TaskARN}})
	waitEvent(t, revs, rerrc, 20*time.Second, func(e Event) bool { return e.ContainerID == id && e.Action == EventStart })
	waitEvent(t, revs, rerrc, 20*time.Second, func(e Event) bool { return e.ContainerID == id && e.Action == EventDie })
	// Stopping again is fine.
	if err := d.StopContainer(ctx, id, time.Second); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if err := d.KillContainer(ctx, id, "SIGKILL"); !errs.Is(err, errs.Conflict) {
		t.Errorf("kill of a stopped container: err = %v, want Conflict", err)
	}
}

func httpGetRetry(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	var last error
	for i := 0; i < 30; i++ {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

func TestStopTimeoutEndsInSIGKILL(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	cd := ecsapi.ContainerDefinition{Name: ptr("stubborn"), Command: steps("ignoreterm", "print:ignoring", "sleep:1h"), StopTimeout: ptr(int32(1))}
	id := runContainer(t, d, testTask(t), cd, Options{}, true)
	// Running is not enough: a SIGTERM that arrives before the program has
	// ignored it ends PID 1 with Go's exit status 2. Stop once it says so.
	waitOutput(t, d, id, "ignoring", 10*time.Second)
	start := time.Now()
	if err := d.StopContainer(context.Background(), id, StopTimeout(cd, 0)); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 6*time.Second {
		t.Errorf("stop took %s", el)
	}
	info := waitExited(t, d, id, 5*time.Second)
	if info.ExitCode != 137 {
		t.Errorf("exit code = %d, want 137 (SIGKILL)", info.ExitCode)
	}
}

func TestExitCodeAndEnvironment(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	cd := ecsapi.ContainerDefinition{Name: ptr("job"), Command: steps("env", "exit:1"),
		Environment: []ecsapi.KeyValuePair{{Name: ptr("A"), Value: ptr("1")}}}
	id := runContainer(t, d, testTask(t), cd, Options{Env: map[string]string{"B": "2"}}, true)
	info := waitExited(t, d, id, 10*time.Second)
	if info.ExitCode != 1 || info.Status != "exited" || info.OOMKilled {
		t.Errorf("exit %d status %s oom %v, want 1 exited false", info.ExitCode, info.Status, info.OOMKilled)
	}
}

func TestOOMKillDetected(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	ctx := context.Background()
	task := testTask(t)
	evs, errc := d.Events(ctx, EventOptions{Since: time.Now().Add(-time.Second), Labels: map[string]string{LabelTaskARN: task.TaskARN},
		Actions: []string{EventOOM, EventDie}})
	cd := ecsapi.ContainerDefinition{Name: ptr("hog"), Command: steps("alloc:256", "sleep:1h"), Memory: ptr(int32(16)),
		LinuxParameters: &ecsapi.LinuxParameters{MaxSwap: ptr(int32(0))}}
	id := runContainer(t, d, task, cd, Options{}, true)
	info := waitExited(t, d, id, 20*time.Second)
	if !info.OOMKilled || info.ExitCode != 137 {
		t.Errorf("oom %v exit %d, want OOMKilled and 137", info.OOMKilled, info.ExitCode)
	}
	waitEvent(t, evs, errc, 10*time.Second, func(e Event) bool { return e.ContainerID == id && e.Action == EventOOM })
}

func TestHealthTransitions(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	ctx := context.Background()
	task := testTask(t)
	evs, errc := d.Events(ctx, EventOptions{Since: time.Now().Add(-time.Second), Labels: map[string]string{LabelTaskARN: task.TaskARN}})
	cd := ecsapi.ContainerDefinition{
		Name: ptr("app"),
		// Healthy for 6 s, and a 3 s check timeout: on a loaded machine (CI
		// compiling every package beside it) a docker exec may take over a
		// second, which Docker counts as a failed check.
		Command: steps("sleep:1500ms", "touch:/tmp/ok", "sleep:6s", "rm:/tmp/ok", "sleep:1h"),
		HealthCheck: &ecsapi.HealthCheck{Command: []string{"CMD", "/tool", "check:/tmp/ok"},
			Interval: ptr(int32(1)), Timeout: ptr(int32(3)), Retries: ptr(int32(1))},
	}
	id := runContainer(t, d, task, cd, Options{}, true)
	info, err := d.InspectContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Health != HealthStarting {
		t.Errorf("health right after start = %q, want starting", info.Health)
	}
	isHealth := func(h HealthStatus) func(Event) bool {
		return func(e Event) bool { return e.ContainerID == id && e.Action == EventHealthStatus && e.Health == h }
	}
	waitEvent(t, evs, errc, 15*time.Second, isHealth(HealthHealthy))
	waitEvent(t, evs, errc, 15*time.Second, isHealth(HealthUnhealthy))
	info, err = d.InspectContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Health != HealthUnhealthy || !strings.Contains(info.HealthOutput, "missing") {
		t.Errorf("health = %q output %q, want unhealthy with the check's output", info.Health, info.HealthOutput)
	}
}

func TestReattachByLabels(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	task := testTask(t)
	id := runContainer(t, d, task, ecsapi.ContainerDefinition{Name: ptr("keep"), Command: steps("sleep:1h")}, Options{}, true)
	_ = runContainer(t, d, task, ecsapi.ContainerDefinition{Name: ptr("created"), Command: steps("sleep:1h")}, Options{}, false)

	// A new driver, as after an agent restart.
	d2, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	ctx := context.Background()
	running, err := d2.ListContainers(ctx, ListOptions{Labels: map[string]string{LabelInstance: task.Instance}})
	if err != nil {
		t.Fatal(err)
	}
	if len(running) != 1 || running[0].ID != id || running[0].Labels[LabelContainerName] != "keep" || running[0].State != "running" {
		t.Errorf("running = %+v, want the one running container", running)
	}
	all, err := d2.ListContainers(ctx, ListOptions{All: true, Labels: map[string]string{LabelTaskARN: task.TaskARN, LabelManaged: ""}})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Errorf("all = %d containers, want 2", len(all))
	}
	if running[0].Name != DockerName(task, "keep") {
		t.Errorf("name = %q, want %q", running[0].Name, DockerName(task, "keep"))
	}
	// The same name again: AlreadyExists.
	cfg, host, _, _ := ContainerConfig(task, ecsapi.ContainerDefinition{Name: ptr("keep"), Image: ptr(toolImage)}, Options{})
	if _, err := d2.CreateContainer(ctx, DockerName(task, "keep"), cfg, host, nil); !errs.Is(err, errs.AlreadyExists) {
		t.Errorf("create with a taken name: err = %v, want AlreadyExists", err)
	}
	st, err := d2.ContainerStats(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Raw) == 0 || st.MemoryStats.Usage == 0 {
		t.Errorf("stats: raw %d bytes, memory usage %d", len(st.Raw), st.MemoryStats.Usage)
	}
}

func TestVolumesLinksAndNetworks(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	ctx := context.Background()
	task := testTask(t)
	task.Volumes = []ecsapi.Volume{{Name: ptr("scratch")}}
	specs, err := TaskVolumes(task, Options{})
	if err != nil || len(specs) != 1 {
		t.Fatalf("TaskVolumes = %v, %v", specs, err)
	}
	vol, err := d.CreateVolume(ctx, specs[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.RemoveVolume(context.Background(), vol.Name, true) })
	if vol.Labels[LabelTaskARN] != task.TaskARN {
		t.Errorf("volume labels = %v", vol.Labels)
	}
	writer := runContainer(t, d, task, ecsapi.ContainerDefinition{Name: ptr("writer"), Command: steps("write:/data/x:hello", "sleep:1h"),
		MountPoints: []ecsapi.MountPoint{{SourceVolume: ptr("scratch"), ContainerPath: ptr("/data")}}}, Options{}, true)
	reader := runContainer(t, d, task, ecsapi.ContainerDefinition{Name: ptr("reader"), Command: steps("sleep:1s", "check:/data/x"),
		VolumesFrom: []ecsapi.VolumeFrom{{SourceContainer: ptr("writer"), ReadOnly: ptr(true)}}, Links: []string{"writer:w"}},
		Options{Containers: map[string]string{"writer": writer}}, true)
	if info := waitExited(t, d, reader, 10*time.Second); info.ExitCode != 0 {
		t.Errorf("reader exit code = %d, want 0 (file written through the volume)", info.ExitCode)
	}

	name := "berth-test-" + randHex(4)
	nid, err := d.CreateNetwork(ctx, name, NetworkOptions{Labels: map[string]string{LabelManaged: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.RemoveNetwork(context.Background(), nid) })
	if _, err := d.CreateNetwork(ctx, name, NetworkOptions{}); !errs.Is(err, errs.AlreadyExists) {
		t.Errorf("second CreateNetwork: err = %v, want AlreadyExists", err)
	}
	if err := d.ConnectNetwork(ctx, nid, writer, []string{"writer"}); err != nil {
		t.Fatal(err)
	}
	info, err := d.InspectContainer(ctx, writer)
	if err != nil {
		t.Fatal(err)
	}
	if ep, ok := info.Networks[name]; !ok || ep.IPAddress == "" {
		t.Errorf("networks = %+v, want an address on %s", info.Networks, name)
	}
	if err := d.DisconnectNetwork(ctx, nid, writer, false); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveNetwork(ctx, nid); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveNetwork(ctx, nid); !errs.Is(err, errs.NotFound) {
		t.Errorf("second RemoveNetwork: err = %v, want NotFound", err)
	}
}

func TestJoinNetworkNamespace(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	ctx := context.Background()
	task := testTask(t)
	task.NetworkMode = ecsapi.NetworkModeAwsvpc
	// awsvpc without a network container is refused by the translation.
	if _, _, _, err := ContainerConfig(task, ecsapi.ContainerDefinition{Name: ptr("app"), Image: ptr(toolImage)}, Options{}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("awsvpc without network container: err = %v", err)
	}
	// The "pause" container owns the network namespace and the task's ports.
	pauseTask := task
	pauseTask.NetworkMode = ecsapi.NetworkModeBridge
	pause := runContainer(t, d, pauseTask, ecsapi.ContainerDefinition{Name: ptr("pause"), Command: steps("sleep:1h"),
		PortMappings: []ecsapi.PortMapping{{ContainerPort: ptr(int32(9090))}}}, Options{}, true)
	app := runContainer(t, d, task, ecsapi.ContainerDefinition{Name: ptr("app"), Command: steps("serve:9090", "sleep:1h")},
		Options{NetworkContainer: pause}, true)
	info, err := d.InspectContainer(ctx, pause)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Ports) == 0 {
		t.Fatalf("pause ports = %+v", info.Ports)
	}
	if body := httpGetRetry(t, fmt.Sprintf("http://127.0.0.1:%d/", info.Ports[0].HostPort)); strings.TrimSpace(body) != "ok" {
		t.Errorf("GET through the pause container's port = %q", body)
	}
	appInfo, err := d.InspectContainer(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if appInfo.NetworkMode != "container:"+pause {
		t.Errorf("app network mode = %q", appInfo.NetworkMode)
	}
}

// waitOutput reads the container's output until a line holds want.
func waitOutput(t *testing.T, d *Driver, id, want string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	rc, err := d.ContainerLogs(ctx, id, LogsOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(&untilReader{r: rc, want: []byte(want)}, 1<<20))
	if !bytes.Contains(b, []byte(want)) {
		t.Fatalf("container output has no %q within %s: %q", want, within, b)
	}
}

// untilReader reads r until what was read holds want, then reports EOF.
type untilReader struct {
	r    io.Reader
	want []byte
	seen []byte
}

func (u *untilReader) Read(p []byte) (int, error) {
	if bytes.Contains(u.seen, u.want) {
		return 0, io.EOF
	}
	n, err := u.r.Read(p)
	u.seen = append(u.seen, p[:n]...)
	return n, err
}
