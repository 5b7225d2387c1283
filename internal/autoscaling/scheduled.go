package autoscaling

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	api "github.com/berthdev/berth/internal/api/applicationautoscalingapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/schedule"
	"github.com/berthdev/berth/internal/store"
)

// scheduledRecord is a scheduled action as stored.
type scheduledRecord struct {
	Def     api.PutScheduledActionRequest
	ARN     string
	Created time.Time
	// Last is the schedule's instant the action last fired for (or the
	// creation or update time): the next firing is the schedule's first
	// instant after it. Kept in the store, so firings missed while the
	// server was down are found after a restart.
	Last time.Time
}

func (r scheduledRecord) resource() string { return deref(r.Def.ResourceId) }
func (r scheduledRecord) name() string     { return deref(r.Def.ScheduledActionName) }

func scheduledNotFound(res, name string) error {
	return errs.R(errs.NotFound, reasonNotFound, "No scheduled action found for service namespace: ecs, resource ID: %s, scalable dimension: ecs:service:DesiredCount, scheduled action name: %s", res, name)
}

// parseSchedule parses an action's schedule in its time zone.
func parseSchedule(d api.PutScheduledActionRequest) (schedule.Schedule, error) {
	loc := time.UTC
	if tz := deref(d.Timezone); tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil || strings.HasPrefix(tz, "/") || tz == "Local" {
			return nil, invalid("Invalid time zone: %s", tz)
		}
		loc = l
	}
	sc, err := schedule.Parse(deref(d.Schedule), loc)
	if err != nil {
		var se *schedule.Error
		if errors.As(err, &se) {
			return nil, invalid("Invalid schedule expression %s: %s", se.Expr, se.Msg)
		}
		return nil, invalid("Invalid schedule expression %s", deref(d.Schedule))
	}
	return sc, nil
}

// Due answers which instant a scheduled action fires for now: the latest
// instant of sc after last and at or before now, within [start, end]
// (zero: unbounded). Firings missed in between are collapsed into that
// one: an action missed while the server was down runs once when it
// comes back. ok is false when nothing is due.
func Due(sc schedule.Schedule, last, start, end, now time.Time) (at time.Time, ok bool) {
	from := last
	if !start.IsZero() && start.After(from) {
		from = start.Add(-time.Nanosecond)
	}
	next := sc.Next(from)
	if next.IsZero() || next.After(now) || !end.IsZero() && next.After(end) {
		return time.Time{}, false
	}
	if r, isRate := sc.(*schedule.Rate); isRate && r.Period > 0 {
		k := now.Sub(next) / r.Period
		next = next.Add(k * r.Period)
		for !end.IsZero() && next.After(end) {
			next = next.Add(-r.Period)
		}
		return next, true
	}
	for range 100000 {
		n := sc.Next(next)
		if n.IsZero() || n.After(now) || !end.IsZero() && n.After(end) {
			break
		}
		next = n
	}
	return next, true
}

// PutScheduledAction creates or updates a scheduled action.
func (s *Service) PutScheduledAction(ctx context.Context, in *api.PutScheduledActionRequest) (*api.PutScheduledActionResponse, error) {
	res, name := deref(in.ResourceId), deref(in.ScheduledActionName)
	if err := checkTarget(in.ServiceNamespace, res, in.ScalableDimension); err != nil {
		return nil, err
	}
	if _, _, err := get[targetRecord](ctx, s.st, targetKey(res)); errs.Is(err, errs.NotFound) {
		return nil, targetNotFound(res)
	} else if err != nil {
		return nil, err
	}
	err := retry(func() error {
		old, rev, err := get[scheduledRecord](ctx, s.st, scheduledKey(res, name))
		if err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
		now := s.now()
		d := old.Def
		if rev == 0 {
			if in.Schedule == nil {
				return invalid("Schedule is required to create a scheduled action.")
			}
			old = scheduledRecord{Created: now,
				ARN: s.arns.Service("autoscaling", "scheduledAction:"+newUUID()+":resource/ecs/"+res+":scheduledActionName/"+name)}
			d = api.PutScheduledActionRequest{ResourceId: ptr(res), ScheduledActionName: ptr(name),
				ServiceNamespace: ptr(ecsNamespace), ScalableDimension: ptr(ecsDimension)}
		}
		if in.Schedule != nil {
			d.Schedule = in.Schedule
		}
		if in.Timezone != nil {
			d.Timezone = in.Timezone
		}
		if in.StartTime != nil {
			d.StartTime = in.StartTime
		}
		if in.EndTime != nil {
			d.EndTime = in.EndTime
		}
		if a := in.ScalableTargetAction; a != nil {
			if d.ScalableTargetAction == nil {
				d.ScalableTargetAction = &api.ScalableTargetAction{}
			}
			if a.MinCapacity != nil {
				d.ScalableTargetAction.MinCapacity = a.MinCapacity
			}
			if a.MaxCapacity != nil {
				d.ScalableTargetAction.MaxCapacity = a.MaxCapacity
			}
		}
		if a := d.ScalableTargetAction; a == nil || a.MinCapacity == nil && a.MaxCapacity == nil {
			return invalid("ScalableTargetAction must set MinCapacity, MaxCapacity or both.")
		} else if a.MinCapacity != nil && a.MaxCapacity != nil && *a.MinCapacity > *a.MaxCapacity {
			return invalid("Minimum capacity cannot be greater than maximum capacity")
		} else if deref(a.MinCapacity) < 0 || deref(a.MaxCapacity) < 0 {
			return invalid("Minimum and maximum capacity must not be negative.")
		}
		if d.StartTime != nil && d.EndTime != nil && !d.EndTime.After(d.StartTime.Time) {
			return invalid("EndTime must be after StartTime.")
		}
		if _, err := parseSchedule(d); err != nil {
			return err
		}
		old.Def, old.Last = d, now
		return put(ctx, s.st, scheduledKey(res, name), old, rev)
	})
	if err != nil {
		return nil, err
	}
	s.nudge()
	return &api.PutScheduledActionResponse{}, nil
}

// DescribeScheduledActions lists scheduled actions.
func (s *Service) DescribeScheduledActions(ctx context.Context, in *api.DescribeScheduledActionsRequest) (*api.DescribeScheduledActionsResponse, error) {
	if err := checkNamespace(in.ServiceNamespace); err != nil {
		return nil, err
	}
	pfx := scheduledPrefix
	if in.ResourceId != nil {
		pfx += url.PathEscape(*in.ResourceId) + "/"
	}
	all, err := list[scheduledRecord](ctx, s.st, pfx)
	if err != nil {
		return nil, err
	}
	var sel []scheduledRecord
	for _, r := range all {
		if len(in.ScheduledActionNames) > 0 && !slices.Contains(in.ScheduledActionNames, r.name()) {
			continue
		}
		if in.ScalableDimension != nil && *in.ScalableDimension != ecsDimension {
			continue
		}
		sel = append(sel, r)
	}
	pg, next, err := page(sel, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := []api.ScheduledAction{}
	for _, r := range pg {
		d := r.Def
		out = append(out, api.ScheduledAction{CreationTime: awsproto.NewTime(r.Created), EndTime: d.EndTime, ResourceId: d.ResourceId,
			ScalableDimension: ptr(ecsDimension), ScalableTargetAction: d.ScalableTargetAction, Schedule: d.Schedule,
			ScheduledActionARN: ptr(r.ARN), ScheduledActionName: d.ScheduledActionName, ServiceNamespace: ptr(ecsNamespace),
			StartTime: d.StartTime, Timezone: d.Timezone})
	}
	return &api.DescribeScheduledActionsResponse{ScheduledActions: out, NextToken: next}, nil
}

// DeleteScheduledAction deletes a scheduled action.
func (s *Service) DeleteScheduledAction(ctx context.Context, in *api.DeleteScheduledActionRequest) (*api.DeleteScheduledActionResponse, error) {
	res, name := deref(in.ResourceId), deref(in.ScheduledActionName)
	if err := checkTarget(in.ServiceNamespace, res, in.ScalableDimension); err != nil {
		return nil, err
	}
	r, err := s.st.Txn(ctx, []store.Cmp{store.Exists(scheduledKey(res, name))}, store.Delete(scheduledKey(res, name)))
	if err != nil {
		return nil, err
	}
	if !r.Succeeded {
		return nil, scheduledNotFound(res, name)
	}
	return &api.DeleteScheduledActionResponse{}, nil
}

// runScheduled fires the scheduled actions that are due.
func (s *Service) runScheduled(ctx context.Context) {
	all, err := list[scheduledRecord](ctx, s.st, scheduledPrefix)
	if err != nil {
		s.log.Warn("list scheduled actions", "err", err)
		return
	}
	now := s.now()
	for _, r := range all {
		sc, err := parseSchedule(r.Def)
		if err != nil {
			continue
		}
		var start, end time.Time
		if r.Def.StartTime != nil {
			start = r.Def.StartTime.Time
		}
		if r.Def.EndTime != nil {
			end = r.Def.EndTime.Time
		}
		at, ok := Due(sc, r.Last, start, end, now)
		if !ok {
			continue
		}
		if err := s.fire(ctx, r, at); err != nil {
			s.log.Warn("run scheduled action", "action", r.name(), "resource", r.resource(), "err", err)
		}
	}
}

// fire runs a scheduled action for the instant at: it sets the target's
// limits (unless scheduled scaling is suspended), records the activity,
// brings the desired count within the limits and remembers at.
func (s *Service) fire(ctx context.Context, r scheduledRecord, at time.Time) error {
	key := scheduledKey(r.resource(), r.name())
	cur, rev, err := get[scheduledRecord](ctx, s.st, key)
	if err != nil {
		return err
	}
	if !cur.Last.Equal(r.Last) {
		return nil // someone else fired it, or it was updated
	}
	cur.Last = at
	if err := put(ctx, s.st, key, cur, rev); err != nil {
		return err
	}
	var t targetRecord
	err = retry(func() error {
		var trev int64
		t, trev, err = get[targetRecord](ctx, s.st, targetKey(r.resource()))
		if err != nil {
			return err
		}
		if deref(t.Suspended.ScheduledScalingSuspended) {
			return nil
		}
		a := r.Def.ScalableTargetAction
		if a.MinCapacity != nil {
			t.Min = *a.MinCapacity
		}
		if a.MaxCapacity != nil {
			t.Max = *a.MaxCapacity
		}
		if t.Min > t.Max { // only one limit given, past the other
			if a.MinCapacity != nil {
				t.Max = t.Min
			} else {
				t.Min = t.Max
			}
		}
		return put(ctx, s.st, targetKey(r.resource()), t, trev)
	})
	if errs.Is(err, errs.NotFound) || err == nil && deref(t.Suspended.ScheduledScalingSuspended) {
		return nil
	}
	if err != nil {
		return err
	}
	a := r.Def.ScalableTargetAction
	var what []string
	if a.MinCapacity != nil {
		what = append(what, fmt.Sprintf("min capacity to %d", *a.MinCapacity))
	}
	if a.MaxCapacity != nil {
		what = append(what, fmt.Sprintf("max capacity to %d", *a.MaxCapacity))
	}
	now := s.now()
	s.addActivity(ctx, activityRecord{ID: newUUID(), ResourceID: r.resource(), Start: now, End: now,
		Description:   "Setting " + strings.Join(what, " and "),
		Cause:         fmt.Sprintf("scheduled action name %s was triggered", r.name()),
		Status:        api.ScalingActivityStatusCodeSuccessful,
		StatusMessage: "Successfully set " + strings.Join(what, " and ")})
	s.log.Info("scheduled action ran", "action", r.name(), "resource", r.resource(), "for", at)
	s.clampToBounds(ctx, t)
	return nil
}

// Run is the controller loop: scheduled actions every tick, policies of
// alarms that stay in ALARM and activity completion every two seconds.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	var lastSlow time.Time
	for {
		s.runScheduled(ctx)
		if time.Since(lastSlow) >= 2*time.Second {
			lastSlow = time.Now()
			s.reinvoke(ctx)
			s.completeActivities(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.wake:
		}
	}
}
