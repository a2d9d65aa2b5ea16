package api

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

// These tests check how the pages are served; pages_browser_test.go
// drives them in Chromium.

var (
	tagPattern    = regexp.MustCompile(`<[a-zA-Z][^>]*>`)
	assetRef      = regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`)
	moduleImport  = regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"](\.{1,2}/[^'"]+)['"]`)
	cssURL        = regexp.MustCompile(`url\((?:'|")?([^'")]+)(?:'|")?\)`)
	inlineHandler = regexp.MustCompile(`\son[a-z]+\s*=`)
)

func TestPagesServed(t *testing.T) {
	e := newEnv(t, Options{})
	w := mustWeb()
	for _, page := range []string{"/tablet", "/admin"} {
		t.Run(page, func(t *testing.T) {
			r := e.do("GET", page, "", nil)
			if r.Code != 200 {
				t.Fatalf("GET %s = %d", page, r.Code)
			}
			for h, want := range map[string]string{
				"Content-Type":           "text/html; charset=utf-8",
				"Cache-Control":          "no-cache",
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
				"X-Frame-Options":        "DENY",
			} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
			csp := r.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe") {
				t.Errorf("CSP %q allows unsafe sources", csp)
			}
			html := string(r.Body)
			if strings.Contains(html, assetPlaceholder) || !strings.Contains(html, "/assets/"+w.version+"/") {
				t.Errorf("asset URLs not versioned with %s", w.version)
			}
			// The CSP forbids inline code and style; so does the source.
			for _, tag := range tagPattern.FindAllString(html, -1) {
				if strings.HasPrefix(tag, "<script") && !strings.Contains(tag, " src=") {
					t.Errorf("inline script: %s", tag)
				}
				if strings.Contains(tag, " style=") || inlineHandler.MatchString(tag) {
					t.Errorf("inline style or handler: %s", tag)
				}
			}
			if strings.Contains(html, "<style") {
				t.Error("inline <style> element")
			}
			// Every asset the page names is served with its type.
			refs := assetRef.FindAllStringSubmatch(html, -1)
			if len(refs) < 3 {
				t.Fatalf("page names %d assets", len(refs))
			}
			for _, m := range refs {
				a := e.do("GET", m[1], "", nil)
				if a.Code != 200 {
					t.Errorf("GET %s = %d", m[1], a.Code)
					continue
				}
				want := assetTypes[path.Ext(m[1])]
				if got := a.Header.Get("Content-Type"); got != want {
					t.Errorf("GET %s Content-Type = %q, want %q", m[1], got, want)
				}
				if got := a.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
					t.Errorf("GET %s Cache-Control = %q", m[1], got)
				}
			}
		})
	}
}

// TestPageReferencesResolve: every module import and CSS url() of the
// embedded files names a file that is served, so no page 404s at run
// time on a path the browser tests happen not to load.
func TestPageReferencesResolve(t *testing.T) {
	w := mustWeb()
	checked := 0
	for name, a := range w.files {
		var refs [][]string
		switch path.Ext(name) {
		case ".js", ".mjs":
			refs = moduleImport.FindAllStringSubmatch(string(a.body), -1)
		case ".css":
			refs = cssURL.FindAllStringSubmatch(string(a.body), -1)
		}
		for _, m := range refs {
			ref := m[1]
			if strings.HasPrefix(ref, "data:") || strings.HasPrefix(ref, "#") {
				continue
			}
			target := path.Join(path.Dir(name), ref)
			if w.files[target] == nil {
				t.Errorf("%s refers to %s (%s), which is not served", name, ref, target)
			}
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("only %d references found; is the pattern still right?", checked)
	}
}

// TestPageScriptsWriteNoHTML: server strings reach the DOM as text only.
// Vendored libraries are exempt (Leaflet builds its own controls).
func TestPageScriptsWriteNoHTML(t *testing.T) {
	err := fs.WalkDir(webFiles, "web/js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := fs.ReadFile(webFiles, p)
		if err != nil {
			return err
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			if bytes.Contains(src, []byte(bad)) {
				t.Errorf("%s uses %s", p, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPageAssetErrors(t *testing.T) {
	e := newEnv(t, Options{})
	w := mustWeb()
	v := "/assets/" + w.version
	tests := []struct {
		name string
		path string
		want int
	}{
		{"script", v + "/js/tablet.js", 200},
		{"vendored", v + "/vendor/leaflet/leaflet.js", 200},
		{"license", v + "/vendor/leaflet/LICENSE", 200},
		{"unknown file", v + "/js/nope.js", 404},
		{"old version", "/assets/000000000000/js/tablet.js", 404},
		{"not an asset kind", v + "/vendor/README.md", 404},
		{"a page is not an asset", v + "/tablet.html", 404},
		{"directory", v + "/js/", 404},
		{"escape", v + "/../pages.go", 404},
		{"no version", "/assets/js/tablet.js", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("GET", tt.path, "", nil)
			if r.Code != tt.want {
				t.Fatalf("GET %s = %d, want %d", tt.path, r.Code, tt.want)
			}
			if tt.want == 404 {
				if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("404 Content-Type = %q, want application/problem+json", ct)
				}
				if p := r.json(t); p["status"] != 404.0 {
					t.Errorf("problem = %v", p)
				}
			}
		})
	}
	if r := e.do("POST", "/tablet", "", nil); r.Code != 405 {
		t.Errorf("POST /tablet = %d, want 405", r.Code)
	}
}

func TestPageAssetCaching(t *testing.T) {
	e := newEnv(t, Options{})
	p := "/assets/" + mustWeb().version + "/vendor/leaflet/leaflet.js"
	plain := e.do("GET", p, "", nil)
	etag := plain.Header.Get("ETag")
	if etag == "" || plain.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("ETag %q, Vary %q", etag, plain.Header.Get("Vary"))
	}
	if r := e.doWithHeaders("GET", p, map[string]string{"If-None-Match": etag}); r.Code != 304 || len(r.Body) != 0 {
		t.Errorf("If-None-Match: %s = %d with %d bytes, want 304 and none", etag, r.Code, len(r.Body))
	}
	if r := e.doWithHeaders("GET", "/tablet", map[string]string{"If-None-Match": `W/"x", ` + e.do("GET", "/tablet", "", nil).Header.Get("ETag")}); r.Code != 304 {
		t.Errorf("page revalidation = %d, want 304", r.Code)
	}
	gz := e.doWithHeaders("GET", p, map[string]string{"Accept-Encoding": "br, gzip"})
	if gz.Header.Get("Content-Encoding") != "gzip" || len(gz.Body) >= len(plain.Body)/2 {
		t.Fatalf("gzip: Content-Encoding %q, %d bytes of %d", gz.Header.Get("Content-Encoding"), len(gz.Body), len(plain.Body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.Body))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(body, plain.Body) {
		t.Errorf("gzip body differs from the plain one (err %v)", err)
	}
	if r := e.doWithHeaders("GET", p, map[string]string{"Accept-Encoding": "gzip;q=0"}); r.Header.Get("Content-Encoding") != "" {
		t.Error("gzip sent to a client that refused it")
	}
	png := e.doWithHeaders("GET", "/assets/"+mustWeb().version+"/vendor/leaflet/images/marker-icon.png", map[string]string{"Accept-Encoding": "gzip"})
	if png.Code != 200 || png.Header.Get("Content-Encoding") != "" || png.Header.Get("Content-Type") != "image/png" {
		t.Errorf("png = %d, %q, %q; want 200 image/png uncompressed", png.Code, png.Header.Get("Content-Encoding"), png.Header.Get("Content-Type"))
	}
}

func TestPageETagMatch(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`"x", "abc"`, true},
		{`*`, true},
		{`"abcd"`, false},
		{``, false},
	}
	for _, tt := range tests {
		if got := etagMatch(tt.header, `"abc"`); got != tt.want {
			t.Errorf("etagMatch(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestPageAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"gzip", true},
		{"gzip, deflate, br", true},
		{"GZIP;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.0", false},
		{"br", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := acceptsGzip(tt.header); got != tt.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

// doWithHeaders is do (no key, no body) with request headers.
func (e *env) doWithHeaders(method, p string, headers map[string]string) response {
	e.t.Helper()
	req := httptest.NewRequest(method, p, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// TestRoot: GET / sends a browser to the admin page, without a body (a
// #key= fragment survives such a redirect), and tells any other client
// where the pages and the contract are.
func TestRoot(t *testing.T) {
	e := newEnv(t, Options{})
	d := loadOpenAPI(t)
	for _, tt := range []struct {
		accept   string
		want     int
		location string
	}{
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 302, "/admin"},
		{"TEXT/HTML", 302, "/admin"},
		{"", 200, ""},
		{"*/*", 200, ""},
		{"application/json", 200, ""},
		{"text/html;q=0, application/json", 200, ""},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		if tt.accept != "" {
			req.Header.Set("Accept", tt.accept)
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		r := response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
		if r.Code != tt.want || r.Header.Get("Location") != tt.location {
			t.Errorf("GET / with Accept %q = %d to %q, want %d to %q", tt.accept, r.Code, r.Header.Get("Location"), tt.want, tt.location)
			continue
		}
		d.checkResponse("GET / with Accept "+tt.accept, d.op("getRoot"), r)
		if tt.want == 200 && !jsonEqual(t, r.Body, []byte(`{"admin_page":"/admin","tablet_page":"/tablet","openapi":"/openapi.json"}`)) {
			t.Errorf("GET / = %s, want the pages and the contract", r.Body)
		}
	}
	e.must(405, "POST", "/", "", nil)
}
