package taskrun

import (
	"context"
	"strings"

	mobycontainer "github.com/moby/moby/api/types/container"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/awslogs"
	"github.com/berthdev/berth/internal/errs"
)

// The awslogs log driver, done by the agent (docs/awslogs.md): the
// container writes to Docker's json-file driver; before it starts the
// control plane prepares its log stream; once it runs a shipper follows
// its output into the stream; a stopping task waits a little for the last
// lines.

// awslogsOf returns a container's awslogs options, if it logs with awslogs.
func awslogsOf(cd ecsapi.ContainerDefinition) (awslogs.Options, bool, error) {
	lc := cd.LogConfiguration
	if lc == nil || string(deref(lc.LogDriver)) != awslogs.Driver {
		return awslogs.Options{}, false, nil
	}
	o, err := awslogs.ParseOptions(lc.Options)
	return o, true, err
}

// dockerLogConfig is the translation's hook for the log drivers it does
// not map itself.
func (r *runner) dockerLogConfig(lc ecsapi.LogConfiguration) (mobycontainer.LogConfig, error) {
	if string(deref(lc.LogDriver)) != awslogs.Driver || r.rt.cfg.Logs == nil {
		return mobycontainer.LogConfig{}, errs.E(errs.Invalid, "log driver %q is not supported yet", string(deref(lc.LogDriver)))
	}
	if len(lc.SecretOptions) > 0 {
		return mobycontainer.LogConfig{}, errs.E(errs.Invalid, "log secret options are not supported yet")
	}
	o, err := awslogs.ParseOptions(lc.Options)
	if err != nil {
		return mobycontainer.LogConfig{}, err
	}
	return mobycontainer.LogConfig{Type: "json-file", Config: o.DockerLogOptions()}, nil
}

func (r *runner) taskID() string {
	if r.a.TaskID != "" {
		return r.a.TaskID
	}
	return r.arn[strings.LastIndex(r.arn, "/")+1:]
}

func (r *runner) logTarget(c *ctr, o awslogs.Options) awslogs.Target {
	return awslogs.Target{TaskARN: r.arn, Container: c.name, DockerID: c.id, Group: o.Group,
		Stream: o.StreamName(c.name, r.taskID(), c.id)}
}

// prepareLogs readies an awslogs container's stream before its start. It
// returns false when the container must not start: it was abandoned with
// ECS's reason (a missing group), or the control plane is away (retried
// on the next pass, err set).
func (r *runner) prepareLogs(ctx context.Context, c *ctr) (bool, error) {
	o, ok, err := awslogsOf(c.def)
	if !ok || r.rt.cfg.Logs == nil || c.logsReady {
		return true, nil
	}
	if err != nil {
		r.abandon(c, "CannotStartContainerError: "+errs.MessageOf(err))
		return false, nil
	}
	if err := r.rt.cfg.Logs.Prepare(ctx, r.logTarget(c, o)); err != nil {
		if ctx.Err() != nil || errs.Is(err, errs.Unavailable) || errs.Is(err, errs.Internal) {
			return false, err
		}
		r.log.Warn("container log stream refused", "container", c.name, "err", err)
		r.abandon(c, errs.MessageOf(err))
		return false, nil
	}
	c.logsReady = true
	return true, nil
}

// shipLogs starts (or resumes) shipping an awslogs container's output.
func (r *runner) shipLogs(c *ctr) {
	o, ok, err := awslogsOf(c.def)
	if !ok || err != nil || r.rt.cfg.Logs == nil || c.id == "" {
		return
	}
	r.rt.cfg.Logs.Ship(r.logTarget(c, o), o)
}

// drainLogs waits (bounded) for the last output of the task's awslogs
// containers to be shipped.
func (r *runner) drainLogs() {
	if r.rt.cfg.Logs == nil || r.logsDrained {
		return
	}
	r.logsDrained = true
	var ids []string
	for _, c := range r.cs {
		if _, ok, _ := awslogsOf(c.def); ok && c.id != "" {
			ids = append(ids, c.id)
		}
	}
	if len(ids) > 0 && !r.rt.cfg.Logs.Wait(ids, r.rt.cfg.LogDrainTimeout) {
		r.log.Warn("task stopped before its containers' output was all shipped; shipping goes on", "waited", r.rt.cfg.LogDrainTimeout)
	}
}

// forgetLogs drops the checkpoints of removed containers.
func (r *runner) forgetLogs(c *ctr) {
	if _, ok, _ := awslogsOf(c.def); ok && r.rt.cfg.Logs != nil && c.id != "" {
		r.rt.cfg.Logs.Forget(c.id)
	}
}
