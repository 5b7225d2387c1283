package ecsmetrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// Sink stores published datapoints (the CloudWatch metrics store).
type Sink interface {
	PutData(ctx context.Context, data []Datum) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, data []Datum) error

// PutData calls f.
func (f SinkFunc) PutData(ctx context.Context, data []Datum) error { return f(ctx, data) }

// DefaultPeriod is ECS's: one datapoint per minute.
const DefaultPeriod = time.Minute

// MaxSamples bounds the samples held between two publications; beyond it
// the oldest are dropped (a flood of reports cannot grow the server).
const MaxSamples = 200_000

// Config configures a Publisher.
type Config struct {
	// Period between publications (default DefaultPeriod).
	Period time.Duration
	// Clusters reads the clusters' capacity at publication time.
	Clusters func(ctx context.Context) ([]Cluster, error)
	Sink     Sink
	Log      *slog.Logger
	Now      func() time.Time
}

// Publisher keeps the samples of the current period and publishes them.
type Publisher struct {
	cfg Config

	mu      sync.Mutex
	samples []Sample
	last    time.Time // end of the last published period
}

// New returns a publisher; Run drives it.
func New(cfg Config) *Publisher {
	if cfg.Period <= 0 {
		cfg.Period = DefaultPeriod
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Publisher{cfg: cfg, last: cfg.Now()}
}

// Period is the publication period.
func (p *Publisher) Period() time.Duration { return p.cfg.Period }

// Record keeps an agent's report; cluster is the name of the cluster the
// agent's instance belongs to (the only cluster it may speak for).
func (p *Publisher) Record(cluster string, rep agentapi.StatsReport) {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range rep.Tasks {
		if u.TaskArn == "" {
			continue
		}
		p.samples = append(p.samples, Sample{Cluster: cluster, Service: ServiceOf(u.Group), Family: u.Family, TaskARN: u.TaskArn,
			CPUReserved: float64(u.CPUReserved), MemoryReservedMiB: float64(u.MemoryReservedMiB), CPUUsed: u.CPUUsed,
			MemoryUsedMiB: u.MemoryUsedMiB, RxPerSec: u.NetworkRxBytesPerSec, TxPerSec: u.NetworkTxBytesPerSec, At: now,
			SC: u.ServiceConnect})
	}
	if over := len(p.samples) - MaxSamples; over > 0 {
		p.samples = append(p.samples[:0], p.samples[over:]...)
	}
}

// Run publishes every Period until ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Period)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		err := p.Publish(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			p.cfg.Log.Warn("ECS metrics not published", "err", err)
		case err == nil && failing:
			failing = false
			p.cfg.Log.Info("ECS metrics published again")
		}
	}
}

// Publish publishes the period that ends now and forgets its samples.
func (p *Publisher) Publish(ctx context.Context) error {
	end := p.cfg.Now()
	p.mu.Lock()
	period := end.Sub(p.last)
	p.last = end
	var batch, keep []Sample
	for _, s := range p.samples {
		if s.At.After(end) {
			keep = append(keep, s)
		} else {
			batch = append(batch, s)
		}
	}
	p.samples = keep
	p.mu.Unlock()
	if period <= 0 {
		return nil
	}
	var clusters []Cluster
	if p.cfg.Clusters != nil {
		var err error
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		clusters, err = p.cfg.Clusters(cctx)
		cancel()
		if err != nil {
			return err
		}
	}
	data := Compute(end, period, batch, clusters)
	if len(data) == 0 || p.cfg.Sink == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return p.cfg.Sink.PutData(sctx, data)
}
