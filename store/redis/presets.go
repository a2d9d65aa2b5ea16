package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hotzone/hotzone"
)

// A brand's presets of a kind are a hash in its catalog slot,
// {P:b:BRAND}:presets:KIND, id -> the preset (JSON). Nothing of them is
// in the views: only admin and tablet pages read them.

// storedPreset is a preset as the hash keeps it.
type storedPreset struct {
	Body      json.RawMessage `json:"body"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

var errNoPreset = notFound("preset")

func (db *DB) presetKey(brandID string, kind hotzone.PresetKind) string {
	return db.bkey(brandID, "presets:"+string(kind))
}

// PutPreset implements hotzone.Presets: read, then a write checked
// against what was read (casHash), retried when it lost a race.
func (db *DB) PutPreset(ctx context.Context, p hotzone.Preset) (hotzone.Preset, bool, error) {
	if _, ok := db.brands.Brand(p.BrandID); !ok {
		return hotzone.Preset{}, false, notFound("brand")
	}
	k := db.presetKey(p.BrandID, p.Kind)
	for range casRetries {
		old, err := str(db.do(ctx, db.cmd("HGET", []string{k}, p.ID)))
		if err != nil {
			return hotzone.Preset{}, false, fmt.Errorf("redis: preset: %w", err)
		}
		now := db.now().UTC()
		sp := storedPreset{Body: p.Body, CreatedAt: now, UpdatedAt: now}
		if old != "" {
			var prev storedPreset
			if err := json.Unmarshal([]byte(old), &prev); err != nil {
				return hotzone.Preset{}, false, fmt.Errorf("redis: preset %s: %w", p.ID, err)
			}
			sp.CreatedAt = prev.CreatedAt
		}
		raw, err := json.Marshal(sp)
		if err != nil {
			return hotzone.Preset{}, false, fmt.Errorf("redis: preset: %w", err)
		}
		ok, err := db.execWaited(ctx, casHash, []string{k}, []string{p.ID, old, string(raw)}).AsBool()
		if err != nil {
			return hotzone.Preset{}, false, fmt.Errorf("redis: preset: %w", err)
		}
		if ok {
			p.CreatedAt, p.UpdatedAt = sp.CreatedAt, sp.UpdatedAt
			return p, old == "", nil
		}
	}
	return hotzone.Preset{}, false, errContended
}

func decodePreset(brandID string, kind hotzone.PresetKind, id, raw string) (hotzone.Preset, error) {
	var sp storedPreset
	if err := json.Unmarshal([]byte(raw), &sp); err != nil {
		return hotzone.Preset{}, fmt.Errorf("redis: preset %s/%s: %w", kind, id, err)
	}
	return hotzone.Preset{Kind: kind, BrandID: brandID, ID: id, Body: sp.Body, CreatedAt: sp.CreatedAt, UpdatedAt: sp.UpdatedAt}, nil
}

// Preset implements hotzone.Presets.
func (db *DB) Preset(ctx context.Context, brandID string, kind hotzone.PresetKind, id string) (hotzone.Preset, error) {
	raw, err := str(db.do(ctx, db.cmd("HGET", []string{db.presetKey(brandID, kind)}, id)))
	if err != nil {
		return hotzone.Preset{}, fmt.Errorf("redis: preset: %w", err)
	}
	if raw == "" {
		return hotzone.Preset{}, errNoPreset
	}
	return decodePreset(brandID, kind, id, raw)
}

// Presets implements hotzone.Presets: the whole hash (a brand keeps a
// handful), sorted by id.
func (db *DB) Presets(ctx context.Context, brandID string, kind hotzone.PresetKind, q hotzone.PageQuery) ([]hotzone.Preset, bool, error) {
	if _, ok := db.brands.Brand(brandID); !ok {
		return nil, false, notFound("brand")
	}
	all, err := strMap(db.do(ctx, db.cmd("HGETALL", []string{db.presetKey(brandID, kind)})))
	if err != nil {
		return nil, false, fmt.Errorf("redis: presets: %w", err)
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		if id > q.After {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, strings.Compare)
	more := q.Limit > 0 && len(ids) > q.Limit
	if more {
		ids = ids[:q.Limit]
	}
	out := make([]hotzone.Preset, 0, len(ids))
	for _, id := range ids {
		p, err := decodePreset(brandID, kind, id, all[id])
		if err != nil {
			return nil, false, err
		}
		out = append(out, p)
	}
	return out, more, nil
}

// DeletePreset implements hotzone.Presets.
func (db *DB) DeletePreset(ctx context.Context, brandID string, kind hotzone.PresetKind, id string) error {
	n, err := db.do(ctx, db.cmd("HDEL", []string{db.presetKey(brandID, kind)}, id)).AsInt64()
	if err != nil {
		return fmt.Errorf("redis: delete preset: %w", err)
	}
	if n == 0 {
		return errNoPreset
	}
	return nil
}
