package geo

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

const unitSquare = `[[0,0],[10,0],[10,10],[0,10],[0,0]]`

func TestParsePolygonAccepts(t *testing.T) {
	tests := []struct {
		name string
		geo  string
	}{
		{"square", `{"type":"Polygon","coordinates":[` + unitSquare + `]}`},
		{"members in any order, with bbox", `{"bbox":[0,0,10,10],"coordinates":[` + unitSquare + `],"type":"Polygon"}`},
		{"square with a hole", squareWithHole},
		{"MultiPolygon", twoSquares},
		{"MultiPolygon parts may overlap", `{"type":"MultiPolygon","coordinates":[[` + unitSquare + `],[` + unitSquare + `]]}`},
		{"cut at the antimeridian", cutAtAntimeridian},
		{"jumping ring", jumpingRing},
		{"jumping ring with holes", jumpingRingWithHoles},
		{"repeated consecutive positions", `{"type":"Polygon","coordinates":[[[0,0],[0,0],[1,0],[1,1],[1,1],[0,0],[0,0]]]}`},
		{"clockwise outer ring", `{"type":"Polygon","coordinates":[[[0,0],[0,10],[10,10],[10,0],[0,0]]]}`},
		{"hole touching the outer ring at a point", `{"type":"Polygon","coordinates":[` + unitSquare + `,[[0,5],[3,4],[3,6],[0,5]]]}`},
		{"holes touching each other at a corner", `{"type":"Polygon","coordinates":[` + unitSquare +
			`,[[2,2],[4,2],[4,4],[2,4],[2,2]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}`},
		{"ring touching itself at a vertex", `{"type":"Polygon","coordinates":[[[0,0],[2,2],[4,0],[4,4],[2,2],[0,4],[0,0]]]}`},
		{"collinear vertex on a straight edge", `{"type":"Polygon","coordinates":[[[0,0],[5,0],[10,0],[10,10],[0,0]]]}`},
		{"escaped member name", `{"typ\u0065":"Polygon","coordinates":[` + unitSquare + `]}`},
		{"whitespace everywhere", " \n{ \"type\" : \"Polygon\" ,\t\"coordinates\" : [ [ [0 , 0] , [1,0],[1,1],[0,0] ] ] }\r\n"},
		{"the poles as vertices, longitudes 180° apart", `{"type":"Polygon","coordinates":[[[-90,-90],[90,-90],[90,90],[-90,90],[-90,-90]]]}`},
		{"tiny numbers", `{"type":"Polygon","coordinates":[[[0,0],[1e-300,0],[1e-300,1e-300],[0,0]]]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, canon, errs := ParsePolygon([]byte(tt.geo))
			if errs != nil {
				t.Fatalf("ParsePolygon(%s) errors = %v, want none", tt.geo, errs)
			}
			if m == nil || len(canon) == 0 {
				t.Fatalf("ParsePolygon(%s) = %v, %s, want a polygon and its GeoJSON", tt.geo, m, canon)
			}
			_, again, errs := ParsePolygon(canon)
			if errs != nil || string(again) != string(canon) {
				t.Errorf("ParsePolygon(%s) = %s, %v, want the same canonical form back", canon, again, errs)
			}
		})
	}
}

func TestParsePolygonCanonical(t *testing.T) {
	tests := []struct {
		name string
		geo  string
		want string
	}{
		{"compact, type first, bbox dropped",
			`{ "bbox": [0,0,1,1], "coordinates": [ [ [0,0], [1,0], [1,1], [0,0] ] ], "type": "Polygon" }`,
			`{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}`},
		{"numbers in shortest form",
			`{"type":"Polygon","coordinates":[[[1.50,0.0],[1E1,-0],[1e1,0.00001],[1.5,0]]]}`,
			`{"type":"Polygon","coordinates":[[[1.5,0],[10,-0],[10,1e-05],[1.5,0]]]}`},
		{"full precision kept",
			`{"type":"Polygon","coordinates":[[[-73.98765432101234,40.71234567890123],[-73.9,40.7],[-73.9,40.8],[-73.98765432101234,40.71234567890123]]]}`,
			`{"type":"Polygon","coordinates":[[[-73.98765432101234,40.71234567890123],[-73.9,40.7],[-73.9,40.8],[-73.98765432101234,40.71234567890123]]]}`},
		{"input longitudes kept across the antimeridian", jumpingRing,
			`{"type":"Polygon","coordinates":[[[170,-10],[-170,-10],[-170,10],[170,10],[170,-10]]]}`},
		{"MultiPolygon", twoSquares,
			`{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,6],[5,5]]]]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, canon, errs := ParsePolygon([]byte(tt.geo))
			if errs != nil {
				t.Fatalf("ParsePolygon(%s) errors = %v", tt.geo, errs)
			}
			if string(canon) != tt.want {
				t.Errorf("ParsePolygon(%s) canonical = %s, want %s", tt.geo, canon, tt.want)
			}
			if string(m.GeoJSON()) != tt.want {
				t.Errorf("GeoJSON() = %s, want %s", m.GeoJSON(), tt.want)
			}
		})
	}
}

func TestParsePolygonRejects(t *testing.T) {
	poly := func(rings ...string) string {
		return `{"type":"Polygon","coordinates":[` + strings.Join(rings, ",") + `]}`
	}
	tests := []struct {
		name      string
		geo       string
		wantField string
		wantMsg   string
	}{
		// JSON and members.
		{"not JSON", `{"type":`, "", "malformed JSON"},
		{"empty input", ``, "", "malformed JSON"},
		{"trailing data", poly(unitSquare) + ` x`, "", "after top-level value"},
		{"a second value", poly(unitSquare) + `{}`, "", "after top-level value"},
		{"not an object", `[` + unitSquare + `]`, "", "must be a GeoJSON geometry object"},
		{"null", `null`, "", "must be a GeoJSON geometry object"},
		{"wrong type", `{"type":"Point","coordinates":[0,0]}`, "type", `not "Point"`},
		{"type in the wrong case", `{"type":"polygon","coordinates":[` + unitSquare + `]}`, "type", `not "polygon"`},
		{"type not a string", `{"type":7,"coordinates":[` + unitSquare + `]}`, "type", "must be the string"},
		{"type missing", `{"coordinates":[` + unitSquare + `]}`, "type", "is required"},
		{"coordinates missing", `{"type":"Polygon"}`, "coordinates", "is required"},
		{"unknown member", `{"type":"Polygon","coordinates":[` + unitSquare + `],"properties":{}}`, "properties", "unknown member"},
		{"case-variant member", `{"type":"Polygon","Coordinates":[` + unitSquare + `]}`, "Coordinates", "case-sensitive"},
		{"case-variant type", `{"Type":"Polygon","coordinates":[` + unitSquare + `]}`, "Type", "case-sensitive"},
		{"duplicate member", `{"type":"Polygon","type":"Polygon","coordinates":[` + unitSquare + `]}`, "type", "duplicate"},
		{"duplicate member, escaped", `{"type":"Polygon","typ\u0065":"Polygon","coordinates":[` + unitSquare + `]}`, "type", "duplicate"},
		{"duplicate coordinates", `{"type":"Polygon","coordinates":[` + unitSquare + `],"coordinates":[` + unitSquare + `]}`, "coordinates", "duplicate"},
		{"bbox not an array", `{"type":"Polygon","bbox":"0,0,1,1","coordinates":[` + unitSquare + `]}`, "bbox", "array of numbers"},
		{"bbox of strings", `{"type":"Polygon","bbox":["0"],"coordinates":[` + unitSquare + `]}`, "bbox", "array of numbers"},
		// Structure.
		{"coordinates not an array", `{"type":"Polygon","coordinates":{}}`, "coordinates", "array of linear rings"},
		{"coordinates null", `{"type":"Polygon","coordinates":null}`, "coordinates", "array of linear rings"},
		{"no rings", poly(), "coordinates", "at least one linear ring"},
		{"ring not an array", poly(`7`), "coordinates[0]", "array of positions"},
		{"position not an array", poly(`[[0,0],5,[1,1],[0,0]]`), "coordinates[0][1]", "must be a position"},
		{"position with a string", poly(`[[0,0],[1,"0"],[1,1],[0,0]]`), "coordinates[0][1]", "two numbers"},
		{"position with null", poly(`[[0,0],[1,null],[1,1],[0,0]]`), "coordinates[0][1]", "two numbers"},
		{"MultiPolygon depth given as Polygon", `{"type":"Polygon","coordinates":[[` + unitSquare + `]]}`, "coordinates[0][0]", "two numbers"},
		{"Polygon depth given as MultiPolygon", `{"type":"MultiPolygon","coordinates":[` + unitSquare + `]}`, "coordinates[0][0][0]", "must be a position"},
		{"position with altitude", poly(`[[0,0,0],[1,0],[1,1],[0,0]]`), "coordinates[0][0]", "altitude is not supported"},
		{"position with one number", poly(`[[0,0],[1],[1,1],[0,0]]`), "coordinates[0][1]", "exactly 2 numbers, has 1"},
		{"empty position", poly(`[[0,0],[],[1,1],[0,0]]`), "coordinates[0][1]", "exactly 2 numbers, has 0"},
		// Numbers.
		{"number overflows", poly(`[[0,0],[1,0],[1e400,1],[0,0]]`), "coordinates[0][2]", "1e400 is out of range"},
		{"negative overflow", poly(`[[0,0],[1,0],[1,-1e400],[0,0]]`), "coordinates[0][2]", "out of range"},
		{"latitude above 90", poly(`[[0,0],[1,0],[1,91],[0,0]]`), "coordinates[0][2]", "latitude 91"},
		{"latitude below -90", poly(`[[0,0],[1,0],[1,-90.000001],[0,0]]`), "coordinates[0][2]", "latitude"},
		{"longitude below -180", poly(`[[0,0],[-180.5,0],[1,1],[0,0]]`), "coordinates[0][1]", "longitude -180.5"},
		{"longitude above 180", poly(`[[0,0],[1,0],[181,1],[0,0]]`), "coordinates[0][2]", "longitude 181"},
		// Rings.
		{"unclosed ring", poly(`[[0,0],[1,0],[1,1],[0,1]]`), "coordinates[0]", "not closed"},
		{"three positions", poly(`[[0,0],[1,0],[0,0]]`), "coordinates[0]", "at least 4 positions, has 3"},
		{"empty ring", poly(`[]`), "coordinates[0]", "at least 4 positions, has 0"},
		{"unclosed hole", poly(unitSquare, `[[4,4],[4,6],[6,6],[6,4]]`), "coordinates[1]", "not closed"},
		{"one distinct position", poly(`[[1,1],[1,1],[1,1],[1,1]]`), "coordinates[0]", "at least 3 distinct"},
		{"two distinct positions", poly(`[[0,0],[1,1],[1,1],[0,0]]`), "coordinates[0]", "at least 3 distinct"},
		{"encircles a pole", poly(`[[0,80],[120,80],[-120,80],[0,80]]`), "coordinates[0]", "encloses a pole"},
		// -180 to 180 is a jump of more than 180°, so by the contract's rule
		// that edge has no length: the ring is a line.
		{"edge from -180 to 180 along a parallel", poly(`[[-180,-90],[180,-90],[180,90],[-180,90],[-180,-90]]`), "coordinates[0]", "at least 3 distinct"},
		// Crossings.
		{"bowtie", poly(`[[0,0],[10,10],[10,0],[0,10],[0,0]]`), "coordinates[0]", "crosses itself"},
		{"spike folding back", poly(`[[0,0],[2,0],[1,0],[1,1],[0,0]]`), "coordinates[0]", "fold back"},
		{"flat ring", poly(`[[0,0],[1,0],[2,0],[0,0]]`), "coordinates[0]", ""},
		{"overlapping edges", poly(`[[0,0],[4,0],[4,1],[3,1],[3,0],[1,0],[1,-1],[0,-1],[0,0]]`), "coordinates[0]", "overlaps"},
		{"crossing through a shared vertex", poly(`[[0,0],[2,2],[4,4],[4,0],[2,2],[0,4],[0,0]]`), "coordinates[0]", "crosses itself at [2, 2]"},
		{"two rings crossing", poly(unitSquare, `[[5,5],[15,5],[15,6],[5,6],[5,5]]`), "coordinates[1]", "crosses ring coordinates[0]"},
		{"holes crossing each other", poly(unitSquare, `[[2,2],[5,2],[5,5],[2,5],[2,2]]`, `[[4,4],[7,4],[7,7],[4,7],[4,4]]`), "coordinates[2]", "crosses ring coordinates[1]"},
		{"hole sharing an edge with the outer ring", poly(unitSquare, `[[0,2],[3,3],[0,4],[0,2]]`), "coordinates[1]", "overlaps"},
		{"hole crossing the outer ring at its vertices", poly(unitSquare, `[[0,5],[1,6],[0,7],[-1,6],[0,5]]`), "coordinates[1]", "crosses ring coordinates[0] at [0, "},
		{"hole outside, touching", poly(unitSquare, `[[0,5],[-2,3],[-2,7],[0,5]]`), "coordinates[1]", "outside the outer ring"},
		{"hole outside", poly(unitSquare, `[[20,20],[21,20],[21,21],[20,20]]`), "coordinates[1]", "outside the outer ring"},
		{"hole around the outer ring", poly(unitSquare, `[[-1,-1],[11,-1],[11,11],[-1,11],[-1,-1]]`), "coordinates[1]", "outside the outer ring"},
		// MultiPolygon paths.
		{"no polygons", `{"type":"MultiPolygon","coordinates":[]}`, "coordinates", "at least one polygon"},
		{"bad position in a second part", `{"type":"MultiPolygon","coordinates":[[` + unitSquare + `],[[[0,0],[1,0],[1,95],[0,0]]]]}`, "coordinates[1][0][2]", "latitude 95"},
		{"bowtie in a second part", `{"type":"MultiPolygon","coordinates":[[` + unitSquare + `],[[[0,0],[10,10],[10,0],[0,10],[0,0]]]]}`, "coordinates[1][0]", "crosses itself"},
		{"empty part", `{"type":"MultiPolygon","coordinates":[[` + unitSquare + `],[]]}`, "coordinates[1]", "at least one linear ring"},
		// Size.
		{"too many positions", poly(circleRing(Point{40, -74}, 0.1, MaxPolygonPositions+1)), "coordinates", "more than 10000 positions"},
		{"too many positions with holes", poly(circleRing(Point{40, -74}, 0.1, 9000), circleRing(Point{40, -74}, 0.01, 1001)), "coordinates", "more than 10000 positions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, canon, errs := ParsePolygon([]byte(tt.geo))
			if m != nil || canon != nil {
				t.Errorf("ParsePolygon(%.200s) accepted it, want errors", tt.geo)
			}
			for _, e := range errs {
				if e.Field == tt.wantField && strings.Contains(e.Message, tt.wantMsg) {
					return
				}
			}
			t.Errorf("ParsePolygon(%.200s) errors = %q, want one for field %q saying %q", tt.geo, errs, tt.wantField, tt.wantMsg)
		})
	}
}

func TestParsePolygonReportsManyPositions(t *testing.T) {
	_, _, errs := ParsePolygon([]byte(`{"type":"Polygon","coordinates":[[[0,0],[1,95],[200,1],[0,1,2],[0,0]]]}`))
	want := []string{"coordinates[0][1]", "coordinates[0][2]", "coordinates[0][3]"}
	if len(errs) != len(want) {
		t.Fatalf("ParsePolygon() errors = %v, want %d of them", errs, len(want))
	}
	for i, e := range errs {
		if e.Field != want[i] {
			t.Errorf("error %d names %q, want %q", i, e.Field, want[i])
		}
	}
}

// circleRing returns a closed ring of n positions (the closing one
// included) on a circle of the given radius in degrees.
func circleRing(c Point, rDeg float64, n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n - 1 {
		a := 2 * math.Pi * float64(i) / float64(n-1)
		fmt.Fprintf(&b, "[%v,%v],", c.Lon+rDeg*math.Cos(a), c.Lat+rDeg*math.Sin(a))
	}
	fmt.Fprintf(&b, "[%v,%v]]", c.Lon+rDeg, c.Lat)
	return b.String()
}

// TestParsePolygonLargeRings: the contract's largest polygons are
// accepted. How fast is BenchmarkParsePolygon's business: tests assert
// behaviour only.
func TestParsePolygonLargeRings(t *testing.T) {
	tests := []struct {
		name string
		geo  string
	}{
		{"circle of 10000 positions", `{"type":"Polygon","coordinates":[` + circleRing(Point{40, -74}, 0.1, MaxPolygonPositions) + `]}`},
		{"serpentine of 10000 positions", serpentine(MaxPolygonPositions)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, errs := ParsePolygon([]byte(tt.geo)); errs != nil {
				t.Fatalf("ParsePolygon() errors = %v", errs)
			}
		})
	}
}

// serpentine returns a valid polygon of n positions whose ring zig-zags in
// long thin horizontal teeth: every edge spans most of the width, which
// defeats a sweep over one axis but not boxes in two.
func serpentine(n int) string {
	teeth := (n - 3) / 4
	var b strings.Builder
	b.WriteString(`{"type":"Polygon","coordinates":[[[0,0]`)
	for i := range teeth {
		y0 := float64(2*i) * 0.001
		fmt.Fprintf(&b, ",[10,%v],[10,%v],[0.5,%v],[0.5,%v]", y0, y0+0.001, y0+0.001, y0+0.002)
	}
	top := float64(2*teeth) * 0.001
	fmt.Fprintf(&b, ",[0,%v],[0,0]", top)
	// Pad with repeated positions to reach exactly n.
	b.WriteString(strings.Repeat(",[0,0]", n-3-4*teeth))
	b.WriteString(`]]}`)
	return b.String()
}
