// Package metricmath parses and evaluates CloudWatch metric math
// expressions, the Expression member of GetMetricData's MetricDataQuery
// and of metric-math alarms: arithmetic (+ - * / and unary minus) between
// time series and scalars, the aggregate functions SUM, AVG, MIN and MAX,
// ABS, and METRICS() / METRICS("text").
//
// Everything here is pure: Parse turns text into an Expr, and Eval
// computes an Expr over the series the caller has already fetched (an
// Env). Package cloudwatch is the shell that fetches the series. The
// language and where it differs from CloudWatch are described in
// docs/metrics.md.
package metricmath
