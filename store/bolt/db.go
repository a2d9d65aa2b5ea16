package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
	"github.com/hotzone/hotzone/store/seal"
	"github.com/hotzone/hotzone/store/view"
)

var (
	bucketMeta      = []byte("meta")
	bucketBrands    = []byte("brands")
	bucketKeys      = []byte("keys")      // sha256(key) -> Key
	bucketMgrKeys   = []byte("mgr_keys")  // brand\0store\0id -> sha256(key)
	bucketPolicies  = []byte("policies")  // brand -> Policy
	bucketStores    = []byte("stores")    // brand\0store -> Store
	bucketDevices   = []byte("devices")   // brand\0device -> Device
	bucketTokens    = []byte("tokens")    // brand\0provider\0token -> device
	bucketPositions = []byte("positions") // brand\0device -> DevicePosition
	allBuckets      = [][]byte{bucketMeta, bucketBrands, bucketKeys, bucketMgrKeys, bucketPolicies, bucketStores, bucketDevices, bucketTokens, bucketPositions,
		bucketEvents, bucketLive, bucketIdem, bucketCounts, bucketNotifs, bucketNotifKeys, bucketOutbox, bucketHistory, bucketCreds}
	metaOperatorKey = []byte("operator_key_hash")
)

// ErrLocked: another process holds the data directory. bbolt takes an
// exclusive lock on its file, so one process owns a data dir.
var ErrLocked = errors.New("the data directory is in use by another hotzone process")

// initialMmapSize is the address space mapped at open (64-bit only).
const initialMmapSize = 1 << 30

// FileName is the bbolt file inside the data directory.
const FileName = "hotzone.db"

// DB is the bbolt backend of the storage contract (hotzone.Storage) and
// the node's views of it. It is safe for concurrent use by one process.
type DB struct {
	bolt *bbolt.DB
	now  func() time.Time
	box  *seal.Box

	// The views every node keeps; changed after each commit.
	brands *view.Brands
	keys   *view.Keys
	stores *view.Stores
	events *view.Events

	mu      sync.RWMutex
	devices map[string]*brandState // brand id -> its devices

	// dirty lists the devices whose position awaits the write-behind;
	// an entry's dirty flag keeps it listed once. Both under dirtyMu.
	dirtyMu sync.Mutex
	dirty   []*deviceEntry

	credMu sync.Mutex
	creds  map[hotzone.Lane]*hotzone.PushCredentials

	claims claims

	// countSeq numbers stored counts; only write transactions touch it.
	countSeq uint64
}

// brandState is a brand's devices as the hot paths read them, and the
// lock its read-modify-write operations take.
type brandState struct {
	// wmu serialises a brand's writers across their commit (two PUTs of
	// one store must not both decide "created"); mu guards the maps only
	// for the moment they change, so readers never wait on a disk sync.
	wmu     sync.Mutex
	mu      sync.RWMutex
	devices map[string]*deviceEntry
	// points holds each device's last qualifying position for event
	// fan-out. Pings only note their position in pending; it reaches
	// the tree in batches (one copy-on-write publish per batch), and
	// always before a fan-out reads it.
	points    *geo.PointIndex
	pendingMu sync.Mutex
	pending   []*deviceEntry // each once, by its pendingPoint flag
}

func newBrandState() *brandState {
	return &brandState{devices: map[string]*deviceEntry{}, points: geo.NewPointIndex()}
}

// Options tunes Open.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// SecretKey (32 bytes) encrypts push credentials at rest; without
	// one, credentials can be neither stored nor loaded.
	SecretKey []byte
}

// Open opens (creating if needed) the database in dir and loads the
// views. It answers ErrLocked, after a second, when another process has
// the directory open.
func Open(dir string, opts Options) (*DB, error) {
	box, err := seal.New(opts.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	b, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, &bbolt.Options{Timeout: time.Second, FreelistType: bbolt.FreelistMapType,
		// Growing the map re-reads every node a writer holds and waits
		// for every reader; it is address space, not memory, so reserve
		// plenty once rather than remap at each doubling under load.
		InitialMmapSize: initialMmapSize})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: %w", dir, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	// A ping that queues a notification waits for the batched commit;
	// bbolt's default 10 ms gathering window is latency every such ping
	// pays, 2 ms still groups a burst.
	b.MaxBatchDelay = 2 * time.Millisecond
	db := &DB{bolt: b, now: opts.Now, box: box,
		brands: view.NewBrands(), keys: view.NewKeys(), stores: view.NewStores(), events: view.NewEvents(),
		devices: map[string]*brandState{}, creds: map[hotzone.Lane]*hotzone.PushCredentials{}}
	db.claims.init()
	if db.now == nil {
		db.now = time.Now
	}
	if err := db.load(); err != nil {
		_ = b.Close()
		return nil, err
	}
	return db, nil
}

// load creates what is missing, migrates what an earlier version wrote,
// and fills the views. It reads brands, keys, stores, live events,
// credentials and devices with their positions; never the log.
func (db *DB) load() error {
	return db.bolt.Update(func(tx *bbolt.Tx) error {
		if err := migrateNotifKeys(tx); err != nil {
			return fmt.Errorf("store: migrate the notification index: %w", err)
		}
		countsNew := tx.Bucket(bucketCounts) == nil
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("store: create bucket %s: %w", name, err)
			}
		}
		if countsNew {
			if err := migrateCounts(tx); err != nil {
				return fmt.Errorf("store: count the log of an earlier version: %w", err)
			}
		}
		if err := db.loadBrands(tx); err != nil {
			return err
		}
		if err := db.loadStores(tx); err != nil {
			return err
		}
		if err := db.loadEvents(tx); err != nil {
			return err
		}
		if err := db.loadCredentials(tx); err != nil {
			return err
		}
		return db.loadDevices(tx)
	})
}

func (db *DB) loadBrands(tx *bbolt.Tx) error {
	if err := tx.Bucket(bucketBrands).ForEach(func(k, v []byte) error {
		var br hotzone.Brand
		if err := json.Unmarshal(v, &br); err != nil {
			return fmt.Errorf("store: brand %q: %w", k, err)
		}
		p := hotzone.DefaultPolicy()
		if raw := tx.Bucket(bucketPolicies).Get(k); raw != nil {
			if err := json.Unmarshal(raw, &p); err != nil {
				return fmt.Errorf("store: policy of %q: %w", k, err)
			}
		}
		db.brands.Put(br, p)
		db.devices[br.ID] = newBrandState()
		return nil
	}); err != nil {
		return err
	}
	return tx.Bucket(bucketKeys).ForEach(func(k, v []byte) error {
		key := new(hotzone.Key)
		if err := json.Unmarshal(v, key); err != nil {
			return fmt.Errorf("store: key: %w", err)
		}
		copy(key.Hash[:], k)
		db.keys.Put(key)
		return nil
	})
}

func (db *DB) loadStores(tx *bbolt.Tx) error {
	byBrand := map[string][]hotzone.Store{}
	if err := tx.Bucket(bucketStores).ForEach(func(k, v []byte) error {
		brandID, _ := splitKey(k)
		if _, ok := db.brands.Brand(brandID); !ok {
			return nil
		}
		st, err := decodeStore(brandID, v)
		if err != nil {
			return fmt.Errorf("store: store %q: %w", k, err)
		}
		byBrand[brandID] = append(byBrand[brandID], st)
		return nil
	}); err != nil {
		return err
	}
	for brandID, sts := range byBrand {
		db.stores.Put(brandID, sts...)
	}
	return nil
}

func (db *DB) loadDevices(tx *bbolt.Tx) error {
	positions := tx.Bucket(bucketPositions)
	return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
		brandID, _ := splitKey(k)
		bs := db.devices[brandID]
		if bs == nil {
			return nil
		}
		e := &deviceEntry{brandID: brandID}
		if err := json.Unmarshal(v, &e.dev); err != nil {
			return fmt.Errorf("store: device %q: %w", k, err)
		}
		e.dev.BrandID = brandID
		if p := positions.Get(k); p != nil {
			e.pos = new(hotzone.DevicePosition)
			if err := json.Unmarshal(p, e.pos); err != nil {
				return fmt.Errorf("store: position %q: %w", k, err)
			}
			if e.pos.Qualifying != nil {
				e.pendingPoint = true
				bs.pending = append(bs.pending, e)
			}
		}
		bs.devices[e.dev.ID] = e
		return nil
	})
}

// Close writes the pending positions and closes the file.
func (db *DB) Close() error {
	ferr := db.FlushPositions()
	cerr := db.bolt.Close()
	return errors.Join(ferr, cerr)
}

// Ping tells whether the database is open and answering.
func (db *DB) Ping(ctx context.Context) error {
	return db.bolt.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("store: meta bucket missing")
		}
		return ctx.Err()
	})
}

// Stats counts what the views hold and what waits in the outbox.
func (db *DB) Stats(context.Context) (hotzone.Stats, error) {
	s := hotzone.Stats{Brands: db.brands.Len(), Stores: db.stores.Len(), LiveEvents: db.events.Len()}
	db.mu.RLock()
	brands := make([]*brandState, 0, len(db.devices))
	for _, bs := range db.devices {
		brands = append(brands, bs)
	}
	db.mu.RUnlock()
	for _, bs := range brands {
		bs.mu.RLock()
		s.Devices += len(bs.devices)
		bs.mu.RUnlock()
	}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		s.OutboxDepth, s.OutboxOldest = outboxStats(tx)
		return nil
	})
	return s, err
}

// joinKey builds a bucket key from parts separated by NUL, which no id
// may contain.
func joinKey(parts ...string) []byte {
	n := len(parts) - 1
	for _, p := range parts {
		n += len(p)
	}
	return key(make([]byte, 0, n), parts...)
}

// key builds a NUL-joined key in buf, reusing its storage.
func key(buf []byte, parts ...string) []byte {
	buf = buf[:0]
	for i, p := range parts {
		if i > 0 {
			buf = append(buf, 0)
		}
		buf = append(buf, p...)
	}
	return buf
}

// splitKey splits a two-part key.
func splitKey(k []byte) (string, string) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return string(k), ""
	}
	return string(k[:i]), string(k[i+1:])
}

// brand is a brand's device state, or nil for an unknown brand.
func (db *DB) brand(id string) *brandState {
	db.mu.RLock()
	bs := db.devices[id]
	db.mu.RUnlock()
	return bs
}

// get is Bucket.Get through a reused cursor; a seek always starts at the
// root, so it stays correct after Puts in the same transaction.
func get(c *bbolt.Cursor, k []byte) []byte {
	fk, v := c.Seek(k)
	if !bytes.Equal(fk, k) {
		return nil
	}
	return v
}

func putJSON(b *bbolt.Bucket, k []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, buf)
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

// notFound wraps ErrNotFound with what was not found.
func notFound(what string) error { return fmt.Errorf("store: %s: %w", what, hotzone.ErrNotFound) }
