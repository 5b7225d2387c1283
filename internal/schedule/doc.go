// Package schedule parses and evaluates AWS schedule expressions, the
// language shared by EventBridge scheduled rules and Application Auto
// Scaling scheduled actions:
//
//	at(yyyy-mm-ddThh:mm:ss)                 one time
//	rate(value unit)                        every value minutes/hours/days
//	cron(Minutes Hours DoM Month DoW Year)  AWS's six-field cron
//
// It is pure: Parse turns an expression and a time zone into a Schedule,
// and Schedule.Next answers the first firing strictly after a given
// instant. Nothing here reads the clock or keeps state; the callers (the
// EventBridge rule scheduler, the Application Auto Scaling scheduled
// action runner) pass the instant in and keep their own last-fired times.
//
// Cron and at expressions are evaluated as wall-clock times in the
// location given to Parse (UTC for EventBridge rules, the action's
// Timezone for Application Auto Scaling). Around daylight saving time
// changes, a wall-clock time that does not exist (skipped in spring) is
// not fired that day, and a wall-clock time that happens twice (repeated
// in autumn) is fired once, at its first occurrence. This is what AWS
// documents for EventBridge Scheduler; see docs/schedule-expressions.md.
//
// A rate expression has no calendar: Next(after) is after plus the
// period, so callers pass the previous firing (or the creation time);
// Rate.NextAligned keeps a fixed phase from an anchor.
package schedule
