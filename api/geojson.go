package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

type featureCollectionIn struct {
	Type     *string          `json:"type"`
	Features []jsontext.Value `json:"features"`
	BBox     []float64        `json:"bbox"`
}

type featureIn struct {
	Type       *string         `json:"type"`
	ID         jsontext.Value  `json:"id"`
	Geometry   jsontext.Value  `json:"geometry"`
	Properties *featurePropsIn `json:"properties"`
	BBox       []float64       `json:"bbox"`
}

type featurePropsIn struct {
	ID       *string  `json:"id"`
	Name     *string  `json:"name"`
	Timezone *string  `json:"timezone"`
	Tags     []string `json:"tags"`
	RadiusM  *float64 `json:"radius_m"`
}

// geometryHead reads only a geometry's type; a Point's coordinates are
// read with it, polygons go whole to geo.ParsePolygon.
type geometryHead struct {
	Type        string         `json:"type"`
	Coordinates jsontext.Value `json:"coordinates"`
	BBox        jsontext.Value `json:"bbox"`
}

// pointIn is a Point geometry, decoded strictly.
type pointIn struct {
	Type        string         `json:"type"`
	Coordinates jsontext.Value `json:"coordinates"`
	BBox        []float64      `json:"bbox"`
}

func (s *Server) handleImportStores() gin.HandlerFunc {
	return func(c *gin.Context) {
		k := keyOf(c)
		var fc featureCollectionIn
		if err := decodeBody(c, limitImport, &fc); err != nil {
			s.fail(c, err)
			return
		}
		if fc.Type == nil || *fc.Type != "FeatureCollection" {
			s.fail(c, hotzone.Invalid("type", `must be "FeatureCollection"`))
			return
		}
		if fc.Features == nil {
			s.fail(c, hotzone.Invalid("features", "required"))
			return
		}
		var (
			errs   fieldErrors
			bad    int
			stores = make([]hotzone.Store, 0, len(fc.Features))
			seen   = make(map[string]int, len(fc.Features))
		)
		for i, raw := range fc.Features {
			st, ferrs := s.importFeature(i, raw, seen)
			if len(ferrs) > 0 {
				errs = append(errs, ferrs...)
				bad++
				continue
			}
			st.BrandID = k.BrandID
			stores = append(stores, st)
		}
		if len(errs) > 0 {
			s.fail(c, &hotzone.ValidationError{Detail: strconv.Itoa(bad) + " of " + strconv.Itoa(len(fc.Features)) + " features are not valid; nothing was imported", Errors: errs})
			return
		}
		created, updated, err := s.db.ImportStores(c, k.BrandID, stores)
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusOK, map[string]int{"created": created, "updated": updated})
	}
}

// importFeature validates feature i and answers every problem it finds
// in it: the properties and the geometry are checked independently, so a
// bad id, a missing name, an unknown time zone and an out-of-range
// coordinate are four errors, not the first of them. Only a feature that
// cannot be read as one (not an object of type "Feature", or without
// properties) stops at that problem, since nothing further can be told.
// seen maps each id read so far to its feature, to report duplicates.
func (s *Server) importFeature(i int, raw jsontext.Value, seen map[string]int) (hotzone.Store, fieldErrors) {
	prefix := "features[" + strconv.Itoa(i) + "]"
	var f featureIn
	if err := decodeJSON(raw, prefix, &f); err != nil {
		var ve *hotzone.ValidationError
		if errors.As(err, &ve) && len(ve.Errors) > 0 {
			return hotzone.Store{}, fieldErrors(ve.Errors)
		}
		return hotzone.Store{}, fieldErrors{{Field: prefix, Message: "must be a GeoJSON Feature"}}
	}
	var errs fieldErrors
	if f.Type == nil || *f.Type != "Feature" {
		errs.add(prefix+".type", `must be "Feature"`)
		return hotzone.Store{}, errs
	}
	if k := f.ID.Kind(); len(f.ID) > 0 && k != '"' && k != '0' && k != 'n' {
		errs.add(prefix+".id", "must be a string or a number (RFC 7946 §3.2)")
	}
	p := f.Properties
	if p == nil {
		errs.add(prefix+".properties", "required")
		return hotzone.Store{}, errs
	}
	id := ""
	switch {
	case p.ID == nil:
		errs.add(prefix+".properties.id", "required")
	case !validID(storeIDPattern, *p.ID):
		errs.add(prefix+".properties.id", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	default:
		id = *p.ID
		if j, dup := seen[id]; dup {
			errs.add(prefix+".properties.id", "duplicates the id of features["+strconv.Itoa(j)+"]")
		} else {
			seen[id] = i
		}
	}
	name, tz, tags := s.checkStoreFields(&errs, prefix+".properties.", p.Name, p.Timezone, p.Tags)
	spec, fence := importGeometry(&errs, prefix, f.Geometry, p.RadiusM)
	if len(errs) > 0 {
		return hotzone.Store{}, errs
	}
	return hotzone.Store{ID: id, Name: name, Timezone: tz, Tags: tags, Spec: spec, Fence: fence}, nil
}

// importGeometry checks a feature's geometry with its properties.radius_m
// (required for a Point, refused for a polygon), adding every problem to
// errs; the fence is nil when there was one.
func importGeometry(errs *fieldErrors, prefix string, geometry jsontext.Value, radiusM *float64) (hotzone.FenceSpec, *geo.Fence) {
	gfield := prefix + ".geometry"
	rfield := prefix + ".properties.radius_m"
	if len(geometry) == 0 || geometry.Kind() == 'n' {
		errs.add(gfield, "required")
		return hotzone.FenceSpec{}, nil
	}
	var head geometryHead
	// The head is read leniently (other members are checked by the full
	// parser below); only its type decides the path.
	if err := decodeHead(geometry, &head); err != nil {
		errs.add(gfield, "must be a GeoJSON geometry object")
		return hotzone.FenceSpec{}, nil
	}
	switch head.Type {
	case "Point":
		if radiusM == nil {
			errs.add(rfield, "required for a Point feature")
		}
		// No parser reads a Point after this, so read all of it strictly
		// here: unknown or case-variant members and a malformed bbox are
		// 400, as everywhere else.
		var pt pointIn
		if err := decodeJSON(geometry, gfield, &pt); err != nil {
			var ve *hotzone.ValidationError
			if errors.As(err, &ve) && len(ve.Errors) > 0 {
				*errs = append(*errs, ve.Errors...)
			} else {
				errs.add(gfield, "must be a GeoJSON Point")
			}
			return hotzone.FenceSpec{}, nil
		}
		var coords []float64
		if err := decodeJSON(pt.Coordinates, gfield+".coordinates", &coords); err != nil || len(coords) != 2 {
			errs.add(gfield+".coordinates", "must be [lon, lat]")
			return hotzone.FenceSpec{}, nil
		}
		r := float64(geo.MinRadiusM) // a missing radius is reported above; the position is still checked
		if radiusM != nil {
			r = *radiusM
		}
		var cerrs fieldErrors
		spec, fence := checkCircle(&cerrs, "", coords[1], coords[0], r)
		// ParseCircle names lat/lon/radius_m; point at the GeoJSON
		// members the user actually wrote.
		for _, e := range cerrs {
			switch e.Field {
			case "lat":
				errs.add(gfield+".coordinates", "latitude (the second number) "+e.Message)
			case "lon":
				errs.add(gfield+".coordinates", "longitude (the first number) "+e.Message)
			default:
				errs.add(rfield, e.Message)
			}
		}
		if radiusM == nil {
			return hotzone.FenceSpec{}, nil
		}
		return spec, fence
	case "Polygon", "MultiPolygon":
		if radiusM != nil {
			errs.add(rfield, "only a Point feature has a radius")
		}
		return checkPolygon(errs, gfield, geometry)
	}
	errs.add(gfield, "must be a Point (with properties.radius_m), Polygon or MultiPolygon")
	return hotzone.FenceSpec{}, nil
}

type featureOut struct {
	Type       string          `json:"type"`
	Geometry   jsontext.Value  `json:"geometry"`
	Properties featurePropsOut `json:"properties"`
}

type featurePropsOut struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Timezone string   `json:"timezone"`
	Tags     []string `json:"tags"`
	RadiusM  *float64 `json:"radius_m,omitzero"`
}

type featureCollectionOut struct {
	Type     string       `json:"type"`
	Features []featureOut `json:"features"`
}

func (s *Server) handleExportStores() gin.HandlerFunc {
	return func(c *gin.Context) {
		sts, _, err := s.db.Stores(c, keyOf(c).BrandID, hotzone.StoreQuery{Tag: c.Query("tag")})
		if err != nil {
			s.fail(c, err)
			return
		}
		out := featureCollectionOut{Type: "FeatureCollection", Features: make([]featureOut, 0, len(sts))}
		for _, st := range sts {
			f := featureOut{Type: "Feature", Properties: featurePropsOut{ID: st.ID, Name: st.Name, Timezone: st.Timezone, Tags: st.Tags}}
			if ci := st.Spec.Circle; ci != nil {
				r := ci.RadiusM
				f.Properties.RadiusM = &r
				f.Geometry = jsontext.Value(`{"type":"Point","coordinates":[` + fmtFloat(ci.Lon) + `,` + fmtFloat(ci.Lat) + `]}`)
			} else {
				f.Geometry = jsontext.Value(st.Spec.Polygon)
			}
			out.Features = append(out.Features, f)
		}
		// application/json as the contract says for every answer; import
		// also accepts application/geo+json.
		ok(c, http.StatusOK, out)
	}
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
