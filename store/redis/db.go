package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/seal"
	"github.com/hotzone/hotzone/store/view"
)

// DB is the Redis Cluster backend of the storage contract
// (hotzone.Storage) and this node's views of it. Any number of
// processes may open the same cluster with the same Prefix; each keeps
// its own views and keeps them in step (sync.go).
type DB struct {
	c      valkey.Client
	p      string // key prefix
	now    func() time.Time
	box    *seal.Box
	opts   Options
	closed atomic.Bool

	// The views every node keeps, as in the bbolt backend.
	brands *view.Brands
	keys   *view.Keys
	stores *view.Stores
	events *view.Events

	// mu guards what this node knows of each brand beyond the views: the
	// key hashes and store ids last loaded (to take out what went), the
	// credentials, and the brand versions the views were loaded at.
	mu        sync.Mutex
	known     map[string]*brandState
	opHash    [32]byte // the operator key's hash, zero when none loaded
	globalVer int64    // the version of the operator key last seen
	countSeq  atomic.Uint64

	devs     devCache
	notified notifiedCache
	states   stateCache
	claimed  claimedEntries
	pos      positions
	present  presentCache
	hookBits sync.Map   // brand id -> the types its webhooks take (hotzone.HookType.Bit), for Listens
	flushMu  sync.Mutex // one flush at a time (the loop's, Close's, a test's)
	fanMu    sync.Mutex
	// fanning holds, for each event this node fans out ("brand\x00event"),
	// until when its lease runs (see fanningOut).
	fanning map[string]time.Time
	// flushChunk, holdMax and holdFor are flushChunk, 4 × flushEarly
	// and the lesser of fanOutHold and FlushInterval, as Open found
	// them (tests lower those; the loops read these).
	flushChunk, holdMax int
	holdFor             time.Duration

	loops    sync.WaitGroup
	stop     context.CancelFunc
	bg       context.Context
	wakeCh   chan wake  // brands whose views should be reloaded now
	reloadMu sync.Mutex // one reload at a time
	stats    Metrics
	tagMap   sync.Map // brand id -> *[Shards]string
	// waitSkip holds, per key waited on, until when not to WAIT.
	waitSkip sync.Map
	// waitSlots bounds the connections of its own in use (see
	// waitedConns and dedicated).
	waitSlots chan struct{}
	lanes     sync.Map                  // "brand\x00provider" -> true once added to the lanes set
	cntMu     sync.Mutex                // guards counts and cvSeen
	counts    map[string]*liveCounts    // live event id -> its counts by shard
	cvSeen    map[string]*[Shards]int64 // brand -> per shard, the counts version polled up to
}

// brandState is what a node loaded of one brand: the version of each
// part its views hold, and what it loaded, as stored, to tell what
// changed at the next load.
type brandState struct {
	vers   map[string]int64
	keys   map[[32]byte]string      // hash -> the key as stored
	stores map[string]string        // id -> the store as stored
	live   map[string]hotzone.Event // event id -> live event
	creds  map[hotzone.Provider]*hotzone.PushCredentials
	hooks  map[string]*hotzone.Webhook // id -> its settings (not its state)
}

// Options tunes Open.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// SecretKey (32 bytes) encrypts push credentials at rest.
	SecretKey []byte
	// Prefix starts every key, so several deployments (or tests) can
	// share one cluster; "hz" when empty. It must not contain braces.
	Prefix string
	// Poll is how often the views check the cluster's versions and the
	// live events' counts; 250 ms when zero. Changes are also published,
	// so polling only bounds how stale a lost message can leave a node.
	Poll time.Duration
	// FlushInterval is how long positions are held before they are
	// written; 200 ms when zero. A node holding flushEarly devices'
	// positions writes them at once; a node fanning out an event holds
	// them up to one interval more, a second at most (see fanningOut).
	FlushInterval time.Duration
	// WaitReplicas, when positive, makes the writes a failover must not
	// lose (a queued notification, a sent result, an event starting or
	// ending) wait until that many replicas of their shard acknowledged
	// them, at most WaitTimeout.
	WaitReplicas int
	// WaitTimeout bounds a WAIT; 100 ms when zero.
	WaitTimeout time.Duration
	// StateCache is about how many devices' decision state (record,
	// history, entry for one event) a node keeps, so that most
	// decisions need no read first; 250,000 when zero, none when
	// negative. Each takes about 0.6 KB.
	StateCache int
	// OpTimeout bounds each round trip; 5 s when zero. A shard failing
	// over answers within it or the call fails with ErrUnavailable.
	OpTimeout time.Duration
	// IdleConns is how long the connections a burst of waited writes
	// opened (see execWaiting) may stay idle before they close, beyond
	// a few kept per Redis node; 30 s when zero.
	IdleConns time.Duration
}

// connBuffer is each connection's read and write buffer.
const connBuffer = 256 << 10

// waitedConns bounds the waited writes a node has in flight at once,
// each on a connection of its own: without it a burst of 500 concurrent
// decisions opened 500 connections. A primary runs one script at a
// time, so more in flight would only wait there instead. Each Redis node
// keeps its own pool, so a node may still hold up to this many
// connections to each primary after bursts to them in turn.
const waitedConns = 32

// keptConns is how many idle connections of its own for waited writes
// a node keeps per Redis node past Options.IdleConns.
const keptConns = 4

// Open connects to the cluster at addrs (host:port each), loads the
// views and starts keeping them in step. ctx bounds the first load only.
func Open(ctx context.Context, addrs []string, opts Options) (*DB, error) {
	box, err := seal.New(opts.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = "hz"
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redis: prefix %q has a brace", opts.Prefix)
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 200 * time.Millisecond
	}
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = 5 * time.Second
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = 100 * time.Millisecond
	}
	if opts.StateCache == 0 {
		opts.StateCache = 250_000
	}
	if opts.IdleConns <= 0 {
		opts.IdleConns = 30 * time.Second
	}
	c, err := valkey.NewClient(valkey.ClientOption{
		InitAddress: addrs,
		// Our views are our cache; the server-assisted one would only
		// add invalidation traffic.
		DisableCache: true,
		// A command sent while a shard fails over is retried by the
		// client until ctx ends; the API maps a timeout to 503.
		ConnWriteTimeout: 5 * time.Second,
		// A decision that queues, or a presence change, waits for its
		// replica on a connection of its own (see execWaiting), so a
		// fan-out or a burst of pings opens dozens of them per primary.
		// Each kept valkey-go's default buffers, 1 MiB, for good: about
		// 130 MB a node after one 100,000-device fan-out, a third of
		// its heap. Our largest batches (a decide call of 256 devices)
		// fit in 256 KiB; idle connections beyond a few per primary
		// close after a while.
		ReadBufferEachConn:  connBuffer,
		WriteBufferEachConn: connBuffer,
		BlockingPoolCleanup: opts.IdleConns,
		BlockingPoolMinSize: keptConns,
		// So an operator tells this deployment's connections apart in
		// CLIENT LIST.
		ClientName: "hotzone-" + opts.Prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("redis: connect to %s: %w", strings.Join(addrs, ","), err)
	}
	db := &DB{c: c, p: opts.Prefix, now: opts.Now, box: box, opts: opts,
		brands: view.NewBrands(), keys: view.NewKeys(), stores: view.NewStores(), events: view.NewEvents(),
		known: map[string]*brandState{}, counts: map[string]*liveCounts{}, cvSeen: map[string]*[Shards]int64{}, wakeCh: make(chan wake, 256),
		waitSlots: make(chan struct{}, waitedConns), fanning: map[string]time.Time{},
		flushChunk: flushChunk, holdMax: 4 * flushEarly, holdFor: min(fanOutHold, opts.FlushInterval)}
	if db.now == nil {
		db.now = time.Now
	}
	db.devs.init()
	db.pos.init()
	db.states.init(max(opts.StateCache, 0))
	if err := db.loadAll(ctx); err != nil {
		c.Close()
		return nil, err
	}
	db.bg, db.stop = context.WithCancel(context.Background())
	db.loops.Go(func() { db.subscribe(db.bg) })
	db.loops.Go(func() { db.poll(db.bg) })
	// Positions and key uses held behind go out every FlushInterval,
	// or sooner when many are held (Close writes the rest). Retention
	// is the caller's to run (hotzone.Storage.Prune; serve runs it
	// hourly).
	db.loops.Go(func() { db.flushLoop(db.bg) })
	return db, nil
}

// Close writes the positions and key uses held behind, stops the loops
// and disconnects.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	db.stop()
	db.loops.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := db.flush(ctx)
	db.c.Close()
	return err
}

// Ping asks the shard of the global keys to answer; a cluster that
// cannot serve that slot is not ready.
func (db *DB) Ping(ctx context.Context) error {
	return db.do(ctx, db.cmd("EXISTS", []string{db.gkey("ver")})).Error()
}

// The key layout. Every key starts with the prefix; the part in braces
// (the hash tag) decides the cluster slot, so what one script touches
// shares a tag.
//
//	{P:g}:…           global: brand ids, versions, operator key, lanes
//	{P:b:BRAND}:…     a brand's catalog: brand, policy, keys, stores,
//	                  credentials, events, live events, idempotency keys
//	{P:s:BRAND:TAG}:… one of a brand's Shards device shards: devices,
//	                  their history, log entries, outbox, counts
//	{P:t:BRAND:PROV:TOKEN} a push token's owner
//	{P:c:BRAND:CELL}  a grid cell's qualifying positions

// gkey is a global key.
func (db *DB) gkey(name string) string { return "{" + db.p + ":g}:" + name }

// bkey is a key of a brand's catalog.
func (db *DB) bkey(brandID, name string) string { return "{" + db.p + ":b:" + brandID + "}:" + name }

// tokenKey is the key naming a push token's owner.
func (db *DB) tokenKey(brandID string, p hotzone.Provider, token string) string {
	return "{" + db.p + ":t:" + brandID + ":" + string(p) + ":" + token + "}"
}

// channel is where changes are published.
func (db *DB) channel() string { return db.p + ":changes" }

// notFound wraps ErrNotFound with what was not found.
func notFound(what string) error { return fmt.Errorf("redis: %s: %w", what, hotzone.ErrNotFound) }

// do runs one command and counts its latency and errors.
func (db *DB) do(ctx context.Context, cmd valkey.Completed) result {
	ctx, cancel := db.opCtx(ctx)
	defer cancel()
	start := time.Now()
	r := db.c.Do(ctx, cmd)
	db.stats.took(start, r.Error())
	return result{r}
}

// opCtx bounds one round trip by Options.OpTimeout: during a failover
// the client retries a shard's commands until its replica takes over,
// and a caller should rather hear ErrUnavailable (a 503) than hang.
func (db *DB) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, db.opts.OpTimeout)
}

// doMulti runs commands in one pipelined batch (split by the client per
// node) and answers the first error, if any.
func (db *DB) doMulti(ctx context.Context, cmds []valkey.Completed) ([]result, error) {
	if len(cmds) == 0 {
		return nil, nil
	}
	ctx, cancel := db.opCtx(ctx)
	defer cancel()
	start := time.Now()
	rs := db.c.DoMulti(ctx, cmds...)
	first := firstError(rs)
	db.stats.took(start, first)
	return results(rs), classify(first)
}

// firstError is the first answer of a batch that is an error (a nil
// answer is not one).
func firstError(rs []valkey.ValkeyResult) error {
	for _, r := range rs {
		if err := r.Error(); err != nil && !valkey.IsValkeyNil(err) {
			return err
		}
	}
	return nil
}

// exec runs a script.
func (db *DB) exec(ctx context.Context, s *script, keys, args []string) result {
	ctx, cancel := db.opCtx(ctx)
	defer cancel()
	start := time.Now()
	r := db.runScripts(ctx, s, []valkey.LuaExec{{Keys: keys, Args: args}})[0]
	db.stats.took(start, r.Error())
	return result{r}
}

// execMulti runs a script many times in one pipelined batch.
func (db *DB) execMulti(ctx context.Context, s *script, calls []valkey.LuaExec) ([]result, error) {
	if len(calls) == 0 {
		return nil, nil
	}
	ctx, cancel := db.opCtx(ctx)
	defer cancel()
	start := time.Now()
	rs := db.runScripts(ctx, s, calls)
	first := firstError(rs)
	db.stats.took(start, first)
	return results(rs), classify(first)
}

// cmd builds a command by name; the first keys arguments are keys.
func (db *DB) cmd(name string, keys []string, args ...string) valkey.Completed {
	return db.c.B().Arbitrary(name).Keys(keys...).Args(args...).Build()
}

// str reads a string answer, "" for nil.
func str(r result) (string, error) {
	s, err := r.ToString()
	if valkey.IsValkeyNil(err) {
		return "", nil
	}
	return s, err
}

// strMap reads a hash.
func strMap(r result) (map[string]string, error) {
	m, err := r.AsStrMap()
	if valkey.IsValkeyNil(err) {
		return map[string]string{}, nil
	}
	return m, err
}

// strs reads an array of strings, nil elements as "".
func strs(r result) ([]string, error) {
	arr, err := r.ToArray()
	if valkey.IsValkeyNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, len(arr))
	for i, m := range arr {
		s, err := m.ToString()
		if err != nil && !valkey.IsValkeyNil(err) {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// nanos spells a time as fixed-width nanoseconds, so that scripts can
// order times by comparing strings (Lua's numbers are doubles and would
// round them).
func nanos(t time.Time) string {
	s := strconv.FormatInt(t.UnixNano(), 10)
	if len(s) < 20 {
		s = strings.Repeat("0", 20-len(s)) + s
	}
	return s
}

// millis is t in milliseconds, as scores are kept.
func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// shard is the key prefix (its hash tag, in braces) of one of a brand's
// device shards.
func (db *DB) shard(brandID string, i int) string {
	v, ok := db.tagMap.Load(brandID)
	if !ok {
		tags := shardTags(db.p, brandID)
		v, _ = db.tagMap.LoadOrStore(brandID, &tags)
	}
	return "{" + v.(*[Shards]string)[i] + "}"
}

// shardCmds builds one command per shard of a brand; fn gets the
// shard's key prefix and index.
func (db *DB) shardCmds(brandID string, fn func(sh string, i int) valkey.Completed) []valkey.Completed {
	cmds := make([]valkey.Completed, Shards)
	for i := range Shards {
		cmds[i] = fn(db.shard(brandID, i), i)
	}
	return cmds
}

// shardCalls is one script call per shard of a brand, each with args.
func (db *DB) shardCalls(brandID string, args ...string) []valkey.LuaExec {
	calls := make([]valkey.LuaExec, Shards)
	for i := range Shards {
		calls[i] = valkey.LuaExec{Keys: []string{db.shard(brandID, i)}, Args: args}
	}
	return calls
}

// flushLoop writes what is held behind every FlushInterval, and at once
// when positions reach flushEarly: a burst of pings is then written
// while it comes, in full calls, rather than all in one flush that
// would load every primary at once, maybe when an event fans out.
func (db *DB) flushLoop(ctx context.Context) {
	t := time.NewTicker(db.opts.FlushInterval)
	defer t.Stop()
	early := db.pos.full
	var holding time.Time // since when positions wait for a fan-out
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-early:
		}
		// While this node fans out, what is held waits (fanningOut),
		// for up to holdFor, and up to holdMax devices: then all of it
		// goes, and holding starts over.
		stop := db.fanningOut
		switch {
		case !stop():
			holding = time.Time{}
		case holding.IsZero():
			holding = time.Now()
		}
		if db.pos.size() >= db.holdMax || !holding.IsZero() && time.Since(holding) >= db.holdFor {
			stop, holding = nil, time.Time{}
		}
		err := db.flushHeld(ctx, stop)
		db.stats.observe(err)
		// A failed flush holds its positions again, which would ask
		// for another at once against a cluster that just failed: the
		// next waits for the ticker.
		early = db.pos.full
		if err != nil {
			early = nil
		}
	}
}

// devShard is the key prefix of a device's shard.
func (db *DB) devShard(brandID, deviceID string) string { return db.shard(brandID, shardOf(deviceID)) }

// waitBackoff is how long a shard whose WAIT came back short is not
// waited for.
const waitBackoff = 2 * time.Second

// wait makes sure, when Options.WaitReplicas asks for it, that the
// writes made to key's shard so far reached that many replicas: a write
// on a connection of its own to the same primary, then WAIT there. The
// replication stream is ordered, so that covers every earlier write of
// the shard's primary, whichever connection made it. A WAIT that times
// out is counted and let go: the write stands on the primary.
func (db *DB) wait(ctx context.Context, key string) {
	if !db.waits(key) {
		return
	}
	// Its failure is counted in the metrics; the write stands anyway.
	_ = db.dedicated(ctx, func(c valkey.DedicatedClient) error {
		// Both in one round trip, in order on the one connection.
		rs := c.DoMulti(ctx, c.B().Incrby().Key(key+":wait").Increment(0).Build(), db.waitCmd(c))
		if err := rs[0].Error(); err != nil {
			return err
		}
		return db.waited(key, rs[1])
	})
}

// waits tells whether writes to key's shard are to be waited for: when
// Options.WaitReplicas asks for it, and unless the shard came back short
// lately. A primary without its replicas (one died, or it was just
// promoted from one) would make every write wait out the timeout: after
// a short WAIT, its shard is not waited for during waitBackoff.
func (db *DB) waits(key string) bool {
	if db.opts.WaitReplicas <= 0 {
		return false
	}
	if until, ok := db.waitSkip.Load(key); ok && time.Now().Before(until.(time.Time)) {
		db.stats.short.Add(1)
		return false
	}
	return true
}

// dedicated runs fn on a connection of its own, timed in the metrics,
// once one of the waitedConns slots is free; ctx's error, with fn not
// run, when ctx ends first.
func (db *DB) dedicated(ctx context.Context, fn func(valkey.DedicatedClient) error) error {
	select {
	case db.waitSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-db.waitSlots }()
	start := time.Now()
	err := db.c.Dedicated(fn)
	db.stats.took(start, err)
	return err
}

// waitCmd is the WAIT Options ask for.
func (db *DB) waitCmd(c valkey.DedicatedClient) valkey.Completed {
	return c.B().Wait().Numreplicas(int64(db.opts.WaitReplicas)).Timeout(db.opts.WaitTimeout.Milliseconds()).Build()
}

// waited takes a WAIT's answer for key's shard: one short of the
// replicas asked for is counted, and the shard backs off.
func (db *DB) waited(key string, r valkey.ValkeyResult) error {
	n, err := r.AsInt64()
	if err == nil && n < int64(db.opts.WaitReplicas) {
		db.stats.short.Add(1)
		db.waitSkip.Store(key, time.Now().Add(waitBackoff))
	}
	return err
}
