// Command tool is the program inside Berth's Docker test image
// (berth-test/tool). It runs a list of steps given as arguments, in order:
//
//	sleep:DUR          sleep for a Go duration
//	exit:CODE          exit with CODE
//	print:TEXT         print TEXT on stdout
//	env                print the environment, one variable a line
//	touch:PATH         create an empty file
//	rm:PATH            remove a file
//	write:PATH:TEXT    write TEXT to PATH
//	check:PATH         exit 0 if PATH exists, else 1 (for health checks)
//	alloc:MIB          allocate and touch MIB mebibytes, keep them
//	serve:PORT         serve HTTP on PORT in the background ("ok" on /)
//	term:DELAY:CODE    on SIGTERM, print "got SIGTERM", wait DELAY, exit CODE
//	ignoreterm         ignore SIGTERM
//
// With no step left it exits 0.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var kept [][]byte

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
		case "term":
			ds, cs, _ := strings.Cut(arg, ":")
			d, err := time.ParseDuration(ds)
			must(err)
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

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(65)
	}
}
