package bench

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/taskrun"
)

// startSteps is a slog.Handler that keeps the task runners' start step
// timings (taskrun.StartStepsMessage records) and passes every record its
// inner handler wants on to it.
type startSteps struct {
	inner slog.Handler
	attrs []slog.Attr
	sink  *stepSink
}

type stepSink struct {
	mu    sync.Mutex
	tasks map[string]taskSteps // by task ARN
}

// taskSteps is one task's start as its runner timed it.
type taskSteps struct {
	running time.Time // when the runner had it RUNNING
	order   []string
	steps   map[string]time.Duration
}

func newStartSteps(inner slog.Handler) *startSteps {
	return &startSteps{inner: inner, sink: &stepSink{tasks: map[string]taskSteps{}}}
}

func (h *startSteps) Enabled(context.Context, slog.Level) bool { return true }

func (h *startSteps) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == taskrun.StartStepsMessage {
		ts := taskSteps{running: r.Time, steps: map[string]time.Duration{}}
		arn := ""
		for _, a := range h.attrs {
			if a.Key == "task" {
				arn = a.Value.String()
			}
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Value.Kind() == slog.KindDuration {
				ts.order = append(ts.order, a.Key)
				ts.steps[a.Key] += a.Value.Duration()
			}
			return true
		})
		h.sink.mu.Lock()
		h.sink.tasks[arn] = ts
		h.sink.mu.Unlock()
	}
	if h.inner.Enabled(ctx, r.Level) {
		return h.inner.Handle(ctx, r)
	}
	return nil
}

func (h *startSteps) WithAttrs(as []slog.Attr) slog.Handler {
	return &startSteps{inner: h.inner.WithAttrs(as), attrs: append(slices.Clone(h.attrs), as...), sink: h.sink}
}

func (h *startSteps) WithGroup(name string) slog.Handler {
	return &startSteps{inner: h.inner.WithGroup(name), attrs: h.attrs, sink: h.sink}
}

func (h *startSteps) get(arn string) (taskSteps, bool) {
	h.sink.mu.Lock()
	defer h.sink.mu.Unlock()
	ts, ok := h.sink.tasks[arn]
	return ts, ok
}

// StepTime is the median of one step of a task's start over the samples
// that had it.
type StepTime struct {
	Step string
	P50  time.Duration
	N    int
}

// medians orders steps by first appearance and takes each one's median.
func medians(samples []map[string]time.Duration, orders [][]string) []StepTime {
	var order []string
	for _, o := range orders {
		for _, s := range o {
			if !slices.Contains(order, s) {
				order = append(order, s)
			}
		}
	}
	out := make([]StepTime, 0, len(order))
	for _, s := range order {
		var ds []time.Duration
		for _, m := range samples {
			if d, ok := m[s]; ok {
				ds = append(ds, d)
			}
		}
		out = append(out, StepTime{Step: s, P50: store.Percentile(ds, 50), N: len(ds)})
	}
	return out
}
