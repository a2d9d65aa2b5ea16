package main

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/redis"
)

// newRegistry is the process's metrics registry: Go and process
// collectors, and gauges read from storage at scrape time (what is
// tracked, what waits in the outbox and for how long).
func newRegistry(db hotzone.Storage) (*prometheus.Registry, http.Handler) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statsCollector{db: db})
	if r, ok := db.(*redis.DB); ok {
		reg.MustRegister(&backendCollector{m: r.Metrics()})
	}
	return reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// statsCollector reads storage's Stats once per scrape for all of its
// gauges.
type statsCollector struct{ db hotzone.Storage }

var (
	descFences      = prometheus.NewDesc("hotzone_fences", "Store geofences tracked.", nil, nil)
	descDevices     = prometheus.NewDesc("hotzone_devices", "Devices tracked.", nil, nil)
	descLiveEvents  = prometheus.NewDesc("hotzone_live_events", "Live events.", nil, nil)
	descOutboxDepth = prometheus.NewDesc("hotzone_outbox_depth", "Notifications queued and not yet sent.", nil, nil)
	descOutboxAge   = prometheus.NewDesc("hotzone_outbox_oldest_age_seconds", "Age of the oldest queued notification; 0 when none.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFences, descDevices, descLiveEvents, descOutboxDepth, descOutboxAge} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; a scrape while storage does
// not answer leaves the gauges out rather than reporting zeros.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.db.Stats(ctx)
	if err != nil {
		return
	}
	age := 0.0
	if !s.OutboxOldest.IsZero() {
		age = time.Since(s.OutboxOldest).Seconds()
	}
	for _, m := range []struct {
		d *prometheus.Desc
		v float64
	}{{descFences, float64(s.Stores)}, {descDevices, float64(s.Devices)}, {descLiveEvents, float64(s.LiveEvents)},
		{descOutboxDepth, float64(s.OutboxDepth)}, {descOutboxAge, age}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, m.v)
	}
}

// backendCollector exports the Redis Cluster backend's round trips:
// their latency and errors, and the WAITs that timed out.
type backendCollector struct{ m *redis.Metrics }

var (
	descBackendLatency = prometheus.NewDesc("hotzone_backend_round_trip_seconds", "Round trips to the Redis Cluster (a pipelined batch is one), by latency.", nil, nil)
	descBackendErrors  = prometheus.NewDesc("hotzone_backend_errors_total", "Round trips to the Redis Cluster that failed (unreachable, failing over, refused).", nil, nil)
	descBackendWait    = prometheus.NewDesc("hotzone_backend_wait_short_total", "WAITs that timed out before the asked replicas acknowledged (the write stands on the primary).", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *backendCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descBackendLatency
	ch <- descBackendErrors
	ch <- descBackendWait
}

// Collect implements prometheus.Collector.
func (c *backendCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Snapshot()
	ch <- prometheus.MustNewConstHistogram(descBackendLatency, s.Count, s.Sum, s.Buckets)
	ch <- prometheus.MustNewConstMetric(descBackendErrors, prometheus.CounterValue, float64(s.Errors))
	ch <- prometheus.MustNewConstMetric(descBackendWait, prometheus.CounterValue, float64(s.WaitShort))
}
