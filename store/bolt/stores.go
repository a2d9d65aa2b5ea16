package bolt

import (
	"context"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// PutStore implements hotzone.Stores.
func (db *DB) PutStore(ctx context.Context, st hotzone.Store) (hotzone.Store, bool, error) {
	out, created, err := db.putStores(ctx, st.BrandID, []hotzone.Store{st})
	if err != nil {
		return hotzone.Store{}, false, err
	}
	return out[0], created == 1, nil
}

// ImportStores implements hotzone.Stores in one transaction.
func (db *DB) ImportStores(ctx context.Context, brandID string, sts []hotzone.Store) (created, updated int, err error) {
	_, created, err = db.putStores(ctx, brandID, sts)
	return created, len(sts) - created, err
}

func (db *DB) putStores(_ context.Context, brandID string, sts []hotzone.Store) ([]hotzone.Store, int, error) {
	lock := db.brandLock(brandID)
	if lock == nil {
		return nil, 0, notFound("brand")
	}
	now := db.now().UTC()
	out := make([]hotzone.Store, len(sts))
	created := 0
	// The writer lock is held across the commit so two writers of the
	// same store cannot both decide "created".
	lock.Lock()
	defer lock.Unlock()
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketStores)
		created = 0
		for i, st := range sts {
			createdAt := now
			if old, ok := db.stores.Get(brandID, st.ID); ok {
				createdAt = old.CreatedAt
			} else {
				created++
			}
			st = st.Stored(brandID, createdAt, now)
			if err := putJSON(b, joinKey(brandID, st.ID), st); err != nil {
				return err
			}
			out[i] = st
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: put stores: %w", err)
	}
	db.stores.Put(brandID, out...)
	return out, created, nil
}

// Store implements hotzone.Stores.
func (db *DB) Store(_ context.Context, brandID, storeID string) (hotzone.Store, error) {
	st, ok := db.stores.Get(brandID, storeID)
	if !ok {
		return hotzone.Store{}, notFound("store")
	}
	return st, nil
}

// Stores implements hotzone.Stores.
func (db *DB) Stores(_ context.Context, brandID string, q hotzone.StoreQuery) ([]hotzone.Store, bool, error) {
	if db.brandLock(brandID) == nil {
		return nil, false, notFound("brand")
	}
	out, more := db.stores.List(brandID, q)
	return out, more, nil
}

// FencesAt implements hotzone.Stores.
func (db *DB) FencesAt(_ context.Context, brandID string, p geo.Point, dst []geo.Hit) ([]geo.Hit, error) {
	return db.stores.Match(brandID, p, dst), nil
}

// DeleteStore implements hotzone.Stores.
func (db *DB) DeleteStore(ctx context.Context, brandID, storeID string) error {
	lock := db.brandLock(brandID)
	if lock == nil {
		return notFound("brand")
	}
	lock.Lock()
	defer lock.Unlock()
	if !db.stores.Has(brandID, storeID) {
		return notFound("store")
	}
	// The store's live event ends first and stays in the history.
	if ev, _, ok := db.events.Live(brandID, storeID); ok {
		if _, _, err := db.EndEvent(ctx, brandID, ev.ID, db.now().UTC()); err != nil && !errors.Is(err, hotzone.ErrNotFound) {
			return err
		}
	}
	var revoked [][32]byte
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		var err error
		if revoked, err = deleteStoreKeys(tx, brandID, storeID); err != nil {
			return err
		}
		return tx.Bucket(bucketStores).Delete(joinKey(brandID, storeID))
	})
	if err != nil {
		return fmt.Errorf("store: delete store: %w", err)
	}
	db.stores.Delete(brandID, storeID)
	db.keys.Delete(revoked...)
	db.events.Signal(brandID, storeID)
	return nil
}

// FencesNear implements hotzone.Stores, from the view.
func (db *DB) FencesNear(_ context.Context, brandID string, p geo.Point, limit int) ([]hotzone.NearStore, float64, error) {
	if db.brandLock(brandID) == nil {
		return nil, 0, notFound("brand")
	}
	near, left := db.stores.Near(brandID, p, limit)
	return near, left, nil
}

// FencesAround implements hotzone.Stores from the view.
func (db *DB) FencesAround(_ context.Context, brandID string, p geo.Point, m float64, dst []hotzone.FenceDistance) ([]hotzone.FenceDistance, error) {
	return db.stores.Around(brandID, p, m, dst), nil
}

// VisitsAt implements hotzone.Stores from the view.
func (db *DB) VisitsAt(_ context.Context, brandID string, p geo.Point, dst []geo.Hit) ([]geo.Hit, error) {
	return db.stores.VisitsAt(brandID, p, dst), nil
}
