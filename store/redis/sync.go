package redis

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
)

// How the views stay in step. Every change to a brand's catalog (its
// policy, stores, keys, credentials, live events) bumps the brand's
// version in the global hash {P:g}:ver and publishes the brand's id; a
// node reloads a brand when the message arrives, and also whenever a
// poll (every Options.Poll) finds a version newer than the one its views
// hold, so a message lost to a reconnect or a failover leaves a node
// stale for one poll at most. The node that made a change reloads before
// it returns, so it reads its own writes. Live events' counts change
// with every decision and are polled (one pipelined batch per brand with
// live events), not published.

// Messages on the changes channel.
const (
	msgBrand  = "b:" // + brand id: reload its catalog
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
		if err := db.reloadBrand(ctx, id); err != nil {
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

// bump records a change of a brand's catalog: its version moves on and
// every node is told; this node reloads it before the caller returns.
func (db *DB) bump(ctx context.Context, brandID string) error {
	if _, err := db.doMulti(ctx, []valkey.Completed{
		db.cmd("HINCRBY", []string{db.gkey("ver")}, brandID, "1"),
		db.c.B().Publish().Channel(db.channel()).Message(msgBrand + brandID).Build(),
	}); err != nil {
		return fmt.Errorf("redis: announce a change: %w", err)
	}
	return db.reloadBrand(ctx, brandID)
}

// reloadBrand loads a brand's catalog into the views and takes out what
// is gone. Reloads run one at a time, each at a version read first, so
// an older load never overwrites a newer one.
func (db *DB) reloadBrand(ctx context.Context, brandID string) error {
	db.mu.Lock()
	st := db.known[brandID]
	db.mu.Unlock()
	verRes := db.do(ctx, db.cmd("HGET", []string{db.gkey("ver")}, brandID))
	verS, err := str(verRes)
	if err != nil {
		return fmt.Errorf("redis: load brand %s: %w", brandID, err)
	}
	ver, _ := strconv.ParseInt(verS, 10, 64)
	rs, err := db.doMulti(ctx, []valkey.Completed{
		db.cmd("GET", []string{db.bkey(brandID, "brand")}),
		db.cmd("GET", []string{db.bkey(brandID, "policy")}),
		db.cmd("HGETALL", []string{db.bkey(brandID, "stores")}),
		db.cmd("HGETALL", []string{db.bkey(brandID, "keys")}),
		db.cmd("HGETALL", []string{db.bkey(brandID, "creds")}),
		db.cmd("HGETALL", []string{db.bkey(brandID, "live")}),
	})
	if err != nil {
		return fmt.Errorf("redis: load brand %s: %w", brandID, err)
	}
	brandRaw, _ := str(rs[0])
	if brandRaw == "" {
		return nil // being created, or never was
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
	storesRaw, err := strMap(rs[2])
	if err != nil {
		return err
	}
	keysRaw, err := strMap(rs[3])
	if err != nil {
		return err
	}
	credsRaw, err := strMap(rs[4])
	if err != nil {
		return err
	}
	liveRaw, err := strMap(rs[5])
	if err != nil {
		return err
	}
	sts := make([]hotzone.Store, 0, len(storesRaw))
	for id, raw := range storesRaw {
		s, err := decodeStore(brandID, raw)
		if err != nil {
			return fmt.Errorf("redis: store %s/%s: %w", brandID, id, err)
		}
		sts = append(sts, s)
	}
	keys := make(map[[32]byte]*hotzone.Key, len(keysRaw))
	for h, raw := range keysRaw {
		k := new(hotzone.Key)
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return fmt.Errorf("redis: key of %s: bad hash %q", brandID, h)
		}
		if err := json.Unmarshal([]byte(raw), k); err != nil {
			return fmt.Errorf("redis: key of %s: %w", brandID, err)
		}
		copy(k.Hash[:], b)
		keys[k.Hash] = k
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
	defer db.mu.Unlock()
	if st == nil {
		st = db.known[brandID]
	}
	if st != nil && ver < st.ver {
		return nil // a newer load got here first
	}
	if st == nil {
		st = &brandState{keys: map[[32]byte]bool{}, stores: map[string]bool{}, live: map[string]hotzone.Event{}}
		st.shards = shardTags(db.p, brandID)
		db.known[brandID] = st
	}
	st.ver = ver
	db.brands.Put(br, policy)
	db.stores.Put(brandID, sts...)
	newStores := make(map[string]bool, len(sts))
	for _, s := range sts {
		newStores[s.ID] = true
	}
	for id := range st.stores {
		if !newStores[id] {
			db.stores.Delete(brandID, id)
			db.events.Signal(brandID, id)
		}
	}
	st.stores = newStores
	for h := range st.keys {
		if _, ok := keys[h]; !ok {
			for _, k := range db.keys.Delete(h) {
				if k.StoreID != "" {
					db.events.Signal(k.BrandID, k.StoreID)
				}
			}
			delete(st.keys, h)
		}
	}
	for h, k := range keys {
		if cur, ok := db.keys.Get(h); ok && st.keys[h] && sameKey(cur, *k) {
			continue
		}
		db.keys.Put(k)
		st.keys[h] = true
	}
	st.creds = creds
	for id, ev := range st.live {
		if _, ok := live[id]; !ok {
			db.events.End(ev)
			db.cntMu.Lock()
			delete(db.counts, id)
			db.cntMu.Unlock()
		}
	}
	var started []string
	for id, ev := range live {
		if _, ok := st.live[id]; !ok {
			db.events.Start(ev, hotzone.Counts{})
			started = append(started, id)
		}
	}
	st.live = live
	db.mu.Unlock()
	// Counts of an event that just went live (on another node, maybe
	// with decisions made already) are read once it is in the view.
	db.refreshEventCounts(ctx, brandID, started...)
	db.mu.Lock()
	return nil
}

// sameKey tells whether a loaded key says what the view holds (its last
// use aside, which is written behind and informational).
func sameKey(a, b hotzone.Key) bool {
	return a.Kind == b.Kind && a.BrandID == b.BrandID && a.StoreID == b.StoreID && a.ID == b.ID &&
		(a.Label == nil) == (b.Label == nil) && (a.Label == nil || *a.Label == *b.Label)
}

// subscribe listens for changes until ctx ends, reconnecting after a
// failure.
func (db *DB) subscribe(ctx context.Context) {
	for ctx.Err() == nil {
		err := db.c.Receive(ctx, db.c.B().Subscribe().Channel(db.channel()).Build(), func(m valkey.PubSubMessage) {
			switch {
			case strings.HasPrefix(m.Message, msgBrand):
				select {
				case db.wakeCh <- strings.TrimPrefix(m.Message, msgBrand):
				default: // the poll catches up
				}
			case m.Message == msgGlobal:
				select {
				case db.wakeCh <- "":
				default:
				}
			case strings.HasPrefix(m.Message, msgErase):
				brandID, deviceID, _ := strings.Cut(strings.TrimPrefix(m.Message, msgErase), "\x00")
				db.devs.forget(brandID, deviceID)
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
		case id := <-db.wakeCh:
			var err error
			if id == "" {
				err = db.reloadGlobal(ctx)
			} else {
				err = db.reloadBrand(ctx, id)
			}
			db.stats.observe(err)
		case <-t.C:
			db.stats.observe(db.pollVersions(ctx))
			db.stats.observe(db.refreshCounts(ctx))
		}
	}
}

// pollVersions reloads every brand whose version moved past the one the
// views hold, and the operator key.
func (db *DB) pollVersions(ctx context.Context) error {
	vers, err := strMap(db.do(ctx, db.cmd("HGETALL", []string{db.gkey("ver")})))
	if err != nil {
		return err
	}
	for id, v := range vers {
		n, _ := strconv.ParseInt(v, 10, 64)
		if id == "" {
			db.mu.Lock()
			stale := n != db.globalVer
			db.globalVer = n
			db.mu.Unlock()
			if stale {
				if err := db.reloadGlobal(ctx); err != nil {
					return err
				}
			}
			continue
		}
		db.mu.Lock()
		st := db.known[id]
		stale := st == nil || st.ver < n
		db.mu.Unlock()
		if stale {
			if err := db.reloadBrand(ctx, id); err != nil {
				return err
			}
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
		db.stats.observe(db.pollCounts(ctx, brandID, eventIDs))
	}
}
