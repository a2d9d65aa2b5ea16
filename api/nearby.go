package api

import (
	"math"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// Nearby fences: the circles a phone can hand to iOS region monitoring
// (at most 20 regions) or Android's GeofencingClient (at most 100), so
// that the app pings only on region events and while inside a fence,
// and asks again when it leaves the refresh circle.

// nearbyDefault leaves one of iOS's 20 regions for the refresh circle.
const (
	nearbyDefault = 19
	nearbyMax     = 100
	// refreshMaxM caps the refresh circle when no fence is left out: new
	// stores get found once the phone moves this far.
	refreshMaxM = 50_000
)

type nearbyQuery struct {
	p     geo.Point
	limit int
}

// parseNearby reads ?lat=&lon=&limit=; every bad field is named.
func parseNearby(q url.Values) (nearbyQuery, error) {
	out := nearbyQuery{limit: nearbyDefault}
	var errs fieldErrors
	num := func(name string, lo, hi float64) float64 {
		v, ok := q[name]
		if !ok || len(v) != 1 || v[0] == "" {
			errs.add(name, "is required, once")
			return 0
		}
		f, err := strconv.ParseFloat(v[0], 64)
		if err != nil || math.IsNaN(f) || f < lo || f > hi {
			errs.add(name, "must be a number from "+strconv.FormatFloat(lo, 'g', -1, 64)+" to "+strconv.FormatFloat(hi, 'g', -1, 64))
		}
		return f
	}
	out.p.Lat = num("lat", -90, 90)
	out.p.Lon = num("lon", -180, 180)
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if len(v) != 1 || err != nil || n < 1 || n > nearbyMax {
			errs.add("limit", "must be an integer from 1 to 100")
		}
		out.limit = n
	}
	if len(errs) > 0 {
		return out, &hotzone.ValidationError{Detail: "bad query parameters", Errors: errs}
	}
	return out, nil
}

type nearbyItem struct {
	StoreID string  `json:"store_id"`
	Name    string  `json:"name"`
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	RadiusM float64 `json:"radius_m"`
	Exact   bool    `json:"exact"`
}

type refreshCircle struct {
	Lat     float64 `json:"lat"`
	Lon     float64 `json:"lon"`
	RadiusM float64 `json:"radius_m"`
}

type nearbyAnswer struct {
	Items   []nearbyItem  `json:"items"`
	Refresh refreshCircle `json:"refresh"`
}

func (s *Server) handleFencesNearby() gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := parseNearby(c.Request.URL.Query())
		if err != nil {
			s.fail(c, err)
			return
		}
		near, left, err := s.db.FencesNear(c, keyOf(c).BrandID, q.p, q.limit)
		if err != nil {
			s.fail(c, err)
			return
		}
		ans := nearbyAnswer{Items: make([]nearbyItem, len(near)),
			// No fence left out reaches into the refresh circle: inside
			// it, the phone watches everything near enough to matter.
			Refresh: refreshCircle{Lat: q.p.Lat, Lon: q.p.Lon, RadiusM: math.Floor(min(left, refreshMaxM))}}
		for i, n := range near {
			ans.Items[i] = nearbyItem{StoreID: n.StoreID, Name: n.Name, Lat: n.Center.Lat, Lon: n.Center.Lon, RadiusM: n.RadiusM, Exact: n.Exact}
		}
		ok(c, http.StatusOK, ans)
	}
}
