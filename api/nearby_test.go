package api

import (
	"math"
	"net/url"
	"slices"
	"testing"

	"github.com/hotzone/hotzone/geo"
)

// TestFencesNearby: the nearest fences come nearest first as circles, a
// polygon as an enclosing circle that is not exact, at most limit of
// them, and the refresh circle reaches no fence left out.
func TestFencesNearby(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.brand("Near")
	// North of the point, 1, 2 and 3 km away (0.01° of latitude is 1,112 m).
	at := geo.Point{Lat: 40.70, Lon: -74.0}
	north := func(km float64) float64 { return at.Lat + km*0.01/1.112 }
	e.must(201, "PUT", "/v1/stores/one", b.AdminKey, circleStore("One", north(1), at.Lon, 100))
	e.must(201, "PUT", "/v1/stores/two", b.AdminKey, circleStore("Two", north(2), at.Lon, 200))
	e.must(201, "PUT", "/v1/stores/three", b.AdminKey, map[string]any{"name": "Three", "timezone": "UTC", "fence": map[string]any{"polygon": map[string]any{
		"type": "Polygon", "coordinates": [][][]float64{{{-74.001, north(3) - 0.001}, {-73.999, north(3) - 0.001}, {-73.999, north(3) + 0.001}, {-74.001, north(3) + 0.001}, {-74.001, north(3) - 0.001}}}}}})
	other := e.brand("Other")
	e.must(201, "PUT", "/v1/stores/theirs", other.AdminKey, circleStore("Theirs", at.Lat, at.Lon, 100))

	var ans nearbyAnswer
	e.must(200, "GET", "/v1/fences/nearby?lat=40.70&lon=-74.0&limit=2", b.AppKey, nil).decode(t, &ans)
	var ids []string
	for _, it := range ans.Items {
		ids = append(ids, it.StoreID)
	}
	if !slices.Equal(ids, []string{"one", "two"}) {
		t.Fatalf("nearby with limit 2 = %v, want one, two (nearest first, another brand's never)", ids)
	}
	if it := ans.Items[1]; it.Name != "Two" || it.RadiusM != 200 || !it.Exact || it.Lat != north(2) || it.Lon != at.Lon {
		t.Errorf("two = %+v, want its own circle, exact", it)
	}
	// The nearest left out is the polygon's circle, whose edge is a bit
	// short of 3 km; refresh stops there.
	if ans.Refresh.Lat != at.Lat || ans.Refresh.Lon != at.Lon || ans.Refresh.RadiusM <= 2000 || ans.Refresh.RadiusM >= 3000 {
		t.Errorf("refresh = %+v, want around the point, reaching no fence left out", ans.Refresh)
	}
	e.must(200, "GET", "/v1/fences/nearby?lat=40.70&lon=-74.0", b.AdminKey, nil).decode(t, &ans)
	if len(ans.Items) != 3 || ans.Refresh.RadiusM != refreshMaxM {
		t.Fatalf("nearby with the default limit = %d items, refresh %v; want all 3 and the 50 km cap", len(ans.Items), ans.Refresh.RadiusM)
	}
	poly := ans.Items[2]
	if poly.StoreID != "three" || poly.Exact {
		t.Errorf("the polygon = %+v, want three, not exact", poly)
	}
	for _, c := range [][2]float64{{-74.001, north(3) - 0.001}, {-73.999, north(3) + 0.001}} {
		if d := geo.DistanceM(geo.Point{Lat: poly.Lat, Lon: poly.Lon}, geo.Point{Lat: c[1], Lon: c[0]}); d > poly.RadiusM {
			t.Errorf("a polygon corner lies %.0f m from the centre, outside the %.0f m circle", d, poly.RadiusM)
		}
	}
	for _, bad := range []struct{ query, field string }{
		{"lon=-74", "lat"}, {"lat=40.7", "lon"}, {"lat=91&lon=0", "lat"}, {"lat=0&lon=180.5", "lon"},
		{"lat=NaN&lon=0", "lat"}, {"lat=0&lon=0&limit=0", "limit"}, {"lat=0&lon=0&limit=101", "limit"},
		{"lat=0&lon=0&limit=x", "limit"}, {"lat=1&lat=2&lon=0", "lat"},
	} {
		var p struct {
			Errors []struct{ Field string } `json:"errors"`
		}
		r := e.must(400, "GET", "/v1/fences/nearby?"+bad.query, b.AppKey, nil)
		r.decode(t, &p)
		if !slices.ContainsFunc(p.Errors, func(fe struct{ Field string }) bool { return fe.Field == bad.field }) {
			t.Errorf("?%s: 400 does not name %s: %s", bad.query, bad.field, r.Body)
		}
	}
}

// FuzzParseNearby: any query is refused with the fields named, or gives
// a point on the globe and a limit in range.
func FuzzParseNearby(f *testing.F) {
	for _, s := range []string{"lat=40.7&lon=-74", "lat=91&lon=0", "lat=0&lon=0&limit=100", "limit=&lat=1e3", "lat=-0&lon=+180&limit=019"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		got, err := parseNearby(q)
		if err != nil {
			return
		}
		if !got.p.Valid() || math.IsNaN(got.p.Lat) || got.limit < 1 || got.limit > nearbyMax {
			t.Fatalf("parseNearby(%q) = %+v with no error", raw, got)
		}
	})
}
