package geo

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// within returns the sorted ids px finds inside f.
func within(px *PointIndex, f *Fence) []string {
	var got []string
	px.Within(f, func(id string, p Point) bool {
		got = append(got, id)
		return true
	})
	slices.Sort(got)
	return got
}

func TestPointIndexWithin(t *testing.T) {
	px := NewPointIndex()
	px.SetMany(
		[]string{"times-sq", "bryant-pk", "brooklyn", "hole", "east-180", "west-180", "on-180", "on-minus-180"},
		[]Point{
			{40.7580, -73.9855},
			{40.7536, -73.9832},
			{40.6782, -73.9442},
			{5, 5},
			{0, 179.9999},
			{0, -179.9999},
			{0, 180},
			{0, -180},
		})
	tests := []struct {
		name string
		f    *Fence
		want []string
	}{
		{"circle around Times Square", circleFence(40.7570, -73.9850, 600), []string{"bryant-pk", "times-sq"}},
		{"small circle", circleFence(40.7580, -73.9855, 10), []string{"times-sq"}},
		{"polygon over midtown", polygonFence(t, `{"type":"Polygon","coordinates":[[[-73.99,40.75],[-73.98,40.75],[-73.98,40.76],[-73.99,40.76],[-73.99,40.75]]]}`), []string{"bryant-pk", "times-sq"}},
		{"polygon with a hole around a point", polygonFence(t, squareWithHole), nil},
		{"circle across the antimeridian", circleFence(0, 180, 1000), []string{"east-180", "on-180", "on-minus-180", "west-180"}},
		{"jumping ring", polygonFence(t, jumpingRing), []string{"east-180", "on-180", "on-minus-180", "west-180"}},
		{"cut at the antimeridian", polygonFence(t, cutAtAntimeridian), []string{"east-180", "on-180", "on-minus-180", "west-180"}},
		{"nil fence", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := within(px, tt.f); !slices.Equal(got, tt.want) {
				t.Errorf("Within() = %v, want %v", got, tt.want)
			}
		})
	}
	if px.Len() != 8 {
		t.Errorf("Len() = %d, want 8", px.Len())
	}
}

func TestPointIndexUpdates(t *testing.T) {
	px := NewPointIndex()
	nyc := circleFence(40.7128, -74.0060, 1000)
	in, out := Point{40.7128, -74.0060}, Point{51.5, -0.12}
	steps := []struct {
		name    string
		do      func()
		want    []string
		wantLen int
	}{
		{"empty", func() {}, nil, 0},
		{"set", func() { px.Set("a", in) }, []string{"a"}, 1},
		{"moved out", func() { px.Set("a", out) }, nil, 1},
		{"batch, a repeated id ends at its last point", func() {
			px.SetMany([]string{"a", "b", "c", "a"}, []Point{out, in, in, in})
		}, []string{"a", "b", "c"}, 3},
		{"delete", func() { px.Delete("b") }, []string{"a", "c"}, 2},
		{"delete unknown", func() { px.Delete("zzz") }, []string{"a", "c"}, 2},
		{"an invalid point removes the id", func() { px.Set("c", Point{math.NaN(), 0}) }, []string{"a"}, 1},
		{"empty batch", func() { px.SetMany(nil, nil) }, []string{"a"}, 1},
	}
	for _, st := range steps {
		st.do()
		if got := within(px, nyc); !slices.Equal(got, st.want) {
			t.Errorf("%s: Within() = %v, want %v", st.name, got, st.want)
		}
		if got := px.Len(); got != st.wantLen {
			t.Errorf("%s: Len() = %d, want %d", st.name, got, st.wantLen)
		}
	}
}

func TestPointIndexWithinStops(t *testing.T) {
	px := NewPointIndex()
	px.SetMany([]string{"a", "b", "c"}, []Point{{0, 0}, {0, 0.0001}, {0.0001, 0}})
	n := 0
	px.Within(circleFence(0, 0, 1000), func(string, Point) bool { n++; return false })
	if n != 1 {
		t.Errorf("Within called fn %d times after it returned false, want 1", n)
	}
}

func TestPointIndexSetManyPanicsOnMismatch(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("SetMany with 2 ids and 1 point did not panic")
		}
	}()
	NewPointIndex().SetMany([]string{"a", "b"}, []Point{{0, 0}})
}

func TestPointIndexMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	px := NewPointIndex()
	pts := map[string]Point{}
	for i := range 5000 {
		var p Point
		if i%2 == 0 {
			p = Point{rng.Float64()*2 - 1, wrapLon(180 + rng.Float64()*2 - 1)}
		} else {
			p = Point{rng.Float64()*0.5 + 40.5, rng.Float64()*0.5 - 74.2}
		}
		id := string(rune(0x4e00 + i))
		pts[id] = p
		px.Set(id, p)
	}
	for range 200 {
		var f *Fence
		if rng.IntN(2) == 0 {
			f = circleFence(rng.Float64()*2-1, wrapLon(180+rng.Float64()*2-1), rng.Float64()*MaxRadiusM)
		} else {
			ring := starRing(rng, [2]float64{rng.Float64()*0.5 - 74.2, rng.Float64()*0.5 + 40.5}, 5+rng.IntN(30), 0.01, 0.1)
			f = polygonFence(t, ringJSON(ring))
		}
		var want []string
		for id, p := range pts {
			if f.Contains(p) {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		if got := within(px, f); !slices.Equal(got, want) {
			t.Fatalf("Within(%v) found %d ids, want %d", f.BBox(), len(got), len(want))
		}
	}
}

func TestPointIndexConcurrent(t *testing.T) {
	px := NewPointIndex()
	fence := circleFence(40.7128, -74.0060, 500)
	px.Set("stable", Point{40.7128, -74.0060})
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		ids := []string{"a", "b", "c"}
		for i := range 1000 {
			p := Point{40.7128 + float64(i%10)*1e-3, -74.0060}
			switch i % 3 {
			case 0:
				px.Set(ids[i%3], p)
			case 1:
				px.SetMany(ids, []Point{p, p, p})
			default:
				px.Delete(ids[i%3])
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-done:
					if n > 0 {
						return
					}
				default:
				}
				if got := within(px, fence); !slices.Contains(got, "stable") {
					t.Errorf("Within() = %v, want it to include stable", got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestPointIndexWithinSince: only points taken at or after the bound,
// and a new time for an id replaces its old one.
func TestPointIndexWithinSince(t *testing.T) {
	px := NewPointIndex()
	f := &Fence{Circle: &Circle{Center: Point{Lat: 0, Lon: 0}, RadiusM: 1000}}
	px.SetManyAt([]string{"old", "edge", "new", "far"}, []Point{{0, 0}, {0, 0.001}, {0.001, 0}, {1, 1}}, []int64{100, 200, 300, 300})
	since := func(at int64) []string {
		var got []string
		px.WithinSince(f, at, func(id string) bool {
			got = append(got, id)
			return true
		})
		slices.Sort(got)
		return got
	}
	if got := since(200); !slices.Equal(got, []string{"edge", "new"}) {
		t.Errorf("since 200 = %v, want [edge new]", got)
	}
	if got := since(math.MinInt64); !slices.Equal(got, within(px, f)) {
		t.Errorf("since the beginning = %v, Within = %v", got, within(px, f))
	}
	px.SetManyAt([]string{"old"}, []Point{{0, 0}}, []int64{400})
	if got := since(301); !slices.Equal(got, []string{"old"}) {
		t.Errorf("since 301 after old moved on = %v, want [old]", got)
	}
	px.Delete("old")
	if got := since(0); !slices.Equal(got, []string{"edge", "new"}) {
		t.Errorf("after Delete = %v, want [edge new]", got)
	}
}
