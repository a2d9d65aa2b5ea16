// Package store is hotzone's persistence: one bbolt file holding brands,
// keys, policies, stores, devices and positions, plus the in-memory views
// the hot paths read (key table, fence index per brand, device table).
//
// It imports the root package and geo only. Every write goes to bbolt
// first and reaches the in-memory views only after the transaction
// commits, so a reader never sees state that a crash could take back —
// with one documented exception: device positions are written behind.
package store

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

	bolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
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
		bucketEvents, bucketLive, bucketIdem, bucketNotifs, bucketNotifKeys, bucketOutbox, bucketHistory, bucketCreds}
	metaOperatorKey = []byte("operator_key_hash")
)

// initialMmapSize is the address space mapped at open (64-bit only).
const initialMmapSize = 1 << 30

// FileName is the bbolt file inside the data directory.
const FileName = "hotzone.db"

// DB is the open database and its in-memory views. It is safe for
// concurrent use.
type DB struct {
	bolt *bolt.DB
	now  func() time.Time

	mu      sync.RWMutex
	keys    map[[32]byte]*hotzone.Key
	touched map[[32]byte]struct{} // keys whose last_used_at awaits the flush
	brands  map[string]*brandState

	// dirty lists the devices whose position awaits the write-behind;
	// an entry's dirty flag keeps it listed once. Both under dirtyMu.
	dirtyMu sync.Mutex
	dirty   []*deviceEntry

	ev *events

	secret []byte // AES-256 key for push credentials at rest
	credMu sync.Mutex
	creds  map[hotzone.Lane]*hotzone.PushCredentials
}

// brandState is everything the hot paths read about one brand.
type brandState struct {
	brand  hotzone.Brand
	fences *geo.Index
	// points holds each device's last qualifying position for event
	// fan-out. Pings only note their position in pending; it reaches
	// the tree in batches (one copy-on-write publish per batch), and
	// always before a fan-out reads it.
	points    *geo.PointIndex
	pendingMu sync.Mutex
	pending   []*deviceEntry // each once, by its pendingPoint flag

	// wmu serialises writers across their commit; mu guards the maps
	// only for the moment they change, so readers never wait on a disk
	// sync.
	wmu     sync.Mutex
	mu      sync.RWMutex
	policy  hotzone.Policy
	stores  map[string]*hotzone.Store
	devices map[string]*deviceEntry
}

// deviceEntry is a device and its latest position; the position changes
// on every ping and reaches disk through the write-behind.
type deviceEntry struct {
	brandID string
	mu      sync.Mutex
	dev     hotzone.Device
	pos     *hotzone.DevicePosition
	deleted bool

	dirty        bool // listed in DB.dirty; guarded by DB.dirtyMu
	pendingPoint bool // listed in brandState.pending; guarded by its pendingMu
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
// in-memory views.
func Open(dir string, opts Options) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	b, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType,
		// Growing the map re-reads every node a writer holds and waits
		// for every reader; it is address space, not memory, so reserve
		// plenty once rather than remap at each doubling under load.
		InitialMmapSize: initialMmapSize})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	// A ping that queues a notification waits for the batched commit;
	// bbolt's default 10 ms gathering window is latency every such ping
	// pays, 2 ms still groups a burst.
	b.MaxBatchDelay = 2 * time.Millisecond
	db := &DB{bolt: b, now: opts.Now, keys: map[[32]byte]*hotzone.Key{}, touched: map[[32]byte]struct{}{}, brands: map[string]*brandState{}, ev: newEvents(),
		secret: opts.SecretKey, creds: map[hotzone.Lane]*hotzone.PushCredentials{}}
	if db.now == nil {
		db.now = time.Now
	}
	if err := db.load(); err != nil {
		_ = b.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) load() error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		if err := migrateNotifKeys(tx); err != nil {
			return fmt.Errorf("store: migrate the notification index: %w", err)
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("store: create bucket %s: %w", name, err)
			}
		}
		if err := tx.Bucket(bucketBrands).ForEach(func(k, v []byte) error {
			var br hotzone.Brand
			if err := json.Unmarshal(v, &br); err != nil {
				return fmt.Errorf("store: brand %q: %w", k, err)
			}
			bs := newBrandState(br)
			if p := tx.Bucket(bucketPolicies).Get(k); p != nil {
				if err := json.Unmarshal(p, &bs.policy); err != nil {
					return fmt.Errorf("store: policy of %q: %w", k, err)
				}
			}
			db.brands[br.ID] = bs
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketKeys).ForEach(func(k, v []byte) error {
			key := new(hotzone.Key)
			if err := json.Unmarshal(v, key); err != nil {
				return fmt.Errorf("store: key: %w", err)
			}
			copy(key.Hash[:], k)
			db.keys[key.Hash] = key
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketStores).ForEach(func(k, v []byte) error {
			brandID, _ := splitKey(k)
			bs := db.brands[brandID]
			if bs == nil {
				return nil
			}
			st, err := decodeStore(brandID, v)
			if err != nil {
				return fmt.Errorf("store: store %q: %w", k, err)
			}
			bs.stores[st.ID] = st
			bs.fences.SetLabeled(st.ID, st.Name, st.Fence)
			return nil
		}); err != nil {
			return err
		}
		if err := db.loadEvents(tx); err != nil {
			return err
		}
		if err := db.loadCredentials(tx); err != nil {
			return err
		}
		positions := tx.Bucket(bucketPositions)
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			brandID, _ := splitKey(k)
			bs := db.brands[brandID]
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
				if q := e.pos.Qualifying; q != nil {
					e.pendingPoint = true
					bs.pending = append(bs.pending, e)
				}
			}
			bs.devices[e.dev.ID] = e
			return nil
		})
	})
}

func newBrandState(br hotzone.Brand) *brandState {
	return &brandState{
		brand:   br,
		fences:  geo.NewIndex(),
		points:  geo.NewPointIndex(),
		policy:  hotzone.DefaultPolicy(),
		stores:  map[string]*hotzone.Store{},
		devices: map[string]*deviceEntry{},
	}
}

// Close writes the pending positions and closes the file.
func (db *DB) Close() error {
	ferr := db.FlushPositions()
	cerr := db.bolt.Close()
	return errors.Join(ferr, cerr)
}

// Ping tells whether the database is open and answering.
func (db *DB) Ping(ctx context.Context) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return errors.New("store: meta bucket missing")
		}
		return ctx.Err()
	})
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

// splitKey splits a two-part key.
func splitKey(k []byte) (string, string) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return string(k), ""
	}
	return string(k[:i]), string(k[i+1:])
}

func (db *DB) brand(id string) *brandState {
	db.mu.RLock()
	bs := db.brands[id]
	db.mu.RUnlock()
	return bs
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, buf)
}
