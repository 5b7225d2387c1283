package berthtest

import "os/exec"

// StartCommand starts cmd as a child that dies with the test binary: on
// Linux the kernel sends it SIGKILL when the test binary exits, however it
// exits (a -timeout panic, SIGKILL, pkill), so a killed test run leaves no
// `berth up` or `berth agent` spinning behind it. Berth's containers of
// such a run are removed by the usual cleanup paths or by the next run.
// Use it instead of cmd.Start for every long-lived child a test starts.
func StartCommand(cmd *exec.Cmd) error { return startWatched(cmd) }
