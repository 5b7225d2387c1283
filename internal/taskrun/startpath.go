package taskrun

import (
	"context"
	"log/slog"
	"time"

	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/errs"
)

// The start path of a task with a network namespace container (awsvpc,
// Fargate, bridge with Service Connect) overlaps the pause container's
// start with the creation of the task's containers: Docker needs the
// namespace container to exist when a container joining it
// (container:<id>) is created, and to run only when that container starts
// (checked on Docker 20.10). So provision creates the pause container and
// starts it (and inspects it) on a goroutine that touches no runner
// state; the runner creates the first container meanwhile and joins the
// pause start before it starts any container (joinPause). A failed pause
// start fails the task with the same reason as before the overlap, and
// the containers created meanwhile are removed again, so the task reports
// what it reported when the start was serial.

// pauseResult is what the pause container's start goroutine hands back.
type pauseResult struct {
	info dockerdriver.ContainerInfo
	err  error
}

// startPauseAsync starts the pause container r.pause and inspects it on a
// goroutine; joinPause collects the answer.
func (r *runner) startPauseAsync(ctx context.Context) {
	ch := make(chan pauseResult, 1)
	r.pauseUp = ch
	id := r.pause.id
	go func() {
		release, err := r.rt.startSlot(ctx)
		if err != nil {
			ch <- pauseResult{err: err}
			return
		}
		err = r.rt.startPause(ctx, id)
		release()
		if err != nil {
			ch <- pauseResult{err: err}
			return
		}
		info, err := r.rt.d.InspectContainer(ctx, id)
		ch <- pauseResult{info: info, err: err}
	}()
}

// startPause starts a task's network namespace container (a test may make
// it fail or wait).
func (rt *Runtime) startPause(ctx context.Context, id string) error {
	if rt.pauseStartHook != nil {
		if err := rt.pauseStartHook(ctx, id); err != nil {
			return err
		}
	}
	return rt.d.StartContainer(ctx, id)
}

// joinPause waits for the pause container's start begun by provision, if
// one is under way, and finishes what provision did after it: the task's
// address (the attachment) and Service Connect's redirects. When the
// start failed, the task fails with that reason and the containers
// created meanwhile are removed. It returns an error only when ctx ended
// (the runner retries nothing then).
func (r *runner) joinPause(ctx context.Context) error {
	if r.pauseUp == nil {
		return nil
	}
	var res pauseResult
	select {
	case res = <-r.pauseUp:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.pauseUp = nil
	r.clock.mark("pause-start-wait")
	err := res.err
	if err == nil {
		r.pause.known = CRunning
		r.applyPauseInfo(res.info)
		err = r.scRedirect(ctx)
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	r.failure = errs.MessageOf(err)
	for _, c := range r.cs {
		if c.id == "" || c.known != CCreated {
			continue
		}
		if rerr := r.rt.d.RemoveContainer(ctx, c.id, dockerdriver.RemoveOptions{Force: true}); rerr != nil && !errs.Is(rerr, errs.NotFound) {
			r.log.Warn("remove a container of a task whose network namespace did not start", "container", c.name, "err", rerr)
		}
		c.id, c.known, c.createdAt, c.info = "", CPulled, time.Time{}, dockerdriver.ContainerInfo{}
	}
	return nil
}

// startAdoptedPause starts a re-attached task's pause container that was
// created but never started (the previous agent stopped between the two),
// so the task's containers can start in its namespace.
func (r *runner) startAdoptedPause(ctx context.Context) {
	if r.pause == nil || r.pause.known != CCreated || r.pauseUp != nil || r.pauseChecked {
		return
	}
	info, err := r.rt.d.InspectContainer(ctx, r.pause.id)
	if err != nil {
		return // asked again on the next pass
	}
	r.pauseChecked = true
	switch {
	case info.Running:
		r.pause.known = CRunning
	case info.Status == "created":
		r.startPauseAsync(ctx)
	} // exited or dead: the containers' own state tells
}

// stepClock records how long each step of a task's start took; the runner
// logs the steps at debug level when the task is RUNNING ("task start
// steps"), and `berth bench fargate` reports their medians.
type stepClock struct {
	last  time.Time
	steps []slog.Attr
	done  bool
}

// mark records the time since the previous mark as step.
func (c *stepClock) mark(step string) {
	now := time.Now()
	if !c.last.IsZero() {
		c.add(step, now.Sub(c.last))
	}
	c.last = now
}

func (c *stepClock) add(step string, d time.Duration) {
	if !c.done {
		c.steps = append(c.steps, slog.Duration(step, d))
	}
}

// StartStepsMessage is the message of the debug record a runner logs when
// its task is RUNNING: one duration attribute per step of its start, in
// order ("assignment" is from the task's creation in the control plane
// to the runner receiving it).
const StartStepsMessage = "task start steps"

func (r *runner) logStartSteps(ctx context.Context) {
	if r.clock.done {
		return
	}
	r.clock.done = true
	if len(r.clock.steps) > 0 {
		r.log.LogAttrs(ctx, slog.LevelDebug, StartStepsMessage, r.clock.steps...)
	}
}
