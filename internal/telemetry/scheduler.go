package telemetry

import (
	"strings"
	"time"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
)

// ServicePass implements servicectl.SchedulerObserver.
func (m *Metrics) ServicePass(took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.schedPasses.WithLabelValues(result).Inc()
	m.schedPassDuration.Observe(took.Seconds())
}

// TasksPlaced implements servicectl.SchedulerObserver.
func (m *Metrics) TasksPlaced(n int) { m.schedTasksPlaced.Add(float64(n)) }

// PlacementFailed implements servicectl.SchedulerObserver.
func (m *Metrics) PlacementFailed(reason string) {
	m.schedPlaceFailed.WithLabelValues(reasonLabel(reason)).Inc()
}

// reasonLabel maps placement's failure reasons (ECS's wording, some of them
// sentences) to short label values; anything else is "other", so the label
// set stays bounded.
func reasonLabel(reason string) string {
	switch reason {
	case placement.ReasonAgent, placement.ReasonAttribute, placement.ReasonCPU,
		placement.ReasonMemory, placement.ReasonPorts:
		return reason
	case placement.ReasonDistinctInstance:
		return "DistinctInstance"
	case placement.ReasonMemberOf:
		return "MemberOf"
	case placement.ReasonNoInstances:
		return "NoInstances"
	}
	return "other"
}

// StreamOpened implements agentgw.Observer.
func (m *Metrics) StreamOpened() {
	m.agentStreams.Inc()
	m.agentSessions.Inc()
}

// StreamClosed implements agentgw.Observer.
func (m *Metrics) StreamClosed() { m.agentStreams.Dec() }

// ReportReceived implements agentgw.Observer.
func (m *Metrics) ReportReceived(err error) {
	m.agentReports.WithLabelValues(resultLabel(err)).Inc()
}

// resultLabel is "ok", or the error's kind in snake case ("not_found").
func resultLabel(err error) string {
	if err == nil {
		return "ok"
	}
	return kindLabel(errs.KindOf(err))
}

func kindLabel(k errs.Kind) string { return strings.ReplaceAll(k.String(), " ", "_") }
