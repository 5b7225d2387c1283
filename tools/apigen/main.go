// Command apigen turns the official AWS API models into Berth's wire-shape
// packages.
//
// It has two modes:
//
//	go run ./tools/apigen -import <botocore data dir> -services ecs,cloudtrail,ecr
//
// reads each named service's newest service-2.json(.gz) from an installed
// botocore, strips every piece of prose (documentation, deprecation
// messages, examples) and writes the remaining facts to
// internal/api/models/<name>.json, deterministically.
//
//	go run ./tools/apigen    (or go generate ./internal/api)
//
// reads internal/api/models/*.json and writes one Go package per
// JSON-protocol service, internal/api/<name>api/zz_generated.go: the wire
// structs, enums, error codes, input validation in AWS's wording, and a
// Handlers type that builds the service's *awsproto.Service.
//
// See docs/api-generation.md.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "apigen:", err)
		}
		os.Exit(1)
	}
}

// run is main without the process: it parses args and does one mode's work.
func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("apigen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	importDir := fs.String("import", "", "botocore data directory to import models from (import mode)")
	services := fs.String("services", "", "comma-separated botocore service names to import, e.g. ecs,cloudtrail,ecr")
	modelsDir := fs.String("models", "internal/api/models", "directory of the stripped model files")
	outDir := fs.String("out", "internal/api", "directory under which the <name>api packages are written")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *importDir != "" {
		if *services == "" {
			return errors.New("-import needs -services")
		}
		for _, svc := range strings.Split(*services, ",") {
			svc = strings.TrimSpace(svc)
			if svc == "" {
				continue
			}
			path, err := importService(*importDir, svc, *modelsDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "apigen: wrote %s\n", path)
		}
		return nil
	}
	if *services != "" {
		return errors.New("-services is only used with -import")
	}
	files, skipped, err := generateAll(*modelsDir)
	if err != nil {
		return err
	}
	for _, s := range skipped {
		fmt.Fprintf(stderr, "apigen: skipped %s\n", s)
	}
	return writeFiles(*outDir, files)
}
