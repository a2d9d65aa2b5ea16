package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
	"github.com/hotzone/hotzone/store"
)

// env is one API over a real bbolt file in a temp dir.
type env struct {
	t        *testing.T
	dir      string
	db       *store.DB
	srv      *Server
	engine   *push.Engine
	operator string
	opts     Options
	// stop ends the background loops (dispatcher, expiry) and waits.
	stop func()
}

const testOperatorKey = "hzo_test-operator-key"

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), opts: opts}
	e.open()
	t.Cleanup(func() {
		if e.db != nil {
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
	db, err := store.Open(e.dir, store.Options{Now: e.opts.Now})
	if err != nil {
		e.t.Fatalf("open: %v", err)
	}
	if _, err := db.EnsureOperatorKey(testOperatorKey); err != nil {
		e.t.Fatalf("operator key: %v", err)
	}
	e.db = db
	e.operator = testOperatorKey
	ctx, cancel := context.WithCancel(context.Background())
	disp := push.NewDispatcher(db, func(string, hotzone.Provider) push.Sender { return push.DryRun{Now: e.opts.Now} }, push.DispatcherOptions{Now: e.opts.Now})
	e.engine = push.NewEngine(ctx, db, push.EngineOptions{Now: e.opts.Now, Wake: disp.Wake})
	var wg sync.WaitGroup
	wg.Go(func() { disp.Run(ctx) })
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

// do sends a request; body may be nil, a string (raw) or a value to marshal.
func (e *env) do(method, path, key string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(buf)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
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

// fixedClock is a settable clock for tests.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }
