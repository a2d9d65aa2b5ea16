package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone"
)

// bucketPresets holds brands' saved audiences and templates:
// brand\0kind\0id -> the preset (JSON).
var bucketPresets = []byte("presets")

// storedPreset is a preset as the bucket keeps it.
type storedPreset struct {
	Body      json.RawMessage `json:"body"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

var errNoPreset = notFound("preset")

// PutPreset implements hotzone.Presets.
func (db *DB) PutPreset(_ context.Context, p hotzone.Preset) (hotzone.Preset, bool, error) {
	if db.brandLock(p.BrandID) == nil {
		return hotzone.Preset{}, false, notFound("brand")
	}
	now := db.now().UTC()
	created := false
	err := db.bolt.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPresets)
		k := joinKey(p.BrandID, string(p.Kind), p.ID)
		sp := storedPreset{Body: p.Body, CreatedAt: now, UpdatedAt: now}
		if raw := b.Get(k); raw != nil {
			var old storedPreset
			if err := json.Unmarshal(raw, &old); err != nil {
				return err
			}
			sp.CreatedAt = old.CreatedAt
		} else {
			created = true
		}
		p.CreatedAt, p.UpdatedAt = sp.CreatedAt, sp.UpdatedAt
		return putJSON(b, k, sp)
	})
	if err != nil {
		return hotzone.Preset{}, false, fmt.Errorf("store: preset: %w", err)
	}
	return p, created, nil
}

// Preset implements hotzone.Presets.
func (db *DB) Preset(_ context.Context, brandID string, kind hotzone.PresetKind, id string) (hotzone.Preset, error) {
	var p hotzone.Preset
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketPresets).Get(joinKey(brandID, string(kind), id))
		if raw == nil {
			return errNoPreset
		}
		var err error
		p, err = decodePreset(brandID, kind, id, raw)
		return err
	})
	return p, err
}

func decodePreset(brandID string, kind hotzone.PresetKind, id string, raw []byte) (hotzone.Preset, error) {
	var sp storedPreset
	if err := json.Unmarshal(raw, &sp); err != nil {
		return hotzone.Preset{}, fmt.Errorf("store: preset %s/%s: %w", kind, id, err)
	}
	return hotzone.Preset{Kind: kind, BrandID: brandID, ID: id, Body: sp.Body, CreatedAt: sp.CreatedAt, UpdatedAt: sp.UpdatedAt}, nil
}

// Presets implements hotzone.Presets: a cursor over the brand's kind.
func (db *DB) Presets(_ context.Context, brandID string, kind hotzone.PresetKind, q hotzone.PageQuery) ([]hotzone.Preset, bool, error) {
	if db.brandLock(brandID) == nil {
		return nil, false, notFound("brand")
	}
	var out []hotzone.Preset
	more := false
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketPresets).Cursor()
		prefix := joinKey(brandID, string(kind), "")
		start := prefix
		if q.After != "" {
			start = append(joinKey(brandID, string(kind), q.After), 0)
		}
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if q.Limit > 0 && len(out) == q.Limit {
				more = true
				return nil
			}
			p, err := decodePreset(brandID, kind, string(k[len(prefix):]), v)
			if err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// DeletePreset implements hotzone.Presets.
func (db *DB) DeletePreset(_ context.Context, brandID string, kind hotzone.PresetKind, id string) error {
	return db.bolt.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPresets)
		k := joinKey(brandID, string(kind), id)
		if b.Get(k) == nil {
			return errNoPreset
		}
		return b.Delete(k)
	})
}
