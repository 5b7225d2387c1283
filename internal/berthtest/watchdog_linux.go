package berthtest

import (
	"os/exec"
	"runtime"
	"syscall"
)

// Linux sends a child its parent-death signal when the *thread* that
// forked it exits, not the process. Go threads can exit (a goroutine that
// ends while locked to its thread takes the thread with it), so children
// are forked from one goroutine locked to its thread for the life of the
// test binary: that thread exits only with the process.
var forks = make(chan forkRequest)

type forkRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		for r := range forks {
			r.done <- r.cmd.Start()
		}
	}()
}

func startWatched(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	forks <- forkRequest{cmd: cmd, done: done}
	return <-done
}
