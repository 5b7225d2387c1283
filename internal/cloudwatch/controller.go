package cloudwatch

import (
	"context"
	"time"

	"github.com/berthdev/berth/internal/alarm"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/metricmath"
	"github.com/berthdev/berth/internal/tsdb"
)

// Run evaluates alarms until ctx ends: each alarm every EvalInterval and
// just after each of its period ends, and every alarm within a second of
// new datapoints or a changed alarm. A datapoint that breaches is seen
// by the next evaluation, so an alarm reaches ALARM within about a second
// of the datapoint arriving (one period at most when it is published
// late into a closed period).
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	next := map[string]time.Time{}
	all := true
	for {
		s.evaluateDue(ctx, next, all)
		all = false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.wake:
			// let a burst of puts settle, then evaluate everything
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			all = true
		}
	}
}

func (s *Service) evaluateDue(ctx context.Context, next map[string]time.Time, all bool) {
	now := s.now()
	due := all
	for _, t := range next {
		if !now.Before(t) {
			due = true
		}
	}
	if !due && len(next) > 0 {
		return
	}
	recs, err := s.listAlarms(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("list alarms", "err", err)
		}
		return
	}
	seen := map[string]bool{}
	for _, r := range recs {
		name := *r.Def.AlarmName
		seen[name] = true
		if t, ok := next[name]; ok && !all && now.Before(t) {
			continue
		}
		if err := s.evaluate(ctx, name, now); err != nil && ctx.Err() == nil && !errs.Is(err, errs.NotFound) {
			s.log.Warn("evaluate alarm", "alarm", name, "err", err)
		}
		period := time.Duration(alarmPeriod(&r.Def)) * time.Second
		n := now.Add(s.cfg.EvalInterval)
		if pe := alarm.PeriodEnd(period, now).Add(500 * time.Millisecond); pe.Before(n) {
			n = pe
		}
		next[name] = n
	}
	for name := range next {
		if !seen[name] {
			delete(next, name)
		}
	}
	if len(recs) == 0 {
		next[""] = now.Add(s.cfg.EvalInterval) // poll for new alarms
	}
}

// EvaluateNow evaluates every alarm once (tests, and the daemon at start).
func (s *Service) EvaluateNow(ctx context.Context) error {
	recs, err := s.listAlarms(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	for _, r := range recs {
		if err := s.evaluate(ctx, *r.Def.AlarmName, now); err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
	}
	return nil
}

// evaluate runs one alarm's evaluation and commits a state change.
func (s *Service) evaluate(ctx context.Context, name string, now time.Time) error {
	var fired *transition
	err := retry(func() error {
		r, rev, err := s.getAlarm(ctx, name)
		if err != nil {
			return err
		}
		if now.Before(r.HoldUntil) {
			return nil
		}
		rule, pts, err := s.alarmData(r, now)
		if err != nil {
			return err
		}
		res := alarm.Evaluate(rule, pts, now)
		if res.Retain || string(res.State) == r.State {
			return nil
		}
		t := s.transition(&r, string(res.State), res.Reason, res.ReasonData, now.UTC())
		r.HoldUntil = time.Time{}
		if err := s.commit(ctx, r, rev, []historyItem{t.item}, s.changeOps(t)...); err != nil {
			return err
		}
		fired = &t
		return nil
	})
	if err != nil {
		return err
	}
	if fired != nil && fired.changed {
		s.log.Info("alarm state changed", "alarm", name, "from", fired.old, "to", fired.rec.State)
		s.runActions(ctx, *fired)
	}
	return nil
}

// alarmData builds an alarm's rule and fetches its per-period datapoints
// for the evaluation window (and one period more).
func (s *Service) alarmData(r record, now time.Time) (alarm.Rule, []alarm.Datapoint, error) {
	d := r.Def
	period := time.Duration(alarmPeriod(&d)) * time.Second
	rule := alarm.Rule{Period: period, EvaluationPeriods: int(deref(d.EvaluationPeriods)), DatapointsToAlarm: int(deref(d.DatapointsToAlarm)),
		Threshold: deref(d.Threshold), Comparison: string(deref(d.ComparisonOperator)), TreatMissingData: treatMissing(d)}
	to := alarm.PeriodEnd(period, now)
	from := to.Add(-time.Duration(rule.EvaluationPeriods+1) * period)
	var series metricmath.Series
	if d.Metrics != nil {
		results, err := s.runQueries(d.Metrics, from, to, "Metrics")
		if err != nil {
			return rule, nil, err
		}
		for _, q := range results {
			if q.returnData && len(q.series) > 0 {
				series = q.series[0]
			}
		}
	} else {
		st := string(deref(d.Statistic))
		if st == "" {
			st = deref(d.ExtendedStatistic)
		}
		rule.Statistic = st
		p, _ := parseStat(st)
		buckets, err := s.db.Query(tsdb.NewKey(*d.Namespace, *d.MetricName, dims(d.Dimensions)), from, to, period, string(deref(d.Unit)), p.needsValues())
		if err != nil {
			return rule, nil, err
		}
		for _, b := range buckets {
			if v, ok := p.value(b); ok {
				series.Times = append(series.Times, b.T)
				series.Values = append(series.Values, v)
			}
		}
	}
	pts := make([]alarm.Datapoint, len(series.Times))
	for i := range series.Times {
		pts[i] = alarm.Datapoint{T: series.Times[i], Value: series.Values[i]}
	}
	return rule, pts, nil
}
