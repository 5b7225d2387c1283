// Command berth is a self-hosted Amazon ECS: one binary with the control
// plane (`berth server`), everything on one machine (`berth up`), and the
// helpers `berth env` and `berth version`. See internal/cli.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/berthdev/berth/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue cli.UsageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "berth:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}
