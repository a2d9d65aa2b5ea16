// Package hotzone holds the domain types of the hotzone geofence push
// service: brands and their keys, stores (shops) with their geofences,
// devices and their positions, the notification policy, live events and
// notifications. It does no I/O and imports only the standard library and
// geo, so every other package can share these types without cycles.
package hotzone

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hotzone/hotzone/geo"
)

// Brand is one tenant: a chain of stores with its own app, keys and policy.
type Brand struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// KeyKind says what a key may do; see the contract's auth table.
type KeyKind string

// The key kinds and the prefixes their secrets carry.
const (
	KindOperator KeyKind = "operator"
	KindAdmin    KeyKind = "admin"
	KindApp      KeyKind = "app"
	KindManager  KeyKind = "manager"
)

// Prefix is the human-visible prefix of a key of this kind, so a leaked
// key is recognisable in logs and secret scanners.
func (k KeyKind) Prefix() string {
	switch k {
	case KindOperator:
		return "hzo_"
	case KindAdmin:
		return "hza_"
	case KindApp:
		return "hzp_"
	case KindManager:
		return "hzm_"
	}
	return ""
}

// Key is what the server keeps of an issued key: never the secret itself,
// only its SHA-256 hash.
type Key struct {
	Hash       [32]byte  `json:"-"`
	Kind       KeyKind   `json:"kind"`
	BrandID    string    `json:"brand_id,omitempty"`
	StoreID    string    `json:"store_id,omitempty"` // manager keys only
	ID         string    `json:"id,omitempty"`       // manager keys only
	Label      *string   `json:"label"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
}

// Circle is a circular fence as the API spells it.
type Circle struct {
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	RadiusM float64 `json:"radius_m"`
}

// FenceSpec is a store's fence as stored and answered: exactly one of
// Circle or Polygon (canonical GeoJSON geometry) is set.
type FenceSpec struct {
	Circle  *Circle         `json:"circle,omitempty"`
	Polygon json.RawMessage `json:"polygon,omitempty"`
}

// Store is a shop with its geofence. Fence holds the validated geometry
// built from Spec; it is never serialised.
type Store struct {
	ID       string    `json:"id"`
	BrandID  string    `json:"-"`
	Name     string    `json:"name"`
	Timezone string    `json:"timezone"`
	Tags     []string  `json:"tags"`
	Spec     FenceSpec `json:"fence"`
	// Visit is the store's own visit area (see VisitArea); nil takes
	// the default.
	Visit     *FenceSpec `json:"visit"`
	BBox      [4]float64 `json:"bbox"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	Fence     *geo.Fence `json:"-"`
}

// Platform is the device's operating system.
type Platform string

// The platforms the contract accepts.
const (
	PlatformIOS     Platform = "ios"
	PlatformAndroid Platform = "android"
)

// Provider is a push provider.
type Provider string

// The providers the contract accepts.
const (
	ProviderAPNs Provider = "apns"
	ProviderFCM  Provider = "fcm"
)

// Device is one app install of a brand.
type Device struct {
	ID       string    `json:"id"`
	BrandID  string    `json:"-"`
	Platform Platform  `json:"platform"`
	Provider Provider  `json:"provider,omitempty"`
	Token    string    `json:"token,omitempty"`
	TokenAt  time.Time `json:"token_at"`
	OptIn    bool      `json:"opt_in"`
	Timezone string    `json:"timezone"`
	Locale   string    `json:"locale,omitempty"`
	// Tags say who the device's user is (persona:commuter,
	// loyalty:gold), for events' audiences.
	Tags      []string  `json:"tags,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Position is one reported location of a device.
type Position struct {
	Lat       float64   `json:"lat"`
	Lon       float64   `json:"lon"`
	AccuracyM float64   `json:"accuracy_m"`
	TS        time.Time `json:"ts"`
	// SpeedMPS is the speed the device reported with the ping, if any;
	// presence and triggers read it, positions do not keep it.
	SpeedMPS *float64 `json:"-"`
}

// Point is the position as a geo point.
func (p Position) Point() geo.Point { return geo.Point{Lat: p.Lat, Lon: p.Lon} }

// DevicePosition is what the server knows of where a device is: its last
// reported position, and its last qualifying one (accurate and fresh
// enough to trigger), which is what event fan-out uses.
type DevicePosition struct {
	Last       Position  `json:"last"`
	Qualifying *Position `json:"qualifying,omitempty"`
}

// PushCredentials is a brand's credentials for one provider. Secret (the
// APNs .p8 key or the FCM service-account JSON) is encrypted at rest and
// never answered, logged or measured.
type PushCredentials struct {
	Provider Provider `json:"provider"`
	Secret   []byte   `json:"secret"`
	// APNs.
	KeyID       string `json:"key_id,omitempty"`
	TeamID      string `json:"team_id,omitempty"`
	Topic       string `json:"topic,omitempty"`
	Environment string `json:"environment,omitempty"`
	// FCM.
	ProjectID   string `json:"project_id,omitempty"`
	ClientEmail string `json:"client_email,omitempty"`
	TokenURI    string `json:"token_uri,omitempty"`
	// Status is "ok" or "broken" (the provider rejected them; Error says
	// how). Version changes on every upload, so a failure seen with old
	// credentials never marks new ones broken.
	Status    string    `json:"status"`
	Error     *string   `json:"error"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Build turns a fence spec (as stored, or as validated on input) into
// its geometry.
func (s FenceSpec) Build() (*geo.Fence, error) {
	switch {
	case s.Circle != nil:
		c, errs := geo.ParseCircle(s.Circle.Lat, s.Circle.Lon, s.Circle.RadiusM)
		if len(errs) > 0 {
			return nil, fmt.Errorf("circle %s: %s", errs[0].Field, errs[0].Message)
		}
		return &geo.Fence{Circle: c}, nil
	case s.Polygon != nil:
		p, _, errs := geo.ParsePolygon(s.Polygon)
		if len(errs) > 0 {
			return nil, fmt.Errorf("polygon %s: %s", errs[0].Field, errs[0].Message)
		}
		return &geo.Fence{Polygon: p}, nil
	}
	return nil, errors.New("fence has neither circle nor polygon")
}

// Registered is d as stored when it replaces prev (zero, with existed
// false, for a new device) at now: created_at stays the first
// registration's, token_at moves only when the token or its provider
// changes, and a device without a token has none.
func (d Device) Registered(prev Device, existed bool, now time.Time) Device {
	d.UpdatedAt, d.CreatedAt = now, now
	if existed {
		d.CreatedAt = prev.CreatedAt
	}
	switch {
	case d.Token == "":
		d.TokenAt = time.Time{}
	case prev.Token == d.Token && prev.Provider == d.Provider:
		d.TokenAt = prev.TokenAt
	default:
		d.TokenAt = now
	}
	return d
}

// DecodeStore reads a store as backends keep it (its JSON) and builds
// its fence.
func DecodeStore(brandID string, raw []byte) (Store, error) {
	var st Store
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, err
	}
	st.BrandID = brandID
	f, err := st.Spec.Build()
	if err != nil {
		return st, err
	}
	st.Fence = f
	return st, nil
}

// Stored is st as a backend keeps it when it is put at now: of brandID,
// its box from its fence, tags never null, created at created (now for
// a new store).
func (st Store) Stored(brandID string, created, now time.Time) Store {
	st.BrandID = brandID
	st.BBox = st.Fence.BBox()
	st.UpdatedAt, st.CreatedAt = now, created
	if st.Tags == nil {
		st.Tags = []string{}
	}
	return st
}

// NearStore is a store's fence as a circle a phone can monitor (iOS and
// Android watch circular regions only): a circle fence as it is, a
// polygon as a circle enclosing it (Exact false: the phone pings to
// learn whether it is inside), with how far a point is from its edge.
type NearStore struct {
	StoreID   string
	Name      string
	Center    geo.Point
	RadiusM   float64
	Exact     bool
	DistanceM float64 // from the point asked about to the circle's edge; 0 inside
}

// NearOf is st's monitorable circle and its distance from p.
func NearOf(st *Store, p geo.Point) NearStore {
	n := NearStore{StoreID: st.ID, Name: st.Name}
	if c := st.Spec.Circle; c != nil {
		n.Center, n.RadiusM, n.Exact = geo.Point{Lat: c.Lat, Lon: c.Lon}, c.RadiusM, true
	} else {
		// The box's centre and its farthest corner enclose the polygon
		// (not the smallest such circle, but never one that cuts it).
		bb := st.BBox
		if st.Fence != nil {
			bb = st.Fence.BBox()
		}
		west, east := bb[0], bb[2]
		if east < west { // across the antimeridian
			east += 360
		}
		lon := (west + east) / 2
		if lon > 180 {
			lon -= 360
		}
		n.Center = geo.Point{Lat: (bb[1] + bb[3]) / 2, Lon: lon}
		for _, corner := range []geo.Point{{Lat: bb[1], Lon: bb[0]}, {Lat: bb[1], Lon: bb[2]}, {Lat: bb[3], Lon: bb[0]}, {Lat: bb[3], Lon: bb[2]}} {
			n.RadiusM = max(n.RadiusM, geo.DistanceM(n.Center, corner))
		}
		n.RadiusM = math.Ceil(n.RadiusM)
	}
	n.DistanceM = max(0, geo.DistanceM(p, n.Center)-n.RadiusM)
	return n
}

// Credentials statuses.
const (
	CredentialsOK     = "ok"
	CredentialsBroken = "broken"
)

// Marked is c with a provider's verdict: broken with its reason, or ok
// again; false when that is what c says already.
func (c PushCredentials) Marked(broken bool, reason string) (PushCredentials, bool) {
	next := c
	if broken {
		next.Status, next.Error = CredentialsBroken, &reason
	} else {
		next.Status, next.Error = CredentialsOK, nil
	}
	return next, next.Status != c.Status
}
