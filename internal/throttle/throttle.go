// Package throttle limits API request rates with token buckets, one per
// access key and operation class, using ECS's published defaults.
//
// A bucket holds at most Burst tokens and refills at Rate tokens per second;
// each request takes one. The decision (take) is a pure function of the
// bucket and the time; the Limiter only keeps buckets in a map.
package throttle

import (
	"strings"
	"sync"
	"time"
)

// Limit is one bucket's shape.
type Limit struct {
	Burst float64 // bucket size
	Rate  float64 // refill per second
}

// Class names a group of operations sharing one bucket per access key.
type Class string

// ECS's classes (AWS-WIRE.md) and Berth's defaults for the rest.
const (
	ClassECSTasks        Class = "ecs:tasks"            // RunTask, StartTask, StopTask: 100/40
	ClassECSRead         Class = "ecs:read"             // cluster-resource reads: 100/20
	ClassECSServiceWrite Class = "ecs:service-write"    // Create/Update/DeleteService: 50/5
	ClassECSRegisterTD   Class = "ecs:register-taskdef" // RegisterTaskDefinition: 20/1
	ClassECSAgent        Class = "ecs:agent"            // agent calls: 200/120
	ClassECSWrite        Class = "ecs:write"            // other ECS mutations: 50/20
	// CloudWatch's published quotas for its busiest operations.
	ClassCWPutMetricData Class = "monitoring:put-metric-data" // PutMetricData: 500/500
	ClassCWGetMetricData Class = "monitoring:get-metric-data" // GetMetricData: 50/50
	ClassCWGetStatistics Class = "monitoring:get-statistics"  // GetMetricStatistics: 400/400
	ClassDefaultRead     Class = "read"                       // other services' reads: 100/50
	ClassDefaultWrite    Class = "write"                      // other services' mutations: 50/20
)

// DefaultLimits are ECS's published buckets and Berth's defaults.
func DefaultLimits() map[Class]Limit {
	return map[Class]Limit{
		ClassECSTasks:        {Burst: 100, Rate: 40},
		ClassECSRead:         {Burst: 100, Rate: 20},
		ClassECSServiceWrite: {Burst: 50, Rate: 5},
		ClassECSRegisterTD:   {Burst: 20, Rate: 1},
		ClassECSAgent:        {Burst: 200, Rate: 120},
		ClassECSWrite:        {Burst: 50, Rate: 20},
		ClassCWPutMetricData: {Burst: 500, Rate: 500},
		ClassCWGetMetricData: {Burst: 50, Rate: 50},
		ClassCWGetStatistics: {Burst: 400, Rate: 400},
		ClassDefaultRead:     {Burst: 100, Rate: 50},
		ClassDefaultWrite:    {Burst: 50, Rate: 20},
	}
}

// ClassOf returns the class of an operation of a service (by signing name).
func ClassOf(service, op string, readOnly bool) Class {
	if service == "ecs" {
		switch op {
		case "RunTask", "StartTask", "StopTask":
			return ClassECSTasks
		case "CreateService", "UpdateService", "DeleteService":
			return ClassECSServiceWrite
		case "RegisterTaskDefinition":
			return ClassECSRegisterTD
		case "SubmitTaskStateChange", "SubmitContainerStateChange", "SubmitAttachmentStateChanges",
			"DiscoverPollEndpoint", "RegisterContainerInstance":
			return ClassECSAgent
		}
		if readOnly || strings.HasPrefix(op, "Describe") || strings.HasPrefix(op, "List") {
			return ClassECSRead
		}
		return ClassECSWrite
	}
	if service == "monitoring" {
		switch op {
		case "PutMetricData":
			return ClassCWPutMetricData
		case "GetMetricData":
			return ClassCWGetMetricData
		case "GetMetricStatistics":
			return ClassCWGetStatistics
		}
	}
	if readOnly {
		return ClassDefaultRead
	}
	return ClassDefaultWrite
}

type bucket struct {
	tokens float64
	last   time.Time
}

// take refills b for the time since its last use and takes one token.
// It returns the new bucket and whether the request may proceed.
func take(b bucket, l Limit, now time.Time) (bucket, bool) {
	if b.last.IsZero() {
		b = bucket{tokens: l.Burst, last: now}
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens += el * l.Rate
		if b.tokens > l.Burst {
			b.tokens = l.Burst
		}
		b.last = now
	}
	if b.tokens < 1 {
		return b, false
	}
	b.tokens--
	return b, true
}

// Limiter holds the buckets. The zero value is not usable; use New.
type Limiter struct {
	limits   map[Class]Limit
	disabled bool

	mu      sync.Mutex
	buckets map[string]bucket
}

// New returns a limiter with the given limits (missing classes fall back to
// DefaultLimits). A nil limiter, or one made with Disabled, allows all.
func New(limits map[Class]Limit) *Limiter {
	all := DefaultLimits()
	for c, l := range limits {
		all[c] = l
	}
	return &Limiter{limits: all, buckets: map[string]bucket{}}
}

// Disabled returns a limiter that allows every request.
func Disabled() *Limiter { return &Limiter{disabled: true} }

// Allow takes a token for (accessKey, class) at now.
func (l *Limiter) Allow(accessKey string, c Class, now time.Time) bool {
	if l == nil || l.disabled {
		return true
	}
	lim, ok := l.limits[c]
	if !ok {
		return true
	}
	key := accessKey + "\x00" + string(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := take(l.buckets[key], lim, now)
	l.buckets[key] = b
	return ok
}
