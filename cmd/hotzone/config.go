package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/hotzone/hotzone/push"
)

// errFlagHelp: --help was asked for and printed; not a failure.
var errFlagHelp = errors.New("help shown")

// serveConfig is every setting of `hotzone serve`.
type serveConfig struct {
	Addr            string
	Data            string
	APNsURL         string
	FCMURL          string
	PushCAFile      string
	DevicePingRate  string
	Demo            bool
	LogFormat       string
	FlushInterval   time.Duration
	APNsRate        float64
	FCMRate         float64
	PushConcurrency int
	PushLease       time.Duration
	ShutdownDelay   time.Duration
	DebugAddr       string
	GCFloorMB       int
	Redis           string
	RedisPrefix     string
	RedisWait       int
	RedisStates     int
	RedisWaitTime   time.Duration
	// Webhooks.
	WebhookAllowPrivate bool
	WebhookConcurrency  int

	redisAddrs []string
	pingRate   rate.Limit
	pingBurst  int
	apnsRate   rate.Limit
	fcmRate    rate.Limit
}

// parseServeFlags reads flags, each with its HOTZONE_* twin in the
// environment; a flag given on the command line wins over the variable.
func parseServeFlags(args []string, getenv func(string) string, out io.Writer) (*serveConfig, error) {
	cfg := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	str := func(p *string, name, def, help string) {
		fs.StringVar(p, name, def, help+" (env "+envName(name)+")")
	}
	str(&cfg.Addr, "addr", ":8080", "address to listen on")
	str(&cfg.Data, "data", "./hotzone-data", "data directory; the bbolt file lives inside")
	str(&cfg.APNsURL, "apns-url", "", "APNs base URL replacing https://api.push.apple.com and the development host; no path")
	str(&cfg.FCMURL, "fcm-url", "", "FCM base URL replacing https://fcm.googleapis.com/v1, path included")
	str(&cfg.PushCAFile, "push-ca-file", "", "PEM file of an extra CA to trust for the push providers")
	str(&cfg.DevicePingRate, "device-ping-rate", "1/s,burst=20", "per-device ping limit as RATE/UNIT,burst=N (UNIT s or m); 0 disables it")
	str(&cfg.LogFormat, "log-format", "json", "log format: json or text")
	str(&cfg.Redis, "redis", "", "keep all state in this Redis Cluster instead of --data: redis://HOST:PORT[,HOST:PORT…] (any nodes of it); every node given the same cluster serves as one")
	str(&cfg.RedisPrefix, "redis-prefix", "hz", "prefix of every key hotzone keeps in the Redis Cluster, so deployments can share one")
	fs.IntVar(&cfg.RedisWait, "redis-wait", 1, "with --redis: replicas that must acknowledge a queued notification, a sent result and an event's start or end before they count as done (WAIT); 0: none (env "+envName("redis-wait")+")")
	fs.DurationVar(&cfg.RedisWaitTime, "redis-wait-timeout", 100*time.Millisecond, "with --redis: the longest a write waits for --redis-wait replicas; past it the write stands on the primary alone (env "+envName("redis-wait-timeout")+")")
	fs.IntVar(&cfg.RedisStates, "redis-device-cache", 250_000, "with --redis: how many devices' records and histories a node keeps, so that deciding to notify one it knows costs one round trip (checked in the write), not two; about 0.6 KB each; 0: none (env "+envName("redis-device-cache")+")")
	str(&cfg.DebugAddr, "debug-addr", "", "address for Go's profiles (/debug/pprof/), e.g. 127.0.0.1:6060; unauthenticated, so keep it on loopback; empty: off")
	fs.BoolVar(&cfg.Demo, "demo", false, "seed a demo brand with stores from testdata and print its keys (env "+envName("demo")+")")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", time.Second, "how often device positions are written behind to disk; a crash loses at most this much (twice this, a second more at most, on a Redis node fanning out an event) (env "+envName("flush-interval")+")")
	fs.Float64Var(&cfg.APNsRate, "apns-rate", float64(push.DefaultAPNsRate), "most APNs sends per second, per brand (env "+envName("apns-rate")+")")
	fs.Float64Var(&cfg.FCMRate, "fcm-rate", float64(push.DefaultFCMRate), "most FCM sends per second, per brand (env "+envName("fcm-rate")+")")
	fs.IntVar(&cfg.PushConcurrency, "push-concurrency", push.DefaultConcurrency, "the most sends in flight per brand and provider; fewer are kept out when the measured round trip needs fewer at the send rate (env "+envName("push-concurrency")+")")
	fs.IntVar(&cfg.GCFloorMB, "gc-floor-mb", 32, "MB the Go heap may grow by before a collection, however small it is (GOGC still rules larger heaps); 0: GOGC alone; ignored when GOGC is set (env "+envName("gc-floor-mb")+")")
	fs.DurationVar(&cfg.PushLease, "push-lease", push.DefaultLease, "how long a notification this node claimed stays its own before another node may send it: a node that dies leaves its claims to the others this long after (env "+envName("push-lease")+")")
	fs.BoolVar(&cfg.WebhookAllowPrivate, "webhook-allow-private", false, "let webhooks reach loopback, private and link-local addresses, for tests and on-premise receivers; off, such a URL is refused at registration and at every connection (env "+envName("webhook-allow-private")+")")
	fs.IntVar(&cfg.WebhookConcurrency, "webhook-concurrency", 4, "deliveries in flight at once to one webhook, across nodes: a slow receiver holds only its own (env "+envName("webhook-concurrency")+")")
	fs.DurationVar(&cfg.ShutdownDelay, "shutdown-delay", 0, "on SIGTERM, answer /readyz 503 this long before closing the listener, so a load balancer stops sending first (env "+envName("shutdown-delay")+")")
	if err := parseWithEnv(fs, args, getenv, envName, out, serveHelp); err != nil {
		return nil, err
	}
	return cfg, cfg.validate()
}

var serveHelp = commandHelp{
	head: `Usage: hotzone serve [flags]

Runs the API, the pages (/admin, /tablet) and the push dispatcher on one
bbolt data directory, or, with --redis, on a Redis Cluster that any number
of hotzone serve processes share. Each flag has an environment twin, named
below; a flag on the command line wins over it.
`,
	foot: `
Environment only:
  HOTZONE_OPERATOR_KEY
    	the operator key (hzo_…) that creates brands; unset, one is generated
    	on the first start, printed once, and only its hash is kept
  HOTZONE_SECRET_KEY
    	32 random bytes in base64 (openssl rand -base64 32) that encrypt push
    	credentials at rest; unset, one is generated into secret.key in the
    	data dir (set it if you back the data dir up); with --redis it must
    	be set, the same on every node
`,
}

// commandHelp is what --help prints around a command's flags.
type commandHelp struct {
	head string // usage line and what the command does
	foot string // printed after the flags: environment-only settings, say
}

// parseWithEnv applies each flag's environment twin (named by env; ""
// for a flag without one) as its default, so the command line still
// overrides it and --help shows the effective value, then parses args; a
// command takes no arguments. --help prints help to out and answers
// errFlagHelp; a wrong flag answers the flag package's one-line error and
// where to find help, without printing the whole usage.
func parseWithEnv(fs *flag.FlagSet, args []string, getenv func(string) string, env func(string) string, out io.Writer, help commandHelp) error {
	var envErrs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := env(f.Name)
		if name == "" {
			return
		}
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: %v", name, v, err))
			}
		}
	})
	if err := errors.Join(envErrs...); err != nil {
		return err
	}
	// The flag package prints the error and the whole usage on a bad
	// flag; the error is returned instead, and usage only when asked.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	hint := fmt.Sprintf("Run 'hotzone %s --help' to see its flags", fs.Name())
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(out, help.head)
			fmt.Fprintln(out, "\nFlags:")
			fs.SetOutput(out)
			fs.PrintDefaults()
			fmt.Fprint(out, help.foot)
			return errFlagHelp
		}
		return fmt.Errorf("%s: %w\n%s", fs.Name(), err, hint)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s takes no arguments, got %q\n%s", fs.Name(), fs.Args(), hint)
	}
	return nil
}

func envName(flagName string) string {
	return "HOTZONE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (cfg *serveConfig) validate() error {
	var errs []error
	if cfg.Redis != "" {
		addrs, err := parseRedisURL(cfg.Redis)
		if err != nil {
			errs = append(errs, fmt.Errorf("--redis %q: %v", cfg.Redis, err))
		}
		cfg.redisAddrs = addrs
	}
	if cfg.RedisPrefix == "" || strings.ContainsAny(cfg.RedisPrefix, "{}: \t\n") {
		errs = append(errs, fmt.Errorf("--redis-prefix %q: must be non-empty, without braces, colons or spaces", cfg.RedisPrefix))
	}
	if cfg.WebhookConcurrency < 1 || cfg.WebhookConcurrency > 100 {
		errs = append(errs, fmt.Errorf("--webhook-concurrency %d: must be between 1 and 100", cfg.WebhookConcurrency))
	}
	if cfg.PushLease < time.Second || cfg.PushLease > time.Hour {
		errs = append(errs, fmt.Errorf("--push-lease %v: must be between 1s and 1h", cfg.PushLease))
	}
	if cfg.RedisWaitTime < time.Millisecond || cfg.RedisWaitTime > 10*time.Second {
		errs = append(errs, fmt.Errorf("--redis-wait-timeout %v: must be between 1ms and 10s", cfg.RedisWaitTime))
	}
	if cfg.RedisStates < 0 {
		errs = append(errs, fmt.Errorf("--redis-device-cache %d: must not be negative", cfg.RedisStates))
	}
	if cfg.RedisWait < 0 || cfg.RedisWait > 5 {
		errs = append(errs, fmt.Errorf("--redis-wait %d: must be between 0 and 5", cfg.RedisWait))
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: %v", cfg.Addr, err))
	}
	if cfg.Data == "" {
		errs = append(errs, errors.New("--data must not be empty"))
	}
	var err error
	if cfg.pingRate, cfg.pingBurst, err = parseRate(cfg.DevicePingRate); err != nil {
		errs = append(errs, fmt.Errorf("--device-ping-rate %q: %v", cfg.DevicePingRate, err))
	}
	if cfg.LogFormat != "json" && cfg.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("--log-format %q: must be json or text", cfg.LogFormat))
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"--apns-rate", cfg.APNsRate}, {"--fcm-rate", cfg.FCMRate}} {
		if !(r.v >= 1 && r.v <= 1e6) {
			errs = append(errs, fmt.Errorf("%s %v: must be between 1 and 1000000", r.name, r.v))
		}
	}
	cfg.apnsRate, cfg.fcmRate = rate.Limit(cfg.APNsRate), rate.Limit(cfg.FCMRate)
	if cfg.PushConcurrency < 1 || cfg.PushConcurrency > 10000 {
		errs = append(errs, fmt.Errorf("--push-concurrency %d: must be between 1 and 10000", cfg.PushConcurrency))
	}
	for _, u := range []struct{ name, v string }{{"--apns-url", cfg.APNsURL}, {"--fcm-url", cfg.FCMURL}} {
		if u.v == "" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q: must be an http(s) URL", u.name, u.v))
		} else if u.name == "--apns-url" && strings.Trim(p.Path, "/") != "" {
			errs = append(errs, fmt.Errorf("--apns-url %q: no path (apns2 adds /3/device/…)", u.v))
		}
	}
	if cfg.ShutdownDelay < 0 || cfg.ShutdownDelay > time.Minute {
		errs = append(errs, fmt.Errorf("--shutdown-delay %v: must be between 0 and 1m", cfg.ShutdownDelay))
	}
	if cfg.GCFloorMB < 0 || cfg.GCFloorMB > 1<<16 {
		errs = append(errs, fmt.Errorf("--gc-floor-mb %d: must be between 0 and 65536", cfg.GCFloorMB))
	}
	if cfg.FlushInterval < 10*time.Millisecond || cfg.FlushInterval > time.Minute {
		errs = append(errs, fmt.Errorf("--flush-interval %v: must be between 10ms and 1m", cfg.FlushInterval))
	}
	return errors.Join(errs...)
}

// parseRate reads RATE/UNIT,burst=N; "0" disables the limit.
func parseRate(s string) (rate.Limit, int, error) {
	if strings.TrimSpace(s) == "0" {
		return 0, 0, nil
	}
	spec, burstPart, hasBurst := strings.Cut(s, ",")
	num, unit, found := strings.Cut(spec, "/")
	if !found {
		return 0, 0, errors.New("want RATE/UNIT,burst=N such as 1/s,burst=20")
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 || n > 1e6 {
		return 0, 0, errors.New("RATE must be a positive number")
	}
	var per time.Duration
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	default:
		return 0, 0, errors.New("UNIT must be s or m")
	}
	burst := max(1, int(n))
	if hasBurst {
		b, found := strings.CutPrefix(burstPart, "burst=")
		v, err := strconv.Atoi(b)
		if !found || err != nil || v < 1 || v > 1e6 {
			return 0, 0, errors.New("burst must be burst=N with N ≥ 1")
		}
		burst = v
	}
	return rate.Limit(n / per.Seconds()), burst, nil
}

// parseRedisURL reads --redis: redis://HOST:PORT, with more nodes after
// commas (redis://a:7000,b:7000); the scheme may be left out. Any nodes
// of the cluster will do: the client learns the rest from them. TLS
// (rediss://), users and databases are refused, since a cluster has no
// databases and the rest is not supported yet.
func parseRedisURL(s string) ([]string, error) {
	rest, ok := strings.CutPrefix(s, "redis://")
	if !ok && strings.Contains(s, "://") {
		return nil, errors.New("must start with redis:// (rediss:// is not supported)")
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return nil, errors.New("names no node: redis://HOST:PORT[,HOST:PORT…]")
	}
	var out []string
	for _, hp := range strings.Split(rest, ",") {
		if strings.ContainsAny(hp, "@/?# ") {
			return nil, fmt.Errorf("%q: only HOST:PORT, without user, path or options", hp)
		}
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", hp, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q: port must be 1 to 65535", hp)
		}
		if host == "" {
			return nil, fmt.Errorf("%q: no host", hp)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}
