package ecs

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/errs"
)

// AgentLogDestination is where the control plane writes a container's
// output for the awslogs log driver, as the task's definition says.
type AgentLogDestination struct {
	Group       string
	CreateGroup bool
	// Stream is the stream ECS names (prefix/container/task id), or empty
	// when the definition has no awslogs-stream-prefix: then the stream is
	// the agent's (Docker's container id, or awslogs-stream).
	Stream string
}

// AgentLogDestination checks that an agent may write the output of a
// container of a task and returns where it goes: the task must be
// assigned to the agent's own instance (else Forbidden) and the container
// must log with awslogs in the task's definition (else Invalid). The
// group and whether to create it come from the definition, never from the
// agent.
func (s *Service) AgentLogDestination(ctx context.Context, cred AgentCredential, taskARN, container string) (AgentLogDestination, error) {
	cluster, id, err := s.parseTaskARN(taskARN)
	if err != nil {
		return AgentLogDestination{}, err
	}
	kv, err := s.st.Get(ctx, taskKey(cluster, id))
	if errs.Is(err, errs.NotFound) {
		return AgentLogDestination{}, errs.R(errs.Forbidden, "agent.not_yours", "Task %s is not assigned to this container instance.", taskARN)
	}
	if err != nil {
		return AgentLogDestination{}, err
	}
	var t taskRecord
	if err := json.Unmarshal(kv.Value, &t); err != nil {
		return AgentLogDestination{}, errs.Wrap(errs.Internal, err, "decode task")
	}
	if t.InstanceID != cred.InstanceID {
		return AgentLogDestination{}, errs.R(errs.Forbidden, "agent.not_yours", "Task %s is not assigned to this container instance.", taskARN)
	}
	td, err := s.tdCache.get(ctx, s, t.TaskDefinitionARN)
	if err != nil {
		return AgentLogDestination{}, err
	}
	for _, cd := range td.TaskDefinition.ContainerDefinitions {
		if deref(cd.Name) != container {
			continue
		}
		lc := cd.LogConfiguration
		if lc == nil || string(deref(lc.LogDriver)) != "awslogs" || lc.Options["awslogs-group"] == "" {
			return AgentLogDestination{}, errs.E(errs.Invalid, "container %s of task %s does not log with awslogs", container, taskARN)
		}
		d := AgentLogDestination{Group: lc.Options["awslogs-group"]}
		d.CreateGroup, _ = strconv.ParseBool(lc.Options["awslogs-create-group"])
		if p := lc.Options["awslogs-stream-prefix"]; p != "" {
			d.Stream = p + "/" + container + "/" + id
		}
		return d, nil
	}
	return AgentLogDestination{}, errs.E(errs.Invalid, "task %s has no container %s", taskARN, strings.TrimSpace(container))
}
