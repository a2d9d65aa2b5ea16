package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// decodeStore reads a stored store and rebuilds its fence geometry.
func decodeStore(brandID string, v []byte) (*hotzone.Store, error) {
	st := new(hotzone.Store)
	if err := json.Unmarshal(v, st); err != nil {
		return nil, err
	}
	st.BrandID = brandID
	f, err := BuildFence(st.Spec)
	if err != nil {
		return nil, err
	}
	st.Fence = f
	return st, nil
}

// BuildFence turns a stored fence spec back into geometry.
func BuildFence(spec hotzone.FenceSpec) (*geo.Fence, error) {
	switch {
	case spec.Circle != nil:
		c, errs := geo.ParseCircle(spec.Circle.Lat, spec.Circle.Lon, spec.Circle.RadiusM)
		if len(errs) > 0 {
			return nil, fmt.Errorf("circle %s: %s", errs[0].Field, errs[0].Message)
		}
		return &geo.Fence{Circle: c}, nil
	case spec.Polygon != nil:
		p, _, errs := geo.ParsePolygon(spec.Polygon)
		if len(errs) > 0 {
			return nil, fmt.Errorf("polygon %s: %s", errs[0].Field, errs[0].Message)
		}
		return &geo.Fence{Polygon: p}, nil
	}
	return nil, fmt.Errorf("fence has neither circle nor polygon")
}

// PutStore creates or replaces a store. st.Fence must be built from
// st.Spec. It answers the store as stored and whether it was created.
func (db *DB) PutStore(ctx context.Context, st hotzone.Store) (hotzone.Store, bool, error) {
	out, created, err := db.putStores(ctx, st.BrandID, []hotzone.Store{st})
	if err != nil {
		return hotzone.Store{}, false, err
	}
	return out[0], created == 1, nil
}

// ImportStores creates or replaces many stores in one transaction: all
// of them or none.
func (db *DB) ImportStores(ctx context.Context, brandID string, sts []hotzone.Store) (created, updated int, err error) {
	_, created, err = db.putStores(ctx, brandID, sts)
	return created, len(sts) - created, err
}

func (db *DB) putStores(_ context.Context, brandID string, sts []hotzone.Store) ([]hotzone.Store, int, error) {
	bs := db.brand(brandID)
	if bs == nil {
		return nil, 0, hotzone.ErrNotFound
	}
	now := db.now().UTC()
	out := make([]hotzone.Store, len(sts))
	created := 0
	// The writer lock is held across the commit so two writers of the
	// same store cannot both decide "created".
	bs.wmu.Lock()
	defer bs.wmu.Unlock()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStores)
		created = 0
		for i, st := range sts {
			st.BrandID = brandID
			st.BBox = st.Fence.BBox()
			st.UpdatedAt = now
			if st.Tags == nil {
				st.Tags = []string{}
			}
			if old := bs.stores[st.ID]; old != nil {
				st.CreatedAt = old.CreatedAt
			} else {
				st.CreatedAt = now
				created++
			}
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
	bs.mu.Lock()
	for i := range out {
		st := out[i]
		bs.stores[st.ID] = &st
	}
	bs.mu.Unlock()
	for i := range out {
		bs.fences.SetLabeled(out[i].ID, out[i].Name, out[i].Fence)
	}
	return out, created, nil
}

// Store returns one store of a brand.
func (db *DB) Store(brandID, storeID string) (hotzone.Store, error) {
	bs := db.brand(brandID)
	if bs == nil {
		return hotzone.Store{}, hotzone.ErrNotFound
	}
	bs.mu.RLock()
	st := bs.stores[storeID]
	bs.mu.RUnlock()
	if st == nil {
		return hotzone.Store{}, hotzone.ErrNotFound
	}
	return *st, nil
}

// Stores lists a brand's stores ordered by id, after the id `after`, with
// the tag when tag is not empty; at most limit, and whether more follow.
func (db *DB) Stores(brandID, tag, after string, limit int) ([]hotzone.Store, bool, error) {
	bs := db.brand(brandID)
	if bs == nil {
		return nil, false, hotzone.ErrNotFound
	}
	bs.mu.RLock()
	var all []*hotzone.Store
	for id, st := range bs.stores {
		if id > after && (tag == "" || slices.Contains(st.Tags, tag)) {
			all = append(all, st)
		}
	}
	bs.mu.RUnlock()
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	more := limit > 0 && len(all) > limit
	if more {
		all = all[:limit]
	}
	out := make([]hotzone.Store, len(all))
	for i, st := range all {
		out[i] = *st
	}
	return out, more, nil
}

// DeleteStore removes a store and revokes its manager keys.
func (db *DB) DeleteStore(_ context.Context, brandID, storeID string) error {
	bs := db.brand(brandID)
	if bs == nil {
		return hotzone.ErrNotFound
	}
	bs.wmu.Lock()
	defer bs.wmu.Unlock()
	if bs.stores[storeID] == nil {
		return hotzone.ErrNotFound
	}
	// The store's live event ends first and stays in the history.
	if id := db.liveEventID(brandID, storeID); id != "" {
		if _, _, err := db.endEvent(id, db.now().UTC()); err != nil && err != hotzone.ErrNotFound {
			return err
		}
	}
	var revoked [][32]byte
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		var err error
		if revoked, err = deleteStoreKeys(tx, brandID, storeID); err != nil {
			return err
		}
		return tx.Bucket(bucketStores).Delete(joinKey(brandID, storeID))
	})
	if err != nil {
		return fmt.Errorf("store: delete store: %w", err)
	}
	bs.mu.Lock()
	delete(bs.stores, storeID)
	bs.mu.Unlock()
	bs.fences.Delete(storeID)
	db.mu.Lock()
	for _, h := range revoked {
		delete(db.keys, h)
	}
	db.mu.Unlock()
	db.ev.mu.Lock()
	db.ev.signalLocked(storeRef{brandID, storeID})
	db.ev.mu.Unlock()
	return nil
}

// Fences is the brand's fence index, for matching pings; nil for an
// unknown brand.
func (db *DB) Fences(brandID string) *geo.Index {
	bs := db.brand(brandID)
	if bs == nil {
		return nil
	}
	return bs.fences
}
