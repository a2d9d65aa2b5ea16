package geo

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestDemoStores keeps testdata/demo-stores.geojson (what `hotzone serve
// --demo` seeds) importable: every Point is a valid circle, every Polygon
// passes ParsePolygon, ids are unique, and everything lies in New York.
func TestDemoStores(t *testing.T) {
	raw, err := os.ReadFile("../testdata/demo-stores.geojson")
	if err != nil {
		t.Fatal(err)
	}
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Type     string          `json:"type"`
			Geometry json.RawMessage `json:"geometry"`
			Props    struct {
				ID       string   `json:"id"`
				Name     string   `json:"name"`
				Timezone string   `json:"timezone"`
				Tags     []string `json:"tags"`
				RadiusM  *float64 `json:"radius_m"`
			} `json:"properties"`
		} `json:"features"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	if fc.Type != "FeatureCollection" {
		t.Errorf("type = %q, want FeatureCollection", fc.Type)
	}
	nyc := [4]float64{-74.27, 40.49, -73.68, 40.92}
	inNYC := func(p Point) bool {
		return p.Lon >= nyc[0] && p.Lon <= nyc[2] && p.Lat >= nyc[1] && p.Lat <= nyc[3]
	}
	ids := map[string]bool{}
	polygons := 0
	for i, f := range fc.Features {
		p := f.Props
		if f.Type != "Feature" || !strings.HasPrefix(p.ID, "nyc-") || p.Name == "" || p.Timezone != "America/New_York" || p.Tags == nil {
			t.Errorf("features[%d] = %+v: want a Feature with an nyc- id, a name, the New York time zone and tags", i, p)
		}
		if ids[p.ID] {
			t.Errorf("features[%d]: id %q is used twice", i, p.ID)
		}
		ids[p.ID] = true
		var g struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(f.Geometry, &g); err != nil {
			t.Errorf("features[%d] (%s): geometry: %v", i, p.ID, err)
			continue
		}
		switch g.Type {
		case "Point":
			if p.RadiusM == nil {
				t.Errorf("features[%d] (%s): a Point needs radius_m", i, p.ID)
				continue
			}
			var pt struct {
				Coordinates [2]float64 `json:"coordinates"`
			}
			if err := json.Unmarshal(f.Geometry, &pt); err != nil {
				t.Errorf("features[%d] (%s): Point: %v", i, p.ID, err)
				continue
			}
			c, errs := ParseCircle(pt.Coordinates[1], pt.Coordinates[0], *p.RadiusM)
			if errs != nil {
				t.Errorf("features[%d] (%s): ParseCircle = %v", i, p.ID, errs)
				continue
			}
			if !inNYC(c.Center) || *p.RadiusM < 150 || *p.RadiusM > 1200 {
				t.Errorf("features[%d] (%s): circle %v is not a New York store", i, p.ID, c)
			}
		case "Polygon":
			polygons++
			if p.RadiusM != nil {
				t.Errorf("features[%d] (%s): a Polygon has no radius_m", i, p.ID)
			}
			m, _, errs := ParsePolygon(f.Geometry)
			if errs != nil {
				t.Errorf("features[%d] (%s): ParsePolygon = %v", i, p.ID, errs)
				continue
			}
			bb := m.BBox()
			if !inNYC(Point{bb[1], bb[0]}) || !inNYC(Point{bb[3], bb[2]}) {
				t.Errorf("features[%d] (%s): BBox() = %v is not in New York", i, p.ID, bb)
			}
		default:
			t.Errorf("features[%d] (%s): geometry type %q, want Point or Polygon", i, p.ID, g.Type)
		}
	}
	if n := len(fc.Features); n < 55 || n > 60 {
		t.Errorf("%d stores, want 55 to 60", n)
	}
	if polygons < 4 || polygons > 6 {
		t.Errorf("%d polygon stores, want 4 to 6", polygons)
	}
}
