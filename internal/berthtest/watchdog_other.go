//go:build !linux

package berthtest

import "os/exec"

// Elsewhere there is no parent-death signal: children outlive a killed
// test binary (t.Cleanup still kills them on a normal end).
func startWatched(cmd *exec.Cmd) error { return cmd.Start() }
