package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck asks a running server's /readyz, for a container's
// HEALTHCHECK: the image has no shell or curl, so the binary checks
// itself. It reads the same --addr / HOTZONE_ADDR as serve.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	addr := fs.String("addr", ":8080", "the server's listen address (env "+envName("addr")+")")
	path := fs.String("path", "/readyz", "what to ask: /readyz or /healthz")
	// Only --addr has a twin: it is the variable serve reads too.
	env := func(name string) string {
		if name == "addr" {
			return envName(name)
		}
		return ""
	}
	if err := parseWithEnv(fs, args, getenv, env, stderr, healthcheckHelp); err != nil {
		if errors.Is(err, errFlagHelp) {
			return nil
		}
		return err
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %v", *addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+*path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d: %s", *path, resp.StatusCode, body)
	}
	fmt.Fprintf(stdout, "%s\n", body)
	return nil
}

var healthcheckHelp = commandHelp{
	head: `Usage: hotzone healthcheck [flags]

Asks the server on this machine whether it is ready and exits 0 when it
answers 200: the container image's HEALTHCHECK, which has no shell or curl.
`,
}
