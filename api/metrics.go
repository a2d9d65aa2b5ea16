package api

import (
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the API's Prometheus series: requests by route pattern
// (never the raw path, which holds ids) and status, and pings by
// outcome. No label carries a device id, token or key.
type Metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	pings       *prometheus.CounterVec
	pingLatency prometheus.Histogram

	// series caches the children of a route, method and status: looking
	// them up by label values hashes the strings on every request.
	series sync.Map // requestLabels -> requestSeries
	pingOK prometheus.Counter
}

type requestLabels struct {
	route, method string
	status        int
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics registers the API series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotzone_http_requests_total",
			Help: "HTTP requests by route pattern, method and status."}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hotzone_http_request_duration_seconds",
			Help: "HTTP request handling time by route pattern.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"route"}),
		pings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotzone_pings_total",
			Help: "Pings by outcome: ok, invalid, unknown_device, rate_limited, error."}, []string{"outcome"}),
		pingLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hotzone_ping_duration_seconds",
			Help: "Time to handle one ping, decoding to answer.", Buckets: prometheus.ExponentialBuckets(0.00001, 2, 18)}),
	}
	reg.MustRegister(m.requests, m.duration, m.pings, m.pingLatency)
	m.pingOK = m.pings.WithLabelValues("ok")
	return m
}

// request counts one finished request.
func (m *Metrics) request(c *gin.Context, route string, took time.Duration) {
	if m == nil {
		return
	}
	l := requestLabels{route, methodLabel(c.Request.Method), c.Writer.Status()}
	v, ok := m.series.Load(l)
	if !ok {
		// Routes, methods and statuses are few: the cache stays small.
		v, _ = m.series.LoadOrStore(l, requestSeries{
			count:    m.requests.WithLabelValues(route, l.method, strconv.Itoa(l.status)),
			duration: m.duration.WithLabelValues(route),
		})
	}
	rs := v.(requestSeries)
	rs.count.Inc()
	rs.duration.Observe(took.Seconds())
}

// ping counts one ping by its outcome.
func (m *Metrics) ping(err error, took time.Duration) {
	if m == nil {
		return
	}
	if err == nil {
		m.pingOK.Inc()
		m.pingLatency.Observe(took.Seconds())
		return
	}
	outcome := "error"
	switch p, _ := toProblem(err); p.Status {
	case 400:
		outcome = "invalid"
	case 404:
		outcome = "unknown_device"
	case 429:
		outcome = "rate_limited"
	}
	m.pings.WithLabelValues(outcome).Inc()
	m.pingLatency.Observe(took.Seconds())
}

// methodLabel is the method as a label: the standard ones as they are,
// anything else as "other", so a client making up methods cannot make
// up series.
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return m
	}
	return "other"
}
