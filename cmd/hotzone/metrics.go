package main

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hotzone/hotzone/store"
)

// newRegistry is the process's metrics registry: Go and process
// collectors, and gauges read from the store at scrape time (what is
// tracked, what waits in the outbox and for how long).
func newRegistry(db *store.DB) (*prometheus.Registry, http.Handler) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("hotzone_fences", "Store geofences tracked.", func() float64 { return float64(db.Stats().Stores) })
	gauge("hotzone_devices", "Devices tracked.", func() float64 { return float64(db.Stats().Devices) })
	gauge("hotzone_live_events", "Live events.", func() float64 { return float64(db.Stats().LiveEvents) })
	gauge("hotzone_outbox_depth", "Notifications queued and not yet sent.", func() float64 { return float64(db.OutboxLen()) })
	gauge("hotzone_outbox_oldest_age_seconds", "Age of the oldest queued notification; 0 when none.", func() float64 {
		if t := db.OutboxOldest(); !t.IsZero() {
			return time.Since(t).Seconds()
		}
		return 0
	})
	return reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
