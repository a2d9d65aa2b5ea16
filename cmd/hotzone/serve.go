package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/api"
	"github.com/hotzone/hotzone/hook"
	"github.com/hotzone/hotzone/hook/deliver"
	"github.com/hotzone/hotzone/push"
	"github.com/hotzone/hotzone/store/bolt"
	"github.com/hotzone/hotzone/store/redis"
)

// shutdownGrace bounds how long in-flight requests may take after SIGTERM.
const shutdownGrace = 15 * time.Second

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServeFlags(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, errFlagHelp) {
			return nil
		}
		return err
	}
	// Request lines are gathered and written a batch at a time; other
	// lines are written at once.
	logw := newLogWriter(stderr)
	defer logw.Flush()
	var (
		handler   slog.Handler = slog.NewJSONHandler(logw.now(), nil)
		accessLog io.Writer    = logw
	)
	if cfg.LogFormat == "text" {
		handler, accessLog = slog.NewTextHandler(logw.now(), nil), nil
	}
	log := slog.New(handler)

	// The address is taken first: a start that cannot bind leaves no new
	// data directory behind.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return listenError(cfg.Addr, err)
	}
	defer ln.Close()
	db, err := openStorage(ctx, cfg, getenv)
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("close database", "err", err)
		}
	}()
	// Opening read every device and position once; what that left on the
	// heap is garbage now, and would otherwise stay resident until the
	// scavenger got to it, minutes later.
	debug.FreeOSMemory()
	// The runtime reads GOGC from the process's own environment.
	defer startGCFloor(uint64(cfg.GCFloorMB)<<20, os.Getenv("GOGC"))()
	generated, err := db.EnsureOperatorKey(ctx, getenv("HOTZONE_OPERATOR_KEY"))
	if err != nil {
		return err
	}
	if generated != "" {
		fmt.Fprintf(stdout, "operator key (shown once; only its hash is kept): %s\n", generated)
	}

	// Background work runs on its own context: on SIGTERM the HTTP server
	// drains first, then the loops finish their round and stop.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	roots, err := rootCAs(cfg.PushCAFile)
	if err != nil {
		return err
	}
	reg, metricsHandler := newRegistry(db)
	pushMetrics := push.NewMetrics(reg)
	// With several nodes, the per-brand send rates are the service's.
	quota, _ := db.(push.SendQuota)
	senders := push.NewSenders(db, push.SendersOptions{APNsURL: cfg.APNsURL, FCMURL: cfg.FCMURL, RootCAs: roots,
		APNsRate: cfg.apnsRate, FCMRate: cfg.fcmRate, Quota: quota, Logger: log, Bg: bg})
	hooks := deliver.New(db, deliver.Options{Logger: log, PerHook: cfg.WebhookConcurrency,
		Client: hook.NewClient(hook.ClientOptions{AllowPrivate: cfg.WebhookAllowPrivate})})
	disp := push.NewDispatcher(db, senders.For, push.DispatcherOptions{Logger: log, Concurrency: cfg.PushConcurrency, Lease: cfg.PushLease, Metrics: pushMetrics,
		WakeHooks: hooks.Wake})
	engine := push.NewEngine(bg, db, push.EngineOptions{Logger: log, Wake: disp.Wake, Metrics: pushMetrics, PingRate: cfg.pingRate, PingBurst: cfg.pingBurst,
		WakeHooks: hooks.Wake})
	var stopping atomic.Bool
	ready := func() error {
		switch {
		case stopping.Load():
			return errors.New("shutting down")
		case !disp.Running():
			return errors.New("dispatcher not running")
		}
		return nil
	}
	srv := api.New(db, engine, api.Options{Logger: log, AccessLog: accessLog, Ready: ready, CheckTokenURI: senders.CheckTokenURI,
		Metrics: api.NewMetrics(reg), MetricsHandler: metricsHandler, WebhookAllowPrivate: cfg.WebhookAllowPrivate, WakeHooks: hooks.Wake})
	if cfg.Demo {
		if err := seedDemo(ctx, db, srv, cfg.Data, ln.Addr(), selfCommand(), stdout); err != nil {
			return err
		}
	}

	// Events that ended while the node was down still count visits.
	if err := engine.LoadAttribution(ctx); err != nil {
		return fmt.Errorf("load attribution windows: %w", err)
	}
	var wg sync.WaitGroup
	if b, ok := db.(*bolt.DB); ok {
		wg.Go(func() {
			b.RunWriteBehind(bg, cfg.FlushInterval, func(err error) { log.Error("write-behind", "err", err) })
		})
	}
	wg.Go(func() { disp.Run(bg) })
	wg.Go(func() { hooks.Run(bg) })
	wg.Go(func() { logw.Run(bg) })
	wg.Go(func() { engine.RunExpiry(bg, time.Second) })
	// History past each brand's retention_days goes, in small steps.
	wg.Go(func() {
		push.RunPrune(bg, db, push.PruneEvery, func(err error) { log.Error("prune history", "err", err) })
	})
	// Visits of devices gone silent time out within presence_ttl_s plus
	// this.
	wg.Go(func() { engine.RunPresence(bg, 5*time.Second) })

	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
	}
	hs.RegisterOnShutdown(srv.CloseStreams)
	if cfg.DebugAddr != "" {
		dbg, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer dbg.Close()
		fmt.Fprintf(stdout, "profiles on http://%s/debug/pprof/\n", dbg.Addr())
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	select {
	case err := <-serveErr:
		stopBG()
		wg.Wait()
		engine.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	stopping.Store(true)
	if cfg.ShutdownDelay > 0 {
		// Still serving, but not ready: the load balancer takes us out
		// of rotation before the listener closes.
		select {
		case <-time.After(cfg.ShutdownDelay):
		case err := <-serveErr:
			log.Error("serve", "err", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	err = hs.Shutdown(sctx)
	stopBG()
	wg.Wait()
	engine.Wait()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// openStorage is the one place a backend is picked: the Redis Cluster
// with --redis, else bbolt in the data directory.
func openStorage(ctx context.Context, cfg *serveConfig, getenv func(string) string) (hotzone.Storage, error) {
	if cfg.Redis != "" {
		env := getenv("HOTZONE_SECRET_KEY")
		if env == "" {
			return nil, errors.New("--redis needs HOTZONE_SECRET_KEY, the same on every node (openssl rand -base64 32): every node must read the push credentials the others stored")
		}
		key, err := decodeKey(env)
		if err != nil {
			return nil, fmt.Errorf("HOTZONE_SECRET_KEY: %w", err)
		}
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		db, err := redis.Open(octx, cfg.redisAddrs, redis.Options{SecretKey: key, Prefix: cfg.RedisPrefix,
			FlushInterval: cfg.FlushInterval, WaitReplicas: cfg.RedisWait, WaitTimeout: cfg.RedisWaitTime,
			StateCache: cmp.Or(cfg.RedisStates, -1)})
		if err != nil {
			return nil, fmt.Errorf("%w\nIs the Redis Cluster at --redis %s up and reachable?", err, cfg.Redis)
		}
		return db, nil
	}
	key, err := secretKey(getenv("HOTZONE_SECRET_KEY"), cfg.Data)
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(cfg.Data, bolt.Options{SecretKey: key})
	if errors.Is(err, bolt.ErrLocked) {
		return nil, fmt.Errorf("another hotzone process is using the data directory %s: stop it, or give this one its own with --data", cfg.Data)
	}
	return db, err
}

// listenError says what to do when the address cannot be had: most often
// another server (the demo, say) holds it.
func listenError(addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listen on %s: %w\nAnother program holds that address (another hotzone serve?): stop it, or listen elsewhere with --addr, e.g. --addr :8081", addr, err)
	}
	return fmt.Errorf("listen on %s: %w\nChoose the address to listen on with --addr, e.g. --addr :8081", addr, err)
}

// rootCAs is the system pool plus the extra CA file, if any.
func rootCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil // the system pool
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--push-ca-file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--push-ca-file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// demoFile keeps the demo brand's keys in the data dir so a restart with
// --demo shows them again; it is demo data, never a real brand's.
const demoFile = "demo-keys.json"

type demoKeys struct {
	BrandID    string `json:"brand_id"`
	AdminKey   string `json:"admin_key"`
	AppKey     string `json:"app_key"`
	ManagerKey string `json:"manager_key"`
	StoreID    string `json:"store_id"`
}

// seedDemo creates the demo brand on first use, through the same public
// API a client would use, and prints its keys, its pages and a simulate
// command (run by prog) that walks devices into the tablet's store. The
// demo brand has no quiet hours, so the demo shows notifications at any
// hour of the evening too.
func seedDemo(ctx context.Context, db hotzone.Brands, srv http.Handler, dataDir string, addr net.Addr, prog string, out io.Writer) error {
	path := filepath.Join(dataDir, demoFile)
	var keys demoKeys
	if buf, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(buf, &keys); err != nil {
			return fmt.Errorf("demo: read %s: %w", path, err)
		}
	} else {
		br, adminKey, appKey, err := db.CreateBrand(ctx, "Demo Donuts")
		if err != nil {
			return err
		}
		keys = demoKeys{BrandID: br.ID, AdminKey: adminKey, AppKey: appKey}
		if err := call(srv, "PATCH", "/v1/policy", adminKey, []byte(`{"quiet_hours":null}`), nil); err != nil {
			return fmt.Errorf("demo: policy: %w", err)
		}
		if err := call(srv, "POST", "/v1/stores/import", adminKey, hotzone.DemoStores, nil); err != nil {
			return fmt.Errorf("demo: import stores: %w", err)
		}
		var list struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		if err := call(srv, "GET", "/v1/stores?limit=1", adminKey, nil, &list); err != nil || len(list.Items) == 0 {
			return fmt.Errorf("demo: list stores: %v", err)
		}
		keys.StoreID = list.Items[0].ID
		var mk struct {
			ManagerKey string `json:"manager_key"`
		}
		if err := call(srv, "POST", "/v1/stores/"+keys.StoreID+"/manager-keys", adminKey, []byte(`{"label":"demo tablet"}`), &mk); err != nil {
			return fmt.Errorf("demo: manager key: %w", err)
		}
		keys.ManagerKey = mk.ManagerKey
		buf, _ := json.MarshalIndent(keys, "", "  ")
		if err := os.WriteFile(path, buf, 0o600); err != nil {
			return fmt.Errorf("demo: save keys: %w", err)
		}
	}
	base := "http://" + addr.String()
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		base = fmt.Sprintf("http://localhost:%d", tcp.Port)
	}
	fmt.Fprintf(out, "demo brand %s (Demo Donuts), no quiet hours, push in dry run\n"+
		"  admin key:   %s\n  app key:     %s\n  manager key: %s (store %s)\n"+
		"  admin page:  %s/admin#key=%s\n  tablet:      %s/tablet#key=%s\n"+
		"Open the tablet link, press Start live event, and walk devices into store %s with:\n"+
		"  %s simulate --url %s --admin-key %s --store %s --devices 200 --rate 50 --duration 5m\n",
		keys.BrandID, keys.AdminKey, keys.AppKey, keys.ManagerKey, keys.StoreID,
		base, keys.AdminKey, base, keys.ManagerKey,
		keys.StoreID, prog, base, keys.AdminKey, keys.StoreID)
	return nil
}

// selfCommand is how to run this program again from a shell: "go run
// ./cmd/hotzone" when it was built by go run (or go test) into a
// temporary directory, else the name it was started by.
func selfCommand() string {
	if exe, err := os.Executable(); err == nil && strings.Contains(filepath.ToSlash(exe), "/go-build") {
		return "go run ./cmd/hotzone"
	}
	if len(os.Args) > 0 && os.Args[0] != "" {
		return os.Args[0]
	}
	return "hotzone"
}

// call runs one request through the handler in-process.
func call(h http.Handler, method, path, key string, body []byte, out any) error {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
	}
	if out != nil {
		return json.Unmarshal(rec.Body.Bytes(), out)
	}
	return nil
}

// debugServer serves Go's profiles on a listener of its own, apart from
// the API: what perf cannot name (the heap, where goroutines wait) on a
// running server, for the operator only.
type debugServer struct {
	ln net.Listener
	hs *http.Server
}

func serveDebug(addr string, log *slog.Logger) (*debugServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	d := &debugServer{ln: ln, hs: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := d.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("debug server", "err", err)
		}
	}()
	return d, nil
}

func (d *debugServer) Addr() net.Addr { return d.ln.Addr() }

func (d *debugServer) Close() error { return d.hs.Close() }
