package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
	"github.com/hotzone/hotzone/store/bolt"
)

// bg is the context of the tests' direct storage calls.
var bg = context.Background()

// env is one API over a real bbolt file in a temp dir.
type env struct {
	t        *testing.T
	dir      string
	db       *bolt.DB
	srv      *Server
	engine   *push.Engine
	operator string
	opts     Options
	// engineOpts are the engine's settings (its clock is opts.Now).
	engineOpts push.EngineOptions
	secret     []byte // the server key, kept across restarts
	// stop ends the background loops (dispatcher, expiry) and waits.
	stop func()
	// manual: no dispatcher loop runs; the test drives disp.Round.
	manual bool
	disp   *push.Dispatcher
	// sends counts what the dry-run sender was asked to send, per
	// notification id, across restarts.
	sendsMu sync.Mutex
	sends   map[string]int
	// senders, when set, replaces the counting dry-run sender (the real
	// APNs/FCM senders in delivery tests).
	senders func(db *bolt.DB) push.SenderFor
}

// newManualEnv is newEnv without a running dispatcher.
func newManualEnv(t *testing.T, opts Options) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), opts: opts, manual: true}
	e.open()
	t.Cleanup(func() {
		e.stop()
		if err := e.db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

// countingDryRun is the real dry-run sender, counting what it is asked
// to send so tests can prove nothing goes out twice.
type countingDryRun struct {
	e *env
	push.DryRun
}

func (c countingDryRun) Send(ctx context.Context, m push.Message) hotzone.Delivery {
	c.e.sendsMu.Lock()
	c.e.sends[m.Notification.ID]++
	c.e.sendsMu.Unlock()
	return c.DryRun.Send(ctx, m)
}

// drain runs dispatcher rounds until the outbox has nothing due.
func (e *env) drain() {
	e.t.Helper()
	for i := 0; i < 10000; i++ {
		n, err := e.disp.Round(context.Background())
		if err != nil {
			e.t.Fatalf("dispatch round: %v", err)
		}
		if n == 0 {
			return
		}
	}
	e.t.Fatal("outbox never drained")
}

const testOperatorKey = "hzo_test-operator-key"

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	return newEngineEnv(t, opts, push.EngineOptions{})
}

// newEngineEnv is newEnv with the engine's settings (a ping rate, say).
func newEngineEnv(t *testing.T, opts Options, engineOpts push.EngineOptions) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), opts: opts, engineOpts: engineOpts}
	e.open()
	t.Cleanup(func() {
		if e.db != nil && e.stop != nil {
			e.stop()
			if err := e.db.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
	})
	return e
}

func (e *env) open() {
	e.t.Helper()
	if e.secret == nil {
		e.secret = make([]byte, 32)
		_, _ = rand.Read(e.secret)
	}
	db, err := bolt.Open(e.dir, bolt.Options{Now: e.opts.Now, SecretKey: e.secret})
	if err != nil {
		e.t.Fatalf("open: %v", err)
	}
	if _, err := db.EnsureOperatorKey(bg, testOperatorKey); err != nil {
		e.t.Fatalf("operator key: %v", err)
	}
	e.db = db
	e.operator = testOperatorKey
	ctx, cancel := context.WithCancel(context.Background())
	if e.sends == nil {
		e.sends = map[string]int{}
	}
	sender := countingDryRun{e: e, DryRun: push.DryRun{Now: e.opts.Now}}
	senderFor := func(string, hotzone.Provider) push.Sender { return sender }
	if e.senders != nil {
		senderFor = e.senders(db)
	}
	disp := push.NewDispatcher(db, senderFor, push.DispatcherOptions{Now: e.opts.Now})
	e.disp = disp
	engineOpts := e.engineOpts
	engineOpts.Now, engineOpts.Wake = e.opts.Now, disp.Wake
	e.engine = push.NewEngine(ctx, db, engineOpts)
	if err := e.engine.LoadAttribution(bg); err != nil {
		e.t.Fatalf("load attribution: %v", err)
	}
	var wg sync.WaitGroup
	if !e.manual {
		wg.Go(func() { disp.Run(ctx) })
	}
	wg.Go(func() { e.engine.RunExpiry(ctx, 50*time.Millisecond) })
	e.stop = func() {
		cancel()
		wg.Wait()
		e.engine.Wait()
	}
	e.srv = New(db, e.engine, e.opts)
}

// restart closes the database and opens it again from the same dir.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	if err := e.db.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.db = nil
	e.open()
}

type response struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.Body)
	}
}

// do sends a request; body may be nil, a string (raw), bytes or a value
// to marshal.
func (e *env) do(method, path, key string, body any) response {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, e.request(method, path, key, body))
	return response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// must sends a request and fails the test unless it answers want.
func (e *env) must(want int, method, path, key string, body any) response {
	e.t.Helper()
	r := e.do(method, path, key, body)
	if r.Code != want {
		e.t.Fatalf("%s %s = %d, want %d: %s", method, path, r.Code, want, r.Body)
	}
	return r
}

type brandKeys struct {
	ID       string `json:"id"`
	AdminKey string `json:"admin_key"`
	AppKey   string `json:"app_key"`
}

func (e *env) brand(name string) brandKeys {
	e.t.Helper()
	var b brandKeys
	e.must(201, "POST", "/v1/brands", e.operator, map[string]any{"name": name}).decode(e.t, &b)
	return b
}

// uncapped sets a brand's policy so that no quiet hours, interval or
// daily cap holds a device back: counts then do not depend on when a
// test runs. extra fields go in the same PATCH.
func (e *env) uncapped(adminKey string, extra map[string]any) {
	e.t.Helper()
	p := map[string]any{"quiet_hours": nil, "min_interval_s": 0, "daily_cap": 0}
	for k, v := range extra {
		p[k] = v
	}
	e.must(200, "PATCH", "/v1/policy", adminKey, p)
}

func circleStore(name string, lat, lon, radius float64) map[string]any {
	return map[string]any{"name": name, "timezone": "America/New_York", "tags": []string{"test"},
		"fence": map[string]any{"circle": map[string]any{"lat": lat, "lon": lon, "radius_m": radius}}}
}

func (e *env) device(key, id string) {
	e.t.Helper()
	r := e.do("PUT", "/v1/devices/"+id, key, map[string]any{"platform": "ios", "opt_in": true, "timezone": "America/New_York",
		"push": map[string]any{"provider": "apns", "token": tokenFor(id)}})
	if r.Code != 201 && r.Code != 200 {
		e.t.Fatalf("PUT device %s = %d: %s", id, r.Code, r.Body)
	}
}

// tokenFor is a distinct, valid APNs token per device id.
func tokenFor(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

func ping(id string, lat, lon float64) map[string]any {
	return map[string]any{"device_id": id, "lat": lat, "lon": lon, "accuracy_m": 10}
}

// fixedClock is a settable clock for tests, safe to read from the
// server's background loops while the test moves it.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(rfc3339 string) *fixedClock {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		panic(err)
	}
	return &fixedClock{t: t}
}

func (c *fixedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// doWith is do with extra request headers.
func (e *env) doWith(method, path, key string, body any, headers map[string]string) response {
	e.t.Helper()
	var pairs []string
	for k, v := range headers {
		pairs = append(pairs, k, v)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, e.request(method, path, key, body, pairs...))
	return response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
