package ecs

import (
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/errs"
)

func TestApplyObservedMovesOnlyForward(t *testing.T) {
	now := time.Unix(1000, 0).UTC()
	later := now.Add(time.Minute)
	one := int32(1)
	t.Run("status advances and timestamps are set once", func(t *testing.T) {
		rec := taskRecord{LastStatus: "PROVISIONING", DesiredStatus: DesiredRunning}
		ch, dch := ApplyObserved(&rec, agentapi.TaskReport{KnownStatus: "RUNNING", StartedAt: &now}, now)
		if !ch || dch || rec.LastStatus != "RUNNING" || !rec.StartedAt.Equal(now) {
			t.Fatalf("%v %v %+v", ch, dch, rec)
		}
		ch, _ = ApplyObserved(&rec, agentapi.TaskReport{KnownStatus: "PENDING", StartedAt: &later}, now)
		if ch || rec.LastStatus != "RUNNING" || !rec.StartedAt.Equal(now) {
			t.Fatalf("stale report changed the task: %+v", rec)
		}
	})
	t.Run("containers merge by name and exit codes stick", func(t *testing.T) {
		rec := taskRecord{LastStatus: "RUNNING", DesiredStatus: DesiredRunning,
			Containers: []agentapi.ContainerReport{{Name: "a", KnownStatus: "RUNNING"}}}
		ApplyObserved(&rec, agentapi.TaskReport{KnownStatus: "RUNNING", Containers: []agentapi.ContainerReport{
			{Name: "a", KnownStatus: "STOPPED", ExitCode: &one, Reason: "boom"}, {Name: "b", KnownStatus: "PENDING"}}}, now)
		zero := int32(0)
		ApplyObserved(&rec, agentapi.TaskReport{KnownStatus: "RUNNING", Containers: []agentapi.ContainerReport{
			{Name: "a", KnownStatus: "RUNNING", ExitCode: &zero}}}, now)
		if len(rec.Containers) != 2 || rec.Containers[0].KnownStatus != "STOPPED" || *rec.Containers[0].ExitCode != 1 || rec.Containers[0].Reason != "boom" {
			t.Fatalf("%+v", rec.Containers)
		}
	})
	t.Run("an agent-side stop makes the task desired STOPPED once", func(t *testing.T) {
		rec := taskRecord{LastStatus: "RUNNING", DesiredStatus: DesiredRunning}
		ch, dch := ApplyObserved(&rec, agentapi.TaskReport{KnownStatus: "STOPPING", StopCode: "EssentialContainerExited",
			StoppedReason: "Essential container in task exited"}, now)
		if !ch || !dch || rec.DesiredStatus != DesiredStopped || rec.StopCode != "EssentialContainerExited" || rec.StoppingAt == nil {
			t.Fatalf("%+v", rec)
		}
		_, dch = ApplyObserved(&rec, agentapi.TaskReport{KnownStatus: "STOPPED", StopCode: "TaskFailedToStart"}, later)
		if dch || rec.StopCode != "EssentialContainerExited" || !rec.StoppingAt.Equal(now) {
			t.Fatalf("second stop code overwrote the first: %+v", rec)
		}
	})
	t.Run("a user stop keeps its stop code", func(t *testing.T) {
		rec := taskRecord{LastStatus: "RUNNING", DesiredStatus: DesiredStopped, StopCode: "UserInitiated", StoppingAt: &now}
		_, dch := ApplyObserved(&rec, agentapi.TaskReport{KnownStatus: "STOPPED", StopCode: "EssentialContainerExited"}, later)
		if dch || rec.StopCode != "UserInitiated" || rec.LastStatus != "STOPPED" {
			t.Fatalf("%+v", rec)
		}
	})
}

// TestTaskAtLeastWaitsForALaggingTask: the assignment's watch event may
// come before a serializable read sees the task created with it; the
// assignment is built once the task shows, and a task that never shows
// (collected) is an error after the waits.
func TestTaskAtLeastWaitsForALaggingTask(t *testing.T) {
	s, st := newTestService(t)
	ar := assignmentRecord{Cluster: "c1", TaskID: "lagging", DesiredStatus: DesiredRunning, Version: 1}
	go func() {
		time.Sleep(30 * time.Millisecond)
		putJSON(t, st, taskKey("c1", "lagging"), taskRecord{ID: "lagging", Cluster: "c1", DesiredStatus: DesiredRunning, Version: 1})
	}()
	got, err := s.taskAtLeast(t.Context(), ar, 1)
	if err != nil || got.ID != "lagging" {
		t.Fatalf("task %+v, err %v", got, err)
	}
	ar.TaskID = "gone"
	if _, err := s.taskAtLeast(t.Context(), ar, 1); !errs.Is(err, errs.NotFound) {
		t.Fatalf("a task that never shows: %v", err)
	}
}
