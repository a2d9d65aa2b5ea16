// Command hotzone runs the hotzone geofence push service.
//
// It is the composition root: it reads flags and environment, builds
// every concrete value, and starts and stops the goroutines that live as
// long as the process.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // devices name any IANA zone; a minimal container has no zoneinfo
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hotzone:", err)
		os.Exit(1)
	}
}

const usage = `hotzone — geofence proximity push service

Usage:
  hotzone serve [flags]     run the server (hotzone serve --help for flags)
  hotzone healthcheck       exit 0 when the local server is ready (for containers)
  hotzone simulate [flags]  walk devices around a brand's stores and ping a server (load and demo)
  hotzone export --brand ID write a brand's stores, events, devices and log as JSON Lines (backups, audits)
  hotzone version           print the version, commit and Go version (also --version)

`

// run is the whole program, testable: args without the program name,
// getenv for the environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("a command is required")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "healthcheck":
		return healthcheck(ctx, args[1:], getenv, stdout, stderr)
	case "simulate":
		return simulate(ctx, args[1:], getenv, stdout, stderr)
	case "export":
		return exportCmd(ctx, args[1:], getenv, stdout, stderr)
	case "version", "-version", "--version":
		printVersion(stdout)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\nRun 'hotzone help' to see the commands", args[0])
}
