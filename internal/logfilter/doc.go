// Package logfilter parses and evaluates CloudWatch Logs filter patterns:
// the language of FilterLogEvents, metric filters and subscription
// filters. A pattern is one of three kinds, told apart by its first
// character:
//
//   - terms (anything else): words, "quoted phrases" and %regular
//     expressions% that must all appear in the message, -excluded terms,
//     and ?alternatives;
//   - a JSON pattern, { $.a.b[0] = value && ... }, evaluated against a
//     message that is a JSON object;
//   - a space-delimited pattern, [ip, user, ..., status = 4*, bytes > 1000],
//     evaluated against the message split into fields.
//
// Parse compiles a pattern once; Match is a pure function of the compiled
// pattern and the message, safe for concurrent use, and allocates nothing
// in the common cases (see bench_test.go). The language as Berth
// implements it, and where it differs from CloudWatch Logs, is described
// in docs/logfilter.md.
package logfilter
