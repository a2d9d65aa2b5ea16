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
		// The scheme is case-insensitive (RFC 9110 §11.1).
		h := c.GetHeader("Authorization")
		found := len(h) > len("Bearer ") && strings.EqualFold(h[:len("Bearer ")], "Bearer ")
		var secret string
		if found {
			secret = h[len("Bearer "):]
		}
		k, ok := s.db.Authenticate(strings.TrimSpace(secret))
		if !found || !ok {
			s.fail(c, hotzone.ErrUnauthorized)
			return
		}
		if !slices.Contains(kinds, k.Kind) {
			s.fail(c, hotzone.ErrForbidden)
			return
		}
		if k.Kind == hotzone.KindManager {
			s.db.TouchKey(k)
		}
		c.Set(ctxKey, k)
		c.Next()
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
func (s *Server) storeAccess(k *hotzone.Key, storeID string) (hotzone.Store, error) {
	st, err := s.db.Store(k.BrandID, storeID)
	if err != nil {
		return hotzone.Store{}, err
	}
	if k.Kind == hotzone.KindManager && k.StoreID != storeID {
		return hotzone.Store{}, hotzone.ErrForbidden
	}
	return st, nil
}
