package taskgc

import (
	"testing"
	"time"

	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
)

type (
	serviceRecord  = ecsstate.ServiceRecord
	instanceRecord = ecsstate.InstanceRecord
	clusterRecord  = ecsstate.ClusterRecord
	taskRecord     = ecsstate.TaskRecord
)

const (
	InstanceActive   = ecsstate.InstanceActive
	InstanceDraining = ecsstate.InstanceDraining
	InstanceInactive = ecsstate.InstanceInactive
	DesiredRunning   = ecsstate.DesiredRunning
	DesiredStopped   = ecsstate.DesiredStopped
)

func TestPurgeExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { v := now.Add(-d); return &v }
	services := []struct {
		name string
		r    serviceRecord
		want bool
	}{
		{"inactive for longer than the retention", serviceRecord{Status: deploy.ServiceInactive, InactiveAt: ago(61 * time.Minute)}, true},
		{"inactive for exactly the retention", serviceRecord{Status: deploy.ServiceInactive, InactiveAt: ago(time.Hour)}, true},
		{"inactive recently", serviceRecord{Status: deploy.ServiceInactive, InactiveAt: ago(59 * time.Minute)}, false},
		{"inactive with no time (older record)", serviceRecord{Status: deploy.ServiceInactive}, false},
		{"draining", serviceRecord{Status: deploy.ServiceDraining, InactiveAt: ago(2 * time.Hour)}, false},
		{"active", serviceRecord{Status: deploy.ServiceActive}, false},
	}
	for _, c := range services {
		if got := serviceExpired(&c.r, now, time.Hour); got != c.want {
			t.Errorf("service %s: expired %v, want %v", c.name, got, c.want)
		}
	}
	instances := []struct {
		name     string
		r        instanceRecord
		hasTasks bool
		want     bool
	}{
		{"deregistered long ago", instanceRecord{Status: InstanceInactive, DeregisteredAt: ago(2 * time.Hour)}, false, true},
		{"deregistered long ago, a task left on it", instanceRecord{Status: InstanceInactive, DeregisteredAt: ago(2 * time.Hour)}, true, false},
		{"deregistered recently", instanceRecord{Status: InstanceInactive, DeregisteredAt: ago(time.Minute)}, false, false},
		{"deregistered, no time (older record)", instanceRecord{Status: InstanceInactive}, false, false},
		{"draining", instanceRecord{Status: InstanceDraining, DeregisteredAt: ago(2 * time.Hour)}, false, false},
		{"active", instanceRecord{Status: InstanceActive}, false, false},
	}
	for _, c := range instances {
		if got := instanceExpired(&c.r, c.hasTasks, now, time.Hour); got != c.want {
			t.Errorf("instance %s: expired %v, want %v", c.name, got, c.want)
		}
	}
	clusters := []struct {
		name  string
		c     clusterRecord
		inUse bool
		want  bool
	}{
		{"deleted long ago, empty", clusterRecord{Status: "INACTIVE", InactiveAt: ago(2 * time.Hour)}, false, true},
		{"deleted long ago, records left", clusterRecord{Status: "INACTIVE", InactiveAt: ago(2 * time.Hour)}, true, false},
		{"deleted recently", clusterRecord{Status: "INACTIVE", InactiveAt: ago(time.Minute)}, false, false},
		{"deleted, no time (older record)", clusterRecord{Status: "INACTIVE"}, false, false},
		{"active", clusterRecord{Status: "ACTIVE"}, false, false},
	}
	for _, c := range clusters {
		if got := clusterExpired(&c.c, c.inUse, now, time.Hour); got != c.want {
			t.Errorf("cluster %s: expired %v, want %v", c.name, got, c.want)
		}
	}
}

func TestTaskExpired(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { v := now.Add(-d); return &v }
	cases := []struct {
		name    string
		t       taskRecord
		gone    bool
		live    bool
		expired bool
	}{
		{"running", taskRecord{DesiredStatus: DesiredRunning, LastStatus: "RUNNING"}, false, true, false},
		{"stopping", taskRecord{DesiredStatus: DesiredStopped, LastStatus: "RUNNING", StoppingAt: ago(2 * time.Hour)}, false, true, false},
		{"stopped recently", taskRecord{DesiredStatus: DesiredStopped, LastStatus: "STOPPED", StoppedAt: ago(30 * time.Minute)}, false, false, false},
		{"stopped long ago", taskRecord{DesiredStatus: DesiredStopped, LastStatus: "STOPPED", StoppedAt: ago(61 * time.Minute)}, false, false, true},
		{"stopping on a gone instance", taskRecord{DesiredStatus: DesiredStopped, LastStatus: "PENDING", StoppingAt: ago(2 * time.Hour)}, true, true, true},
		{"running on a gone instance", taskRecord{DesiredStatus: DesiredRunning, LastStatus: "RUNNING"}, true, true, false},
	}
	for _, c := range cases {
		if got := taskExpired(&c.t, c.gone, now, time.Hour); got != c.expired {
			t.Errorf("%s: expired %v, want %v", c.name, got, c.expired)
		}
	}
}
