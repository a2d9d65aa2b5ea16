package redis

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
)

// How the views stay in step. Every change to a brand's catalog (its
// policy, stores, keys, credentials, live events) bumps the version of
// that part of it in the global hash {P:g}:ver and publishes the brand
// and part; a node reloads that part when the message arrives, and also
// whenever a poll (every Options.Poll) finds a version newer than the
// one its views hold, so a message lost to a reconnect or a failover
// leaves a node stale for one poll at most. The node that made a change reloads before
// it returns, so it reads its own writes. Live events' counts change
// with every decision and are polled (one pipelined batch per brand with
// live events), not published.

// Messages on the changes channel.
const (
	msgBrand  = "b:" // + brand id, "/", parts: reload them
	msgGlobal = "g"  // the operator key changed
	msgErase  = "e:" // + brand id, NUL, device id: forget the device
)

// loadAll fills the views from the cluster.
func (db *DB) loadAll(ctx context.Context) error {
	ids, err := db.do(ctx, db.cmd("SMEMBERS", []string{db.gkey("brands")})).AsStrSlice()
	if err != nil && !valkey.IsValkeyNil(err) {
		return fmt.Errorf("redis: load brands: %w", err)
	}
	if err := db.reloadGlobal(ctx); err != nil {
		return err
	}
	for _, id := range ids {
		if err := db.reloadBrand(ctx, id, allParts...); err != nil {
			return err
		}
	}
	return nil
}

// reloadGlobal loads the operator key.
func (db *DB) reloadGlobal(ctx context.Context) error {
	h, err := str(db.do(ctx, db.cmd("GET", []string{db.gkey("operator")})))
	if err != nil {
		return fmt.Errorf("redis: load operator key: %w", err)
	}
	var hash [32]byte
	if b, err := hex.DecodeString(h); err == nil && len(b) == 32 {
		copy(hash[:], b)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if hash == db.opHash {
		return nil
	}
	if db.opHash != ([32]byte{}) {
		db.keys.Delete(db.opHash)
	}
	db.opHash = hash
	if hash != ([32]byte{}) {
		db.keys.Put(&hotzone.Key{Hash: hash, Kind: hotzone.KindOperator})
	}
	return nil
}

// The parts of a brand's catalog, each versioned apart ("BRAND/PART" in
// {P:g}:ver), so that an event starting does not reload ten thousand
// stores on every node.
const (
	partCatalog = "catalog" // the brand and its policy
	partStores  = "stores"
	partKeys    = "keys"
	partCreds   = "creds"
	partLive    = "live"
	partHooks   = "hooks" // the webhooks' settings (their state is in their own slots)
	// partAll, as a bump's argument, is every part.
	partAll = "all"
)

var allParts = []string{partCatalog, partStores, partKeys, partCreds, partLive, partHooks}

// wake asks for a reload of some parts of a brand ("" brand: the
// operator key).
type wake struct {
	brand string
	parts []string
}

// bump records a change of parts of a brand's catalog: their versions
// move on and every node is told; this node reloads them before the
// caller returns.
func (db *DB) bump(ctx context.Context, brandID string, parts ...string) error {
	if slices.Contains(parts, partAll) {
		parts = allParts
	}
	cmds := make([]valkey.Completed, 0, len(parts)+1)
	for _, p := range parts {
		cmds = append(cmds, db.cmd("HINCRBY", []string{db.gkey("ver")}, brandID+"/"+p, "1"))
	}
	cmds = append(cmds, db.c.B().Publish().Channel(db.channel()).Message(msgBrand+brandID+"/"+strings.Join(parts, ",")).Build())
	if _, err := db.doMulti(ctx, cmds); err != nil {
		return fmt.Errorf("redis: announce a change: %w", err)
	}
	return db.reloadBrand(ctx, brandID, parts...)
}

// reloadBrand loads parts of a brand's catalog (all of them for a brand
// this node does not know yet) into the views and takes out what is
// gone. Reloads run one at a time, each at versions read first, so an
// older load never overwrites a newer one.
func (db *DB) reloadBrand(ctx context.Context, brandID string, parts ...string) error {
	db.reloadMu.Lock()
	defer db.reloadMu.Unlock()
	db.mu.Lock()
	st := db.known[brandID]
	db.mu.Unlock()
	if st == nil || len(parts) == 0 {
		parts = allParts
	}
	fields := make([]string, len(parts))
	for i, p := range parts {
		fields[i] = brandID + "/" + p
	}
	verS, err := strs(db.do(ctx, db.cmd("HMGET", []string{db.gkey("ver")}, fields...)))
	if err != nil {
		return fmt.Errorf("redis: load brand %s: %w", brandID, err)
	}
	vers := map[string]int64{}
	for i, p := range parts {
		vers[p], _ = strconv.ParseInt(verS[i], 10, 64)
	}
	want := func(p string) bool { return slices.Contains(parts, p) }
	// The brand itself is read every time: a brand not there (being
	// created, or never was) is not loaded at all.
	cmds := []valkey.Completed{db.cmd("GET", []string{db.bkey(brandID, "brand")}), db.cmd("GET", []string{db.bkey(brandID, "policy")})}
	idx := map[string]int{}
	for _, p := range []string{partStores, partKeys, partCreds, partLive, partHooks} {
		if want(p) {
			idx[p] = len(cmds)
			cmds = append(cmds, db.cmd("HGETALL", []string{db.bkey(brandID, p)}))
		}
	}
	rs, err := db.doMulti(ctx, cmds)
	if err != nil {
		return fmt.Errorf("redis: load brand %s: %w", brandID, err)
	}
	brandRaw, _ := str(rs[0])
	if brandRaw == "" {
		return nil
	}
	var br hotzone.Brand
	if err := json.Unmarshal([]byte(brandRaw), &br); err != nil {
		return fmt.Errorf("redis: brand %s: %w", brandID, err)
	}
	policy := hotzone.DefaultPolicy()
	if raw, _ := str(rs[1]); raw != "" {
		if err := json.Unmarshal([]byte(raw), &policy); err != nil {
			return fmt.Errorf("redis: policy of %s: %w", brandID, err)
		}
	}
	raws := map[string]map[string]string{} // part -> its hash, for the parts read
	for p, i := range idx {
		if raws[p], err = strMap(rs[i]); err != nil {
			return err
		}
	}
	storesRaw, keysRaw, credsRaw, liveRaw := raws[partStores], raws[partKeys], raws[partCreds], raws[partLive]
	if st == nil {
		st = &brandState{vers: map[string]int64{}, keys: map[[32]byte]string{}, stores: map[string]string{}, live: map[string]hotzone.Event{}}
	}
	// What changed, decoded outside the lock.
	var changedStores []hotzone.Store
	for id, raw := range storesRaw {
		if st.stores[id] == raw {
			continue
		}
		s, err := hotzone.DecodeStore(brandID, []byte(raw))
		if err != nil {
			return fmt.Errorf("redis: store %s/%s: %w", brandID, id, err)
		}
		changedStores = append(changedStores, s)
	}
	var changedKeys []*hotzone.Key
	for h, raw := range keysRaw {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return fmt.Errorf("redis: key of %s: bad hash %q", brandID, h)
		}
		if st.keys[[32]byte(b)] == raw {
			continue
		}
		k := new(hotzone.Key)
		if err := json.Unmarshal([]byte(raw), k); err != nil {
			return fmt.Errorf("redis: key of %s: %w", brandID, err)
		}
		k.Hash = [32]byte(b)
		changedKeys = append(changedKeys, k)
	}
	creds := map[hotzone.Provider]*hotzone.PushCredentials{}
	for p, sealed := range credsRaw {
		if strings.HasPrefix(p, "deleted:") {
			continue // the version of deleted ones, for the next upload's
		}
		c := new(hotzone.PushCredentials)
		if err := db.box.Open(credAD(brandID, hotzone.Provider(p)), []byte(sealed), c); err != nil {
			return fmt.Errorf("redis: credentials of %s: %w", brandID, err)
		}
		creds[hotzone.Provider(p)] = c
	}
	hooks := map[string]*hotzone.Webhook{}
	for id, sealed := range raws[partHooks] {
		w := new(hotzone.Webhook)
		if err := db.box.Open(hookAD(brandID, id), []byte(sealed), w); err != nil {
			return fmt.Errorf("redis: webhook %s/%s: %w", brandID, id, err)
		}
		hooks[id] = w
	}
	live := map[string]hotzone.Event{}
	if len(liveRaw) > 0 {
		ids := make([]string, 0, len(liveRaw))
		for _, id := range liveRaw {
			ids = append(ids, id)
		}
		raws, err := strs(db.do(ctx, db.cmd("HMGET", []string{db.bkey(brandID, "events")}, ids...)))
		if err != nil {
			return fmt.Errorf("redis: live events of %s: %w", brandID, err)
		}
		for i, raw := range raws {
			if raw == "" {
				continue
			}
			var ev hotzone.Event
			if err := json.Unmarshal([]byte(raw), &ev); err != nil {
				return fmt.Errorf("redis: event %s: %w", ids[i], err)
			}
			live[ev.ID] = ev
		}
	}

	db.mu.Lock()
	db.known[brandID] = st
	db.brands.Put(br, policy)
	if want(partStores) && vers[partStores] >= st.vers[partStores] {
		st.vers[partStores] = vers[partStores]
		db.stores.Put(brandID, changedStores...)
		for id := range st.stores {
			if _, ok := storesRaw[id]; !ok {
				db.stores.Delete(brandID, id)
				db.events.Signal(brandID, id)
			}
		}
		st.stores = storesRaw
	}
	if want(partKeys) && vers[partKeys] >= st.vers[partKeys] {
		st.vers[partKeys] = vers[partKeys]
		for h := range st.keys {
			if _, ok := keysRaw[hex.EncodeToString(h[:])]; !ok {
				for _, k := range db.keys.Delete(h) {
					if k.StoreID != "" {
						db.events.Signal(k.BrandID, k.StoreID)
					}
				}
				delete(st.keys, h)
			}
		}
		for _, k := range changedKeys {
			db.keys.Put(k)
			st.keys[k.Hash] = keysRaw[hex.EncodeToString(k.Hash[:])]
		}
	}
	if want(partCreds) && vers[partCreds] >= st.vers[partCreds] {
		st.vers[partCreds] = vers[partCreds]
		st.creds = creds
	}
	if want(partHooks) && vers[partHooks] >= st.vers[partHooks] {
		st.vers[partHooks] = vers[partHooks]
		st.hooks = hooks
		var bits uint16
		for _, w := range hooks {
			bits |= w.Bits()
		}
		db.hookBits.Store(brandID, bits)
	}
	var started []string
	if want(partLive) && vers[partLive] >= st.vers[partLive] {
		st.vers[partLive] = vers[partLive]
		for id, ev := range st.live {
			if _, ok := live[id]; !ok {
				db.events.End(ev)
				db.notified.ended(id)
				db.cntMu.Lock()
				delete(db.counts, id)
				db.cntMu.Unlock()
			}
		}
		for id, ev := range live {
			if _, ok := st.live[id]; !ok {
				db.events.Start(ev, hotzone.Counts{})
				started = append(started, id)
			}
		}
		st.live = live
	}
	if want(partCatalog) && vers[partCatalog] >= st.vers[partCatalog] {
		st.vers[partCatalog] = vers[partCatalog]
	}
	db.mu.Unlock()
	// Counts of an event that just went live (on another node, maybe
	// with decisions made already) are read once it is in the view.
	db.refreshEventCounts(ctx, brandID, started...)
	return nil
}

// subscribe listens for changes until ctx ends, reconnecting after a
// failure.
func (db *DB) subscribe(ctx context.Context) {
	for ctx.Err() == nil {
		err := db.c.Receive(ctx, db.c.B().Subscribe().Channel(db.channel()).Build(), func(m valkey.PubSubMessage) {
			switch {
			case strings.HasPrefix(m.Message, msgBrand):
				brandID, parts, _ := strings.Cut(strings.TrimPrefix(m.Message, msgBrand), "/")
				select {
				case db.wakeCh <- wake{brandID, strings.Split(parts, ",")}:
				default: // the poll catches up
				}
			case m.Message == msgGlobal:
				select {
				case db.wakeCh <- wake{}:
				default:
				}
			case strings.HasPrefix(m.Message, msgErase):
				brandID, deviceID, _ := strings.Cut(strings.TrimPrefix(m.Message, msgErase), "\x00")
				db.devs.forget(brandID, deviceID)
				db.states.forget(brandID, deviceID)
				db.notified.erased(brandID, deviceID)
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			db.stats.observe(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// poll reloads what changed: at once for a published change, and every
// Poll for what the versions say (and the live events' counts).
func (db *DB) poll(ctx context.Context) {
	t := time.NewTicker(db.opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-db.wakeCh:
			var err error
			if w.brand == "" {
				err = db.reloadGlobal(ctx)
			} else {
				err = db.reloadBrand(ctx, w.brand, w.parts...)
			}
			db.stats.observe(err)
		case <-t.C:
			db.stats.observe(db.pollVersions(ctx))
			db.stats.observe(db.refreshCounts(ctx))
		}
	}
}

// pollVersions reloads every part of a brand whose version moved past
// the one the views hold, and the operator key.
func (db *DB) pollVersions(ctx context.Context) error {
	vers, err := strMap(db.do(ctx, db.cmd("HGETALL", []string{db.gkey("ver")})))
	if err != nil {
		return err
	}
	stale := map[string][]string{}
	db.mu.Lock()
	for field, v := range vers {
		n, _ := strconv.ParseInt(v, 10, 64)
		if field == "" {
			if n != db.globalVer {
				db.globalVer = n
				stale[""] = nil
			}
			continue
		}
		brandID, part, ok := strings.Cut(field, "/")
		if !ok {
			continue
		}
		if st := db.known[brandID]; st == nil || st.vers[part] < n {
			stale[brandID] = append(stale[brandID], part)
		}
	}
	db.mu.Unlock()
	for brandID, parts := range stale {
		var err error
		if brandID == "" {
			err = db.reloadGlobal(ctx)
		} else {
			err = db.reloadBrand(ctx, brandID, parts...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// refreshCounts reads the counts of every live event into the views.
func (db *DB) refreshCounts(ctx context.Context) error {
	byBrand := map[string][]string{}
	for _, ev := range db.events.All() {
		byBrand[ev.BrandID] = append(byBrand[ev.BrandID], ev.ID)
	}
	for brandID, ids := range byBrand {
		if err := db.pollCounts(ctx, brandID, ids); err != nil {
			return err
		}
	}
	return nil
}

// refreshEventCounts reads live events' counts into the view, after
// this node changed them, so that it reads its own writes.
func (db *DB) refreshEventCounts(ctx context.Context, brandID string, eventIDs ...string) {
	if len(eventIDs) > 0 {
		db.stats.observe(db.readLiveCounts(ctx, brandID, eventIDs))
	}
}
