package berthtest

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Scale stretches a test's deadline on a wait for Docker, a process or a
// controller by Slowdown: the time a saturated machine needs, never a
// shorter wait. (Deadlines only bound waits on conditions; timings are
// never asserted.)
func Scale(d time.Duration) time.Duration { return time.Duration(float64(d) * Slowdown()) }

// Slowdown is BERTH_TEST_SLOWDOWN when set (a factor, e.g. 2.5), else the
// machine's load: the 1-minute load average per CPU, between 1 and 4,
// read at each call (a CI runner with several Docker-heavy tests in
// parallel on 2 cores has its dockerd answer in tens of seconds).
func Slowdown() float64 {
	if v, err := strconv.ParseFloat(os.Getenv("BERTH_TEST_SLOWDOWN"), 64); err == nil && v > 0 {
		return v
	}
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 1
	}
	load, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 1
	}
	return min(max(load/float64(runtime.NumCPU()), 1), 4)
}
