package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/hotzone/hotzone"
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
			stores = make([]hotzone.Store, 0, len(fc.Features))
			seen   = make(map[string]int, len(fc.Features))
		)
		for i, raw := range fc.Features {
			prefix := "features[" + strconv.Itoa(i) + "]"
			st, ferr := s.importFeature(prefix, raw)
			if ferr == nil {
				if j, dup := seen[st.ID]; dup {
					ferr = &hotzone.FieldError{Field: prefix + ".properties.id", Message: "duplicates the id of features[" + strconv.Itoa(j) + "]"}
				}
			}
			if ferr != nil {
				errs = append(errs, *ferr)
				continue
			}
			seen[st.ID] = i
			st.BrandID = k.BrandID
			stores = append(stores, st)
		}
		if len(errs) > 0 {
			s.fail(c, &hotzone.ValidationError{Detail: strconv.Itoa(len(errs)) + " of " + strconv.Itoa(len(fc.Features)) + " features are not valid; nothing was imported", Errors: errs})
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

// importFeature validates one feature; it answers the first problem only,
// since the contract asks for one error entry per bad feature.
func (s *Server) importFeature(prefix string, raw jsontext.Value) (hotzone.Store, *hotzone.FieldError) {
	first := func(errs fieldErrors) *hotzone.FieldError {
		if len(errs) == 0 {
			return nil
		}
		return &errs[0]
	}
	var f featureIn
	if err := decodeJSON(raw, prefix, &f); err != nil {
		var ve *hotzone.ValidationError
		if errors.As(err, &ve) && len(ve.Errors) > 0 {
			return hotzone.Store{}, &ve.Errors[0]
		}
		return hotzone.Store{}, &hotzone.FieldError{Field: prefix, Message: "must be a GeoJSON Feature"}
	}
	var errs fieldErrors
	if f.Type == nil || *f.Type != "Feature" {
		errs.add(prefix+".type", `must be "Feature"`)
		return hotzone.Store{}, first(errs)
	}
	if k := f.ID.Kind(); len(f.ID) > 0 && k != '"' && k != '0' && k != 'n' {
		errs.add(prefix+".id", "must be a string or a number (RFC 7946 §3.2)")
		return hotzone.Store{}, first(errs)
	}
	p := f.Properties
	if p == nil {
		errs.add(prefix+".properties", "required")
		return hotzone.Store{}, first(errs)
	}
	id := ""
	switch {
	case p.ID == nil:
		errs.add(prefix+".properties.id", "required")
	case !validID(storeIDPattern, *p.ID):
		errs.add(prefix+".properties.id", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	default:
		id = *p.ID
	}
	name, tz, tags := s.checkStoreFields(&errs, prefix+".properties.", p.Name, p.Timezone, p.Tags)
	if len(errs) > 0 {
		return hotzone.Store{}, first(errs)
	}
	gfield := prefix + ".geometry"
	if len(f.Geometry) == 0 || f.Geometry.Kind() == 'n' {
		errs.add(gfield, "required")
		return hotzone.Store{}, first(errs)
	}
	var head geometryHead
	// The head is read leniently (other members are checked by the full
	// parser below); only its type decides the path.
	if err := decodeHead(f.Geometry, &head); err != nil {
		errs.add(gfield, "must be a GeoJSON geometry object")
		return hotzone.Store{}, first(errs)
	}
	var st hotzone.Store
	switch head.Type {
	case "Point":
		// No parser reads a Point after this, so read all of it strictly
		// here: unknown or case-variant members and a malformed bbox are
		// 400, as everywhere else.
		var pt pointIn
		if err := decodeJSON(f.Geometry, gfield, &pt); err != nil {
			var ve *hotzone.ValidationError
			if errors.As(err, &ve) && len(ve.Errors) > 0 {
				return hotzone.Store{}, &ve.Errors[0]
			}
			errs.add(gfield, "must be a GeoJSON Point")
			return hotzone.Store{}, first(errs)
		}
		var coords []float64
		if err := decodeJSON(pt.Coordinates, gfield+".coordinates", &coords); err != nil || len(coords) != 2 {
			errs.add(gfield+".coordinates", "must be [lon, lat]")
			return hotzone.Store{}, first(errs)
		}
		if p.RadiusM == nil {
			errs.add(prefix+".properties.radius_m", "required for a Point feature")
			return hotzone.Store{}, first(errs)
		}
		spec, fence := checkCircle(&errs, prefix+".", coords[1], coords[0], *p.RadiusM)
		if len(errs) > 0 {
			// ParseCircle names lat/lon/radius_m; point at the GeoJSON
			// members the user actually wrote.
			e := errs[0]
			switch e.Field {
			case prefix + ".lat", prefix + ".lon":
				e.Field = gfield + ".coordinates"
			case prefix + ".radius_m":
				e.Field = prefix + ".properties.radius_m"
			}
			return hotzone.Store{}, &e
		}
		st.Spec, st.Fence = spec, fence
	case "Polygon", "MultiPolygon":
		if p.RadiusM != nil {
			errs.add(prefix+".properties.radius_m", "only a Point feature has a radius")
			return hotzone.Store{}, first(errs)
		}
		spec, fence := checkPolygon(&errs, gfield, f.Geometry)
		if len(errs) > 0 {
			return hotzone.Store{}, first(errs)
		}
		st.Spec, st.Fence = spec, fence
	default:
		errs.add(gfield, "must be a Point (with properties.radius_m), Polygon or MultiPolygon")
		return hotzone.Store{}, first(errs)
	}
	st.ID, st.Name, st.Timezone, st.Tags = id, name, tz, tags
	return st, nil
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
