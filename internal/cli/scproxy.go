package cli

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/berthdev/berth/internal/scproxy"
)

// runSCProxy is `berth scproxy`, internal: the Service Connect proxy as it
// runs in a task's proxy container, configured by the agent over the relay
// socket (docs/service-connect.md, "Data plane").
func runSCProxy(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("scproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	relay := fs.String("relay", envOr("BERTH_SCPROXY_RELAY", "/berth-relay/"+scproxy.RelaySocket), "the agent's relay socket; env BERTH_SCPROXY_RELAY")
	drain := fs.Duration("drain", 20*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	level := fs.String("log-level", envOr("BERTH_SCPROXY_LOG_LEVEL", "info"), "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return UsageError{err.Error()}
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return UsageError{"scproxy: bad --log-level: " + err.Error()}
	}
	// A proxy per task: keep the heap small (RSS goal 20 MB).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	log.Info("service connect proxy starting", "relay", *relay, "version", Version)
	var trim func()
	if os.Getenv("BERTH_SCPROXY_KEEP_PAGES") == "" {
		// The whole berth binary's initialisation ran; the proxy uses little of it (RSS goal).
		// Again after each configuration and when idle: applying one, and a burst of traffic,
		// fault pages back in (64 KiB of the executable per fault), most of them used once.
		trim = func() {
			runtime.GC() // twice: buffers in sync.Pools survive one collection
			debug.FreeOSMemory()
			released := scproxy.ReleaseStartupPages()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			log.Debug("trimmed", "heap_inuse", ms.HeapInuse, "heap_idle", ms.HeapIdle, "heap_released", ms.HeapReleased,
				"stack_inuse", ms.StackInuse, "sys", ms.Sys, "goroutines", runtime.NumGoroutine(), "exe_pages_released", released)
		}
		trim()
	}
	return scproxy.Run(ctx, *relay, *drain, log, trim)
}
