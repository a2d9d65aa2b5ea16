package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/bolt/ledger"
	"github.com/hotzone/hotzone/store/devices"
	"github.com/hotzone/hotzone/store/kvlog"
	"github.com/hotzone/hotzone/store/poslog"
	"github.com/hotzone/hotzone/store/seal"
	"github.com/hotzone/hotzone/store/view"
)

var (
	bucketMeta     = []byte("meta")
	bucketBrands   = []byte("brands")
	bucketKeys     = []byte("keys")     // sha256(key) -> Key
	bucketMgrKeys  = []byte("mgr_keys") // brand\0store\0id -> sha256(key)
	bucketPolicies = []byte("policies") // brand -> Policy
	bucketStores   = []byte("stores")   // brand\0store -> Store
	bucketDevices  = []byte("devices")  // brand\0device -> Device
	bucketTokens   = []byte("tokens")   // brand\0provider\0token -> device
	allBuckets     = [][]byte{bucketMeta, bucketBrands, bucketKeys, bucketMgrKeys, bucketPolicies, bucketStores, bucketDevices, bucketTokens, bucketCreds, bucketPresets,
		bucketHooks, bucketHookDlv, bucketHookDue, bucketHookHead, bucketHookWait}
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
	// presLog keeps presence, written behind (presence.go).
	presLog *kvlog.Log

	// The views every node keeps; changed after each commit.
	brands *view.Brands
	keys   *view.Keys
	stores *view.Stores
	events *view.Events

	// devs is every device in memory with its positions (the ping path
	// never reads the disk); positions reach the disk through plog, the
	// write-behind's log, in one append per flush.
	devs       *devices.Table
	plog       *poslog.Log
	flushMu    sync.Mutex   // one flush at a time; guards the two below
	erasedAt   time.Time    // a device was erased: compact positions soon
	flushBlock poslog.Block // reused by each flush
	devLocks   devLocks
	present    presences
	hooks      hooks
	commits    committer
	// journal holds registrations written ahead of bbolt (journal.go).
	journal *journal

	// locks serialise each brand's read-modify-write operations across
	// their commit (two PUTs of one store must not both decide
	// "created"), so that readers never wait on a disk sync.
	mu    sync.RWMutex
	locks map[string]*sync.Mutex

	credMu sync.Mutex
	creds  map[hotzone.Lane]*hotzone.PushCredentials

	leases ledger.Leases

	// countSeq numbers stored counts; only write transactions touch it.
	countSeq uint64
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
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: open %s: %w", dir, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	plog, err := poslog.Open(dir)
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	pres, err := kvlog.Open(dir, presenceFile)
	if err != nil {
		_ = plog.Close()
		_ = b.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	jn, err := openJournal(dir)
	if err != nil {
		_ = pres.Close()
		_ = plog.Close()
		_ = b.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	db := &DB{bolt: b, now: opts.Now, box: box, plog: plog, presLog: pres, journal: jn, devLocks: devLocks{seed: maphash.MakeSeed()},
		brands: view.NewBrands(), keys: view.NewKeys(), stores: view.NewStores(), events: view.NewEvents(),
		devs: devices.New(), locks: map[string]*sync.Mutex{}, creds: map[hotzone.Lane]*hotzone.PushCredentials{}}
	if db.now == nil {
		db.now = time.Now
	}
	if err := db.load(); err != nil {
		_ = jn.close()
		_ = pres.Close()
		_ = plog.Close()
		_ = b.Close()
		return nil, err
	}
	db.releaseMapped()
	return db, nil
}

// load creates what is missing, migrates what an earlier version wrote,
// and fills the views. It reads brands, keys, stores, live events,
// credentials and devices with their positions; never the log.
func (db *DB) load() error {
	var journaled uint64
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		if err := ledger.Prepare(tx); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("store: create bucket %s: %w", name, err)
			}
		}
		var err error
		if journaled, err = db.replayJournal(tx); err != nil {
			return err
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
		if err := db.loadDevices(tx); err != nil {
			return err
		}
		return db.loadWebhooks(tx)
	})
	if err != nil {
		return err
	}
	// bbolt holds what the journal held: it starts over.
	db.startJournal(journaled)
	// Devices are loaded: presence of one erased since is dropped.
	return db.loadPresence()
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
		db.addBrand(br, p)
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
		st, err := hotzone.DecodeStore(brandID, v)
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

// addBrand puts a brand in the views and makes room for its devices.
func (db *DB) addBrand(br hotzone.Brand, p hotzone.Policy) {
	db.mu.Lock()
	db.locks[br.ID] = new(sync.Mutex)
	db.mu.Unlock()
	db.devs.AddBrand(br.ID)
	db.brands.Put(br, p)
}

// brandLock is the lock of a brand's read-modify-write operations; nil
// for an unknown brand.
func (db *DB) brandLock(id string) *sync.Mutex {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.locks[id]
}

// Close writes the pending positions and closes the files.
func (db *DB) Close() error {
	ferr := db.FlushPositions()
	db.journal.bg.Wait()
	jerr := db.Checkpoint()
	perr := errors.Join(db.plog.Close(), db.presLog.Close())
	lerr := db.journal.close()
	cerr := db.bolt.Close()
	return errors.Join(ferr, jerr, perr, lerr, cerr)
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
	s := hotzone.Stats{Brands: db.brands.Len(), Stores: db.stores.Len(), Devices: db.devs.Len(), LiveEvents: db.events.Len()}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		s.OutboxDepth, s.OutboxOldest = ledger.Stats(tx)
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

// get is Bucket.Get through a reused cursor; a seek always starts at the
// root, so it stays correct after Puts in the same transaction.
func get(c *bbolt.Cursor, k []byte) []byte {
	fk, v := c.Seek(k)
	if !bytes.Equal(fk, k) {
		return nil
	}
	return v
}
