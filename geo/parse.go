package geo

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FieldError names a bad part of the input by a JSON path relative to the
// value that was parsed ("radius_m", "coordinates[0][3]", "type"); the
// caller prefixes it with where that value sat in its request
// ("fence.polygon."). An empty Field means the value as a whole.
type FieldError struct {
	Field   string
	Message string
}

// Error returns "field: message", or the message alone for the whole value.
func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// maxFieldErrors caps the per-position messages: a client that sent 10000
// positions in the wrong order needs a few examples, not 10000 lines.
const maxFieldErrors = 20

// ParsePolygon strictly decodes a GeoJSON geometry object of type "Polygon"
// or "MultiPolygon" and validates it as a fence. It returns the polygon and
// its canonical GeoJSON: compact, members "type" then "coordinates", every
// number in strconv's shortest 'g' form, so that parsing the canonical form
// gives the same bytes again.
//
// Decoding is strict: members other than "type", "coordinates" and "bbox"
// (which must be an array of numbers and is otherwise ignored), duplicate
// members, members differing from those only in case, wrong JSON types and
// trailing data are all errors.
//
// Validation follows the contract: every position is exactly [lon, lat]
// (an altitude is rejected rather than silently dropped), finite and in
// range; rings are closed with at least 4 positions; at most
// MaxPolygonPositions positions in all, counted before anything expensive;
// no ring crosses itself or another ring of its polygon (touching at a
// point is allowed, overlapping edges are not); holes lie inside their
// outer ring; each part of a MultiPolygon is checked on its own.
//
// The returned GeoJSON is the same slice as the polygon's GeoJSON method
// returns; neither may be modified. On failure ParsePolygon returns nil,
// nil and the errors, which name fields such as "type", "coordinates[0]"
// or, for a MultiPolygon, "coordinates[2][0][5]".
func ParsePolygon(raw []byte) (*MultiPolygon, json.RawMessage, []FieldError) {
	if !json.Valid(raw) {
		return nil, nil, []FieldError{syntaxError(raw)}
	}
	s := scanner{b: raw}
	s.ws()
	if s.peek() != '{' {
		return nil, nil, []FieldError{{Message: "must be a GeoJSON geometry object"}}
	}
	var (
		errs             []FieldError
		typ              string
		haveType         bool
		haveBBox         bool
		coords           []byte
		haveCoords       bool
		typeIsNotAString bool
	)
	s.elements('{', func() bool {
		key := s.str()
		s.ws()
		s.i++ // ':'
		s.ws()
		start := s.i
		switch key {
		case "type":
			if haveType {
				errs = append(errs, FieldError{Field: key, Message: "duplicate member"})
			}
			haveType = true
			if s.peek() == '"' {
				typ = s.str()
			} else {
				s.skip()
				typeIsNotAString = true
			}
		case "coordinates":
			if haveCoords {
				errs = append(errs, FieldError{Field: key, Message: "duplicate member"})
			}
			haveCoords = true
			s.skip()
			coords = raw[start:s.i]
		case "bbox":
			if haveBBox {
				errs = append(errs, FieldError{Field: key, Message: "duplicate member"})
			}
			haveBBox = true
			if !s.numberArray() {
				errs = append(errs, FieldError{Field: key, Message: "must be an array of numbers"})
			}
		default:
			s.skip()
			msg := "unknown member; a geometry has only \"type\", \"coordinates\" and \"bbox\""
			for _, known := range []string{"type", "coordinates", "bbox"} {
				if strings.EqualFold(key, known) {
					msg = fmt.Sprintf("unknown member; member names are case-sensitive, did you mean %q?", known)
				}
			}
			errs = append(errs, FieldError{Field: key, Message: msg})
		}
		return true
	})
	switch {
	case !haveType:
		errs = append(errs, FieldError{Field: "type", Message: "is required"})
	case typeIsNotAString:
		errs = append(errs, FieldError{Field: "type", Message: `must be the string "Polygon" or "MultiPolygon"`})
	case typ != "Polygon" && typ != "MultiPolygon":
		errs = append(errs, FieldError{Field: "type", Message: fmt.Sprintf(`must be "Polygon" or "MultiPolygon", not %q`, typ)})
	}
	if !haveCoords {
		errs = append(errs, FieldError{Field: "coordinates", Message: "is required"})
	}
	if errs != nil {
		return nil, nil, errs
	}

	cp := coordParser{s: scanner{b: coords}}
	var polys [][]inputRing
	if typ == "Polygon" {
		if rings, ok := cp.polygon(); ok {
			polys = [][]inputRing{rings}
		}
	} else {
		polys = cp.multiPolygon()
	}
	if cp.errs != nil {
		return nil, nil, cp.errs
	}

	m := &MultiPolygon{parts: make([]part, len(polys))}
	for i, rings := range polys {
		path := "coordinates"
		if typ == "MultiPolygon" {
			path += "[" + strconv.Itoa(i) + "]"
		}
		p, err := buildPart(rings, path)
		if err != nil {
			return nil, nil, []FieldError{*err}
		}
		m.parts[i] = p
	}
	m.bbox = computeBBox(m.parts)
	m.geojson = canonical(typ, polys, len(coords))
	return m, m.geojson, nil
}

// syntaxError explains why raw is not one JSON value; the standard decoder
// already words this well ("invalid character 'x' after top-level value").
func syntaxError(raw []byte) FieldError {
	err := json.Unmarshal(raw, new(json.RawMessage))
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return FieldError{Message: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)}
	}
	if err != nil {
		return FieldError{Message: "malformed JSON: " + err.Error()}
	}
	return FieldError{Message: "malformed JSON"}
}

// canonical renders the geometry compactly. sizeHint is the length of the
// input coordinates, which the output rarely exceeds by much.
func canonical(typ string, polys [][]inputRing, sizeHint int) json.RawMessage {
	b := make([]byte, 0, sizeHint+48)
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","coordinates":`...)
	if typ == "MultiPolygon" {
		b = append(b, '[')
	}
	for i, rings := range polys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, r := range rings {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for k, pos := range r {
				if k > 0 {
					b = append(b, ',')
				}
				b = append(b, '[')
				b = strconv.AppendFloat(b, pos[0], 'g', -1, 64)
				b = append(b, ',')
				b = strconv.AppendFloat(b, pos[1], 'g', -1, 64)
				b = append(b, ']')
			}
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	if typ == "MultiPolygon" {
		b = append(b, ']')
	}
	b = append(b, '}')
	return b
}

// coordParser decodes a "coordinates" value whose JSON syntax is known to
// be valid, collecting errors with their paths.
type coordParser struct {
	s     scanner
	path  []int // array indices leading to the current value
	count int   // positions seen so far
	errs  []FieldError
	fatal bool // the structure is wrong, or too big: stop decoding
}

func (p *coordParser) fail(fatal bool, msg string) {
	p.fatal = p.fatal || fatal
	if len(p.errs) < maxFieldErrors {
		var b strings.Builder
		b.WriteString("coordinates")
		for _, i := range p.path {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(i))
			b.WriteByte(']')
		}
		p.errs = append(p.errs, FieldError{Field: b.String(), Message: msg})
	}
}

// array decodes the array at the current position, calling elem for each
// element with its index pushed onto the path. It fails with msg when the
// value is not an array.
func (p *coordParser) array(msg string, elem func()) bool {
	if p.s.peek() != '[' {
		p.s.skip()
		p.fail(true, msg)
		return false
	}
	i := 0
	p.s.elements('[', func() bool {
		p.path = append(p.path, i)
		elem()
		p.path = p.path[:len(p.path)-1]
		i++
		return !p.fatal
	})
	return !p.fatal
}

func (p *coordParser) multiPolygon() [][]inputRing {
	var polys [][]inputRing
	p.array("must be an array of polygons", func() {
		if rings, ok := p.polygon(); ok {
			polys = append(polys, rings)
		}
	})
	if !p.fatal && len(polys) == 0 && p.errs == nil {
		p.fail(true, "must have at least one polygon")
	}
	return polys
}

func (p *coordParser) polygon() ([]inputRing, bool) {
	var rings []inputRing
	ok := p.array("must be an array of linear rings", func() {
		rings = append(rings, p.ring())
	})
	if ok && len(rings) == 0 {
		p.fail(true, "must have at least one linear ring")
		return nil, false
	}
	return rings, ok
}

func (p *coordParser) ring() inputRing {
	var r inputRing
	bad := false
	ok := p.array("must be an array of positions", func() {
		if pos, ok := p.position(); ok {
			r = append(r, pos)
		} else {
			bad = true
		}
	})
	// With a bad position the ring's shape is unknown; saying more about it
	// would only repeat the position's error.
	if !ok || bad {
		return nil
	}
	switch {
	case len(r) < 4:
		p.fail(false, fmt.Sprintf("linear ring must have at least 4 positions, has %d", len(r)))
		return nil
	case r[0] != r[len(r)-1]:
		p.fail(false, "linear ring is not closed: the last position must equal the first")
		return nil
	}
	return r
}

func (p *coordParser) position() ([2]float64, bool) {
	p.count++
	if p.count > MaxPolygonPositions {
		// The limit is on the whole value, so the error names it and
		// replaces any earlier ones: they would be about a geometry that
		// cannot be accepted anyway.
		p.fatal = true
		p.errs = []FieldError{{Field: "coordinates", Message: fmt.Sprintf(
			"has more than %d positions (closing positions and holes count)", MaxPolygonPositions)}}
		p.s.skip()
		return [2]float64{}, false
	}
	var pos [2]float64
	n := 0
	shape := true
	var rangeMsg string
	ok := p.array("must be a position [lon, lat]", func() {
		f, isNum, err := p.s.number()
		switch {
		case !isNum:
			shape = false
		case err != nil:
			if rangeMsg == "" {
				rangeMsg = fmt.Sprintf("number %s is out of range", err)
			}
		case n < 2:
			pos[n] = f
		}
		n++
	})
	if !ok {
		return pos, false
	}
	switch {
	case !shape:
		p.fail(true, "must be a position [lon, lat] of two numbers")
	case n != 2:
		msg := fmt.Sprintf("must be a position [lon, lat] of exactly 2 numbers, has %d", n)
		if n == 3 {
			msg += " (altitude is not supported)"
		}
		p.fail(false, msg)
	case rangeMsg != "":
		p.fail(false, rangeMsg)
	case rangeProblem(pos[0], -180, 180) != "":
		p.fail(false, fmt.Sprintf("longitude %g must be between -180 and 180", pos[0]))
	case rangeProblem(pos[1], -90, 90) != "":
		p.fail(false, fmt.Sprintf("latitude %g must be between -90 and 90", pos[1]))
	default:
		return pos, true
	}
	return pos, false
}

// scanner walks JSON text that json.Valid has accepted, so it needs no
// syntax error handling of its own.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// elements iterates over the members of an object or the elements of an
// array starting at the current position (open is '{' or '['), leaving the
// scanner after its closing bracket. fn starts at the element and must
// consume exactly it; returning false abandons the rest.
func (s *scanner) elements(open byte, fn func() bool) {
	start := s.i
	s.i++ // the opening bracket
	s.ws()
	if s.peek() == open+2 { // ']' is '['+2 and '}' is '{'+2 in ASCII
		s.i++
		return
	}
	for {
		if !fn() {
			s.i = start
			s.skip()
			return
		}
		s.ws()
		if s.peek() == ',' {
			s.i++
			s.ws()
			continue
		}
		s.i++ // the closing bracket
		return
	}
}

// str reads a string, decoding escapes only when there are any, so that
// "typ\u0065" is recognised as "type".
func (s *scanner) str() string {
	start := s.i
	s.i++
	escaped := false
	for s.b[s.i] != '"' {
		if s.b[s.i] == '\\' {
			escaped = true
			s.i++
		}
		s.i++
	}
	s.i++
	if !escaped {
		return string(s.b[start+1 : s.i-1])
	}
	var out string
	_ = json.Unmarshal(s.b[start:s.i], &out) // valid JSON, cannot fail
	return out
}

// skip moves past one value of any kind.
func (s *scanner) skip() {
	switch s.peek() {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

// number reads a number if one is next (isNum false and the value skipped
// otherwise). err is set when it does not fit a float64, like 1e400.
func (s *scanner) number() (f float64, isNum bool, err error) {
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		s.skip()
		return 0, false, nil
	}
	start := s.i
	s.skip()
	tok := s.b[start:s.i]
	f, err = strconv.ParseFloat(string(tok), 64)
	if err != nil {
		return 0, true, fmt.Errorf("%s", tok)
	}
	return f, true, nil
}

// numberArray reports whether the value next is an array of numbers,
// consuming it either way.
func (s *scanner) numberArray() bool {
	if s.peek() != '[' {
		s.skip()
		return false
	}
	ok := true
	s.elements('[', func() bool {
		_, isNum, err := s.number()
		ok = ok && isNum && err == nil
		return true
	})
	return ok
}
