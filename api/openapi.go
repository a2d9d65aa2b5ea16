package api

import (
	"bytes"
	"compress/gzip"
	_ "embed"

	"github.com/gin-gonic/gin"
)

// openAPIDoc is the contract (docs/api.md at the repository root) as an
// OpenAPI 3.1 document, written by hand next to the handlers it
// describes. openapi_test.go holds it to the router (every route
// documented, every documented route served) and to what the handlers
// really answer; docs_test.go holds docs/api.md to it.
//
//go:embed openapi.json
var openAPIDoc []byte

// handleOpenAPI serves GET /openapi.json as application/json. Like the
// pages it is revalidated on every load (no-cache with an ETag), so a
// new build's document is seen at once; gzip when the client takes it.
func (s *Server) handleOpenAPI() gin.HandlerFunc {
	a := newAsset(openAPIDoc, "application/json")
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(openAPIDoc)
	_ = zw.Close()
	a.gz = buf.Bytes()
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		serveAsset(c, a)
	}
}
