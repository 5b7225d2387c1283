package taskstats

import (
	"encoding/json"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/errs"
)

// CPUUnitsPerCore is ECS's CPU unit: 1024 per core.
const CPUUnitsPerCore = 1024

// CPUUnits returns the CPU units a container used between two samples:
// its CPU time over the host's, times the host's cores, times 1024 (the
// arithmetic of `docker stats`, in ECS units). ok is false when the
// samples do not allow it (no earlier sample, counters reset).
func CPUUnits(pre, cur container.StatsResponse) (units float64, ok bool) {
	if pre.Read.IsZero() || !cur.Read.After(pre.Read) || cur.CPUStats.CPUUsage.TotalUsage < pre.CPUStats.CPUUsage.TotalUsage {
		return 0, false
	}
	used := float64(cur.CPUStats.CPUUsage.TotalUsage - pre.CPUStats.CPUUsage.TotalUsage)
	cores := float64(cur.CPUStats.OnlineCPUs)
	if cores == 0 {
		cores = float64(len(cur.CPUStats.CPUUsage.PercpuUsage))
	}
	if sys := cur.CPUStats.SystemUsage; sys > pre.CPUStats.SystemUsage && pre.CPUStats.SystemUsage > 0 && cores > 0 {
		return used / float64(sys-pre.CPUStats.SystemUsage) * cores * CPUUnitsPerCore, true
	}
	// No host counter: CPU time over wall time.
	return used / float64(cur.Read.Sub(pre.Read).Nanoseconds()) * CPUUnitsPerCore, true
}

// MemoryUsed returns a container's memory use in bytes without the
// inactive page cache, as `docker stats` shows it (cgroup v2:
// inactive_file; v1: total_inactive_file).
func MemoryUsed(m container.MemoryStats) uint64 {
	cache, ok := m.Stats["inactive_file"]
	if !ok {
		cache = m.Stats["total_inactive_file"]
	}
	if cache > m.Usage {
		return 0
	}
	return m.Usage - cache
}

// network sums a sample's network counters.
func network(s container.StatsResponse) (rx, tx uint64) {
	for _, n := range s.Networks {
		rx += n.RxBytes
		tx += n.TxBytes
	}
	return rx, tx
}

// rates are the network rates between two samples, bytes per second.
func rates(pre, cur container.StatsResponse) (rx, tx float64, ok bool) {
	if pre.Read.IsZero() || !cur.Read.After(pre.Read) {
		return 0, 0, false
	}
	sec := cur.Read.Sub(pre.Read).Seconds()
	r0, t0 := network(pre)
	r1, t1 := network(cur)
	if r1 < r0 || t1 < t0 {
		return 0, 0, false
	}
	return float64(r1-r0) / sec, float64(t1-t0) / sec, true
}

// Document is the stats document the task metadata endpoint serves for a
// container: Docker's latest sample, its precpu_stats and preread taken
// from the previous sample (pre may be nil), and ECS's
// network_rate_stats when two samples allow it.
func Document(pre, cur *sample) (json.RawMessage, error) {
	if cur == nil {
		return json.RawMessage("null"), nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(cur.raw, &doc); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "decode a stats sample")
	}
	if pre != nil {
		var p map[string]json.RawMessage
		if err := json.Unmarshal(pre.raw, &p); err == nil && p["cpu_stats"] != nil {
			doc["precpu_stats"] = p["cpu_stats"]
			doc["preread"], _ = json.Marshal(pre.st.Read.Format(time.RFC3339Nano))
		}
		if rx, tx, ok := rates(pre.st, cur.st); ok {
			doc["network_rate_stats"], _ = json.Marshal(map[string]float64{"rx_bytes_per_sec": rx, "tx_bytes_per_sec": tx})
		}
	}
	return json.Marshal(doc)
}

// TaskUsageOf sums the usage of a task's containers (identity fields are
// left to the caller). CPUUsed is set only when every container has two
// samples.
func TaskUsageOf(ss []series) agentapi.TaskUsage {
	var u agentapi.TaskUsage
	var cpu float64
	cpuOK := len(ss) > 0
	for _, se := range ss {
		if se.cur == nil {
			cpuOK = false
			continue
		}
		if se.cur.st.Read.After(u.At) {
			u.At = se.cur.st.Read
		}
		u.MemoryUsedMiB += float64(MemoryUsed(se.cur.st.MemoryStats)) / (1 << 20)
		rx, tx := network(se.cur.st)
		u.NetworkRxBytes += rx
		u.NetworkTxBytes += tx
		if se.pre == nil {
			cpuOK = false
			continue
		}
		if c, ok := CPUUnits(se.pre.st, se.cur.st); ok {
			cpu += c
		} else {
			cpuOK = false
		}
		if rr, tr, ok := rates(se.pre.st, se.cur.st); ok {
			u.NetworkRxBytesPerSec += rr
			u.NetworkTxBytesPerSec += tr
		}
	}
	if cpuOK {
		u.CPUUsed = &cpu
	}
	return u
}
