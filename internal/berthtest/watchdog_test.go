package berthtest

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestChildDiesWithTestBinary starts a helper process (this test binary in
// helper mode) that starts a child through StartCommand, kills the helper
// with SIGKILL and sees the child gone.
func TestChildDiesWithTestBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux only")
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestWatchdogHelper$")
	helper.Env = append(os.Environ(), "BERTHTEST_WATCHDOG_HELPER=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper printed no child pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "child "))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	if !alive(pid) {
		t.Fatalf("child %d is not running while its parent is", pid)
	}
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d still running 10 s after its parent was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchdogHelper is the helper process of TestChildDiesWithTestBinary:
// it starts `sleep`, makes Go threads exit (goroutines ending while locked
// to their threads: a parent-death signal tied to the forking thread would
// fire here), checks the child survived that, prints its pid and waits to
// be killed.
func TestWatchdogHelper(t *testing.T) {
	if os.Getenv("BERTHTEST_WATCHDOG_HELPER") != "1" {
		t.Skip("helper process of TestChildDiesWithTestBinary")
	}
	child := exec.Command("sleep", "300")
	if err := StartCommand(child); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread() // exits with its thread
			close(done)
		}()
		<-done
	}
	time.Sleep(100 * time.Millisecond)
	if !alive(child.Process.Pid) {
		t.Fatal("the child died when Go threads exited")
	}
	os.Stdout.WriteString("child " + strconv.Itoa(child.Process.Pid) + "\n")
	time.Sleep(time.Minute)
}

// alive reports whether pid runs (a zombie waiting for a reaper is dead).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
