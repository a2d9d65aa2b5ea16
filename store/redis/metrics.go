package redis

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"
)

// LatencyBuckets are the upper bounds, in seconds, of the round-trip
// histogram Metrics keeps.
var LatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// Metrics counts the backend's round trips (a pipelined batch is one),
// their latency and their errors. Safe for concurrent use; read it
// with Snapshot.
type Metrics struct {
	buckets [15]atomic.Uint64 // len(LatencyBuckets)+1, the last for +Inf
	sumNS   atomic.Uint64
	errors  atomic.Uint64
	short   atomic.Uint64
}

// MetricsSnapshot is Metrics at one moment: cumulative counts per
// bucket as Prometheus wants them.
type MetricsSnapshot struct {
	Count   uint64
	Sum     float64            // seconds
	Buckets map[float64]uint64 // upper bound -> round trips at most that long
	Errors  uint64
	// WaitShort counts WAITs that timed out before enough replicas
	// acknowledged.
	WaitShort uint64
}

// took records one round trip that started at start and ended now.
func (m *Metrics) took(start time.Time, err error) {
	d := time.Since(start)
	i := 0
	for i < len(LatencyBuckets) && d.Seconds() > LatencyBuckets[i] {
		i++
	}
	m.buckets[i].Add(1)
	m.sumNS.Add(uint64(d))
	m.observe(err)
}

// observe counts err if it is the backend's: anything but a nil answer
// or a caller that stopped waiting (a refused script or a failover's
// MOVED storm is the backend's).
func (m *Metrics) observe(err error) {
	if err == nil || valkey.IsValkeyNil(err) || errors.Is(err, context.Canceled) {
		return
	}
	m.errors.Add(1)
}

// Snapshot reads the counters.
func (m *Metrics) Snapshot() MetricsSnapshot {
	s := MetricsSnapshot{Buckets: make(map[float64]uint64, len(LatencyBuckets)), Errors: m.errors.Load(), WaitShort: m.short.Load(),
		Sum: time.Duration(m.sumNS.Load()).Seconds()}
	var cum uint64
	for i, ub := range LatencyBuckets {
		cum += m.buckets[i].Load()
		s.Buckets[ub] = cum
	}
	s.Count = cum + m.buckets[len(LatencyBuckets)].Load()
	return s
}

// Metrics is the backend's round-trip counters.
func (db *DB) Metrics() *Metrics { return &db.stats }
