package push

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotzone/hotzone"
)

// Outbox is what the dispatcher needs of storage: the contract's
// outbox, and the event and device a notification is sent for.
type Outbox interface {
	hotzone.Outbox
	// Listens and Emit tell webhooks of results (hotzone.Webhooks).
	Listens(brandID string, t hotzone.HookType) bool
	Emit(ctx context.Context, brandID string, hs []hotzone.Happening) error
	Event(ctx context.Context, brandID, eventID string) (hotzone.Event, hotzone.Counts, error)
	Device(ctx context.Context, brandID, deviceID string) (hotzone.Device, *hotzone.DevicePosition, error)
}

// DeviceBatch is storage that reads many devices of a brand in one round
// trip: with it, the dispatcher reads a claimed batch's devices at once
// instead of one after another (a backend across the network would
// otherwise pay a round trip per send). Devices not found are absent
// from the answer. A batch's devices are read when it is claimed, so a
// token that moves while the batch goes out (a fraction of a second)
// may be used once more, as a send already under way would be.
type DeviceBatch interface {
	DevicesByID(ctx context.Context, brandID string, ids []string) (map[string]hotzone.Device, error)
}

// Message is one notification ready to send, with what the provider
// needs to know.
type Message struct {
	Notification hotzone.Notification
	Device       hotzone.Device
	Event        hotzone.Event
}

// Sender delivers messages of one brand through one provider and says
// how each went: a final status, or queued with a NextAttempt.
type Sender interface {
	Send(ctx context.Context, m Message) hotzone.Delivery
}

// SenderFor picks the sender of a brand and provider; a brand without
// credentials gets the dry-run sender.
type SenderFor func(brandID string, p hotzone.Provider) Sender

// DryRun records dry_run and sends nothing; it is what a brand without
// credentials gets.
type DryRun struct{ Now func() time.Time }

// Send implements Sender.
func (d DryRun) Send(_ context.Context, m Message) hotzone.Delivery {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	return hotzone.Delivery{NotificationID: m.Notification.ID, Status: hotzone.StatusDryRun, At: now()}
}

// Dispatcher drains the outbox lane by lane: each lane (a brand and a
// provider) has its own loop, claims due notifications in batches, sends
// them with bounded concurrency and records their results in groups,
// one transaction per group. It need not be the only consumer of a lane:
// other dispatchers (other nodes) claim what this one does not hold.
type Dispatcher struct {
	wakeHooks   func()
	box         Outbox
	senders     SenderFor
	log         *slog.Logger
	now         func() time.Time
	batch       int
	concurrency int
	lease       time.Duration
	wake        chan struct{}
	running     atomic.Bool

	metrics *Metrics

	mu    sync.Mutex
	lanes map[hotzone.Lane]bool // lanes with a running loop
	wg    sync.WaitGroup
}

// DispatcherOptions tune the dispatcher; zero values get defaults.
type DispatcherOptions struct {
	Logger      *slog.Logger
	Now         func() time.Time
	Batch       int // most notifications claimed at a time (default: Concurrency)
	Concurrency int // the most sends in flight at once per lane (default DefaultConcurrency)
	// Lease is how long a claimed notification is this dispatcher's
	// before another may take it over (default DefaultLease).
	Lease   time.Duration
	Metrics *Metrics
	// WakeHooks is called after webhook deliveries were queued, so the
	// webhook sender need not poll to notice them.
	WakeHooks func()
}

// DefaultConcurrency is the most pushes a lane may have out but not yet
// recorded (a lane keeps fewer out when fewer do: see inflight), which
// is also the most a crash can send twice per lane. A
// result holds its slot until its group is committed, so about half are
// on the wire while the other half is being recorded: 512 keeps some 256
// streams busy on the connection (APNs allows 1,000) and lets a group
// commit record a couple of hundred results at once; with 256, groups
// averaged 110 results and the commits cost about a fifth more CPU per
// push (BenchmarkAPNs/alternating: dispatch/client 0.69–0.71 against
// 0.80 with 512).
const DefaultConcurrency = 512

// DefaultLease outlasts what a claim waits for: a batch's turn at the
// rate limit and a send's timeout (15 s), with room to spare. A
// dispatcher that dies leaves its claims to others after it.
const DefaultLease = time.Minute

// NewDispatcher builds a dispatcher; Run starts it.
func NewDispatcher(box Outbox, senders SenderFor, opts DispatcherOptions) *Dispatcher {
	d := &Dispatcher{box: box, senders: senders, log: opts.Logger, now: opts.Now, batch: opts.Batch,
		concurrency: opts.Concurrency, lease: opts.Lease, wake: make(chan struct{}, 1), lanes: map[hotzone.Lane]bool{}, metrics: opts.Metrics,
		wakeHooks: opts.WakeHooks}
	if d.wakeHooks == nil {
		d.wakeHooks = func() {}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.concurrency <= 0 {
		d.concurrency = DefaultConcurrency
	}
	if d.batch <= 0 {
		// What is claimed waits for a send slot; a batch of one pass of
		// the slots keeps claimed-but-unsent work, and so what another
		// consumer waits out after a crash, small.
		d.batch = d.concurrency
	}
	if d.lease <= 0 {
		d.lease = DefaultLease
	}
	return d
}

// Wake tells the dispatcher that notifications were queued.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Running tells whether Run is active, for readiness.
func (d *Dispatcher) Running() bool { return d.running.Load() }

// rescan is how often the outbox is looked at without a wake-up: it is
// what brings retries back at their time.
const rescan = 250 * time.Millisecond

// Run dispatches until ctx ends, then waits for every lane to finish the
// batch it has in hand and record it, so a clean shutdown sends nothing
// twice.
func (d *Dispatcher) Run(ctx context.Context) {
	d.running.Store(true)
	defer d.running.Store(false)
	defer d.wg.Wait()
	t := time.NewTicker(rescan)
	defer t.Stop()
	for {
		lanes, err := d.box.Lanes(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Error("dispatch: list lanes", "err", err)
		}
		for _, l := range lanes {
			d.startLane(ctx, l)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

func (d *Dispatcher) startLane(ctx context.Context, l hotzone.Lane) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lanes[l] {
		return
	}
	d.lanes[l] = true
	d.wg.Go(func() {
		defer func() {
			d.mu.Lock()
			delete(d.lanes, l)
			d.mu.Unlock()
		}()
		p := newPool(d.concurrency)
		defer p.close()
		for ctx.Err() == nil {
			n, err := d.roundLane(context.WithoutCancel(ctx), ctx.Done(), l, p)
			if err != nil {
				d.log.Error("dispatch", "brand_id", l.BrandID, "provider", l.Provider, "err", err)
				return
			}
			if n == 0 {
				return // nothing due; the next scan restarts the lane
			}
		}
	})
}

// Round sends what is due in every lane, lane after lane, and records the
// results; it answers how many notifications it handled. Tests drive it
// directly.
func (d *Dispatcher) Round(ctx context.Context) (int, error) {
	lanes, err := d.box.Lanes(ctx)
	if err != nil {
		return 0, err
	}
	p := newPool(d.concurrency)
	defer p.close()
	total := 0
	for _, l := range lanes {
		n, err := d.roundLane(ctx, nil, l, p)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// pool is a lane's senders: long-lived goroutines, because a goroutine
// per push grows a fresh stack through the HTTP/2 client's deep calls
// every time (measured at about 8% of the CPU of a dispatch run). They
// start as sends need them, so a lane that wakes to find nothing due
// starts none.
type pool struct {
	jobs    chan *sendJob
	max     int
	started int // only the feed, one at a time, submits
	wg      sync.WaitGroup
}

// sendJob is one push handed to the pool. A pass owns Concurrency of
// them and they are its send slots: the feed takes a free one to start a
// send, and the recorder frees it once the result is recorded.
type sendJob struct {
	d       *Dispatcher
	ctx     context.Context
	m       Message
	lane    hotzone.Lane
	results chan<- result
	start   time.Time // when it took its slot
}

func newPool(n int) *pool { return &pool{jobs: make(chan *sendJob), max: n} }

// submit hands j to an idle worker, or to a new one while fewer than
// max run, or waits for one to be free.
func (p *pool) submit(j *sendJob) {
	select {
	case p.jobs <- j:
		return
	default:
	}
	if p.started < p.max {
		p.started++
		p.wg.Go(func() {
			j.run()
			for j := range p.jobs {
				j.run()
			}
		})
		return
	}
	p.jobs <- j
}

func (j *sendJob) run() {
	start := time.Now()
	r := j.d.senders(j.m.Notification.BrandID, j.m.Device.Provider).Send(j.ctx, j.m)
	j.d.metrics.delivery(j.m.Device.Provider, r, time.Since(start), true)
	r.NotificationID, r.Claim, r.BrandID, r.Provider = j.m.Notification.ID, j.m.Notification.Claim, j.m.Notification.BrandID, j.lane.Provider
	j.results <- result{d: r, n: &j.m.Notification, job: j}
}

// close lets the workers finish what they hold and waits for them.
func (p *pool) close() {
	close(p.jobs)
	p.wg.Wait()
}

// maxRecord bounds how many results one transaction records; gatherFor
// is how long the first result of a group waits for company.
const (
	maxRecord = 1024
	gatherFor = 5 * time.Millisecond
)

// result is a delivery and, when it was sent, the slot it holds.
type result struct {
	d   hotzone.Delivery
	n   *hotzone.Notification // what it is the result of, for webhooks
	job *sendJob
}

// passEnd is what the reading side of a pass tells the recording side
// when it stops: how many results to expect, and why it stopped early.
type passEnd struct {
	handed int
	err    error
}

// roundLane sends everything due in the lane through the pool p, reading
// the outbox batch after batch while earlier batches are still out, so
// the connection never idles between batches. Results are recorded as
// they come by group commit: while one transaction commits, the next
// results gather and go in the following one. A send's slot frees only
// once its result is recorded, so at most Concurrency pushes are ever
// out but unrecorded: that bounds what a crash can send twice.
//
// When stop closes (shutdown), no further send starts: what is out is
// finished and recorded, the rest stays queued for the next start, so
// shutdown waits for at most one send timeout.
func (d *Dispatcher) roundLane(ctx context.Context, stop <-chan struct{}, l hotzone.Lane, p *pool) (int, error) {
	results := make(chan result, 2*d.concurrency)
	slots := make(chan *sendJob, d.concurrency)
	jobs := make([]sendJob, d.concurrency)
	pace := 0.0
	if p, ok := d.senders(l.BrandID, l.Provider).(Paced); ok {
		pace = p.Pace()
	}
	lim := newInflight(d.concurrency, pace, time.Now())
	for i := range jobs {
		if i < lim.limit {
			slots <- &jobs[i]
		} else {
			lim.spare = append(lim.spare, &jobs[i])
		}
	}
	lim.issued = lim.limit
	ended := make(chan passEnd, 1)
	go func() { ended <- d.feed(ctx, stop, l, p, results, slots) }()

	var (
		group    = make([]hotzone.Delivery, 0, min(maxRecord, d.concurrency))
		notes    []hotzone.Notification
		held     []*sendJob
		firstErr error
		got      int
		handed   = -1 // not known until the feed ends
	)
	more := func() bool { return handed < 0 || got < handed }
	take := func(r result) {
		got++
		group = append(group, r.d)
		if r.n != nil {
			notes = append(notes, *r.n)
		}
		if r.job != nil {
			held = append(held, r.job)
		}
	}
	// end notes the feed's end; a nil channel is never ready again.
	end := func(e passEnd) {
		handed, ended = e.handed, nil
		if e.err != nil && firstErr == nil {
			firstErr = e.err
		}
	}
	for more() {
		group, held, notes = group[:0], held[:0], notes[:0]
		select {
		case r := <-results:
			take(r)
		case e := <-ended:
			end(e)
			continue
		}
		// Gather a while before committing: each commit rewrites whole
		// pages and syncs, so a dozen results per commit (what a fast
		// disk leads to) costs several times the CPU of a few hundred.
		// Half the slots or a few milliseconds, whichever comes first,
		// keeps the other half sending meanwhile.
		deadline := time.NewTimer(gatherFor)
	gather:
		for len(group) < min(maxRecord, max(1, lim.limit/2)) && more() {
			select {
			case r := <-results:
				take(r)
			case e := <-ended:
				end(e)
			case <-deadline.C:
				break gather
			}
		}
		deadline.Stop()
		if err := d.box.Record(ctx, group); err != nil {
			if firstErr == nil {
				firstErr = err
			}
		} else {
			d.emit(ctx, group, notes)
		}
		now := time.Now()
		for _, j := range held {
			lim.observe(now.Sub(j.start))
			*j = sendJob{} // let go of the message
			if lim.issued > lim.limit {
				lim.spare = append(lim.spare, j) // the limit came down
				lim.issued--
			} else {
				slots <- j
			}
		}
		if lim.adapt(now) {
			d.metrics.inflightLimit(l.Provider, lim.limit)
			for lim.issued < lim.limit && len(lim.spare) > 0 {
				slots <- lim.spare[len(lim.spare)-1]
				lim.spare = lim.spare[:len(lim.spare)-1]
				lim.issued++
			}
		}
	}
	return handed, firstErr
}

// inflight is how many sends a lane keeps out but unrecorded: as many
// as the lane's throughput needs and no more, since each is one a crash
// could send twice. By Little's law a lane needs rate × hold time slots
// (a slot is held from a send's start until its result is recorded).
// The rate is the lane's send rate limit when its sender has one (the
// most it will ever send), else the throughput of the last window; the
// hold time is the shortest mean hold of the last few windows: the
// round trip and the record without queueing. (A mean, not the shortest
// single hold: results wait for their group's commit, so within a
// window holds range from a send's round trip to that plus the
// gathering and the commit.) The limit is that product times a
// headroom (1.2 with a rate limit, 4 without), within the ceiling
// (--push-concurrency). Without a rate
// limit, while slots are what limits the lane (its throughput is limit
// ÷ hold), that grows the limit each window until holds reach the
// headroom times the shortest (more slots would only queue) or the
// ceiling: TCP Vegas' window sized by the base round trip, applied to a
// pool of sends. The recorder owns it: no lock.
type inflight struct {
	max, limit int
	pace       float64       // the lane's send rate limit per second; 0: none known
	issued     int           // slots in the pool or out: limit, once settled
	spare      []*sendJob    // slots kept back while the limit is lower
	winStart   time.Time     // this window's start
	done       int           // results recorded in it
	holds      time.Duration // their hold times, summed
	means      [8]time.Duration
	next       int
}

// The limiter's constants: where it starts, its floor, how often it
// adapts, and its headroom over the need: with the rate known, enough
// for the holds' spread; with the rate measured, also room to grow
// while slots are what limits the lane.
const (
	firstInflight  = 16 // without a rate limit
	minInflight    = 8
	adaptEvery     = 100 * time.Millisecond
	pacedHeadroom  = 1.2
	probedHeadroom = 4
)

// Paced is what a Sender with a send rate limit tells the dispatcher:
// its rate, in sends per second, which sizes how many sends it keeps in
// flight (see inflight).
type Paced interface {
	Pace() float64
}

// firstHold is the hold a lane with a rate limit is sized for before
// it has measured one: a loopback round trip and a group commit.
const firstHold = 5 * time.Millisecond

func newInflight(ceiling int, pace float64, now time.Time) *inflight {
	first := firstInflight
	if pace > 0 {
		first = int(math.Ceil(pace * firstHold.Seconds() * pacedHeadroom))
	}
	return &inflight{max: ceiling, limit: max(minInflight, min(ceiling, first)), pace: pace, winStart: now}
}

// observe notes one recorded send's hold time.
func (f *inflight) observe(hold time.Duration) {
	f.done++
	f.holds += hold
}

// adapt sets the limit anew once a window is over, and tells whether it
// did.
func (f *inflight) adapt(now time.Time) bool {
	elapsed := now.Sub(f.winStart)
	if elapsed < adaptEvery || f.done < minInflight {
		return false
	}
	f.means[f.next%len(f.means)] = f.holds / time.Duration(f.done)
	f.next++
	base := time.Duration(0)
	for _, m := range f.means {
		if m > 0 && (base == 0 || m < base) {
			base = m
		}
	}
	rate, headroom := f.pace, pacedHeadroom
	if rate <= 0 {
		rate, headroom = float64(f.done)/elapsed.Seconds(), probedHeadroom
	}
	need := rate * base.Seconds() * headroom
	// It comes down at once but goes up at most twofold a window: the
	// first windows' holds include connecting (TLS, tokens), which a
	// lane pays once.
	f.limit = max(minInflight, min(f.max, 2*f.limit, int(math.Ceil(need))))
	f.winStart, f.done, f.holds = now, 0, 0
	return true
}

// feed claims the lane's due notifications batch after batch and hands
// each to the pool, or its final result straight to results when it
// cannot be sent any more. It answers how many results it caused.
func (d *Dispatcher) feed(ctx context.Context, stop <-chan struct{}, l hotzone.Lane, p *pool, results chan<- result, slots chan *sendJob) passEnd {
	handed := 0
	for {
		due, err := d.box.Claim(ctx, l, d.now(), d.batch, d.lease)
		if err != nil || len(due) == 0 {
			return passEnd{handed, err}
		}
		devs := d.prefetch(ctx, l.BrandID, due)
		for _, n := range due {
			select {
			case <-stop:
				return passEnd{handed, nil}
			default:
			}
			m, res, err := d.prepare(ctx, n, devs)
			switch {
			case err != nil:
				// Storage did not answer: the claim is left to lapse, and
				// the notification is tried again after its lease.
				d.log.Warn("dispatch: look up a notification's event and device", "brand_id", n.BrandID, "notification_id", n.ID, "err", err)
				continue
			case res != nil:
				d.metrics.delivery(l.Provider, *res, 0, false)
				res.NotificationID, res.Claim, res.BrandID, res.Provider = n.ID, n.Claim, n.BrandID, l.Provider
				handed++
				results <- result{d: *res, n: &n}
				continue
			}
			handed++
			j := <-slots
			*j = sendJob{d: d, ctx: ctx, m: m, lane: l, results: results, start: time.Now()}
			p.submit(j)
		}
	}
}

// prefetch reads the devices of a claimed batch in one round trip when
// storage can; nil (each is read by prepare) when it cannot or fails.
func (d *Dispatcher) prefetch(ctx context.Context, brandID string, due []hotzone.Notification) map[string]hotzone.Device {
	b, ok := d.box.(DeviceBatch)
	if !ok {
		return nil
	}
	ids := make([]string, len(due))
	for i, n := range due {
		ids[i] = n.DeviceID
	}
	devs, err := b.DevicesByID(ctx, brandID, ids)
	if err != nil {
		return nil
	}
	return devs
}

// prepare loads what a send needs. A notification that cannot be sent
// any more (its event ended or is gone, its device erased or without a
// token) gets its final result instead; an error is storage not
// answering, which is no reason to give up on the notification.
func (d *Dispatcher) prepare(ctx context.Context, n hotzone.Notification, devs map[string]hotzone.Device) (Message, *hotzone.Delivery, error) {
	now := d.now()
	final := func(s hotzone.NotificationStatus, msg string) (Message, *hotzone.Delivery, error) {
		return Message{}, &hotzone.Delivery{Status: s, Error: msg, At: now}, nil
	}
	ev, _, err := d.box.Event(ctx, n.BrandID, n.EventID)
	switch {
	case errors.Is(err, hotzone.ErrNotFound):
		return final(hotzone.StatusExpired, "event is gone")
	case err != nil:
		return Message{}, nil, err
	case ev.Status != hotzone.EventLive || !ev.EndsAt.After(now):
		return final(hotzone.StatusExpired, "event ended before the notification was sent")
	}
	var dev hotzone.Device
	if devs != nil {
		var ok bool
		if dev, ok = devs[n.DeviceID]; !ok {
			err = hotzone.ErrNotFound
		}
	} else {
		dev, _, err = d.box.Device(ctx, n.BrandID, n.DeviceID)
	}
	switch {
	case errors.Is(err, hotzone.ErrNotFound):
		return final(hotzone.StatusFailed, "device was erased")
	case err != nil:
		return Message{}, nil, err
	case dev.Token == "":
		return final(hotzone.StatusFailed, "device has no push token any more")
	}
	return Message{Notification: n, Device: dev, Event: ev}, nil, nil
}

// emit tells the brand's webhooks of the final results just recorded
// (notification.sent, notification.failed), when any listens: a
// failure to queue them is logged, the results stand.
func (d *Dispatcher) emit(ctx context.Context, group []hotzone.Delivery, notes []hotzone.Notification) {
	if len(group) == 0 || len(notes) != len(group) {
		return
	}
	brandID := group[0].BrandID
	sent, failed := d.box.Listens(brandID, hotzone.HookNotificationSent), d.box.Listens(brandID, hotzone.HookNotificationFailed)
	if !sent && !failed {
		return
	}
	now := d.now()
	var hs []hotzone.Happening
	for i, r := range group {
		h, ok := hotzone.NotificationHappening(notes[i], r, now)
		if ok && ((h.Type == hotzone.HookNotificationSent && sent) || (h.Type == hotzone.HookNotificationFailed && failed)) {
			hs = append(hs, h)
		}
	}
	if len(hs) == 0 {
		return
	}
	if err := d.box.Emit(ctx, brandID, hs); err != nil {
		d.log.Warn("webhooks: queue notification results", "brand_id", brandID, "err", err)
		return
	}
	d.wakeHooks()
}
