package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hotzone/hotzone/api"
)

var exportHelp = commandHelp{
	head: `Usage: hotzone export --brand ID [flags]

Writes one brand's stores, events, devices and delivery log as JSON Lines
(one {"type", "data"} object per line, data as the API answers it), for
backups and audits. Keys, push credentials and webhook secrets are never
written. It reads the storage itself: a --data directory (stop the server
using it first: bbolt lets one process at a time open it) or, with
--redis, the cluster (while the service runs).
`,
}

// exportCmd is `hotzone export`.
func exportCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := &serveConfig{FlushInterval: time.Second, RedisWaitTime: 100 * time.Millisecond}
	var brandID, out string
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.StringVar(&brandID, "brand", "", "the brand to export (its id, as POST /v1/brands answered)")
	fs.StringVar(&out, "out", "-", "file to write; - for standard output")
	fs.StringVar(&cfg.Data, "data", "./hotzone-data", "data directory of the bbolt file (env "+envName("data")+")")
	fs.StringVar(&cfg.Redis, "redis", "", "read from this Redis Cluster instead of --data: redis://HOST:PORT[,…] (env "+envName("redis")+")")
	fs.StringVar(&cfg.RedisPrefix, "redis-prefix", "hz", "the key prefix the service uses in the cluster (env "+envName("redis-prefix")+")")
	exportEnv := func(name string) string {
		if name == "brand" || name == "out" {
			return ""
		}
		return envName(name)
	}
	if err := parseWithEnv(fs, args, getenv, exportEnv, stdout, exportHelp); err != nil {
		if errors.Is(err, errFlagHelp) {
			return nil
		}
		return err
	}
	if brandID == "" {
		return errors.New("--brand is required: the id of the brand to export")
	}
	if cfg.Redis != "" {
		addrs, err := parseRedisURL(cfg.Redis)
		if err != nil {
			return fmt.Errorf("--redis %q: %v", cfg.Redis, err)
		}
		cfg.redisAddrs = addrs
	}
	if cfg.Redis == "" {
		// Opening bbolt creates a missing data dir; an export must not.
		if _, err := os.Stat(cfg.Data); err != nil {
			return fmt.Errorf("--data %s: %w", cfg.Data, err)
		}
	}
	db, err := openStorage(ctx, cfg, getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	w, closeOut := stdout, func() error { return nil }
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		w, closeOut = f, f.Close
	}
	counts, err := api.ExportBrand(ctx, db, brandID, w)
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	sort.Strings(types)
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%d %s", counts[t], t)
	}
	fmt.Fprintf(stderr, "exported brand %s: %s\n", brandID, strings.Join(parts, ", "))
	return nil
}
