package api

import (
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/hotzone/hotzone"
)

const ctxKey = "hotzone.key"

// requireKey admits only the listed key kinds: 401 for a missing or
// unknown key, 403 for a known key of a kind this route never accepts.
func (s *Server) requireKey(kinds ...hotzone.KeyKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		k, err := s.admit(c, kinds)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Set(ctxKey, k)
		c.Next()
	}
}

// admit authenticates the request: 401 for a missing or unknown key, 403
// for a known key of a kind the route never accepts.
func (s *Server) admit(c *gin.Context, kinds []hotzone.KeyKind) (*hotzone.Key, error) {
	auth := headerValue(c.Request.Header, "Authorization")
	scheme, secret, found := strings.Cut(auth, " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		return nil, hotzone.ErrUnauthorized
	}
	k, err := s.db.Authenticate(c, strings.TrimSpace(secret))
	if err != nil {
		return nil, err
	}
	if !slices.Contains(kinds, k.Kind) {
		return nil, hotzone.ErrForbidden
	}
	if k.Kind == hotzone.KindManager {
		if err := s.db.TouchKey(c, k); err != nil {
			// last_used_at is informational: never fail a request for it.
			s.log.Warn("note a manager key's use", "err", err)
		}
	}
	return k, nil
}

// withKey is requireKey and the handler in one: the hot ping routes get
// the key as an argument instead of through the context's map, which
// costs an allocation per request.
func (s *Server) withKey(h func(*gin.Context, *hotzone.Key), kinds ...hotzone.KeyKind) gin.HandlerFunc {
	return func(c *gin.Context) {
		k, err := s.admit(c, kinds)
		if err != nil {
			s.fail(c, err)
			return
		}
		h(c, k)
	}
}

// keyOf is the key the middleware admitted.
func keyOf(c *gin.Context) *hotzone.Key {
	v, _ := c.Get(ctxKey)
	k, _ := v.(*hotzone.Key)
	return k
}

// storeAccess checks a store-scoped route: an admin reaches any store of
// its brand; a manager only its own (403 for another store of its brand,
// 404 for one that does not exist there, so nothing leaks across brands).
func (s *Server) storeAccess(c *gin.Context, k *hotzone.Key, storeID string) (hotzone.Store, error) {
	st, err := s.db.Store(c, k.BrandID, storeID)
	if err != nil {
		return hotzone.Store{}, err
	}
	if k.Kind == hotzone.KindManager && k.StoreID != storeID {
		return hotzone.Store{}, hotzone.ErrForbidden
	}
	return st, nil
}
