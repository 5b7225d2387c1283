package berthtest

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// An AWS CLI call costs a Python start and the import of botocore and
// awscli: seconds on a loaded machine, most of a call. CLI.Run hands its
// calls to warm workers instead: one Python process per concurrent call,
// started once with the CLI's own interpreter, that runs the CLI's own
// entry point (awscli.clidriver.main, as the aws script does) with each
// call's arguments and environment, its standard output and error
// (descriptors 1 and 2, child processes included) captured and its exit
// code returned. Each call builds a fresh driver and session, as a
// new process would. BERTH_CLI_FRESH=1 runs every call as its own
// process instead; a CLI that is not a Python script always does.

//go:embed cliworker.py
var cliWorkerPy string

type cliWorker struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
	replies *os.File
}

type cliRequest struct {
	Argv []string          `json:"argv"`
	Env  map[string]string `json:"env"`
}

type cliReply struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	Code   int    `json:"code"`
}

// maxIdleCLIWorkers bounds the idle workers kept per CLI (each holds
// tens of MB): a burst of concurrent calls starts more, which end after.
const maxIdleCLIWorkers = 4

var cliWorkers = struct {
	sync.Mutex
	idle map[string][]*cliWorker // by CLI path
}{idle: map[string][]*cliWorker{}}

// cliInterpreter returns the Python interpreter of a CLI script's "#!"
// line, or "" when the CLI is not a Python script.
func cliInterpreter(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, _ := bufio.NewReader(io.LimitReader(f, 256)).ReadString('\n')
	interp, ok := strings.CutPrefix(strings.TrimSpace(line), "#!")
	if !ok || strings.ContainsAny(interp, " \t") || !strings.Contains(interp, "python") {
		return ""
	}
	return interp
}

// runWarm runs one call on an idle worker of the CLI at path (starting
// one when none is idle). ok is false when no worker could be had: the
// caller then runs the CLI as a process. A worker that dies during a call
// fails that call (running it again could apply it twice).
func runWarm(path string, argv, env []string) (r cliReply, ok bool) {
	if os.Getenv("BERTH_CLI_FRESH") == "1" {
		return r, false
	}
	w := takeWorker(path)
	if w == nil {
		return r, false
	}
	req := cliRequest{Argv: argv, Env: map[string]string{}}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		req.Env[k] = v
	}
	b, _ := json.Marshal(req)
	if _, err := w.in.Write(append(b, '\n')); err != nil {
		w.kill()
		return r, false // it died idle: the call was not sent
	}
	line, err := w.out.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &r)
	}
	if err != nil {
		w.kill()
		return cliReply{Code: 255, Stderr: fmt.Sprintf("berthtest: the AWS CLI worker died during the call: %v", err)}, true
	}
	cliWorkers.Lock()
	keep := len(cliWorkers.idle[path]) < maxIdleCLIWorkers
	if keep {
		cliWorkers.idle[path] = append(cliWorkers.idle[path], w)
	}
	cliWorkers.Unlock()
	if !keep {
		w.kill()
	}
	return r, true
}

func takeWorker(path string) *cliWorker {
	cliWorkers.Lock()
	if n := len(cliWorkers.idle[path]); n > 0 {
		w := cliWorkers.idle[path][n-1]
		cliWorkers.idle[path] = cliWorkers.idle[path][:n-1]
		cliWorkers.Unlock()
		return w
	}
	cliWorkers.Unlock()
	w, err := startWorker(path)
	if err != nil {
		return nil
	}
	return w
}

func startWorker(path string) (*cliWorker, error) {
	interp := cliInterpreter(path)
	if interp == "" {
		return nil, errors.New("not a Python CLI")
	}
	home, err := os.MkdirTemp("", "berth-cli-worker-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(interp, "-c", cliWorkerPy)
	cmd.Env = append(cleanEnv(), "HOME="+home)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	out, replies, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	requests, in, err := os.Pipe()
	if err != nil {
		out.Close()
		replies.Close()
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{replies, requests} // the worker's descriptors 3 and 4
	err = StartCommand(cmd)
	replies.Close()
	requests.Close()
	if err != nil {
		out.Close()
		in.Close()
		return nil, err
	}
	w := &cliWorker{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20), replies: out}
	// The worker says it imported the CLI.
	if line, err := w.out.ReadBytes('\n'); err != nil || !bytes.Equal(bytes.TrimSpace(line), []byte("ready")) {
		w.kill()
		return nil, fmt.Errorf("cli worker %s: %q %v", path, line, err)
	}
	return w, nil
}

func (w *cliWorker) kill() {
	w.cmd.Process.Kill()
	w.cmd.Wait()
	w.replies.Close()
	w.in.Close()
}
