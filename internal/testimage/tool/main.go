// Command tool is the program inside Berth's Docker test image
// (berth-test/tool, built by internal/testimage). It runs a list of steps
// given as arguments, in order:
//
//	sleep:DUR          sleep for a Go duration
//	exit:CODE          exit with CODE
//	print:TEXT         print TEXT on stdout
//	stderr:TEXT        print TEXT on stderr
//	lines:N:EVERY[:P]  print N numbered lines "P 000000".."P N-1" on stdout
//	                   (P defaults to "line"), sleeping EVERY between lines
//	                   (a Go duration; 0 for none); stderr gets every 10th
//	env                print the environment, one variable a line
//	touch:PATH         create an empty file
//	rm:PATH            remove a file
//	write:PATH:TEXT    write TEXT to PATH
//	check:PATH         exit 0 if PATH exists, else 1 (for health checks)
//	alloc:MIB          allocate and touch MIB mebibytes, keep them
//	serve:PORT         serve HTTP on PORT in the background ("ok" on /)
//	get:URL            GET URL (retrying for 10 s); exit 3 unless it answers 200
//	load:EVERY:URL     in the background, GET URL every EVERY (a Go duration), once each
//	                   (2-s timeout, no retry); print "LOAD ok=N fail=M" each second and
//	                   each failure on stderr
//	meta:PATH:TEXT     GET $ECS_CONTAINER_METADATA_URI_V4 + PATH (retrying);
//	                   exit 4 unless it answers 200 with TEXT in the body
//	burn:DUR           keep one core busy for DUR, in the background
//	term:[DELAY:]CODE  on SIGTERM, print "got SIGTERM", wait DELAY, exit CODE
//	ignoreterm         ignore SIGTERM
//
// With no step left it exits 0.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	kept     [][]byte
	burnSink int
)

func main() {
	for _, step := range os.Args[1:] {
		verb, arg, _ := strings.Cut(step, ":")
		switch verb {
		case "sleep":
			d, err := time.ParseDuration(arg)
			must(err)
			time.Sleep(d)
		case "exit":
			code, err := strconv.Atoi(arg)
			must(err)
			os.Exit(code)
		case "print":
			fmt.Println(arg)
		case "stderr":
			fmt.Fprintln(os.Stderr, arg)
		case "lines":
			parts := strings.SplitN(arg, ":", 3)
			n, err := strconv.Atoi(parts[0])
			must(err)
			every := time.Duration(0)
			if len(parts) > 1 {
				every, err = time.ParseDuration(parts[1])
				must(err)
			}
			prefix := "line"
			if len(parts) > 2 {
				prefix = parts[2]
			}
			for i := 0; i < n; i++ {
				w := os.Stdout
				if i%10 == 9 {
					w = os.Stderr
				}
				fmt.Fprintf(w, "%s %06d\n", prefix, i)
				if every > 0 {
					time.Sleep(every)
				}
			}
		case "env":
			env := os.Environ()
			sort.Strings(env)
			for _, e := range env {
				fmt.Println(e)
			}
		case "touch":
			must(os.WriteFile(arg, nil, 0o644))
		case "rm":
			_ = os.Remove(arg)
		case "write":
			path, text, _ := strings.Cut(arg, ":")
			must(os.WriteFile(path, []byte(text), 0o644))
		case "check":
			if _, err := os.Stat(arg); err != nil {
				fmt.Println("missing", arg)
				os.Exit(1)
			}
			fmt.Println("present", arg)
		case "alloc":
			mib, err := strconv.Atoi(arg)
			must(err)
			for i := 0; i < mib; i++ {
				b := make([]byte, 1<<20)
				for j := range b {
					b[j] = byte(j)
				}
				kept = append(kept, b)
			}
		case "serve":
			go func() {
				must(http.ListenAndServe(":"+arg, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					fmt.Fprintln(w, "ok")
				})))
			}()
		case "get":
			if _, ok := get(arg); !ok {
				os.Exit(3)
			}
		case "load":
			every, url, _ := strings.Cut(arg, ":")
			d, err := time.ParseDuration(every)
			must(err)
			go load(url, d)
		case "meta":
			path, text, _ := strings.Cut(arg, ":")
			body, ok := get(os.Getenv("ECS_CONTAINER_METADATA_URI_V4") + path)
			fmt.Println(body)
			if !ok || !strings.Contains(body, text) {
				os.Exit(4)
			}
		case "burn":
			d, err := time.ParseDuration(arg)
			must(err)
			go func() {
				end := time.Now().Add(d)
				x := 1
				for time.Now().Before(end) {
					for i := 0; i < 1_000_000; i++ {
						x = x*31 + i
					}
				}
				burnSink = x
			}()
		case "term":
			var d time.Duration
			cs := arg
			if ds, rest, ok := strings.Cut(arg, ":"); ok {
				var err error
				d, err = time.ParseDuration(ds)
				must(err)
				cs = rest
			}
			code, err := strconv.Atoi(cs)
			must(err)
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			go func() {
				<-ch
				fmt.Println("got SIGTERM")
				time.Sleep(d)
				os.Exit(code)
			}()
		case "ignoreterm":
			signal.Ignore(syscall.SIGTERM)
		default:
			fmt.Fprintln(os.Stderr, "unknown step", step)
			os.Exit(64)
		}
	}
}

// load GETs url every d, once each, counting answers 200 and the rest.
func load(url string, d time.Duration) {
	c := &http.Client{Timeout: 2 * time.Second}
	ok, fail := 0, 0
	report := time.NewTicker(time.Second)
	tick := time.NewTicker(d)
	for {
		select {
		case <-report.C:
			fmt.Printf("LOAD ok=%d fail=%d\n", ok, fail)
		case <-tick.C:
			resp, err := c.Get(url)
			if err == nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
				}
			}
			if err != nil {
				fail++
				fmt.Fprintln(os.Stderr, time.Now().UTC().Format("15:04:05.000"), "load:", err)
			} else {
				ok++
			}
		}
	}
}

// get GETs url until it answers 200 or 10 s have passed.
func get(url string) (string, bool) {
	deadline := time.Now().Add(10 * time.Second)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b), true
			}
			err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, err)
			return "", false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(65)
	}
}
