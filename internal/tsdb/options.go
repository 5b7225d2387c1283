package tsdb

import (
	"log/slog"
	"time"
)

// Defaults of Options.
const (
	DefaultRetention        = 15 * 24 * time.Hour
	DefaultMaxSeries        = 50_000
	DefaultBlockDuration    = 2 * time.Hour
	DefaultFlushInterval    = 10 * time.Minute
	DefaultMaxHeadSamples   = 2_000_000
	DefaultMaintainInterval = time.Minute
	// MaxFuture is how far past now a point's time may be (CloudWatch
	// itself accepts two hours); later points are refused so that no
	// block escapes retention.
	MaxFuture = 24 * time.Hour
	// MaxUnitsPerSeries bounds the distinct units one series may hold
	// (CloudWatch defines 27).
	MaxUnitsPerSeries = 32
)

// Options configure a DB. Zero values take the defaults above.
type Options struct {
	Log *slog.Logger
	Now func() time.Time

	// Retention is how long samples are kept (by sample time); whole blocks
	// older than it are deleted, and Append rejects older points.
	Retention time.Duration
	// MaxSeries bounds the number of series; Append answers an
	// errs.LimitExceeded error for a point of a new series past it.
	MaxSeries int
	// BlockDuration is the time span of one on-disk block (epoch-aligned).
	BlockDuration time.Duration
	// FlushInterval is how often the in-memory head is written to blocks
	// (and the WAL truncated); MaxHeadSamples forces an earlier flush.
	FlushInterval  time.Duration
	MaxHeadSamples int
	// MaintainInterval is how often the background loop flushes, compacts
	// and applies retention; negative disables the loop (tests call Flush,
	// Compact and ApplyRetention themselves).
	MaintainInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = DefaultMaxSeries
	}
	if o.BlockDuration <= 0 {
		o.BlockDuration = DefaultBlockDuration
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxHeadSamples <= 0 {
		o.MaxHeadSamples = DefaultMaxHeadSamples
	}
	if o.MaintainInterval == 0 {
		o.MaintainInterval = DefaultMaintainInterval
	}
	return o
}
