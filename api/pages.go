package api

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
)

// The pages are plain HTML, CSS and JavaScript modules embedded in the
// binary: no build step, no CDN. They talk to the public API only, with
// the same keys as any client, so they can do nothing a curl user
// cannot.
//
//go:embed web
var webFiles embed.FS

// assetPlaceholder is how the HTML sources name the asset prefix. It is
// replaced by /assets/<version>/ when the pages are loaded, so assets
// can be cached forever: a new build has a new version and new URLs.
const assetPlaceholder = "/assets/_/"

// Page names, served at /<name> from web/<name>.html.
const (
	pageTablet = "tablet"
	pageAdmin  = "admin"
)

// pageCSP is each page's Content-Security-Policy. No inline script or
// style anywhere; data is fetched from this origin only. The admin map
// loads tiles from a host the admin configures, hence https: images.
// form-action 'none': the forms are handled by script, and if the script
// ever fails to load, a browser's native submit cannot put a key in a
// query string.
var pageCSP = map[string]string{
	pageTablet: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	pageAdmin: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}

// assetCSP covers an asset opened on its own (an SVG, say): it may run
// nothing.
const assetCSP = "default-src 'none'; sandbox"

// assetTypes are the file kinds served; anything else under web/ (notes
// for maintainers) is not.
var assetTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".png":  "image/png",
	".svg":  "image/svg+xml",
	".html": "text/html; charset=utf-8",
	"":      "text/plain; charset=utf-8", // LICENSE files
}

// asset is one file ready to serve.
type asset struct {
	body        []byte
	gz          []byte // nil when compressing does not pay
	contentType string
	etag        string
}

// webAssets is everything under web/, loaded once.
type webAssets struct {
	version string            // of all assets together
	files   map[string]*asset // by path under web/, e.g. "js/tablet.js"
	pages   map[string]*asset // by page name
}

// loadWeb reads the embedded files once; the result never changes.
var loadWeb = sync.OnceValues(func() (*webAssets, error) { return loadAssets(webFiles, "web") })

// mustWeb is loadWeb for route registration: the files are compiled in,
// so an error is a build defect that the tests catch, like a bad regexp.
func mustWeb() *webAssets {
	w, err := loadWeb()
	if err != nil {
		panic(err)
	}
	return w
}

func loadAssets(fsys fs.FS, root string) (*webAssets, error) {
	w := &webAssets{files: map[string]*asset{}, pages: map[string]*asset{}}
	html := map[string][]byte{}
	sum := sha256.New()
	var names []string
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("api: web assets: %w", err)
	}
	sort.Strings(names)
	for _, p := range names {
		rel := strings.TrimPrefix(p, root+"/")
		ext := path.Ext(rel)
		ctype, ok := assetTypes[ext]
		if !ok || (ext == "" && !strings.HasPrefix(path.Base(rel), "LICENSE")) {
			continue
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("api: web assets: %w", err)
		}
		if ext == ".html" {
			html[strings.TrimSuffix(rel, ".html")] = body
			continue
		}
		fmt.Fprintf(sum, "%s\x00%d\x00", rel, len(body))
		sum.Write(body)
		w.files[rel] = newAsset(body, ctype)
	}
	w.version = hex.EncodeToString(sum.Sum(nil))[:12]
	for _, name := range []string{pageTablet, pageAdmin} {
		src, ok := html[name]
		if !ok {
			return nil, fmt.Errorf("api: web assets: no %s.html", name)
		}
		if !bytes.Contains(src, []byte(assetPlaceholder)) {
			return nil, fmt.Errorf("api: web assets: %s.html does not use %s", name, assetPlaceholder)
		}
		page := bytes.ReplaceAll(src, []byte(assetPlaceholder), []byte("/assets/"+w.version+"/"))
		w.pages[name] = newAsset(page, assetTypes[".html"])
	}
	if len(w.files) == 0 {
		return nil, errors.New("api: web assets: none embedded")
	}
	return w, nil
}

func newAsset(body []byte, ctype string) *asset {
	h := sha256.Sum256(body)
	a := &asset{body: body, contentType: ctype, etag: `"` + hex.EncodeToString(h[:8]) + `"`}
	if strings.HasPrefix(ctype, "text/") || ctype == "image/svg+xml" {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if buf.Len() < len(body)*9/10 {
			a.gz = buf.Bytes()
		}
	}
	return a
}

// handlePage serves one page. The HTML is revalidated on every load
// (no-cache with an ETag) so a new build's asset URLs are seen at once.
func (s *Server) handlePage(name string) gin.HandlerFunc {
	a := mustWeb().pages[name]
	csp := pageCSP[name]
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Cache-Control", "no-cache")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		serveAsset(c, a)
	}
}

// rootLinks is what GET / answers a client that is not a browser.
type rootLinks struct {
	AdminPage  string `json:"admin_page"`
	TabletPage string `json:"tablet_page"`
	OpenAPI    string `json:"openapi"`
}

// handleRoot sends a browser that opens the server's bare address to the
// admin page (a #key=… fragment travels along, as browsers keep it
// across a redirect without one), and tells any other client where the
// pages and the contract are.
func (s *Server) handleRoot() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Vary", "Accept")
		c.Header("Cache-Control", "no-cache")
		if acceptsHTML(c.GetHeader("Accept")) {
			c.Header("Location", "/"+pageAdmin)
			c.Status(http.StatusFound)
			return
		}
		ok(c, http.StatusOK, rootLinks{AdminPage: "/" + pageAdmin, TabletPage: "/" + pageTablet, OpenAPI: "/openapi.json"})
	}
}

// acceptsHTML tells a browser's navigation (Accept: text/html, …) from
// an API client's request (curl's */*, or JSON).
func acceptsHTML(header string) bool { return accepts(header, "text/html") }

// handleAsset serves /assets/<version>/<path>. Only the current version
// exists; its files never change, so they are cached for a year.
func (s *Server) handleAsset() gin.HandlerFunc {
	w := mustWeb()
	return func(c *gin.Context) {
		a := w.files[strings.TrimPrefix(c.Param("path"), "/")]
		if a == nil || c.Param("version") != w.version {
			s.fail(c, newHTTPError(http.StatusNotFound, "no such asset"))
			return
		}
		h := c.Writer.Header()
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Set("Content-Security-Policy", assetCSP)
		serveAsset(c, a)
	}
}

// serveAsset writes a with its type and ETag, gzip-compressed when the
// client takes it, or 304 when the client has it already.
func serveAsset(c *gin.Context, a *asset) {
	h := c.Writer.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", a.etag)
	if a.gz != nil {
		h.Set("Vary", "Accept-Encoding")
	}
	if etagMatch(c.GetHeader("If-None-Match"), a.etag) {
		c.Status(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gz != nil && acceptsGzip(c.GetHeader("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	c.Data(http.StatusOK, a.contentType, body)
}

// etagMatch reports whether an If-None-Match header names etag (weak
// comparison, RFC 9110 §13.1.2).
func etagMatch(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reads Accept-Encoding enough to honour "gzip;q=0".
func acceptsGzip(header string) bool { return accepts(header, "gzip") }

// accepts reads an Accept or Accept-Encoding header enough to tell
// whether it names name with a weight other than 0.
func accepts(header, name string) bool {
	for t := range strings.SplitSeq(header, ",") {
		n, params, _ := strings.Cut(strings.TrimSpace(t), ";")
		if !strings.EqualFold(strings.TrimSpace(n), name) {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
