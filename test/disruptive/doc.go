// Package disruptive holds tests that disturb the whole machine (they
// restart Docker Engine, fill a node's memory): they are built only with
// the tag `disruptive` and run alone, after the main suite:
//
//	go test -tags disruptive -p 1 ./test/disruptive -count=1
//
// They need Docker Engine and root (restarting dockerd); without a
// dockerd process to restart, that test skips.
package disruptive
