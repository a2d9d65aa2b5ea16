package push

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hotzone/hotzone"
)

// Metrics are the push side's Prometheus series. Labels carry providers,
// statuses, reasons and codes only: never a device, token or key.
type Metrics struct {
	notifications  *prometheus.CounterVec
	suppressions   *prometheus.CounterVec
	sendLatency    *prometheus.HistogramVec
	retries        *prometheus.CounterVec
	providerErrors *prometheus.CounterVec
	presences      *prometheus.CounterVec
	visits         prometheus.Counter
	inflight       *prometheus.GaugeVec
}

// NewMetrics registers the push series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotzone_notifications_total",
			Help: "Notification results by provider and status (sent, dry_run, failed, invalid_token, expired, queued for a retry)."}, []string{"provider", "status"}),
		suppressions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotzone_suppressions_total",
			Help: "Decisions not to notify, by reason."}, []string{"reason"}),
		sendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hotzone_send_duration_seconds",
			Help: "Time of one send to a provider.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"provider"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotzone_send_retries_total",
			Help: "Sends that will be tried again, by provider."}, []string{"provider"}),
		providerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotzone_provider_errors_total",
			Help: "Provider error answers by provider and code."}, []string{"provider", "code"}),
		presences: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotzone_presence_changes_total",
			Help: "Devices entering, dwelling in and exiting store fences."}, []string{"type"}),
		visits: prometheus.NewCounter(prometheus.CounterOpts{Name: "hotzone_visits_total",
			Help: "Visits attributed to an event: a device notified or held back walked into the store's visit area."}),
	}
	m.inflight = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hotzone_push_inflight_limit",
		Help: "Sends a lane keeps out but unrecorded, as last adapted to the measured round trip (at most --push-concurrency); also the most a crash can send twice."}, []string{"provider"})
	reg.MustRegister(m.notifications, m.suppressions, m.sendLatency, m.retries, m.providerErrors, m.presences, m.visits, m.inflight)
	return m
}

// delivery records one send's result; a nil Metrics records nothing.
func (m *Metrics) delivery(p hotzone.Provider, d hotzone.Delivery, took time.Duration, sent bool) {
	if m == nil {
		return
	}
	provider := string(p)
	if provider == "" {
		provider = "none"
	}
	if sent {
		m.sendLatency.WithLabelValues(provider).Observe(took.Seconds())
	}
	m.notifications.WithLabelValues(provider, string(d.Status)).Inc()
	if d.Status == hotzone.StatusQueued {
		m.retries.WithLabelValues(provider).Inc()
	}
	if d.Code != "" {
		m.providerErrors.WithLabelValues(provider, d.Code).Inc()
	}
}

// suppressed records a decision not to notify.
func (m *Metrics) suppressed(reason Reason) {
	if m == nil || reason == ReasonNone {
		return
	}
	m.suppressions.WithLabelValues(string(reason)).Inc()
}

// presence records a presence change.
func (m *Metrics) presence(t hotzone.PresenceType) {
	if m == nil {
		return
	}
	m.presences.WithLabelValues(string(t)).Inc()
}

// visit records a visit attributed to an event.
func (m *Metrics) visit() {
	if m == nil {
		return
	}
	m.visits.Inc()
}

// inflightLimit records a lane's adapted in-flight limit.
func (m *Metrics) inflightLimit(p hotzone.Provider, n int) {
	if m == nil {
		return
	}
	m.inflight.WithLabelValues(string(p)).Set(float64(n))
}
