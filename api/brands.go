package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
)

func (s *Server) handleHealthz() gin.HandlerFunc {
	return func(c *gin.Context) { ok(c, http.StatusOK, map[string]string{"status": "ok"}) }
}

// handleReadyz answers 200 when the database answers and the process says
// it is ready (indexes loaded, dispatcher running, not shutting down).
func (s *Server) handleReadyz() gin.HandlerFunc {
	return func(c *gin.Context) {
		err := s.db.Ping(c)
		if err == nil && s.ready != nil {
			err = s.ready()
		}
		if err != nil {
			s.fail(c, newHTTPError(http.StatusServiceUnavailable, "not ready: "+err.Error()))
			return
		}
		ok(c, http.StatusOK, map[string]string{"status": "ready"})
	}
}

type brandRequest struct {
	Name *string `json:"name"`
}

type brandCreated struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	AdminKey string `json:"admin_key"`
	AppKey   string `json:"app_key"`
}

func (s *Server) handleCreateBrand() gin.HandlerFunc {
	return func(c *gin.Context) {
		var req brandRequest
		if err := decodeBody(c, limitDefault, &req); err != nil {
			s.fail(c, err)
			return
		}
		var errs fieldErrors
		name := checkName(&errs, "name", req.Name, 200)
		if err := errs.err(); err != nil {
			s.fail(c, err)
			return
		}
		br, adminKey, appKey, err := s.db.CreateBrand(c, name)
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusCreated, brandCreated{ID: br.ID, Name: br.Name, AdminKey: adminKey, AppKey: appKey})
	}
}

// checkName validates a required display name of 1..max characters.
func checkName(errs *fieldErrors, field string, v *string, maxLen int) string {
	if v == nil {
		errs.add(field, "required")
		return ""
	}
	n := utf8.RuneCountInString(*v)
	switch {
	case strings.TrimSpace(*v) == "":
		errs.add(field, "must not be empty")
	case n > maxLen:
		errs.add(field, "must be at most "+strconv.Itoa(maxLen)+" characters")
	case strings.ContainsFunc(*v, isControl):
		errs.add(field, "must not contain control characters")
	}
	return *v
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

type brandRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type meResponse struct {
	Kind      hotzone.KeyKind `json:"kind"`
	Brand     *brandRef       `json:"brand"`
	Store     *storeJSON      `json:"store,omitzero"`
	LiveEvent **eventJSON     `json:"live_event,omitzero"`
}

func (s *Server) handleMe() gin.HandlerFunc {
	return func(c *gin.Context) {
		k := keyOf(c)
		resp := meResponse{Kind: k.Kind}
		if k.BrandID != "" {
			br, err := s.db.Brand(c, k.BrandID)
			if err != nil {
				s.fail(c, err)
				return
			}
			resp.Brand = &brandRef{ID: br.ID, Name: br.Name}
		}
		if k.Kind == hotzone.KindManager {
			st, err := s.db.Store(c, k.BrandID, k.StoreID)
			if err != nil {
				s.fail(c, err)
				return
			}
			sj := toStoreJSON(st)
			resp.Store = &sj
			var live *eventJSON // null when none is live
			ev, counts, err := s.db.LiveEvent(c, k.BrandID, k.StoreID)
			switch {
			case err == nil:
				e := toEventJSON(ev, counts)
				live = &e
			case !errors.Is(err, hotzone.ErrNotFound):
				s.fail(c, err)
				return
			}
			resp.LiveEvent = &live
		}
		ok(c, http.StatusOK, resp)
	}
}
