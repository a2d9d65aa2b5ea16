// Package api is hotzone's HTTP layer: the routes of the contract
// (docs/api.md at the repository root; openapi.json here), strict
// decoding, problem+json errors and the auth middleware. It stays thin:
// handlers decode and validate, call one method of the storage contract
// (hotzone.Storage) or of the service layer (push.Engine), and encode.
// It imports the root package, geo and push, never a storage backend:
// cmd/hotzone picks that.
package api

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
)

const headerRequestID = "X-Request-Id"

// Options are the API's settings; the zero value is usable.
type Options struct {
	// Logger receives every 500 and, without AccessLog, one line per
	// request; discarded when nil.
	Logger *slog.Logger
	// AccessLog, when set, receives the line per request instead, as
	// the same JSON a slog JSON handler writes but formatted by hand:
	// at tens of thousands of requests a second the generic handler cost
	// a ping more than its whole decoding. A buffered writer there saves
	// a write(2) per line too.
	AccessLog io.Writer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Ready reports why the service cannot take traffic yet (or any
	// more), nil when it can; GET /readyz answers 503 with the reason.
	// Nil means always ready.
	Ready func() error
	// CheckTokenURI vets an uploaded service account's token_uri (see
	// push.Senders.CheckTokenURI); nil accepts any http(s) URL.
	CheckTokenURI func(string) error
	// Metrics, when set, counts requests and pings; MetricsHandler serves
	// GET /metrics.
	Metrics        *Metrics
	MetricsHandler http.Handler
	// WebhookAllowPrivate accepts webhook URLs on loopback, private and
	// link-local addresses (--webhook-allow-private).
	WebhookAllowPrivate bool
	// WakeHooks is called after webhook deliveries were queued by hand.
	WakeHooks func()
}

// Server is the HTTP API. It implements http.Handler.
type Server struct {
	db  hotzone.Storage
	log *slog.Logger
	now func() time.Time
	// realClock: now is time.Now, so a time read for a latency can be
	// the request's time too (one clock read, not two).
	realClock bool
	router    *gin.Engine
	engine    *push.Engine
	tzCache   sync.Map // name -> *time.Location
	ready     func() error
	// checkTokenURI: see Options.CheckTokenURI.
	checkTokenURI  func(string) error
	metrics        *Metrics
	metricsHandler http.Handler
	// webhookAllowPrivate, wakeHooks: see Options.
	webhookAllowPrivate bool
	wakeHooks           func()

	// closing is closed at shutdown so that live streams, which never go
	// idle, end and let the HTTP server drain.
	closing   chan struct{}
	closeOnce sync.Once

	access io.Writer // see Options.AccessLog
}

// CloseStreams ends every live stream; call it when shutting down
// (http.Server.RegisterOnShutdown).
func (s *Server) CloseStreams() {
	s.closeOnce.Do(func() { close(s.closing) })
}

// New builds the API over open storage and the service layer built on it.
func New(db hotzone.Storage, engine *push.Engine, opts Options) *Server {
	s := &Server{db: db, engine: engine, log: opts.Logger, now: opts.Now, ready: opts.Ready, checkTokenURI: opts.CheckTokenURI, metrics: opts.Metrics, metricsHandler: opts.MetricsHandler, closing: make(chan struct{}),
		webhookAllowPrivate: opts.WebhookAllowPrivate, wakeHooks: opts.WakeHooks,
		access: opts.AccessLog}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.wakeHooks == nil {
		s.wakeHooks = func() {}
	}
	if s.now == nil {
		s.now, s.realClock = time.Now, true
	}
	gin.SetMode(gin.ReleaseMode)
	s.router = gin.New()
	s.router.HandleMethodNotAllowed = true
	s.router.RedirectTrailingSlash = false
	s.router.RedirectFixedPath = false
	s.router.ContextWithFallback = true
	s.routes()
	return s
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, r)
}

// fail answers err as a problem.
func (s *Server) fail(c *gin.Context, err error) { writeProblem(c, s.log, err) }

var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// Request ids need to be unique, not secret: a random per-process prefix
// and a counter cost nothing per request.
var (
	requestIDPrefix = hotzone.NewID(time.Now())[10:] + "-"
	requestIDSeq    atomic.Uint64
)

// requestIDHeader is a request id and the header value that holds it,
// made in one allocation.
type requestIDHeader struct {
	vals [1]string
	b    [40]byte
}

// nextRequestID answers a fresh id as a header value.
func nextRequestID() []string {
	h := new(requestIDHeader)
	b := strconv.AppendUint(append(h.b[:0], requestIDPrefix...), requestIDSeq.Add(1), 36)
	if len(b) > len(h.b) { // cannot happen: 17 + at most 13 digits
		h.vals[0] = string(b)
	} else {
		h.vals[0] = unsafe.String(&h.b[0], len(b))
	}
	return h.vals[:]
}

// requestLog gives every request an id (the caller's, if sane) and logs
// one line when it ends. Keys and tokens never reach it: it logs the
// route pattern, not the URL, and no headers.
func (s *Server) requestLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		// The header's canonical name, looked up and set directly: the
		// helpers canonicalise it on every call.
		// The caller's own id is used as its header holds it.
		vals := c.Request.Header[headerRequestID]
		if len(vals) > 0 && saneRequestID.MatchString(vals[0]) {
			vals = vals[:1:1]
		} else {
			vals = nextRequestID()
		}
		id := vals[0]
		c.Writer.Header()[headerRequestID] = vals
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		// One monotonic reading: the wall time it ended follows from it.
		took := time.Since(start)
		end := start.Add(took)
		s.metrics.request(c, route, took)
		if s.access != nil {
			s.accessLine(end, id, c.Request.Method, route, c.Writer.Status(), took)
			return
		}
		s.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request",
			slog.String("request_id", id),
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.Int("status", c.Writer.Status()),
			slog.Duration("latency", took),
		)
	}
}

// recoverer turns a panic into a logged 500 instead of a dropped
// connection; a panic is a bug, and the log line says where.
func (s *Server) recoverer() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(r)
				}
				s.log.Error("panic", "route", c.FullPath(), "panic", r)
				if !c.Writer.Written() {
					s.fail(c, panicError{r})
				}
			}
		}()
		c.Next()
	}
}

type panicError struct{ v any }

func (p panicError) Error() string { return "panic" }

// accessLines are the buffers request lines are formatted in.
var accessLines = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// accessLine writes a request's line to the access log: the keys and
// values the slog JSON handler would write for the same attributes
// (time in UTC, latency in nanoseconds).
func (s *Server) accessLine(at time.Time, id, method, route string, status int, latency time.Duration) {
	bp := accessLines.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = appendTimeUTC(b, at)
	b = append(b, `","level":"INFO","msg":"request","request_id":`...)
	b = appendQuote(b, id)
	b = append(b, `,"method":`...)
	b = appendQuote(b, method)
	b = append(b, `,"route":`...)
	b = appendQuote(b, route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"latency":`...)
	b = strconv.AppendInt(b, int64(latency), 10)
	b = append(b, "}\n"...)
	_, _ = s.access.Write(b)
	*bp = b
	accessLines.Put(bp)
}

// appendTimeUTC appends t in UTC as time.RFC3339Nano formats it, by
// hand: the layout interpreter cost a request line more than the rest
// of it. Years outside 0000-9999 go to the layout.
func appendTimeUTC(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	hour, minute, sec := t.Clock()
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-')
	b = append2(b, int(month), '-')
	b = append2(b, day, 'T')
	b = append2(b, hour, ':')
	b = append2(b, minute, ':')
	b = append2(b, sec, 0)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

// append2 appends v (0-99) in two digits, then sep unless it is 0.
func append2(b []byte, v int, sep byte) []byte {
	b = append(b, byte('0'+v/10), byte('0'+v%10))
	if sep != 0 {
		b = append(b, sep)
	}
	return b
}
