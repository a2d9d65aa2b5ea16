package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func circleFence(lat, lon, r float64) *Fence {
	return &Fence{Circle: &Circle{Center: Point{lat, lon}, RadiusM: r}}
}

func polygonFence(t testing.TB, geojson string) *Fence {
	return &Fence{Polygon: mustPolygon(t, geojson)}
}

// search returns the sorted ids the index finds at p.
func search(ix *Index, p Point) []string {
	got := ix.Search(p, nil)
	slices.Sort(got)
	return got
}

func TestIndexSetReplaceDelete(t *testing.T) {
	ix := NewIndex()
	a, b := Point{40.7128, -74.0060}, Point{40.6782, -73.9442}
	ix.Set("x", circleFence(a.Lat, a.Lon, 500))
	ix.Set("y", circleFence(a.Lat, a.Lon, 100))

	steps := []struct {
		name    string
		do      func()
		at      Point
		want    []string
		wantLen int
	}{
		{"both at a", func() {}, a, []string{"x", "y"}, 2},
		{"x moved to b", func() { ix.Set("x", circleFence(b.Lat, b.Lon, 500)) }, a, []string{"y"}, 2},
		{"x found at b", func() {}, b, []string{"x"}, 2},
		{"x replaced by a polygon around a", func() {
			ix.Set("x", polygonFence(t, `{"type":"Polygon","coordinates":[[[-74.01,40.71],[-74,40.71],[-74,40.72],[-74.01,40.72],[-74.01,40.71]]]}`))
		}, a, []string{"x", "y"}, 2},
		{"x gone from b", func() {}, b, nil, 2},
		{"y deleted", func() { ix.Delete("y") }, a, []string{"x"}, 1},
		{"deleting again is a no-op", func() { ix.Delete("y") }, a, []string{"x"}, 1},
		{"deleting an unknown id is a no-op", func() { ix.Delete("nope") }, a, []string{"x"}, 1},
		{"a nil fence deletes", func() { ix.Set("x", nil) }, a, nil, 0},
		{"an empty fence deletes", func() { ix.Set("y", circleFence(a.Lat, a.Lon, 100)); ix.Set("y", &Fence{}) }, a, nil, 0},
		{"batch, a repeated id ends at its last fence", func() {
			ix.SetMany([]string{"x", "y", "x"}, []*Fence{circleFence(b.Lat, b.Lon, 100), circleFence(a.Lat, a.Lon, 100), circleFence(a.Lat, a.Lon, 50)})
		}, a, []string{"x", "y"}, 2},
		{"batch deleting with nil", func() { ix.SetMany([]string{"x", "y"}, []*Fence{nil, nil}) }, a, nil, 0},
	}
	for _, st := range steps {
		st.do()
		if got := search(ix, st.at); !slices.Equal(got, st.want) {
			t.Errorf("%s: Search(%v) = %v, want %v", st.name, st.at, got, st.want)
		}
		if got := ix.Len(); got != st.wantLen {
			t.Errorf("%s: Len() = %d, want %d", st.name, got, st.wantLen)
		}
	}
}

func TestIndexZeroValue(t *testing.T) {
	var ix Index
	if got := ix.Search(Point{0, 0}, nil); got != nil {
		t.Errorf("Search(%v) = %v, want nothing", Point{0, 0}, got)
	}
	if ix.Len() != 0 {
		t.Errorf("Len() = %d, want 0", ix.Len())
	}
	ix.Delete("x")
	ix.Set("x", circleFence(0, 0, 100))
	if got := search(&ix, Point{0, 0}); !slices.Equal(got, []string{"x"}) {
		t.Errorf("Search(%v) = %v, want [x]", Point{0, 0}, got)
	}
}

func TestIndexAntimeridian(t *testing.T) {
	ix := NewIndex()
	ix.Set("circle", circleFence(0, 179.9995, 150))
	ix.Set("cut", polygonFence(t, cutAtAntimeridian))
	ix.Set("jump", polygonFence(t, jumpingRing))
	ix.Set("west-edge", polygonFence(t, `{"type":"Polygon","coordinates":[[[-180,20],[-170,20],[-170,21],[-180,21],[-180,20]]]}`))
	ix.Set("east-edge", polygonFence(t, `{"type":"Polygon","coordinates":[[[170,20],[180,20],[180,21],[170,21],[170,20]]]}`))
	tests := []struct {
		name string
		p    Point
		want []string
	}{
		{"east of 180, in all three", Point{0, 179.9999}, []string{"circle", "cut", "jump"}},
		{"west of 180, in all three", Point{0, -179.9999}, []string{"circle", "cut", "jump"}},
		{"on 180", Point{0, 180}, []string{"circle", "cut", "jump"}},
		{"on -180", Point{0, -180}, []string{"circle", "cut", "jump"}},
		{"west side, away from the circle", Point{5, -175}, []string{"cut", "jump"}},
		{"east side, away from the circle", Point{-5, 175}, []string{"cut", "jump"}},
		{"Greenwich", Point{0, 0}, nil},
		{"a fence ending at -180, asked at 180", Point{20.5, 180}, []string{"east-edge", "west-edge"}},
		{"a fence ending at 180, asked at -180", Point{20.5, -180}, []string{"east-edge", "west-edge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := search(ix, tt.p); !slices.Equal(got, tt.want) {
				t.Errorf("Search(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestIndexRejectsBadPoints(t *testing.T) {
	ix := NewIndex()
	ix.Set("world", polygonFence(t, `{"type":"Polygon","coordinates":[[[-180,-90],[0,-90],[180,-90],[180,90],[0,90],[-180,90],[-180,-90]]]}`))
	ix.Set("origin", circleFence(0, 0, 50000))
	tests := []struct {
		name string
		p    Point
	}{
		{"NaN lat", Point{math.NaN(), 0}},
		{"NaN lon", Point{0, math.NaN()}},
		{"+Inf", Point{math.Inf(1), 0}},
		{"-Inf lon", Point{0, math.Inf(-1)}},
		{"lat beyond 90", Point{90.5, 0}},
		{"lon beyond 180", Point{0, 180.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ix.Search(tt.p, nil); len(got) != 0 {
				t.Errorf("Search(%v) = %v, want nothing", tt.p, got)
			}
		})
	}
	if got := search(ix, Point{0, 0}); !slices.Equal(got, []string{"origin", "world"}) {
		t.Errorf("Search(%v) = %v, want [origin world]", Point{0, 0}, got)
	}
}

func TestIndexSearchAppends(t *testing.T) {
	ix := NewIndex()
	ix.Set("a", circleFence(0, 0, 100))
	dst := make([]string, 1, 8)
	dst[0] = "earlier"
	got := ix.Search(Point{0, 0}, dst)
	if !slices.Equal(got, []string{"earlier", "a"}) {
		t.Errorf("Search(%v, [earlier]) = %v, want [earlier a]", Point{0, 0}, got)
	}
	allocs := testing.AllocsPerRun(100, func() { dst = ix.Search(Point{0, 0}, dst[:0]) })
	if allocs != 0 {
		t.Errorf("Search allocates %v times per call, want 0", allocs)
	}
}

func TestIndexSearchRect(t *testing.T) {
	ix := NewIndex()
	ix.Set("nyc", circleFence(40.7, -74, 1000))
	ix.Set("fiji", circleFence(-17.8, 179.99, 5000)) // two boxes
	ix.Set("london", circleFence(51.5, -0.12, 1000))
	tests := []struct {
		name string
		bb   [4]float64
		want []string
	}{
		{"around nyc", [4]float64{-75, 40, -73, 41}, []string{"nyc"}},
		{"across the antimeridian", [4]float64{170, -20, -170, -10}, []string{"fiji"}},
		{"the world", [4]float64{-180, -90, 180, 90}, []string{"fiji", "london", "nyc"}},
		{"nowhere", [4]float64{10, 10, 11, 11}, nil},
		{"NaN", [4]float64{math.NaN(), -90, 180, 90}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			ix.SearchRect(tt.bb, func(id string, f *Fence) bool {
				got = append(got, id)
				return true
			})
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("SearchRect(%v) = %v, want %v", tt.bb, got, tt.want)
			}
		})
	}
	n := 0
	ix.SearchRect([4]float64{-180, -90, 180, 90}, func(string, *Fence) bool { n++; return false })
	if n != 1 {
		t.Errorf("SearchRect called fn %d times after it returned false, want 1", n)
	}
}

// TestIndexMatchesBruteForce compares Search with testing every fence, over
// random fences and points crowded around the antimeridian and a pole,
// where boxes are hardest to get right.
func TestIndexMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ix := NewIndex()
	fences := map[string]*Fence{}
	randPoint := func() Point {
		switch rng.IntN(3) {
		case 0:
			return Point{rng.Float64()*2 - 1, wrapLon(180 + rng.Float64()*2 - 1)}
		case 1:
			return Point{89 + rng.Float64(), rng.Float64()*360 - 180}
		}
		return Point{rng.Float64()*2 + 40, rng.Float64()*2 - 74}
	}
	for i := range 400 {
		id := string(rune('A'+i%26)) + string(rune('a'+i/26))
		c := randPoint()
		var f *Fence
		if i%4 == 0 {
			ring := starRing(rng, [2]float64{c.Lon, c.Lat}, 5+rng.IntN(20), 0.05, 0.3)
			for j := range ring {
				ring[j][0] = wrapLon(ring[j][0])
				ring[j][1] = max(min(ring[j][1], 90), -90)
			}
			m, _, errs := ParsePolygon([]byte(ringJSON(ring)))
			if errs != nil {
				continue // clamping at the pole may fold a ring; skip it
			}
			f = &Fence{Polygon: m}
		} else {
			f = circleFence(c.Lat, c.Lon, MinRadiusM+rng.Float64()*(MaxRadiusM-MinRadiusM))
		}
		fences[id] = f
		ix.Set(id, f)
	}
	for range 5000 {
		p := randPoint()
		var want []string
		for id, f := range fences {
			if f.Contains(p) {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		if got := search(ix, p); !slices.Equal(got, want) {
			t.Fatalf("Search(%v) = %v, want %v", p, got, want)
		}
	}
}

// TestIndexConcurrent runs readers against a writer under the race
// detector. A fence nobody touches must be found by every read, whatever
// the writer is doing to its neighbours.
func TestIndexConcurrent(t *testing.T) {
	ix := NewIndex()
	p := Point{40.7128, -74.0060}
	ix.Set("stable", circleFence(p.Lat, p.Lon, 200))
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for i := range 2000 {
			id := []string{"a", "b", "c", "d"}[i%4]
			if i%3 == 0 {
				ix.Delete(id)
			} else {
				ix.Set(id, circleFence(p.Lat+float64(i%7)*1e-4, p.Lon, 300))
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			dst := make([]string, 0, 8)
			for n := 0; ; n++ {
				select {
				case <-done:
					if n > 0 {
						return
					}
				default:
				}
				dst = ix.Search(p, dst[:0])
				if !slices.Contains(dst, "stable") {
					t.Errorf("Search(%v) = %v, want it to include stable", p, dst)
					return
				}
				if l := ix.Len(); l < 1 || l > 5 {
					t.Errorf("Len() = %d, want 1 to 5", l)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestIndexGridMatchesBruteForce: store-sized fences (the ones the grid
// holds), moved and deleted after being set, near the antimeridian and a
// pole too: Search answers what a test of every fence answers.
func TestIndexGridMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	ix := NewIndex()
	fences := map[string]*Fence{}
	centres := []Point{{40.7, -74}, {0.2, 179.99}, {-0.1, -179.995}, {89.9, 30}}
	near := func() Point {
		c := centres[rng.IntN(len(centres))]
		return Point{min(max(c.Lat+(rng.Float64()-0.5)*0.1, -90), 90), wrapLon(c.Lon + (rng.Float64()-0.5)*0.1)}
	}
	place := func(id string) {
		c := near()
		var f *Fence
		if rng.IntN(5) == 0 {
			d := 0.002 + rng.Float64()*0.01
			ring := [][2]float64{{c.Lon - d, c.Lat - d}, {c.Lon + d, c.Lat - d}, {c.Lon + d, c.Lat + d}, {c.Lon - d, c.Lat + d}, {c.Lon - d, c.Lat - d}}
			for j := range ring {
				ring[j][0] = wrapLon(ring[j][0])
				ring[j][1] = max(min(ring[j][1], 90), -90)
			}
			m, _, errs := ParsePolygon([]byte(ringJSON(ring)))
			if errs != nil {
				return
			}
			f = &Fence{Polygon: m}
		} else {
			f = circleFence(c.Lat, c.Lon, MinRadiusM+rng.Float64()*3000)
		}
		fences[id] = f
		ix.SetLabeled(id, "label-"+id, f)
	}
	for i := range 600 {
		place(fmt.Sprint("f", i))
	}
	for i := range 600 {
		switch id := fmt.Sprint("f", i); rng.IntN(3) {
		case 0:
			place(id) // moved
		case 1:
			delete(fences, id)
			ix.Delete(id)
		}
	}
	for range 20000 {
		p := near()
		var want []string
		for id, f := range fences {
			if f.Contains(p) {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		if got := search(ix, p); !slices.Equal(got, want) {
			t.Fatalf("Search(%v) = %v, want %v", p, got, want)
		}
	}
	if ix.Len() != len(fences) {
		t.Fatalf("Len = %d, want %d", ix.Len(), len(fences))
	}
}
