package store

import (
	"context"
	"crypto/subtle"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// EnsureOperatorKey makes the operator key usable. With a key from the
// environment it is trusted as given (and replaces any stored one); with
// none, the stored hash is used, and on the very first start a key is
// generated and returned so the caller can print it once — only its hash
// is kept.
func (db *DB) EnsureOperatorKey(fromEnv string) (generated string, err error) {
	key := fromEnv
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if key == "" {
			if h := meta.Get(metaOperatorKey); h != nil {
				var hash [32]byte
				copy(hash[:], h)
				db.setKey(&hotzone.Key{Hash: hash, Kind: hotzone.KindOperator})
				return nil
			}
			key = hotzone.NewKey(hotzone.KindOperator)
			generated = key
		}
		hash := hotzone.HashKey(key)
		db.setKey(&hotzone.Key{Hash: hash, Kind: hotzone.KindOperator})
		return meta.Put(metaOperatorKey, hash[:])
	})
	if err != nil {
		return "", fmt.Errorf("store: operator key: %w", err)
	}
	return generated, nil
}

func (db *DB) setKey(k *hotzone.Key) {
	db.mu.Lock()
	if k.Kind == hotzone.KindOperator {
		// Only one operator key is valid at a time.
		for h, old := range db.keys {
			if old.Kind == hotzone.KindOperator {
				delete(db.keys, h)
			}
		}
	}
	db.keys[k.Hash] = k
	db.mu.Unlock()
}

// Authenticate returns the key record for a presented secret. The map is
// keyed by the secret's SHA-256, so the lookup never touches the secret;
// the final constant-time compare guards the hash equality itself.
func (db *DB) Authenticate(secret string) (*hotzone.Key, bool) {
	if secret == "" {
		return nil, false
	}
	h := hotzone.HashKey(secret)
	db.mu.RLock()
	k := db.keys[h]
	db.mu.RUnlock()
	if k == nil || subtle.ConstantTimeCompare(k.Hash[:], h[:]) != 1 {
		return nil, false
	}
	return k, true
}

// CreateBrand creates a brand with the default policy and returns the
// admin and app keys, which exist nowhere else once this returns.
func (db *DB) CreateBrand(_ context.Context, name string) (hotzone.Brand, string, string, error) {
	now := db.now().UTC()
	br := hotzone.Brand{ID: hotzone.NewID(now), Name: name, CreatedAt: now}
	adminKey, appKey := hotzone.NewKey(hotzone.KindAdmin), hotzone.NewKey(hotzone.KindApp)
	admin := &hotzone.Key{Hash: hotzone.HashKey(adminKey), Kind: hotzone.KindAdmin, BrandID: br.ID, CreatedAt: now}
	app := &hotzone.Key{Hash: hotzone.HashKey(appKey), Kind: hotzone.KindApp, BrandID: br.ID, CreatedAt: now}
	bs := newBrandState(br)
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket(bucketBrands), []byte(br.ID), br); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketPolicies), []byte(br.ID), bs.policy); err != nil {
			return err
		}
		for _, k := range []*hotzone.Key{admin, app} {
			if err := putJSON(tx.Bucket(bucketKeys), k.Hash[:], k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return hotzone.Brand{}, "", "", fmt.Errorf("store: create brand: %w", err)
	}
	db.mu.Lock()
	db.brands[br.ID] = bs
	db.keys[admin.Hash] = admin
	db.keys[app.Hash] = app
	db.mu.Unlock()
	return br, adminKey, appKey, nil
}

// Brand returns a brand by id.
func (db *DB) Brand(id string) (hotzone.Brand, error) {
	bs := db.brand(id)
	if bs == nil {
		return hotzone.Brand{}, hotzone.ErrNotFound
	}
	return bs.brand, nil
}

// Policy returns a brand's policy.
func (db *DB) Policy(brandID string) (hotzone.Policy, error) {
	bs := db.brand(brandID)
	if bs == nil {
		return hotzone.Policy{}, hotzone.ErrNotFound
	}
	bs.mu.RLock()
	defer bs.mu.RUnlock()
	return bs.policy, nil
}

// UpdatePolicy applies fn to the current policy and stores the result if
// fn returns nil, atomically with respect to other updates.
func (db *DB) UpdatePolicy(_ context.Context, brandID string, fn func(*hotzone.Policy) error) (hotzone.Policy, error) {
	bs := db.brand(brandID)
	if bs == nil {
		return hotzone.Policy{}, hotzone.ErrNotFound
	}
	// Holding the writer lock across the commit keeps a concurrent PATCH
	// from interleaving its read-modify-write with ours.
	bs.wmu.Lock()
	defer bs.wmu.Unlock()
	p := bs.policy
	if p.QuietHours != nil {
		q := *p.QuietHours
		p.QuietHours = &q
	}
	if err := fn(&p); err != nil {
		return hotzone.Policy{}, err
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketPolicies), []byte(brandID), p)
	})
	if err != nil {
		return hotzone.Policy{}, fmt.Errorf("store: put policy: %w", err)
	}
	bs.mu.Lock()
	bs.policy = p
	bs.mu.Unlock()
	return p, nil
}

// CreateManagerKey issues a key for one store's tablet.
func (db *DB) CreateManagerKey(_ context.Context, brandID, storeID string, label *string) (hotzone.Key, string, error) {
	bs := db.brand(brandID)
	if bs == nil {
		return hotzone.Key{}, "", hotzone.ErrNotFound
	}
	now := db.now().UTC()
	secret := hotzone.NewKey(hotzone.KindManager)
	k := &hotzone.Key{Hash: hotzone.HashKey(secret), Kind: hotzone.KindManager, BrandID: brandID, StoreID: storeID, ID: hotzone.NewID(now), Label: label, CreatedAt: now}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketStores).Get(joinKey(brandID, storeID)) == nil {
			return hotzone.ErrNotFound
		}
		if err := putJSON(tx.Bucket(bucketKeys), k.Hash[:], k); err != nil {
			return err
		}
		return tx.Bucket(bucketMgrKeys).Put(joinKey(brandID, storeID, k.ID), k.Hash[:])
	})
	if err != nil {
		return hotzone.Key{}, "", fmt.Errorf("store: create manager key: %w", err)
	}
	db.setKey(k)
	return *k, secret, nil
}

// ManagerKeys lists a store's manager keys, oldest first.
func (db *DB) ManagerKeys(brandID, storeID string) ([]hotzone.Key, error) {
	if _, err := db.Store(brandID, storeID); err != nil {
		return nil, err
	}
	var out []hotzone.Key
	err := db.bolt.View(func(tx *bolt.Tx) error {
		prefix := append(joinKey(brandID, storeID), 0)
		c := tx.Bucket(bucketMgrKeys).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			var hash [32]byte
			copy(hash[:], v)
			// Copy under the lock: TouchKey writes LastUsedAt under it.
			db.mu.RLock()
			if key := db.keys[hash]; key != nil {
				out = append(out, *key)
			}
			db.mu.RUnlock()
		}
		return nil
	})
	return out, err
}

// DeleteManagerKey revokes a manager key by id; it stops working at once.
func (db *DB) DeleteManagerKey(_ context.Context, brandID, id string) error {
	var hash [32]byte
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMgrKeys)
		prefix := append([]byte(brandID), 0)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			if strings.HasSuffix(string(k), "\x00"+id) {
				copy(hash[:], v)
				if err := c.Delete(); err != nil {
					return err
				}
				return tx.Bucket(bucketKeys).Delete(hash[:])
			}
		}
		return hotzone.ErrNotFound
	})
	if err != nil {
		return fmt.Errorf("store: delete manager key: %w", err)
	}
	db.mu.Lock()
	k := db.keys[hash]
	delete(db.keys, hash)
	db.mu.Unlock()
	if k != nil {
		// Wakes the key's open live streams so they see it is gone.
		db.ev.mu.Lock()
		db.ev.signalLocked(storeRef{k.BrandID, k.StoreID})
		db.ev.mu.Unlock()
	}
	return nil
}

// KeyActive tells whether an admitted key is still valid (a manager key
// may have been revoked, or its store deleted, since).
func (db *DB) KeyActive(k *hotzone.Key) bool {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.keys[k.Hash] == k
}

// deleteStoreKeys revokes every manager key of a store inside tx and
// returns their hashes so the caller can drop them from memory after the
// commit.
func deleteStoreKeys(tx *bolt.Tx, brandID, storeID string) ([][32]byte, error) {
	var hashes [][32]byte
	prefix := append(joinKey(brandID, storeID), 0)
	c := tx.Bucket(bucketMgrKeys).Cursor()
	for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Seek(prefix) {
		var h [32]byte
		copy(h[:], v)
		hashes = append(hashes, h)
		if err := tx.Bucket(bucketKeys).Delete(h[:]); err != nil {
			return nil, err
		}
		if err := c.Delete(); err != nil {
			return nil, err
		}
	}
	return hashes, nil
}

// TouchKey records that a manager key was used. It is kept in memory and
// written with the next position flush: last_used_at is informational
// and not worth a disk sync per request.
func (db *DB) TouchKey(k *hotzone.Key) {
	now := db.now().UTC().Truncate(time.Second)
	db.mu.Lock()
	if now.After(k.LastUsedAt) {
		k.LastUsedAt = now
		db.touched[k.Hash] = struct{}{}
	}
	db.mu.Unlock()
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}
