package bolt

import (
	"context"
	"errors"
	"fmt"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// EnsureOperatorKey implements hotzone.Keys.
func (db *DB) EnsureOperatorKey(_ context.Context, fromEnv string) (generated string, err error) {
	key := fromEnv
	var hash [32]byte
	err = db.bolt.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if key == "" {
			if h := meta.Get(metaOperatorKey); h != nil {
				copy(hash[:], h)
				return nil
			}
			key = hotzone.NewKey(hotzone.KindOperator)
			generated = key
		}
		hash = hotzone.HashKey(key)
		return meta.Put(metaOperatorKey, hash[:])
	})
	if err != nil {
		return "", fmt.Errorf("store: operator key: %w", err)
	}
	db.keys.Put(&hotzone.Key{Hash: hash, Kind: hotzone.KindOperator})
	return generated, nil
}

// Authenticate implements hotzone.Keys from the key table in memory.
func (db *DB) Authenticate(_ context.Context, secret string) (*hotzone.Key, error) {
	return db.keys.Authenticate(secret)
}

// KeyActive implements hotzone.Keys.
func (db *DB) KeyActive(_ context.Context, k *hotzone.Key) (bool, error) {
	return db.keys.Active(k), nil
}

// TouchKey implements hotzone.Keys: kept in memory and written with the
// next position flush.
func (db *DB) TouchKey(_ context.Context, k *hotzone.Key) error {
	db.keys.Touch(k, db.now())
	return nil
}

// CreateBrand implements hotzone.Brands.
func (db *DB) CreateBrand(_ context.Context, name string) (hotzone.Brand, string, string, error) {
	now := db.now().UTC()
	br := hotzone.Brand{ID: hotzone.NewID(now), Name: name, CreatedAt: now}
	adminKey, appKey := hotzone.NewKey(hotzone.KindAdmin), hotzone.NewKey(hotzone.KindApp)
	admin := &hotzone.Key{Hash: hotzone.HashKey(adminKey), Kind: hotzone.KindAdmin, BrandID: br.ID, CreatedAt: now}
	app := &hotzone.Key{Hash: hotzone.HashKey(appKey), Kind: hotzone.KindApp, BrandID: br.ID, CreatedAt: now}
	policy := hotzone.DefaultPolicy()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		if err := putJSON(tx.Bucket(bucketBrands), []byte(br.ID), br); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketPolicies), []byte(br.ID), policy); err != nil {
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
	db.addBrand(br, policy)
	db.keys.Put(admin)
	db.keys.Put(app)
	return br, adminKey, appKey, nil
}

// Brand implements hotzone.Brands.
func (db *DB) Brand(_ context.Context, id string) (hotzone.Brand, error) {
	br, ok := db.brands.Brand(id)
	if !ok {
		return hotzone.Brand{}, notFound("brand")
	}
	return br, nil
}

// Policy implements hotzone.Brands.
func (db *DB) Policy(_ context.Context, brandID string) (hotzone.Policy, error) {
	p, ok := db.brands.Policy(brandID)
	if !ok {
		return hotzone.Policy{}, notFound("brand")
	}
	return p, nil
}

// UpdatePolicy implements hotzone.Brands.
func (db *DB) UpdatePolicy(_ context.Context, brandID string, fn func(*hotzone.Policy) error) (hotzone.Policy, error) {
	lock := db.brandLock(brandID)
	if lock == nil {
		return hotzone.Policy{}, notFound("brand")
	}
	// Holding the writer lock across the commit keeps a concurrent PATCH
	// from interleaving its read-modify-write with ours.
	lock.Lock()
	defer lock.Unlock()
	p, _ := db.brands.Policy(brandID)
	if p.QuietHours != nil {
		q := *p.QuietHours
		p.QuietHours = &q
	}
	if err := fn(&p); err != nil {
		return hotzone.Policy{}, err
	}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bucketPolicies), []byte(brandID), p)
	})
	if err != nil {
		return hotzone.Policy{}, fmt.Errorf("store: put policy: %w", err)
	}
	db.brands.SetPolicy(brandID, p)
	return p, nil
}

// CreateManagerKey implements hotzone.Keys.
func (db *DB) CreateManagerKey(_ context.Context, brandID, storeID string, label *string) (hotzone.Key, string, error) {
	if db.brandLock(brandID) == nil {
		return hotzone.Key{}, "", notFound("brand")
	}
	now := db.now().UTC()
	secret := hotzone.NewKey(hotzone.KindManager)
	k := &hotzone.Key{Hash: hotzone.HashKey(secret), Kind: hotzone.KindManager, BrandID: brandID, StoreID: storeID, ID: hotzone.NewID(now), Label: label, CreatedAt: now}
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketStores).Get(joinKey(brandID, storeID)) == nil {
			return notFound("store")
		}
		if err := putJSON(tx.Bucket(bucketKeys), k.Hash[:], k); err != nil {
			return err
		}
		return tx.Bucket(bucketMgrKeys).Put(joinKey(brandID, storeID, k.ID), k.Hash[:])
	})
	if err != nil {
		return hotzone.Key{}, "", fmt.Errorf("store: create manager key: %w", err)
	}
	db.keys.Put(k)
	return *k, secret, nil
}

// ManagerKeys implements hotzone.Keys.
func (db *DB) ManagerKeys(_ context.Context, brandID, storeID string) ([]hotzone.Key, error) {
	if !db.stores.Has(brandID, storeID) {
		return nil, notFound("store")
	}
	var out []hotzone.Key
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		prefix := append(joinKey(brandID, storeID), 0)
		c := tx.Bucket(bucketMgrKeys).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			var hash [32]byte
			copy(hash[:], v)
			// The table's copy: it has the last use not yet written.
			if key, ok := db.keys.Get(hash); ok {
				out = append(out, key)
			}
		}
		return nil
	})
	return out, err
}

// DeleteManagerKey implements hotzone.Keys.
func (db *DB) DeleteManagerKey(_ context.Context, brandID, id string) error {
	var hash [32]byte
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
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
		return notFound("manager key")
	})
	if err != nil {
		if errors.Is(err, hotzone.ErrNotFound) {
			return err
		}
		return fmt.Errorf("store: delete manager key: %w", err)
	}
	for _, k := range db.keys.Delete(hash) {
		// Wakes the key's open live streams so they see it is gone.
		db.events.Signal(k.BrandID, k.StoreID)
	}
	return nil
}

// deleteStoreKeys revokes every manager key of a store inside tx and
// returns their hashes so the caller can drop them from the table after
// the commit.
func deleteStoreKeys(tx *bbolt.Tx, brandID, storeID string) ([][32]byte, error) {
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

// BrandIDs implements hotzone.Brands from the view.
func (db *DB) BrandIDs(context.Context) ([]string, error) { return db.brands.IDs(), nil }
