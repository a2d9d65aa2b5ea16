package api

import (
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
)

type managerKeyRequest struct {
	Label *string `json:"label"`
}

type managerKeyJSON struct {
	ID         string     `json:"id"`
	Label      *string    `json:"label"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

type managerKeyCreated struct {
	ID         string    `json:"id"`
	Label      *string   `json:"label"`
	ManagerKey string    `json:"manager_key"`
	TabletURL  string    `json:"tablet_url"`
	CreatedAt  time.Time `json:"created_at"`
}

func (s *Server) handleCreateManagerKey() gin.HandlerFunc {
	return func(c *gin.Context) {
		k := keyOf(c)
		var req managerKeyRequest
		// The label is optional, and so is the whole body.
		if c.Request.ContentLength != 0 {
			if err := decodeBody(c, limitDefault, &req); err != nil {
				s.fail(c, err)
				return
			}
		}
		if req.Label != nil && (utf8.RuneCountInString(*req.Label) > 100 || !utf8.ValidString(*req.Label)) {
			s.fail(c, hotzone.Invalid("label", "must be at most 100 characters"))
			return
		}
		mk, secret, err := s.db.CreateManagerKey(c, k.BrandID, c.Param("store_id"), req.Label)
		if err != nil {
			s.fail(c, err)
			return
		}
		ok(c, http.StatusCreated, managerKeyCreated{ID: mk.ID, Label: mk.Label, ManagerKey: secret, TabletURL: "/tablet#key=" + secret, CreatedAt: mk.CreatedAt.UTC()})
	}
}

func (s *Server) handleListManagerKeys() gin.HandlerFunc {
	return func(c *gin.Context) {
		pg, err := readPage(c)
		if err != nil {
			s.fail(c, err)
			return
		}
		keys, err := s.db.ManagerKeys(c, keyOf(c).BrandID, c.Param("store_id"))
		if err != nil {
			s.fail(c, err)
			return
		}
		// Keys come oldest first, by id; the cursor is the last id shown.
		for len(keys) > 0 && pg.after != "" && keys[0].ID <= pg.after {
			keys = keys[1:]
		}
		next := ""
		if len(keys) > pg.limit {
			keys = keys[:pg.limit]
			next = encodeCursor(keys[len(keys)-1].ID)
		}
		out := page[managerKeyJSON]{Items: make([]managerKeyJSON, len(keys)), NextCursor: next}
		for i, mk := range keys {
			out.Items[i] = managerKeyJSON{ID: mk.ID, Label: mk.Label, CreatedAt: mk.CreatedAt.UTC()}
			if !mk.LastUsedAt.IsZero() {
				t := mk.LastUsedAt.UTC()
				out.Items[i].LastUsedAt = &t
			}
		}
		ok(c, http.StatusOK, out)
	}
}

func (s *Server) handleDeleteManagerKey() gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.db.DeleteManagerKey(c, keyOf(c).BrandID, c.Param("key_id")); err != nil {
			s.fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}
