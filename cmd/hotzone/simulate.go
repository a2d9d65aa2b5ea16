package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// `hotzone simulate` is the load generator and the one-minute demo: it
// registers devices around a brand's stores, walks them about and pings
// the public API at a steady rate, then prints what the server answered.
// It talks to the server only over HTTP, like any client would.

// simConfig is every setting of `hotzone simulate`.
type simConfig struct {
	URL        string
	AdminKey   string
	AppKey     string
	Store      string
	Devices    int
	Rate       float64
	DeviceRate float64
	Duration   time.Duration
	Batch      int
	Seed       int64
	Timeout    time.Duration
	JSON       bool

	base *url.URL
}

// simEnvName is a simulate flag's environment twin: HOTZONE_SIM_ plus the
// flag, so --url never picks up a server's variable by accident.
func simEnvName(flagName string) string { return envName("sim-" + flagName) }

func parseSimFlags(args []string, getenv func(string) string, out io.Writer) (*simConfig, error) {
	cfg := &simConfig{}
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	env := func(name string) string { return " (env " + simEnvName(name) + ")" }
	fs.StringVar(&cfg.URL, "url", "http://localhost:8080", "base URL of the server to load; nothing else is contacted"+env("url"))
	fs.StringVar(&cfg.AdminKey, "admin-key", "", "the brand's admin key (hza_…), required: lists stores and live events; registers devices and pings unless --app-key is given"+env("admin-key"))
	fs.StringVar(&cfg.AppKey, "app-key", "", "the brand's app key (hzp_…), optional: registers devices and pings as the mobile app would"+env("app-key"))
	fs.StringVar(&cfg.Store, "store", "", "walk every device around this one store (its id), so a tablet at that store sees them arrive; empty: around all of the brand's stores"+env("store"))
	fs.IntVar(&cfg.Devices, "devices", 200, "devices to register and walk about"+env("devices"))
	fs.Float64Var(&cfg.Rate, "rate", 50, "pings per second, all devices together; at most --devices × --device-rate"+env("rate"))
	fs.Float64Var(&cfg.DeviceRate, "device-rate", 1, "most pings per second of one device; keep it at or below the server's --device-ping-rate"+env("device-rate"))
	fs.DurationVar(&cfg.Duration, "duration", time.Minute, "how long to ping (registration before is bounded by it too)"+env("duration"))
	fs.IntVar(&cfg.Batch, "batch", 0, "pings per POST /v1/pings/batch, 1–500; 0 sends single POST /v1/pings"+env("batch"))
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed for devices, tokens and paths; the same seed registers the same device ids again"+env("seed"))
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "timeout of each HTTP request"+env("timeout"))
	fs.BoolVar(&cfg.JSON, "json", false, "print the summary as one JSON object on stdout; progress goes to stderr"+env("json"))
	if err := parseWithEnv(fs, args, getenv, simEnvName, out, simulateHelp); err != nil {
		return nil, err
	}
	return cfg, cfg.validate()
}

var simulateHelp = commandHelp{
	head: `Usage: hotzone simulate --admin-key hza_… [flags]

Registers devices around a brand's stores, walks them about and pings a
server at a steady rate, printing pings/s, latency and notifications
every second and a summary at the end. Each flag has an environment
twin, named below.
`,
}

func (cfg *simConfig) validate() error {
	var errs []error
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("--url %q: must be an http(s) URL such as http://localhost:8080", cfg.URL))
	} else {
		u.Path = strings.TrimRight(u.Path, "/")
		cfg.base = u
	}
	switch {
	case cfg.AdminKey == "":
		errs = append(errs, fmt.Errorf("--admin-key is required (or %s): stores are listed with it", simEnvName("admin-key")))
	case !strings.HasPrefix(cfg.AdminKey, "hza_"):
		errs = append(errs, errors.New("--admin-key: not an admin key (those start with hza_)"))
	}
	if cfg.AppKey != "" && !strings.HasPrefix(cfg.AppKey, "hzp_") {
		errs = append(errs, errors.New("--app-key: not an app key (those start with hzp_)"))
	}
	if cfg.Devices < 1 || cfg.Devices > 1_000_000 {
		errs = append(errs, fmt.Errorf("--devices %d: must be between 1 and 1000000", cfg.Devices))
	}
	if !(cfg.Rate > 0 && cfg.Rate <= 1e6) {
		errs = append(errs, fmt.Errorf("--rate %v: must be more than 0 and at most 1000000 pings per second", cfg.Rate))
	}
	if !(cfg.DeviceRate > 0 && cfg.DeviceRate <= 1000) {
		errs = append(errs, fmt.Errorf("--device-rate %v: must be more than 0 and at most 1000 pings per second", cfg.DeviceRate))
	}
	if cfg.Duration < 100*time.Millisecond || cfg.Duration > 24*time.Hour {
		errs = append(errs, fmt.Errorf("--duration %v: must be between 100ms and 24h", cfg.Duration))
	}
	if cfg.Batch < 0 || cfg.Batch > 500 {
		errs = append(errs, fmt.Errorf("--batch %d: must be between 0 (single pings) and 500", cfg.Batch))
	}
	if cfg.Timeout < 100*time.Millisecond || cfg.Timeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("--timeout %v: must be between 100ms and 5m", cfg.Timeout))
	}
	return errors.Join(errs...)
}

// effectiveRate is --rate held to what the devices may send: a device
// pings at most --device-rate times a second, so the server's per-device
// limit is not what the run measures.
func (cfg *simConfig) effectiveRate(devices int) float64 {
	return min(cfg.Rate, float64(devices)*cfg.DeviceRate)
}

func simulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseSimFlags(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, errFlagHelp) {
			return nil
		}
		return err
	}
	progress := stdout
	if cfg.JSON {
		progress = stderr
	}
	sim := newSimulation(cfg, progress)
	defer sim.client.CloseIdleConnections()
	sum, err := sim.run(ctx)
	if err != nil {
		return err
	}
	if cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		sum.writeText(stdout)
	}
	return sum.verdict()
}

// simulation is one run: its settings, its client and what it counted.
type simulation struct {
	cfg      *simConfig
	pingKey  string // the app key if given, else the admin key
	client   *http.Client
	workers  int
	progress io.Writer
	tty      bool
	stats    simStats
}

func newSimulation(cfg *simConfig, progress io.Writer) *simulation {
	per := max(1, cfg.Batch)
	workers := min(256, max(4, int(math.Ceil(cfg.effectiveRate(cfg.Devices)/float64(per)))))
	tr := &http.Transport{
		// No proxy from the environment: --url is the only server loaded.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          workers + 16,
		MaxIdleConnsPerHost:   workers + 16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
		ForceAttemptHTTP2:     true,
	}
	pingKey := cfg.AdminKey
	if cfg.AppKey != "" {
		pingKey = cfg.AppKey
	}
	return &simulation{
		cfg:     cfg,
		pingKey: pingKey,
		client: &http.Client{
			Transport: tr,
			Timeout:   cfg.Timeout,
			// A redirect could lead anywhere; the run loads --url only.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		workers:  workers,
		progress: progress,
		tty:      isTerminal(progress),
		stats:    newSimStats(),
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// errSimAuth marks an answer that means every further call fails too.
var errSimAuth = errors.New("key refused")

// call sends one request to the server and decodes a 2xx JSON answer into
// out. It returns the status and the Retry-After of a 429.
func (s *simulation) call(ctx context.Context, method, path, key string, body, out any) (int, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return 0, 0, err
		}
		rd = strings.NewReader(string(buf))
	}
	req, err := http.NewRequestWithContext(ctx, method, s.cfg.base.String()+path, rd)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("User-Agent", "hotzone-simulate")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return resp.StatusCode, 0, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return resp.StatusCode, time.Duration(max(1, secs)) * time.Second, nil
	}
	if resp.StatusCode/100 != 2 {
		var p struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(raw, &p)
		if p.Detail == "" {
			p.Detail = strings.TrimSpace(string(raw[:min(len(raw), 200)]))
		}
		err := fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, p.Detail)
		if resp.StatusCode == 401 || resp.StatusCode == 403 {
			err = fmt.Errorf("%w: %w", errSimAuth, err)
		}
		return resp.StatusCode, 0, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, 0, fmt.Errorf("%s %s: bad answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, 0, nil
}

// run is the whole simulation: check the keys, read the stores, register
// the devices, ping for --duration. SIGINT (ctx) ends any phase early and
// still answers a summary of what was done.
func (s *simulation) run(ctx context.Context) (*simSummary, error) {
	cfg := s.cfg
	sum := &simSummary{URL: cfg.base.String(), Seed: cfg.Seed, Batch: cfg.Batch,
		DeviceIDPrefix: fmt.Sprintf("sim-%d-", cfg.Seed), Platforms: map[string]int{}}
	brand, err := s.checkKeys(ctx)
	if err != nil {
		return nil, err
	}
	sum.Brand = brand
	stores, err := s.fetchStores(ctx)
	if err != nil {
		return nil, err
	}
	sum.Stores = len(stores)
	liveAtStart := 0
	for _, st := range stores {
		if st.Live {
			liveAtStart++
		}
	}
	where := fmt.Sprintf("%d stores, %d with a live event", len(stores), liveAtStart)
	if cfg.Store != "" {
		where = "around store " + cfg.Store
		if liveAtStart > 0 {
			where += ", live now"
		}
	}
	fmt.Fprintf(s.progress, "%s (%s): %s; registering %d devices (%s0 … %s%d)\n",
		brand.Name, brand.ID, where, cfg.Devices, sum.DeviceIDPrefix, sum.DeviceIDPrefix, cfg.Devices-1)

	devs, err := s.register(ctx, stores, sum)
	if err != nil {
		return nil, err
	}
	sum.TargetRate = cfg.effectiveRate(len(devs))
	if len(devs) > 0 && ctx.Err() == nil {
		fmt.Fprintf(s.progress, "registered %d devices in %.1fs; pinging at %.4g/s for %v\n", len(devs), sum.RegisterS, sum.TargetRate, cfg.Duration)
		if cfg.Rate > sum.TargetRate {
			fmt.Fprintf(s.progress, "(--rate %.4g held to %d devices × --device-rate %.4g)\n", cfg.Rate, len(devs), cfg.DeviceRate)
		}
		s.pingPhase(ctx, devs, sum)
	}
	sum.Interrupted = ctx.Err() != nil
	// The events live at the end are what a tablet shows now; one
	// started during the run counts. Asked even after SIGINT, briefly.
	sum.LiveEvents = -1
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(cfg.Timeout, 5*time.Second))
	defer cancel()
	if live, err := s.liveStores(lctx); err == nil {
		sum.LiveEvents = len(live)
	} else {
		s.stats.countError("live events after the run: " + errKey(0, err))
	}
	s.stats.fill(sum)
	return sum, nil
}

// checkKeys asks GET /v1/me for each key, so a wrong key or URL fails
// before any device is registered.
func (s *simulation) checkKeys(ctx context.Context) (simBrand, error) {
	type me struct {
		Kind  string   `json:"kind"`
		Brand simBrand `json:"brand"`
	}
	var admin, app me
	if _, _, err := s.call(ctx, "GET", "/v1/me", s.cfg.AdminKey, nil, &admin); err != nil {
		if errors.Is(err, errSimAuth) {
			return simBrand{}, fmt.Errorf("--admin-key: the server at %s does not accept it (%v)", s.cfg.base, err)
		}
		return simBrand{}, fmt.Errorf("--url %s: %w", s.cfg.base, err)
	}
	if admin.Kind != "admin" {
		return simBrand{}, fmt.Errorf("--admin-key: the server says it is a %q key, not an admin key", admin.Kind)
	}
	if s.cfg.AppKey != "" {
		if _, _, err := s.call(ctx, "GET", "/v1/me", s.cfg.AppKey, nil, &app); err != nil {
			return simBrand{}, fmt.Errorf("--app-key: %w", err)
		}
		if app.Kind != "app" || app.Brand.ID != admin.Brand.ID {
			return simBrand{}, fmt.Errorf("--app-key: not an app key of brand %s", admin.Brand.ID)
		}
	}
	return admin.Brand, nil
}

// fetchStores lists every store of the brand and marks those with a live
// event; a brand without stores has nothing to simulate.
func (s *simulation) fetchStores(ctx context.Context) ([]*simStore, error) {
	type storeJSON struct {
		ID       string `json:"id"`
		Timezone string `json:"timezone"`
		Fence    struct {
			Circle *struct {
				Lat     float64 `json:"lat"`
				Lon     float64 `json:"lon"`
				RadiusM float64 `json:"radius_m"`
			} `json:"circle"`
		} `json:"fence"`
		BBox []float64 `json:"bbox"`
	}
	var stores []*simStore
	byID := map[string]*simStore{}
	const maxPages = 1000 // a million stores; the loop ends whatever the server answers
	cursor := ""
	for range maxPages {
		var page struct {
			Items      []storeJSON `json:"items"`
			NextCursor string      `json:"next_cursor"`
		}
		if _, _, err := s.call(ctx, "GET", "/v1/stores?limit=1000&cursor="+url.QueryEscape(cursor), s.cfg.AdminKey, nil, &page); err != nil {
			return nil, fmt.Errorf("list stores: %w", err)
		}
		for _, it := range page.Items {
			st := &simStore{ID: it.ID, Timezone: it.Timezone}
			switch {
			case it.Fence.Circle != nil:
				st.Lat, st.Lon, st.RadiusM = it.Fence.Circle.Lat, it.Fence.Circle.Lon, it.Fence.Circle.RadiusM
			case len(it.BBox) == 4:
				st.Lat, st.Lon, st.RadiusM = bboxCircle(it.BBox)
			default:
				continue
			}
			stores = append(stores, st)
			byID[st.ID] = st
		}
		if page.NextCursor == "" || page.NextCursor == cursor {
			break
		}
		cursor = page.NextCursor
	}
	if len(stores) == 0 {
		return nil, errors.New("the brand has no stores to walk to: import some first (hotzone serve --demo seeds 59)")
	}
	if s.cfg.Store != "" {
		st := byID[s.cfg.Store]
		if st == nil {
			return nil, fmt.Errorf("--store %q: the brand has no such store (or its fence is neither a circle nor a polygon)", s.cfg.Store)
		}
		stores, byID = []*simStore{st}, map[string]*simStore{st.ID: st}
	}
	live, err := s.liveStores(ctx)
	if err != nil {
		return nil, fmt.Errorf("list live events: %w", err)
	}
	for id := range live {
		if st := byID[id]; st != nil {
			st.Live = true
		}
	}
	return stores, nil
}

// liveStores is the set of the brand's stores with a live event.
func (s *simulation) liveStores(ctx context.Context) (map[string]bool, error) {
	live := map[string]bool{}
	const maxPages = 1000 // the loop ends whatever the server answers
	cursor := ""
	for range maxPages {
		var page struct {
			Items []struct {
				StoreID string `json:"store_id"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if _, _, err := s.call(ctx, "GET", "/v1/events?status=live&limit=1000&cursor="+url.QueryEscape(cursor), s.cfg.AdminKey, nil, &page); err != nil {
			return nil, err
		}
		for _, ev := range page.Items {
			live[ev.StoreID] = true
		}
		if page.NextCursor == "" || page.NextCursor == cursor {
			break
		}
		cursor = page.NextCursor
	}
	return live, nil
}

// bboxCircle is a circle inside a polygon fence's bounding box: centred
// on the box, with 40% of its smaller side. For an odd shape some of it
// lies outside the fence, which only makes some visits near misses.
func bboxCircle(b []float64) (lat, lon, radiusM float64) {
	w, s, e, n := b[0], b[1], b[2], b[3]
	if w > e { // across the antimeridian
		e += 360
	}
	lat, lon = (s+n)/2, math.Remainder((w+e)/2, 360)
	const rad = math.Pi / 180
	width := (e - w) * rad * earthRadiusM * math.Cos(lat*rad)
	height := (n - s) * rad * earthRadiusM
	return lat, lon, max(10, 0.4*min(width, height))
}

// simDevice is one registered device. Its walker belongs to whoever set
// busy; until is the earliest it may ping again (its own rate, or the
// server's Retry-After).
type simDevice struct {
	id    string
	w     *walker
	busy  atomic.Bool
	until atomic.Int64 // unix nanoseconds
}

type simPush struct {
	Provider string `json:"provider"`
	Token    string `json:"token"`
}

type simDeviceBody struct {
	Platform string   `json:"platform"`
	Push     *simPush `json:"push"`
	OptIn    bool     `json:"opt_in"`
	Timezone string   `json:"timezone"`
	Locale   string   `json:"locale"`
}

var (
	simZones   = []string{"America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney", "UTC"}
	simLocales = []string{"en-US", "en-GB", "de-DE", "fr-FR", "es-US", "ja-JP"}
)

// newSimDevice makes device i of the run; everything about it follows
// from the seed and i, so a rerun registers the same devices again.
func newSimDevice(seed int64, i int, stores, live []*simStore, horizon time.Duration, now time.Time) (*simDevice, simDeviceBody) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(i)))
	st := stores[rng.IntN(len(stores))]
	if len(live) > 0 && rng.Float64() < 1.0/3 {
		// A third gather where an event is live, so a short demo shows
		// notifications being queued.
		st = live[rng.IntN(len(live))]
	}
	b := simDeviceBody{OptIn: rng.Float64() < 0.9, Timezone: st.Timezone, Locale: simLocales[rng.IntN(len(simLocales))]}
	if b.Timezone == "" || rng.Float64() < 0.3 {
		b.Timezone = simZones[rng.IntN(len(simZones))]
	}
	if rng.Float64() < 0.55 {
		tok := make([]byte, 32)
		for j := range tok {
			tok[j] = byte(rng.Uint32())
		}
		b.Platform, b.Push = "ios", &simPush{Provider: "apns", Token: hex.EncodeToString(tok)}
	} else {
		b.Platform, b.Push = "android", &simPush{Provider: "fcm", Token: fcmToken(rng)}
	}
	d := &simDevice{id: fmt.Sprintf("sim-%d-%d", seed, i), w: newWalker(rng, st, horizon, now)}
	return d, b
}

// fcmToken looks like a real registration token: an instance id, a colon
// and a long opaque part.
func fcmToken(rng *rand.Rand) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, 0, 163)
	for range 22 {
		b = append(b, alphabet[rng.IntN(len(alphabet))])
	}
	b = append(b, ":APA91b"...)
	for range 134 {
		b = append(b, alphabet[rng.IntN(len(alphabet))])
	}
	return string(b)
}

// register PUTs every device, a few at a time, within --duration. A
// refused key or body stops the run; a failed call only loses that device.
func (s *simulation) register(ctx context.Context, stores []*simStore, sum *simSummary) ([]*simDevice, error) {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Duration)
	defer cancel()
	var live []*simStore
	for _, st := range stores {
		if st.Live {
			live = append(live, st)
		}
	}
	var (
		mu      sync.Mutex
		devs    = make([]*simDevice, s.cfg.Devices)
		fatal   error
		next    atomic.Int64
		workers = min(32, s.cfg.Devices)
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for rctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= s.cfg.Devices {
					return
				}
				d, body := newSimDevice(s.cfg.Seed, i, stores, live, s.cfg.Duration, start)
				// Finish a started call even on SIGINT, so the count is
				// what the server holds; the client timeout bounds it.
				code, _, err := s.call(context.WithoutCancel(rctx), "PUT", "/v1/devices/"+d.id, s.pingKey, body, nil)
				mu.Lock()
				switch {
				case err == nil:
					devs[i] = d
					sum.Platforms[body.Platform]++
				case code/100 == 4:
					if fatal == nil {
						fatal = fmt.Errorf("register devices: %w", err)
					}
					cancel()
				default:
					sum.DevicesFailed++
					s.stats.countError("register: " + errKey(code, err))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sum.RegisterS = round(time.Since(start).Seconds(), 2)
	if fatal != nil {
		return nil, fatal
	}
	out := devs[:0]
	for _, d := range devs {
		if d != nil {
			out = append(out, d)
		}
	}
	sum.Devices = len(out)
	if len(out) == 0 && ctx.Err() == nil {
		return nil, fmt.Errorf("no device could be registered: %v", s.stats.errs)
	}
	if len(out) < s.cfg.Devices && ctx.Err() == nil && rctx.Err() != nil {
		fmt.Fprintf(s.progress, "registration ran out of --duration: going on with %d devices\n", len(out))
	}
	return out, nil
}

// errKey names a failure for the summary's error counts.
func errKey(code int, err error) string {
	var ne net.Error
	switch {
	case code != 0:
		return "http_" + strconv.Itoa(code)
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "network"
	}
}

// pingPhase paces pings for --duration: one pacer hands devices out in
// turn, skipping those that pinged too recently, are still waiting for an
// answer or were told to retry later; workers send. The pacer does not
// catch up on slots it fell behind on by more than a second, so a slow
// server lowers the achieved rate instead of drawing a burst.
func (s *simulation) pingPhase(ctx context.Context, devs []*simDevice, sum *simSummary) {
	cfg := s.cfg
	failing, stopFailing := context.WithCancelCause(ctx)
	defer stopFailing(nil)
	pctx, cancel := context.WithTimeout(failing, cfg.Duration)
	defer cancel()
	per := max(1, cfg.Batch)
	interval := time.Duration(float64(time.Second) * float64(per) / sum.TargetRate)
	minGap := time.Duration(0.9 * float64(time.Second) / cfg.DeviceRate) // a little slack for scheduling jitter
	start := time.Now()
	s.stats.start(start, len(devs))
	for _, d := range devs {
		d.w.last = start // nobody walked while the others were registered
	}

	jobs := make(chan []*simDevice, s.workers)
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() {
			for batch := range jobs {
				s.send(context.WithoutCancel(ctx), batch, minGap)
			}
		})
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case now := <-t.C:
				s.printProgress(now)
				if why := s.stats.failingNow(); why != "" {
					stopFailing(errors.New(why))
				}
			}
		}
	}()

	next := 0
	pick := func(now time.Time) []*simDevice {
		out := make([]*simDevice, 0, per)
		for tries := 0; tries < len(devs) && len(out) < per; tries++ {
			d := devs[next]
			next = (next + 1) % len(devs)
			if d.until.Load() > now.UnixNano() || !d.busy.CompareAndSwap(false, true) {
				continue
			}
			out = append(out, d)
		}
		return out
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	due := start
pace:
	for {
		now := time.Now()
		if wait := due.Sub(now); wait > 0 {
			timer.Reset(wait)
			select {
			case <-pctx.Done():
				break pace
			case now = <-timer.C:
			}
		}
		if pctx.Err() != nil {
			break
		}
		if now.Sub(due) > time.Second {
			due = now
		}
		due = due.Add(interval)
		batch := pick(now)
		if len(batch) == 0 {
			// Every device is busy or waiting: look again a little later
			// rather than scanning them all at the full rate.
			due = now.Add(max(interval, 10*time.Millisecond))
			continue
		}
		select {
		case jobs <- batch:
		case <-pctx.Done():
			for _, d := range batch {
				d.busy.Store(false)
			}
			break pace
		}
	}
	close(jobs)
	wg.Wait() // in-flight requests finish, bounded by --timeout
	close(stopProgress)
	<-progressDone
	s.printProgress(time.Now())
	if s.tty {
		fmt.Fprintln(s.progress)
	}
	sum.DurationS = round(time.Since(start).Seconds(), 2)
	if ctx.Err() == nil && context.Cause(failing) != nil {
		sum.StoppedEarly = context.Cause(failing).Error()
		fmt.Fprintf(s.progress, "stopped early: %s\n", sum.StoppedEarly)
	}
}

type simPing struct {
	DeviceID  string  `json:"device_id"`
	Lat       float64 `json:"lat"`
	Lon       float64 `json:"lon"`
	AccuracyM float64 `json:"accuracy_m"`
	TS        string  `json:"ts"`
}

// simAnswer is a ping's answer or, in a batch, its problem.
type simAnswer struct {
	Inside []struct {
		StoreID string `json:"store_id"`
	} `json:"inside"`
	LiveEvents []struct {
		EventID string `json:"event_id"`
		StoreID string `json:"store_id"`
	} `json:"live_events"`
	Notifications []struct {
		EventID string `json:"event_id"`
		Status  string `json:"status"`
		Reason  string `json:"reason"`
	} `json:"notifications"`
	Status int `json:"status"` // a problem's
}

// send pings for the devices of one job, then frees them.
func (s *simulation) send(ctx context.Context, batch []*simDevice, minGap time.Duration) {
	now := time.Now()
	pings := make([]simPing, len(batch))
	for i, d := range batch {
		d.w.advance(now)
		lat, lon, acc := d.w.fix()
		pings[i] = simPing{DeviceID: d.id, Lat: lat, Lon: lon, AccuracyM: acc, TS: now.UTC().Format(time.RFC3339Nano)}
	}
	retry := make([]time.Duration, len(batch))
	if s.cfg.Batch == 0 {
		var ans simAnswer
		code, ra, err := s.call(ctx, "POST", "/v1/pings", s.pingKey, pings[0], &ans)
		latency := time.Since(now)
		switch {
		case code == http.StatusTooManyRequests:
			retry[0] = ra
			s.stats.record(latency, []simAnswer{{Status: code}}, "")
		case err != nil:
			s.stats.record(latency, []simAnswer{{Status: -1}}, errKey(code, err))
		default:
			s.stats.record(latency, []simAnswer{ans}, "")
		}
	} else {
		var res struct {
			Results []simAnswer `json:"results"`
		}
		code, ra, err := s.call(ctx, "POST", "/v1/pings/batch", s.pingKey, map[string]any{"pings": pings}, &res)
		latency := time.Since(now)
		answers := make([]simAnswer, len(batch))
		key := ""
		switch {
		case code == http.StatusTooManyRequests:
			for i := range answers {
				answers[i].Status, retry[i] = code, ra
			}
		case err != nil:
			key = errKey(code, err)
			for i := range answers {
				answers[i].Status = -1
			}
		case len(res.Results) != len(batch):
			key = "bad_batch_answer"
			for i := range answers {
				answers[i].Status = -1
			}
		default:
			answers = res.Results
			for i, a := range answers {
				if a.Status == http.StatusTooManyRequests {
					retry[i] = time.Second // a batch slot carries no Retry-After
				}
			}
		}
		s.stats.record(latency, answers, key)
	}
	for i, d := range batch {
		d.until.Store(now.Add(max(minGap, retry[i])).UnixNano())
		d.busy.Store(false)
	}
}

// printProgress writes one line of the last second; on a terminal it
// redraws the same line.
func (s *simulation) printProgress(now time.Time) {
	line := s.stats.tick(now)
	if s.tty {
		fmt.Fprintf(s.progress, "\r%s\x1b[K", line)
		return
	}
	fmt.Fprintln(s.progress, line)
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}
