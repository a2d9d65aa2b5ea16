package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
)

// Presets: audiences and message templates an admin saves so the tablet
// can offer them instead of free typing. Their bodies are validated as
// an event's audience and text are, and stored as answered.

type audiencePresetRequest struct {
	Name *string  `json:"name"`
	Any  []string `json:"any"`
	All  []string `json:"all"`
	None []string `json:"none"`
}

// audiencePresetBody is a saved audience as stored and answered (less
// its id and times).
type audiencePresetBody struct {
	Name string   `json:"name"`
	Any  []string `json:"any"`
	All  []string `json:"all"`
	None []string `json:"none"`
}

type templateRequest struct {
	Name      *string                   `json:"name"`
	Title     *string                   `json:"title"`
	Body      *string                   `json:"body"`
	URL       *string                   `json:"url"`
	DurationS *int                      `json:"duration_s"`
	Localized map[string]messageRequest `json:"localized"`
}

// templateBody is a saved template as stored and answered (less its id
// and times).
type templateBody struct {
	Name      string                     `json:"name"`
	Title     string                     `json:"title"`
	Body      string                     `json:"body"`
	URL       *string                    `json:"url"`
	DurationS *int                       `json:"duration_s"`
	Localized map[string]hotzone.Message `json:"localized"`
}

// presetParams maps a kind to its route's path parameter.
var presetParams = map[hotzone.PresetKind]string{hotzone.PresetAudience: "audience_id", hotzone.PresetTemplate: "template_id"}

// presetJSON answers a preset: its id, its body's members, its times.
func presetJSON(p hotzone.Preset) json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(p.Body, &m) // written by us: an object
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	m["id"], _ = json.Marshal(p.ID)
	m["created_at"], _ = json.Marshal(p.CreatedAt.UTC())
	m["updated_at"], _ = json.Marshal(p.UpdatedAt.UTC())
	out, _ := json.Marshal(m)
	return out
}

// validPresetID: 1–128 characters of A-Z a-z 0-9 . _ : - (as device ids).
func validPresetID(id string) bool { return validDeviceID(id) }

// checkPresetBody validates a PUT body of the kind and answers what to
// store.
func checkPresetBody(c *gin.Context, kind hotzone.PresetKind) (json.RawMessage, error) {
	var errs fieldErrors
	var body any
	switch kind {
	case hotzone.PresetAudience:
		var req audiencePresetRequest
		if err := decodeBody(c, limitDefault, &req); err != nil {
			return nil, err
		}
		a := checkAudience(&errs, "", &audienceRequest{Any: req.Any, All: req.All, None: req.None})
		out := audiencePresetBody{Name: checkText(&errs, "name", req.Name, 100), Any: []string{}, All: []string{}, None: []string{}}
		if a != nil {
			out.Any, out.All, out.None = nonNilTags(a.Any), nonNilTags(a.All), nonNilTags(a.None)
		}
		body = out
	default:
		var req templateRequest
		if err := decodeBody(c, limitDefault, &req); err != nil {
			return nil, err
		}
		out := templateBody{Name: checkText(&errs, "name", req.Name, 100), Title: checkText(&errs, "title", req.Title, 100),
			Body: checkText(&errs, "body", req.Body, 500), URL: req.URL, DurationS: req.DurationS, Localized: checkLocalized(&errs, req.Localized)}
		if req.DurationS != nil {
			checkDuration(&errs, *req.DurationS)
		}
		if req.URL != nil {
			if u, err := url.Parse(*req.URL); err != nil || u.Scheme == "" || len(*req.URL) > 2048 || strings.ContainsFunc(*req.URL, isControl) {
				errs.add("url", "must be an absolute URL such as app://store/main-st (at most 2048 characters)")
			}
		}
		body = out
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return json.Marshal(body)
}

func nonNilTags(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) handlePutPreset(kind hotzone.PresetKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param(presetParams[kind])
		if !validPresetID(id) {
			s.fail(c, hotzone.Invalid(presetParams[kind], "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -"))
			return
		}
		body, err := checkPresetBody(c, kind)
		if err != nil {
			s.fail(c, err)
			return
		}
		p, created, err := s.db.PutPreset(c, hotzone.Preset{Kind: kind, BrandID: keyOf(c).BrandID, ID: id, Body: body})
		if err != nil {
			s.fail(c, err)
			return
		}
		status := putStatus(created)
		ok(c, status, presetJSON(p))
	}
}

func (s *Server) handleGetPreset(kind hotzone.PresetKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := s.db.Preset(c, keyOf(c).BrandID, kind, c.Param(presetParams[kind]))
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusOK, presetJSON(p))
	}
}

func (s *Server) handleListPresets(kind hotzone.PresetKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		pg, err := readPage(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		ps, more, err := s.db.Presets(c, keyOf(c).BrandID, kind, hotzone.PageQuery{After: pg.after, Limit: pg.limit})
		if err != nil {
			s.fail(c, err)
			return
		}
		out := page[json.RawMessage]{Items: make([]json.RawMessage, len(ps))}
		for i, p := range ps {
			out.Items[i] = presetJSON(p)
		}
		if more {
			out.NextCursor = encodeCursor(ps[len(ps)-1].ID)
		}
		ok(c, http.StatusOK, out)
	}
}

func (s *Server) handleDeletePreset(kind hotzone.PresetKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.db.DeletePreset(c, keyOf(c).BrandID, kind, c.Param(presetParams[kind])); err != nil {
			s.fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}
