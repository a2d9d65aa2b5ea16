package hotzone

import (
	"context"
	"encoding/json"
	"time"
)

// PresetKind names a kind of setting a brand saves for reuse.
type PresetKind string

// The kinds of presets.
const (
	// PresetAudience is a saved audience the tablet can pick.
	PresetAudience PresetKind = "audience"
	// PresetTemplate is a saved message the tablet can offer.
	PresetTemplate PresetKind = "template"
)

// Preset is one saved setting of a brand: its body is the API's JSON,
// validated before it is stored.
type Preset struct {
	Kind      PresetKind
	BrandID   string
	ID        string
	Body      json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Presets keeps a brand's saved audiences and message templates.
type Presets interface {
	// PutPreset creates or replaces a preset (keeping its creation time)
	// and answers it as stored and whether it was created. Durable;
	// ErrNotFound for an unknown brand.
	PutPreset(ctx context.Context, p Preset) (Preset, bool, error)
	// Preset returns one preset.
	Preset(ctx context.Context, brandID string, kind PresetKind, id string) (Preset, error)
	// Presets lists a page of a brand's presets of a kind, by id, and
	// whether more follow.
	Presets(ctx context.Context, brandID string, kind PresetKind, q PageQuery) ([]Preset, bool, error)
	// DeletePreset removes one. Durable.
	DeletePreset(ctx context.Context, brandID string, kind PresetKind, id string) error
}
