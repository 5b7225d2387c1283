// Command tool is the program inside the task runner's Docker test image
// (berth-test/taskrun-tool). It runs its arguments as steps, in order:
//
//	sleep:DUR        sleep for a Go duration
//	exit:CODE        exit with CODE
//	touch:PATH       create an empty file
//	check:PATH       exit 0 if PATH exists, else 1 (health checks)
//	serve:PORT       serve "ok" over HTTP on PORT in the background
//	get:URL          GET URL (retrying for 10s); exit 3 unless it answers 200
//	meta:PATH:TEXT   GET $ECS_CONTAINER_METADATA_URI_V4 + PATH (retrying);
//	                 exit 4 unless it answers 200 with TEXT in the body
//	term:CODE        on SIGTERM exit with CODE
//	ignoreterm       ignore SIGTERM
//
// With no step left it exits 0.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
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
		case "touch":
			must(os.WriteFile(arg, nil, 0o644))
		case "check":
			if _, err := os.Stat(arg); err != nil {
				os.Exit(1)
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
		case "meta":
			path, text, _ := strings.Cut(arg, ":")
			body, ok := get(os.Getenv("ECS_CONTAINER_METADATA_URI_V4") + path)
			fmt.Println(body)
			if !ok || !strings.Contains(body, text) {
				os.Exit(4)
			}
		case "term":
			code, err := strconv.Atoi(arg)
			must(err)
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			go func() {
				<-ch
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
