package api

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/push"
	"github.com/hotzone/hotzone/store/bolt"
)

// BenchmarkPing runs POST /v1/pings through the real router (auth, strict
// decoding, validation, rate-limit bookkeeping, fence matching and the
// position write-behind) next to a bare Gin JSON endpoint of the same
// shape, in one run, so the figures compare as ratios.
func BenchmarkPing(b *testing.B) {
	b.Run("bare-gin", benchBareGin)
	for _, fences := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("hotzone/fences=%d", fences), func(b *testing.B) { benchPing(b, fences) })
	}
}

// bareRequest and bareResponse mirror the ping's shapes with plain Gin
// binding: the floor any Gin JSON endpoint pays.
type bareRequest struct {
	DeviceID  string  `json:"device_id" binding:"required"`
	Lat       float64 `json:"lat" binding:"required"`
	Lon       float64 `json:"lon" binding:"required"`
	AccuracyM float64 `json:"accuracy_m" binding:"required"`
}

type bareResponse struct {
	Inside        []insideJSON       `json:"inside"`
	LiveEvents    []liveEventRef     `json:"live_events"`
	Notifications []pingNotification `json:"notifications"`
}

func benchBareGin(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/v1/pings", func(c *gin.Context) {
		var req bareRequest
		if err := c.ShouldBindJSON(&req); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusOK, bareResponse{Inside: []insideJSON{{StoreID: "s1", Name: "Store 1"}}, LiveEvents: []liveEventRef{}, Notifications: []pingNotification{}})
	})
	runPings(b, r, "")
}

// benchArea scatters stores over a square that grows with their number,
// about 5 km² a store (a metro for 1,000, a country for 100,000), so a
// ping meets a realistic handful of candidate fences.
func benchArea(n int) (lat0, lon0, dLat, dLon float64) {
	side := math.Sqrt(float64(n)*5e6) / 111195
	return 40 - side/2, -80 - side/2/math.Cos(40*math.Pi/180), side, side / math.Cos(40*math.Pi/180)
}

func benchPing(b *testing.B, fences int) {
	dir := b.TempDir()
	db, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	br, _, appKey, err := db.CreateBrand(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, uint64(fences)))
	lat0, lon0, dLat, dLon := benchArea(fences)
	stores := make([]hotzone.Store, fences)
	for i := range stores {
		spec := hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: lat0 + rng.Float64()*dLat, Lon: lon0 + rng.Float64()*dLon, RadiusM: 100 + rng.Float64()*1900}}
		f, err := spec.Build()
		if err != nil {
			b.Fatal(err)
		}
		stores[i] = hotzone.Store{ID: fmt.Sprintf("s%06d", i), Name: "Store", Timezone: "UTC", Spec: spec, Fence: f}
	}
	if _, _, err := db.ImportStores(ctx, br.ID, stores); err != nil {
		b.Fatal(err)
	}
	const devices = 1000
	for i := range devices {
		d := hotzone.Device{ID: fmt.Sprintf("d%04d", i), BrandID: br.ID, Platform: "ios", OptIn: true, Timezone: "UTC"}
		if _, _, err := db.PutDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	engine := push.NewEngine(ctx, db, push.EngineOptions{})
	srv := New(db, engine, Options{}) // no rate limit: every ping is real work
	runPingsAt(b, srv, appKey, func(i int) (string, float64, float64) {
		return fmt.Sprintf("d%04d", i%devices), lat0 + rng.Float64()*dLat, lon0 + rng.Float64()*dLon
	})
}

func runPings(b *testing.B, h http.Handler, key string) {
	rng := rand.New(rand.NewPCG(1, 1))
	runPingsAt(b, h, key, func(i int) (string, float64, float64) {
		return fmt.Sprintf("d%04d", i%1000), 40 + rng.Float64(), -80 + rng.Float64()
	})
}

// runPingsAt sends b.N pings from a pre-built pool of bodies, so body
// building is not measured.
func runPingsAt(b *testing.B, h http.Handler, key string, next func(int) (string, float64, float64)) {
	bodies := make([][]byte, 4096)
	for i := range bodies {
		id, lat, lon := next(i)
		bodies[i] = fmt.Appendf(nil, `{"device_id":%q,"lat":%v,"lon":%v,"accuracy_m":15}`, id, lat, lon)
	}
	// Collect the setup's (and earlier sub-benchmarks') garbage now, so
	// no run pays for another's heap.
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/pings", bytes.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("ping = %d %s", rec.Code, rec.Body)
		}
		i++
	}
}
