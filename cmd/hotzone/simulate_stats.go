package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// simSummary is what `hotzone simulate` prints at the end; with --json it
// is the one JSON object on stdout.
type simSummary struct {
	URL            string         `json:"url"`
	Brand          simBrand       `json:"brand"`
	Seed           int64          `json:"seed"`
	Stores         int            `json:"stores"`
	LiveEvents     int            `json:"live_events"` // at the end of the run; -1 when the server did not say
	Devices        int            `json:"devices"`     // registered
	DevicesFailed  int            `json:"devices_failed"`
	DeviceIDPrefix string         `json:"device_id_prefix"` // ids are the prefix and 0 … devices-1
	Platforms      map[string]int `json:"platforms"`
	RegisterS      float64        `json:"register_s"`
	DurationS      float64        `json:"duration_s"` // of the ping phase
	TargetRate     float64        `json:"target_rate"`
	Batch          int            `json:"batch"`
	Requests       int            `json:"requests"`
	Pings          struct {
		Sent        int     `json:"sent"`
		OK          int     `json:"ok"`
		RateLimited int     `json:"rate_limited"`
		Failed      int     `json:"failed"`
		InsideFence int     `json:"inside_fence"`
		PerSecond   float64 `json:"per_second"`
	} `json:"pings"`
	LatencyMS struct {
		P50 float64 `json:"p50"`
		P90 float64 `json:"p90"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"` // per HTTP request, a whole batch with --batch
	Notifications struct {
		Queued             int                      `json:"queued"`
		Suppressed         int                      `json:"suppressed"`
		SuppressedByReason map[string]int           `json:"suppressed_by_reason"`
		ByEvent            map[string]simEventTally `json:"by_event"`
	} `json:"notifications"`
	Errors       map[string]int `json:"errors"`
	Interrupted  bool           `json:"interrupted"`
	StoppedEarly string         `json:"stopped_early"` // why the ping phase ended before --duration, "" when it did not
}

// verdict is the run's outcome for the exit status: an error when most
// registrations or most pings failed, or the run stopped early for it,
// so a script (or a person) does not take a run against a server that
// was gone for a good one.
func (sum *simSummary) verdict() error {
	p := sum.Pings
	switch {
	case sum.StoppedEarly != "":
		return fmt.Errorf("stopped early: %s; is the server at %s still running?", sum.StoppedEarly, sum.URL)
	case p.Sent > 0 && 2*p.Failed > p.Sent:
		return fmt.Errorf("%d of %d pings failed%s; is the server at %s still running?", p.Failed, p.Sent, fmtCounts(sum.Errors), sum.URL)
	case 2*sum.DevicesFailed > sum.Devices+sum.DevicesFailed:
		return fmt.Errorf("%d of %d devices could not be registered%s", sum.DevicesFailed, sum.Devices+sum.DevicesFailed, fmtCounts(sum.Errors))
	}
	return nil
}

type simBrand struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// simEventTally is what the ping answers said about one live event.
type simEventTally struct {
	StoreID    string `json:"store_id"`
	Queued     int    `json:"queued"`
	Suppressed int    `json:"suppressed"`
}

// simStats counts what the server answered; workers record, the progress
// line and the summary read.
type simStats struct {
	mu      sync.Mutex
	began   time.Time
	devices int

	requests, sent, ok, limited, failed, inside int
	queued, suppressed                          int
	reasons                                     map[string]int // suppressed, by reason
	events                                      map[string]*simEventTally
	errs                                        map[string]int

	all, win latencyHist // win: since the last progress line
	// recent holds the pings sent and failed in each of the last
	// failWindow progress ticks, for the early stop.
	recent                   [failWindow][2]int
	recentAt                 int
	recentSent, recentFailed int
	lastTick                 time.Time
	lastSent                 int
	lastRate                 float64
	lastP50                  time.Duration
	lastP99                  time.Duration
}

// The ping phase stops early when, over the last failWindow seconds, at
// least failMinPings pings were answered or given up on and most failed:
// the server is gone or broken, and firing on for the rest of --duration
// only hides that.
const (
	failWindow   = 5
	failMinPings = 10
)

// failingNow takes one sample (call it once a second) and says why the
// run should stop, or "".
func (st *simStats) failingNow() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.recent[st.recentAt%failWindow] = [2]int{st.sent - st.recentSent, st.failed - st.recentFailed}
	st.recentAt++
	st.recentSent, st.recentFailed = st.sent, st.failed
	var sent, failed int
	for _, r := range st.recent {
		sent += r[0]
		failed += r[1]
	}
	if sent < failMinPings || 2*failed <= sent {
		return ""
	}
	return fmt.Sprintf("%d of the last %d pings failed%s", failed, sent, fmtCounts(st.errs))
}

func newSimStats() simStats {
	return simStats{reasons: map[string]int{}, events: map[string]*simEventTally{}, errs: map[string]int{}}
}

func (st *simStats) start(now time.Time, devices int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.began, st.lastTick, st.devices = now, now, devices
}

func (st *simStats) countError(key string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.errs[key]++
}

// record counts one request's answers, one per ping. An answer's Status
// is 0 for a ping answer, the problem's status for a refused ping, -1
// when no answer came (errKey names why).
func (st *simStats) record(latency time.Duration, answers []simAnswer, errKey string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.requests++
	st.all.add(latency)
	st.win.add(latency)
	for _, a := range answers {
		st.sent++
		switch {
		case a.Status == 429:
			st.limited++
		case a.Status != 0:
			st.failed++
			key := errKey
			if key == "" {
				key = "http_" + strconv.Itoa(a.Status)
			}
			st.errs[key]++
		default:
			st.ok++
			if len(a.Inside) > 0 {
				st.inside++
			}
			for _, n := range a.Notifications {
				t := st.events[n.EventID]
				if t == nil {
					t = &simEventTally{}
					for _, ev := range a.LiveEvents {
						if ev.EventID == n.EventID {
							t.StoreID = ev.StoreID
						}
					}
					st.events[n.EventID] = t
				}
				if n.Status == "queued" {
					st.queued++
					t.Queued++
				} else {
					st.suppressed++
					st.reasons[n.Reason]++
					t.Suppressed++
				}
			}
		}
	}
}

// tick is the progress line: the totals so far, and the rate and latency
// of the time since the last line.
func (st *simStats) tick(now time.Time) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	// The last line of a run may come a moment after the one before: over
	// so short a window a rate means nothing, so it repeats the last one.
	if dt := now.Sub(st.lastTick).Seconds(); dt >= 0.5 {
		st.lastRate = float64(st.sent-st.lastSent) / dt
		st.lastP50, st.lastP99 = st.win.quantile(0.5), st.win.quantile(0.99)
		st.lastTick, st.lastSent, st.win = now, st.sent, latencyHist{}
	}
	return fmt.Sprintf("%4.0fs  devices %d  pings %d  %.1f/s  p50 %s  p99 %s  429s %d  errors %d  queued %d",
		now.Sub(st.began).Seconds(), st.devices, st.sent, st.lastRate,
		fmtLatency(st.lastP50), fmtLatency(st.lastP99), st.limited, st.failed, st.queued)
}

func fmtLatency(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
}

func (st *simStats) fill(sum *simSummary) {
	st.mu.Lock()
	defer st.mu.Unlock()
	sum.Requests = st.requests
	p := &sum.Pings
	p.Sent, p.OK, p.RateLimited, p.Failed, p.InsideFence = st.sent, st.ok, st.limited, st.failed, st.inside
	if sum.DurationS > 0 {
		p.PerSecond = round(float64(st.sent)/sum.DurationS, 1)
	}
	ms := func(d time.Duration) float64 { return round(float64(d)/1e6, 2) }
	l := &sum.LatencyMS
	l.P50, l.P90, l.P99, l.Max = ms(st.all.quantile(0.5)), ms(st.all.quantile(0.9)), ms(st.all.quantile(0.99)), ms(st.all.max)
	n := &sum.Notifications
	n.Queued, n.Suppressed = st.queued, st.suppressed
	n.SuppressedByReason = maps.Clone(st.reasons)
	n.ByEvent = make(map[string]simEventTally, len(st.events))
	for id, t := range st.events {
		n.ByEvent[id] = *t
	}
	sum.Errors = maps.Clone(st.errs)
}

// writeText is the summary for a person.
func (sum *simSummary) writeText(w io.Writer) {
	fmt.Fprintf(w, "hotzone simulate: %s (%s) at %s, seed %d", sum.Brand.Name, sum.Brand.ID, sum.URL, sum.Seed)
	if sum.Interrupted {
		fmt.Fprint(w, ", interrupted")
	}
	fmt.Fprintln(w)
	live := strconv.Itoa(sum.LiveEvents)
	if sum.LiveEvents < 0 {
		live = "unknown (the server did not answer)"
	}
	fmt.Fprintf(w, "  stores         %d; live events at the end: %s\n", sum.Stores, live)
	fmt.Fprintf(w, "  devices        %d registered (%d ios, %d android) in %.2fs, %d failed; ids %s0 … %s%d\n",
		sum.Devices, sum.Platforms["ios"], sum.Platforms["android"], sum.RegisterS, sum.DevicesFailed,
		sum.DeviceIDPrefix, sum.DeviceIDPrefix, max(0, sum.Devices+sum.DevicesFailed-1))
	p := sum.Pings
	how := "single pings"
	if sum.Batch > 0 {
		how = fmt.Sprintf("batches of up to %d", sum.Batch)
	}
	fmt.Fprintf(w, "  pings          %d sent in %.2fs (%.1f/s, target %.4g/s, %s, %d requests): %d ok, %d rate limited, %d failed\n",
		p.Sent, sum.DurationS, p.PerSecond, sum.TargetRate, how, sum.Requests, p.OK, p.RateLimited, p.Failed)
	fmt.Fprintf(w, "  inside a fence %d pings\n", p.InsideFence)
	l := sum.LatencyMS
	fmt.Fprintf(w, "  latency        p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms (per request)\n", l.P50, l.P90, l.P99, l.Max)
	n := sum.Notifications
	fmt.Fprintf(w, "  notifications  %d queued, %d suppressed%s\n", n.Queued, n.Suppressed, fmtCounts(n.SuppressedByReason))
	for _, id := range slices.Sorted(maps.Keys(n.ByEvent)) {
		t := n.ByEvent[id]
		fmt.Fprintf(w, "    event %s at %s: %d queued, %d suppressed\n", id, t.StoreID, t.Queued, t.Suppressed)
	}
	if len(sum.Errors) > 0 {
		fmt.Fprintf(w, "  errors        %s\n", fmtCounts(sum.Errors))
	}
	if sum.StoppedEarly != "" {
		fmt.Fprintf(w, "  stopped early  %s\n", sum.StoppedEarly)
	}
}

// fmtCounts is ": a 3, b 1", largest first.
func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return ": " + strings.Join(parts, ", ")
}

// latencyHist is a log-scale histogram: 16 buckets per doubling from 1µs
// to about two minutes, so a quantile is within about 4.5% and a
// day-long run at a high rate still takes a few kilobytes.
type latencyHist struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	histSub     = 16
	histBuckets = 27*histSub + 1
)

func (h *latencyHist) add(d time.Duration) {
	i := 0
	if us := float64(d) / 1e3; us > 1 {
		i = min(histBuckets-1, int(math.Ceil(math.Log2(us)*histSub)))
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, d)
}

// quantile is the upper bound of the bucket holding the q-th sample,
// never more than the largest sample; 0 when empty.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := max(1, uint64(math.Ceil(q*float64(h.n))))
	var cum uint64
	for i, c := range h.counts {
		if cum += c; cum >= rank {
			upper := time.Duration(math.Exp2(float64(i)/histSub) * 1e3)
			return min(upper, h.max)
		}
	}
	return h.max
}
