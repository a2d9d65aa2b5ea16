package api

import (
	"net/http"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

var storeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// validID checks an id against its pattern; "." and ".." match the
// contract's character sets but HTTP clients rewrite them as path
// segments, so such a resource could never be reached again.
func validID(pattern *regexp.Regexp, id string) bool {
	return id != "." && id != ".." && pattern.MatchString(id)
}

type circleJSON struct {
	Lat     *float64 `json:"lat"`
	Lon     *float64 `json:"lon"`
	RadiusM *float64 `json:"radius_m"`
}

type fenceJSON struct {
	Circle  *circleJSON    `json:"circle"`
	Polygon jsontext.Value `json:"polygon"`
}

type storeRequest struct {
	Name     *string    `json:"name"`
	Timezone *string    `json:"timezone"`
	Tags     []string   `json:"tags"`
	Fence    *fenceJSON `json:"fence"`
	// Visit is the store's visit area; absent or null takes the
	// default (see hotzone.Store.VisitArea).
	Visit *fenceJSON `json:"visit"`
}

// storeJSON is a store as answered.
type storeJSON struct {
	ID        string             `json:"id"`
	Name      string             `json:"name"`
	Timezone  string             `json:"timezone"`
	Tags      []string           `json:"tags"`
	Fence     hotzone.FenceSpec  `json:"fence"`
	Visit     *hotzone.FenceSpec `json:"visit"`
	BBox      [4]float64         `json:"bbox"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
}

func toStoreJSON(st hotzone.Store) storeJSON {
	return storeJSON{ID: st.ID, Name: st.Name, Timezone: st.Timezone, Tags: st.Tags, Fence: st.Spec, Visit: st.Visit, BBox: st.BBox,
		CreatedAt: st.CreatedAt.UTC(), UpdatedAt: st.UpdatedAt.UTC()}
}

// checkFence validates a fence object; prefix is its JSON path.
func checkFence(errs *fieldErrors, prefix string, f *fenceJSON) (hotzone.FenceSpec, *geo.Fence) {
	if f == nil {
		errs.add(prefix, "required")
		return hotzone.FenceSpec{}, nil
	}
	hasPoly := len(f.Polygon) > 0 && f.Polygon.Kind() != 'n'
	switch {
	case f.Circle != nil && hasPoly:
		errs.add(prefix, "give either circle or polygon, not both")
	case f.Circle != nil:
		c := f.Circle
		p := prefix + ".circle."
		if c.Lat == nil {
			errs.add(p+"lat", "required")
		}
		if c.Lon == nil {
			errs.add(p+"lon", "required")
		}
		if c.RadiusM == nil {
			errs.add(p+"radius_m", "required")
		}
		if c.Lat == nil || c.Lon == nil || c.RadiusM == nil {
			return hotzone.FenceSpec{}, nil
		}
		return checkCircle(errs, p, *c.Lat, *c.Lon, *c.RadiusM)
	case hasPoly:
		return checkPolygon(errs, prefix+".polygon", f.Polygon)
	default:
		errs.add(prefix, "must have a circle or a polygon")
	}
	return hotzone.FenceSpec{}, nil
}

// checkVisit validates a store's optional visit area: a fence's shapes
// and rules, nil when absent or null.
func checkVisit(errs *fieldErrors, prefix string, f *fenceJSON) *hotzone.FenceSpec {
	if f == nil {
		return nil
	}
	spec, fence := checkFence(errs, prefix, f)
	if fence == nil {
		return nil
	}
	return &spec
}

func checkCircle(errs *fieldErrors, prefix string, lat, lon, radius float64) (hotzone.FenceSpec, *geo.Fence) {
	circle, ferrs := geo.ParseCircle(lat, lon, radius)
	for _, e := range ferrs {
		errs.add(prefix+e.Field, e.Message)
	}
	if circle == nil || len(ferrs) > 0 {
		return hotzone.FenceSpec{}, nil
	}
	return hotzone.FenceSpec{Circle: &hotzone.Circle{Lat: lat, Lon: lon, RadiusM: radius}}, &geo.Fence{Circle: circle}
}

func checkPolygon(errs *fieldErrors, prefix string, raw []byte) (hotzone.FenceSpec, *geo.Fence) {
	poly, canon, ferrs := geo.ParsePolygon(raw)
	for _, e := range ferrs {
		errs.add(joinPath(prefix, e.Field), e.Message)
	}
	if poly == nil || len(ferrs) > 0 {
		return hotzone.FenceSpec{}, nil
	}
	return hotzone.FenceSpec{Polygon: canon}, &geo.Fence{Polygon: poly}
}

// checkStoreFields validates what PUT and import share.
func (s *Server) checkStoreFields(errs *fieldErrors, prefix string, name, tz *string, tags []string) (string, string, []string) {
	n := checkName(errs, prefix+"name", name, 200)
	zone := "UTC"
	if tz != nil {
		zone = *tz
		if _, err := s.location(zone); err != nil {
			errs.add(prefix+"timezone", "must be an IANA time zone name such as America/New_York")
		}
	}
	if len(tags) > 20 {
		errs.add(prefix+"tags", "at most 20 tags")
	}
	out := make([]string, 0, len(tags))
	for i, t := range tags {
		if l := utf8.RuneCountInString(t); l < 1 || l > 64 {
			errs.add(prefix+"tags["+strconv.Itoa(i)+"]", "must be 1 to 64 characters")
		}
		out = append(out, t)
	}
	return n, zone, out
}

// location loads an IANA zone once; "Local" is refused because it means
// the server's zone, which is nobody's.
func (s *Server) location(name string) (*time.Location, error) {
	if v, ok := s.tzCache.Load(name); ok {
		return v.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, errBadZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	s.tzCache.Store(name, loc)
	return loc, nil
}

var errBadZone = hotzone.Invalid("timezone", "unknown time zone")

func (s *Server) handlePutStore() gin.HandlerFunc {
	return func(c *gin.Context) {
		k := keyOf(c)
		id := c.Param("store_id")
		var req storeRequest
		if err := decodeBody(c, limitDefault, &req); err != nil {
			s.fail(c, err)
			return
		}
		var errs fieldErrors
		if !validID(storeIDPattern, id) {
			errs.add("store_id", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
		}
		name, tz, tags := s.checkStoreFields(&errs, "", req.Name, req.Timezone, req.Tags)
		spec, fence := checkFence(&errs, "fence", req.Fence)
		visit := checkVisit(&errs, "visit", req.Visit)
		if err := errs.err(); err != nil {
			s.fail(c, err)
			return
		}
		st, created, err := s.db.PutStore(c, hotzone.Store{ID: id, BrandID: k.BrandID, Name: name, Timezone: tz, Tags: tags, Spec: spec, Fence: fence, Visit: visit})
		if err != nil {
			s.fail(c, err)
			return
		}
		status := putStatus(created)
		ok(c, status, toStoreJSON(st))
	}
}

func (s *Server) handleGetStore() gin.HandlerFunc {
	return func(c *gin.Context) {
		st, err := s.storeAccess(c, keyOf(c), c.Param("store_id"))
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusOK, toStoreJSON(st))
	}
}

func (s *Server) handleDeleteStore() gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.engine.DeleteStore(c, keyOf(c).BrandID, c.Param("store_id")); err != nil {
			s.fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func (s *Server) handleListStores() gin.HandlerFunc {
	return func(c *gin.Context) {
		pg, err := readPage(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		sts, more, err := s.db.Stores(c, keyOf(c).BrandID, hotzone.StoreQuery{Tag: c.Query("tag"), After: pg.after, Limit: pg.limit})
		if err != nil {
			s.fail(c, err)
			return
		}
		out := page[storeJSON]{Items: make([]storeJSON, len(sts))}
		for i, st := range sts {
			out.Items[i] = toStoreJSON(st)
		}
		if more {
			out.NextCursor = encodeCursor(sts[len(sts)-1].ID)
		}
		ok(c, http.StatusOK, out)
	}
}
