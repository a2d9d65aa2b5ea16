package api

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/hotzone/hotzone"
)

// openAPIUndocumented are the route prefixes the document leaves out on
// purpose, and the only ones. /assets/{version}/{path...} serves the
// pages' own scripts and styles: a catch-all OpenAPI cannot express, under
// URLs that change with every build, of use to no client but the pages.
var openAPIUndocumented = []string{"/assets/"}

// openAPISchemes maps the document's security schemes to the key kinds
// the router checks.
var openAPISchemes = map[string]hotzone.KeyKind{
	"operatorKey": hotzone.KindOperator,
	"adminKey":    hotzone.KindAdmin,
	"appKey":      hotzone.KindApp,
	"managerKey":  hotzone.KindManager,
}

var openAPIKinds = []hotzone.KeyKind{hotzone.KindOperator, hotzone.KindAdmin, hotzone.KindApp, hotzone.KindManager}

// openAPIMethods are the operation members of a Path Item Object.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openAPIOptions builds the router as `hotzone serve` does, with every
// optional route (GET /metrics), so the tests see all of them.
func openAPIOptions(now func() time.Time) Options {
	reg := prometheus.NewRegistry()
	// Private addresses allowed: the webhook example's name is never
	// looked up (no DNS in tests).
	return Options{Now: now, Metrics: NewMetrics(reg), MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		WebhookAllowPrivate: true}
}

// openAPIBase is where the tests load the document as a JSON Schema
// resource, so that "#/components/schemas/..." references resolve.
const openAPIBase = "https://hotzone.dev/openapi.json"

// openAPI is the embedded document, parsed, with a JSON Schema compiler
// (draft 2020-12, formats asserted) over it.
type openAPI struct {
	t    *testing.T
	root map[string]any
	c    *jsonschema.Compiler
	sch  map[string]*jsonschema.Schema
}

// openAPIOp is one operation of the document.
type openAPIOp struct {
	method, path, id string
	ptr              string // JSON pointer of the Operation Object
	op               map[string]any
	params           []map[string]any // resolved: the path item's, then the operation's
	paramPtrs        []string         // where each of params is written
}

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPIDoc))
	if err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	root, ok := doc.(map[string]any)
	if !ok {
		t.Fatalf("openapi.json is %T, want an object", doc)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(openAPIBase, doc); err != nil {
		t.Fatalf("openapi.json as a schema resource: %v", err)
	}
	return &openAPI{t: t, root: root, c: c, sch: map[string]*jsonschema.Schema{}}
}

// pointerToken escapes one JSON Pointer token (RFC 6901).
func pointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// at is the value at a JSON pointer ("/components/schemas/Store"), or nil.
func (d *openAPI) at(ptr string) any {
	var v any = d.root
	if ptr == "" {
		return v
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := v.(type) {
		case map[string]any:
			v = n[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return nil
			}
			v = n[i]
		default:
			return nil
		}
		if v == nil {
			return nil
		}
	}
	return v
}

// follow resolves a Reference Object at ptr to the pointer of its
// target (repeatedly); anything else is returned as is.
func (d *openAPI) follow(ptr string) string {
	for range 10 {
		m, _ := d.at(ptr).(map[string]any)
		ref, ok := m["$ref"].(string)
		if !ok {
			return ptr
		}
		ptr = strings.TrimPrefix(ref, "#")
	}
	d.t.Fatalf("reference loop at %s", ptr)
	return ""
}

func (d *openAPI) object(ptr string) map[string]any {
	m, _ := d.at(d.follow(ptr)).(map[string]any)
	return m
}

// schema compiles the schema at ptr (once).
func (d *openAPI) schema(ptr string) (*jsonschema.Schema, error) {
	if s, ok := d.sch[ptr]; ok {
		return s, nil
	}
	var frag strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		frag.WriteString("/" + url.PathEscape(tok))
	}
	s, err := d.c.Compile(openAPIBase + "#" + frag.String())
	if err != nil {
		return nil, err
	}
	d.sch[ptr] = s
	return s, nil
}

// validate checks v (as jsonschema.UnmarshalJSON decodes it) against the
// schema at ptr.
func (d *openAPI) validate(ptr string, v any) error {
	s, err := d.schema(ptr)
	if err != nil {
		return fmt.Errorf("schema %s does not compile: %w", ptr, err)
	}
	return s.Validate(v)
}

// ops lists every operation, by path then method.
func (d *openAPI) ops() []openAPIOp {
	paths, _ := d.root["paths"].(map[string]any)
	var out []openAPIOp
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		itemPtr := "/paths/" + pointerToken(p)
		item := d.object(itemPtr)
		var shared []string
		for i := range asSlice(item["parameters"]) {
			shared = append(shared, itemPtr+"/parameters/"+strconv.Itoa(i))
		}
		for _, m := range openAPIMethods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			ptr := itemPtr + "/" + m
			o := openAPIOp{method: strings.ToUpper(m), path: p, ptr: ptr, op: op, paramPtrs: slices.Clone(shared)}
			o.id, _ = op["operationId"].(string)
			for i := range asSlice(op["parameters"]) {
				o.paramPtrs = append(o.paramPtrs, ptr+"/parameters/"+strconv.Itoa(i))
			}
			for _, pp := range o.paramPtrs {
				o.params = append(o.params, d.object(pp))
			}
			out = append(out, o)
		}
	}
	return out
}

func (d *openAPI) op(id string) openAPIOp {
	for _, o := range d.ops() {
		if o.id == id {
			return o
		}
	}
	d.t.Fatalf("no operation %q in openapi.json", id)
	return openAPIOp{}
}

// schemes are the security schemes an operation accepts, by name.
func (o openAPIOp) schemes() []string {
	var out []string
	for _, req := range asSlice(o.op["security"]) {
		for name := range req.(map[string]any) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (o openAPIOp) accepts(k hotzone.KeyKind) bool {
	for _, s := range o.schemes() {
		if openAPISchemes[s] == k {
			return true
		}
	}
	return false
}

func (o openAPIOp) param(in, name string) map[string]any {
	for _, p := range o.params {
		if p["in"] == in && p["name"] == name {
			return p
		}
	}
	return nil
}

func (o openAPIOp) statuses() []string {
	resp, _ := o.op["responses"].(map[string]any)
	return slices.Sorted(maps.Keys(resp))
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// fill puts values into the operation's path: from given (a "$name"
// value is vars[name]), else the parameter's documented example.
func (d *openAPI) fill(o openAPIOp, given, vars map[string]string) string {
	return pathParam.ReplaceAllStringFunc(o.path, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := given[name]
		if !ok {
			p := o.param("path", name)
			if p == nil {
				d.t.Fatalf("%s: no parameter for {%s}", o.id, name)
			}
			v = fmt.Sprint(p["example"])
		}
		if n, ok := strings.CutPrefix(v, "$"); ok {
			v = vars[n]
		}
		return url.PathEscape(v)
	})
}

// requestExample is a named example of the operation's JSON body, or nil.
func (d *openAPI) requestExample(o openAPIOp, name string) any {
	ex := d.object(o.ptr + "/requestBody/content/application~1json/examples/" + pointerToken(name))
	if ex == nil {
		return nil
	}
	return ex["value"]
}

// responsePtr is the pointer of the (resolved) Response Object the
// operation documents for status.
func (d *openAPI) responsePtr(o openAPIOp, status int) (string, bool) {
	ptr := o.ptr + "/responses/" + strconv.Itoa(status)
	if d.at(ptr) == nil {
		return "", false
	}
	return d.follow(ptr), true
}

// mediaKey finds the documented media type matching a Content-Type.
func mediaKey(content map[string]any, contentType string) (string, bool) {
	want, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", false
	}
	for k := range content {
		if mt, _, err := mime.ParseMediaType(k); err == nil && mt == want {
			return k, true
		}
	}
	return "", false
}

func isJSONMedia(mt string) bool {
	base, _, _ := mime.ParseMediaType(mt)
	return base == "application/json" || strings.HasSuffix(base, "+json")
}

// checkResponse holds a real answer to the document: its status is
// listed for the operation, its Content-Type is one listed for that
// status, a JSON body matches the schema and has no member the schema
// does not name, and X-Request-Id is set.
func (d *openAPI) checkResponse(what string, o openAPIOp, r response) {
	t := d.t
	t.Helper()
	ptr, ok := d.responsePtr(o, r.Code)
	if !ok {
		t.Errorf("%s: %s answered %d, which openapi.json does not list (it lists %v): %s", what, o.id, r.Code, o.statuses(), r.Body)
		return
	}
	if r.Header.Get(headerRequestID) == "" {
		t.Errorf("%s: no X-Request-Id", what)
	}
	content, _ := d.object(ptr)["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.Body) > 0 {
			t.Errorf("%s: %d has a body, but openapi.json documents none: %s", what, r.Code, r.Body)
		}
		return
	}
	key, ok := mediaKey(content, r.Header.Get("Content-Type"))
	if !ok {
		t.Errorf("%s: Content-Type %q is not among the documented %v", what, r.Header.Get("Content-Type"), slices.Sorted(maps.Keys(content)))
		return
	}
	if !isJSONMedia(key) {
		return
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Body))
	if err != nil {
		t.Errorf("%s: body is not JSON: %v: %s", what, err, r.Body)
		return
	}
	schemaPtr := ptr + "/content/" + pointerToken(key) + "/schema"
	if err := d.validate(schemaPtr, v); err != nil {
		t.Errorf("%s: %d body does not match its schema: %v\nbody: %s", what, r.Code, err, r.Body)
	}
	if extra := d.undocumented([]any{d.at(schemaPtr)}, v, "$"); len(extra) > 0 {
		t.Errorf("%s: %d body has members openapi.json does not describe: %v\nbody: %s", what, r.Code, extra, r.Body)
	}
}

// undocumented lists the members of v that none of the schemas (after
// $ref, allOf, anyOf and oneOf) names in its properties. An object whose
// schemas declare no properties at all is free-form.
func (d *openAPI) undocumented(schemas []any, v any, at string) []string {
	var cands []map[string]any
	var expand func(s any, depth int)
	expand = func(s any, depth int) {
		m, ok := s.(map[string]any)
		if !ok || depth > 32 {
			return
		}
		if ref, ok := m["$ref"].(string); ok {
			expand(d.at(strings.TrimPrefix(ref, "#")), depth+1)
		}
		for _, k := range []string{"allOf", "anyOf", "oneOf"} {
			for _, sub := range asSlice(m[k]) {
				expand(sub, depth+1)
			}
		}
		cands = append(cands, m)
	}
	for _, s := range schemas {
		expand(s, 0)
	}
	var out []string
	switch v := v.(type) {
	case map[string]any:
		declared := false
		for _, c := range cands {
			if _, ok := c["properties"].(map[string]any); ok {
				declared = true
			}
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			var subs []any
			for _, c := range cands {
				if props, ok := c["properties"].(map[string]any); ok && props[k] != nil {
					subs = append(subs, props[k])
				}
			}
			if declared && len(subs) == 0 {
				out = append(out, at+"."+k)
				continue
			}
			out = append(out, d.undocumented(subs, v[k], at+"."+k)...)
		}
	case []any:
		for i, el := range v {
			var subs []any
			for _, c := range cands {
				if prefix := asSlice(c["prefixItems"]); i < len(prefix) {
					subs = append(subs, prefix[i])
				} else if c["items"] != nil {
					subs = append(subs, c["items"])
				}
			}
			out = append(out, d.undocumented(subs, el, at+"["+strconv.Itoa(i)+"]")...)
		}
	}
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// ginPath writes a Gin route as an OpenAPI path: :param -> {param}.
func ginPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

// TestOpenAPIRoutes: every route the router serves is documented (but
// for openAPIUndocumented), and every documented operation is served.
func TestOpenAPIRoutes(t *testing.T) {
	e := newEnv(t, openAPIOptions(nil))
	d := loadOpenAPI(t)
	documented := map[string]bool{}
	for _, o := range d.ops() {
		documented[o.method+" "+o.path] = true
	}
	served := map[string]bool{}
	for _, ri := range e.srv.router.Routes() {
		if slices.ContainsFunc(openAPIUndocumented, func(p string) bool { return strings.HasPrefix(ri.Path, p) }) {
			continue
		}
		key := ri.Method + " " + ginPath(ri.Path)
		served[key] = true
		if !documented[key] {
			t.Errorf("%s %s is served but not in openapi.json (document it, or add its prefix to openAPIUndocumented with the reason)", ri.Method, ri.Path)
		}
	}
	for key := range documented {
		if !served[key] {
			t.Errorf("openapi.json documents %s, which the router does not serve", key)
		}
	}
	for _, p := range openAPIUndocumented {
		for key := range documented {
			if strings.HasPrefix(strings.SplitN(key, " ", 2)[1], p) {
				t.Errorf("%s is documented although its prefix %s is listed as undocumented", key, p)
			}
		}
	}
}

// openAPIRequiredStatuses are the statuses the contract names for single
// operations beyond the general rules of TestOpenAPIDocument.
var openAPIRequiredStatuses = map[string][]string{
	"getReadyz":         {"503"},
	"startEvent":        {"404", "409"},
	"getLiveEvent":      {"404"},
	"endLiveEvent":      {"404"},
	"deleteDevice":      {"404"},
	"postPing":          {"404", "429"},
	"listEvents":        {"400"},
	"listNotifications": {"400"},
}

// openAPICreates are operations with path parameters that create what
// the path names, so that they have no 404.
var openAPICreates = map[string]bool{"putStore": true, "putDevice": true}

// TestOpenAPIDocument checks the document on its own: OpenAPI 3.1,
// strict JSON, references, operation ids, the error statuses each
// operation must list, security, parameters, and that every schema
// compiles and every example matches its schema.
func TestOpenAPIDocument(t *testing.T) {
	if !jsontext.Value(openAPIDoc).IsValid() {
		t.Fatal("openapi.json is not valid JSON (RFC 7493: no duplicate member names)")
	}
	d := loadOpenAPI(t)
	if v, _ := d.root["openapi"].(string); !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	info, _ := d.root["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Errorf("info lacks title or version: %v", info)
	}

	// Every $ref is local and resolves.
	var refs func(v any, at string)
	refs = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				if ref, ok := sub.(string); ok && k == "$ref" {
					if !strings.HasPrefix(ref, "#/") || d.at(strings.TrimPrefix(ref, "#")) == nil {
						t.Errorf("%s: $ref %q does not resolve", at, ref)
					}
					continue
				}
				refs(sub, at+"/"+pointerToken(k))
			}
		case []any:
			for i, sub := range v {
				refs(sub, at+"/"+strconv.Itoa(i))
			}
		}
	}
	refs(d.root, "")

	schemes, _ := d.at("/components/securitySchemes").(map[string]any)
	for name := range openAPISchemes {
		s, _ := schemes[name].(map[string]any)
		if s["type"] != "http" || s["scheme"] != "bearer" || s["description"] == nil {
			t.Errorf("security scheme %s = %v, want http bearer with a description", name, s)
		}
	}
	tags := map[string]bool{}
	for _, tg := range asSlice(d.root["tags"]) {
		tags[fmt.Sprint(tg.(map[string]any)["name"])] = true
	}

	ids := map[string]string{}
	for _, o := range d.ops() {
		where := o.method + " " + o.path
		if o.id == "" {
			t.Errorf("%s has no operationId", where)
		} else if prev, dup := ids[o.id]; dup {
			t.Errorf("operationId %s is used by %s and %s", o.id, prev, where)
		}
		ids[o.id] = where
		if o.op["summary"] == nil {
			t.Errorf("%s has no summary", o.id)
		}
		for _, tg := range asSlice(o.op["tags"]) {
			if !tags[fmt.Sprint(tg)] {
				t.Errorf("%s: tag %v is not declared", o.id, tg)
			}
		}

		// Security: explicit on every operation, /v1 always keyed.
		if _, ok := o.op["security"]; !ok {
			t.Errorf("%s: no security member (use [] for routes without a key)", o.id)
		}
		for _, s := range o.schemes() {
			if _, ok := openAPISchemes[s]; !ok {
				t.Errorf("%s: unknown security scheme %s", o.id, s)
			}
		}
		v1 := strings.HasPrefix(o.path, "/v1/")
		if v1 != (len(o.schemes()) > 0) {
			t.Errorf("%s: security %v, want a key exactly on /v1 routes", o.id, o.schemes())
		}

		// Path parameters match the template.
		for _, m := range pathParam.FindAllStringSubmatch(o.path, -1) {
			if p := o.param("path", m[1]); p == nil || p["required"] != true {
				t.Errorf("%s: {%s} has no required path parameter", o.id, m[1])
			} else if p["example"] == nil {
				t.Errorf("%s: path parameter %s has no example", o.id, m[1])
			}
		}
		for _, p := range o.params {
			if p["in"] == "path" && !strings.Contains(o.path, "{"+fmt.Sprint(p["name"])+"}") {
				t.Errorf("%s: path parameter %v is not in the path", o.id, p["name"])
			}
		}

		// The statuses the contract names.
		statuses := o.statuses()
		want := slices.Clone(openAPIRequiredStatuses[o.id])
		if v1 {
			want = append(want, "401")
			if len(o.schemes()) < len(openAPISchemes) {
				want = append(want, "403")
			}
		}
		if o.op["requestBody"] != nil {
			want = append(want, "400", "413", "415")
		}
		if o.param("query", "limit") != nil || o.param("query", "cursor") != nil {
			want = append(want, "400")
		}
		if strings.Contains(o.path, "{") && v1 && !openAPICreates[o.id] {
			want = append(want, "404")
		}
		for _, s := range want {
			if !slices.Contains(statuses, s) {
				t.Errorf("%s: responses %v lack %s", o.id, statuses, s)
			}
		}
		if slices.Contains(statuses, "405") {
			t.Errorf("%s: 405 is documented once (in info.description), not per operation", o.id)
		}
		if !slices.ContainsFunc(statuses, func(s string) bool { return s[0] == '2' }) {
			t.Errorf("%s: no success response", o.id)
		}
		for _, s := range statuses {
			if s[0] >= '4' {
				r := d.object(o.ptr + "/responses/" + s)
				if c, _ := r["content"].(map[string]any); c["application/problem+json"] == nil {
					t.Errorf("%s: %s is not application/problem+json", o.id, s)
				}
			}
		}
		if o.param("query", "limit") != nil && o.param("query", "cursor") == nil && o.id != "nearbyFences" { // how many nearest, not a page
			t.Errorf("%s: limit without cursor", o.id)
		}
	}

	// The problem types are the server's.
	var enum []string
	for _, v := range asSlice(d.at("/components/schemas/Problem/properties/type/enum")) {
		enum = append(enum, fmt.Sprint(v))
	}
	var served []string
	for _, v := range problemTypes {
		served = append(served, v)
	}
	slices.Sort(enum)
	slices.Sort(served)
	if !slices.Equal(enum, served) {
		t.Errorf("Problem.type enum = %v, want the server's %v", enum, served)
	}

	// Every schema compiles, and every example matches its schema.
	for _, name := range slices.Sorted(maps.Keys(d.at("/components/schemas").(map[string]any))) {
		if _, err := d.schema("/components/schemas/" + pointerToken(name)); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
	// media checks the examples of a request body or response at ptr;
	// status is the response's, 0 when not known.
	media := func(what, ptr string, status int) {
		content, _ := d.object(ptr)["content"].(map[string]any)
		for _, mt := range slices.Sorted(maps.Keys(content)) {
			mptr := d.follow(ptr) + "/content/" + pointerToken(mt)
			m := content[mt].(map[string]any)
			if m["schema"] == nil {
				t.Errorf("%s %s: no schema", what, mt)
				continue
			}
			exs, _ := m["examples"].(map[string]any)
			for _, name := range slices.Sorted(maps.Keys(exs)) {
				ex := d.object(mptr + "/examples/" + pointerToken(name))
				val, ok := ex["value"]
				if !ok {
					t.Errorf("%s %s example %s: no value", what, mt, name)
					continue
				}
				if err := d.validate(mptr+"/schema", val); err != nil {
					t.Errorf("%s %s example %s does not match its schema: %v", what, mt, name, err)
				}
				if isJSONMedia(mt) {
					if extra := d.undocumented([]any{m["schema"]}, val, "$"); len(extra) > 0 {
						t.Errorf("%s %s example %s has members the schema does not describe: %v", what, mt, name, extra)
					}
				}
				if mt == "application/problem+json" {
					p, _ := val.(map[string]any)
					st, _ := strconv.Atoi(fmt.Sprint(p["status"]))
					if p["type"] != problemTypes[st] || (status != 0 && st != status) {
						t.Errorf("%s example %s: type %v, status %v; want the server's type for %d", what, name, p["type"], p["status"], status)
					}
					if p["title"] != http.StatusText(st) {
						t.Errorf("%s example %s: title %v, want %q", what, name, p["title"], http.StatusText(st))
					}
				}
				if sse, ok := m["x-sse-events"].(map[string]any); ok {
					for _, msg := range parseSSE(fmt.Sprint(val)) {
						if sse[msg.event] == nil {
							t.Errorf("%s example %s: event %q is not in x-sse-events", what, name, msg.event)
							continue
						}
						v, err := jsonschema.UnmarshalJSON(strings.NewReader(msg.data))
						if err == nil {
							err = d.validate(mptr+"/x-sse-events/"+pointerToken(msg.event), v)
						}
						if err != nil {
							t.Errorf("%s example %s: event %s: %v", what, name, msg.event, err)
						}
					}
				}
			}
		}
	}
	for _, o := range d.ops() {
		if o.op["requestBody"] != nil {
			media(o.id+" request", o.ptr+"/requestBody", 0)
		}
		for _, s := range o.statuses() {
			st, _ := strconv.Atoi(s)
			media(o.id+" "+s, o.ptr+"/responses/"+s, st)
		}
		for i, p := range o.params {
			if ex, ok := p["example"]; ok {
				if err := d.validate(d.follow(o.paramPtrs[i])+"/schema", ex); err != nil {
					t.Errorf("%s parameter %v: example %v: %v", o.id, p["name"], ex, err)
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.at("/components/responses").(map[string]any))) {
		media("components.responses."+name, "/components/responses/"+pointerToken(name), 0)
	}
}

type sseMessage struct{ event, data string }

// parseSSE reads the messages of an event stream, skipping comments.
func parseSSE(s string) []sseMessage {
	var out []sseMessage
	for block := range strings.SplitSeq(s, "\n\n") {
		var m sseMessage
		for line := range strings.SplitSeq(block, "\n") {
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				m.event = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				m.data = v
			}
		}
		if m.event != "" {
			out = append(out, m)
		}
	}
	return out
}

// openAPIStep is one request of the walk through the API that
// TestOpenAPIExamples makes with the document's own examples.
type openAPIStep struct {
	op      string            // operationId
	key     hotzone.KeyKind   // "" for none
	example string            // the request body example to send; "" for none
	params  map[string]string // path parameters; default their examples; "$name" is a captured value
	query   string
	want    int
}

// openAPISteps use every operation, every request example, and both the
// create and the replace answer of the PUTs. The clock stands at
// 2026-11-22T10:00:30Z, 30 s after the ping example's ts.
var openAPISteps = []openAPIStep{
	{op: "getRoot", want: 200},
	{op: "getHealthz", want: 200},
	{op: "getReadyz", want: 200},
	{op: "getOpenAPI", want: 200},
	{op: "getMetrics", want: 200},
	{op: "getTabletPage", want: 200},
	{op: "getAdminPage", want: 200},
	{op: "createBrand", key: hotzone.KindOperator, example: "brand", want: 201},
	{op: "getMe", key: hotzone.KindOperator, want: 200},
	{op: "getMe", key: hotzone.KindAdmin, want: 200},
	{op: "getMe", key: hotzone.KindApp, want: 200},
	{op: "getPolicy", key: hotzone.KindAdmin, want: 200},
	{op: "patchPolicy", key: hotzone.KindAdmin, example: "quiet", want: 200},
	{op: "patchPolicy", key: hotzone.KindAdmin, example: "cap", want: 200},
	{op: "getPushStatus", key: hotzone.KindAdmin, want: 200},
	{op: "putAPNsCredentials", key: hotzone.KindAdmin, example: "apns", want: 204},
	{op: "putFCMCredentials", key: hotzone.KindAdmin, example: "fcm", want: 204},
	{op: "getPushStatus", key: hotzone.KindAdmin, want: 200},
	{op: "putStore", key: hotzone.KindAdmin, example: "circle", want: 201},
	{op: "putStore", key: hotzone.KindAdmin, example: "polygon", params: map[string]string{"store_id": "downtown"}, want: 201},
	{op: "putStore", key: hotzone.KindAdmin, example: "polygon", params: map[string]string{"store_id": "downtown"}, want: 200},
	{op: "getStore", key: hotzone.KindAdmin, want: 200},
	{op: "listStores", key: hotzone.KindAdmin, query: "limit=1", want: 200},
	{op: "listStores", key: hotzone.KindAdmin, query: "tag=drive-thru", want: 200},
	{op: "listStores", key: hotzone.KindAdmin, query: "limit=0", want: 400},
	{op: "importStores", key: hotzone.KindAdmin, example: "stores", want: 200},
	{op: "exportStores", key: hotzone.KindAdmin, want: 200},
	{op: "createManagerKey", key: hotzone.KindAdmin, example: "label", want: 201},
	{op: "createManagerKey", key: hotzone.KindAdmin, want: 201},
	{op: "listManagerKeys", key: hotzone.KindAdmin, want: 200},
	{op: "getMe", key: hotzone.KindManager, want: 200},
	{op: "getStore", key: hotzone.KindManager, want: 200},
	{op: "getStore", key: hotzone.KindManager, params: map[string]string{"store_id": "downtown"}, want: 403},
	{op: "putDevice", key: hotzone.KindApp, example: "ios", want: 201},
	{op: "putDevice", key: hotzone.KindApp, example: "ios", want: 200},
	{op: "putDevice", key: hotzone.KindAdmin, example: "android", params: map[string]string{"device_id": "device-5678"}, want: 201},
	{op: "getDevice", key: hotzone.KindAdmin, want: 200},
	{op: "getDevice", key: hotzone.KindApp, want: 403},
	{op: "nearbyFences", key: hotzone.KindApp, query: "lat=40.713&lon=-74.0055", want: 200},
	{op: "nearbyFences", key: hotzone.KindApp, query: "lat=40.713&lon=-74.0055&limit=1", want: 200},
	{op: "nearbyFences", key: hotzone.KindAdmin, query: "lat=91&lon=-74.0055", want: 400},
	{op: "getLiveEvent", key: hotzone.KindManager, want: 404},
	{op: "startEvent", key: hotzone.KindManager, example: "hot-now", want: 201},
	{op: "startEvent", key: hotzone.KindManager, example: "hot-now", want: 409},
	{op: "getLiveEvent", key: hotzone.KindManager, want: 200},
	{op: "getMe", key: hotzone.KindManager, want: 200},
	{op: "postPing", key: hotzone.KindApp, example: "ping", want: 200},
	{op: "postPingBatch", key: hotzone.KindApp, example: "batch", want: 200},
	{op: "listEvents", key: hotzone.KindAdmin, query: "status=live&store_id=main-st", want: 200},
	{op: "listEvents", key: hotzone.KindAdmin, query: "status=over", want: 400},
	{op: "listNotifications", key: hotzone.KindAdmin, query: "limit=10", want: 200},
	{op: "openNotification", key: hotzone.KindApp, example: "tap", params: map[string]string{"notification_id": "$notification_id"}, want: 204},
	{op: "openNotification", key: hotzone.KindApp, example: "tap", params: map[string]string{"notification_id": "$notification_id"}, want: 204},
	{op: "openNotification", key: hotzone.KindApp, example: "tap", want: 404},
	{op: "getEventReport", key: hotzone.KindManager, params: map[string]string{"event_id": "$event_id"}, want: 200},
	{op: "getEventReport", key: hotzone.KindAdmin, want: 404},
	{op: "putAudience", key: hotzone.KindAdmin, example: "example", want: 201},
	{op: "putAudience", key: hotzone.KindAdmin, example: "example", want: 200},
	{op: "listAudiences", key: hotzone.KindManager, want: 200},
	{op: "getAudience", key: hotzone.KindManager, want: 200},
	{op: "deleteAudience", key: hotzone.KindAdmin, want: 204},
	{op: "putTemplate", key: hotzone.KindAdmin, example: "example", want: 201},
	{op: "listTemplates", key: hotzone.KindManager, want: 200},
	{op: "getTemplate", key: hotzone.KindAdmin, want: 200},
	{op: "deleteTemplate", key: hotzone.KindAdmin, want: 204},
	{op: "createWebhook", key: hotzone.KindAdmin, example: "crm", want: 201},
	{op: "listWebhooks", key: hotzone.KindAdmin, query: "limit=10", want: 200},
	{op: "getWebhook", key: hotzone.KindAdmin, params: map[string]string{"webhook_id": "$webhook_id"}, want: 200},
	{op: "getWebhook", key: hotzone.KindAdmin, want: 404},
	{op: "patchWebhook", key: hotzone.KindAdmin, example: "on", params: map[string]string{"webhook_id": "$webhook_id"}, want: 200},
	{op: "testWebhook", key: hotzone.KindAdmin, params: map[string]string{"webhook_id": "$webhook_id"}, want: 202},
	{op: "listWebhookDeliveries", key: hotzone.KindAdmin, params: map[string]string{"webhook_id": "$webhook_id"}, want: 200},
	{op: "listWebhookDeliveries", key: hotzone.KindAdmin, params: map[string]string{"webhook_id": "$webhook_id"}, query: "status=sent", want: 400},
	{op: "retryWebhookDelivery", key: hotzone.KindAdmin, params: map[string]string{"webhook_id": "$webhook_id", "delivery_id": "$delivery_id"}, want: 409},
	{op: "deleteWebhook", key: hotzone.KindAdmin, params: map[string]string{"webhook_id": "$webhook_id"}, want: 204},
	{op: "deleteWebhook", key: hotzone.KindAdmin, params: map[string]string{"webhook_id": "$webhook_id"}, want: 404},
	{op: "endLiveEvent", key: hotzone.KindManager, want: 200},
	{op: "endLiveEvent", key: hotzone.KindManager, want: 404},
	{op: "listNotifications", key: hotzone.KindAdmin, query: "status=sent", want: 200},
	{op: "deleteManagerKey", key: hotzone.KindAdmin, params: map[string]string{"key_id": "$key_id"}, want: 204},
	{op: "getMe", key: hotzone.KindManager, want: 401},
	{op: "getDevice", key: hotzone.KindAdmin, want: 200},
	{op: "deleteDevice", key: hotzone.KindApp, want: 204},
	{op: "getDevice", key: hotzone.KindAdmin, want: 404},
	{op: "deleteDevice", key: hotzone.KindApp, want: 404},
	{op: "deleteAPNsCredentials", key: hotzone.KindAdmin, want: 204},
	{op: "deleteFCMCredentials", key: hotzone.KindAdmin, want: 204},
	{op: "deleteStore", key: hotzone.KindAdmin, want: 204},
	{op: "getStore", key: hotzone.KindAdmin, want: 404},
}

// openAPIExampleFixes put real secrets where the examples show elided
// ones.
var openAPIExampleFixes = map[string]func(body map[string]any){
	"putAPNsCredentials": func(b map[string]any) { b["key_p8"] = testP8() },
	"putFCMCredentials":  func(b map[string]any) { b["service_account_json"] = testServiceAccount() },
}

// openAPIElsewhere are operations TestOpenAPIExamples leaves to a test of
// their own.
var openAPIElsewhere = map[string]string{"streamLiveEvent": "TestOpenAPIStream"}

// TestOpenAPIExamples walks the API with the document's own request
// examples (and their path parameter examples) through the real router
// over a real database, and holds every answer to the document.
func TestOpenAPIExamples(t *testing.T) {
	clk := newClock("2026-11-22T10:00:30Z")
	e := newEnv(t, openAPIOptions(clk.now))
	d := loadOpenAPI(t)
	keys := map[hotzone.KeyKind]string{hotzone.KindOperator: e.operator}
	vars := map[string]string{}
	usedOps := map[string]bool{}
	usedExamples := map[string]bool{}
	for i, st := range openAPISteps {
		o := d.op(st.op)
		usedOps[st.op] = true
		path := d.fill(o, st.params, vars)
		if st.query != "" {
			path += "?" + st.query
		}
		var body any
		if st.example != "" {
			ex := d.requestExample(o, st.example)
			if ex == nil {
				t.Fatalf("step %d: %s has no request example %q", i, st.op, st.example)
			}
			// A copy, so the fix does not change the document.
			buf, _ := json.Marshal(ex)
			var m map[string]any
			if err := json.Unmarshal(buf, &m); err != nil {
				t.Fatalf("step %d: %s example %s: %v", i, st.op, st.example, err)
			}
			if fix := openAPIExampleFixes[st.op]; fix != nil {
				fix(m)
			}
			body = m
			usedExamples[st.op+" "+st.example] = true
		}
		r := e.do(o.method, path, keys[st.key], body)
		what := fmt.Sprintf("step %d (%s %s as %q)", i, o.method, path, st.key)
		if r.Code != st.want {
			t.Fatalf("%s = %d, want %d: %s", what, r.Code, st.want, r.Body)
		}
		d.checkResponse(what, o, r)
		switch {
		case st.op == "createBrand":
			var b brandKeys
			r.decode(t, &b)
			keys[hotzone.KindAdmin], keys[hotzone.KindApp] = b.AdminKey, b.AppKey
		case st.op == "createWebhook" || st.op == "testWebhook":
			var created struct {
				ID string `json:"id"`
			}
			r.decode(t, &created)
			vars[map[string]string{"createWebhook": "webhook_id", "testWebhook": "delivery_id"}[st.op]] = created.ID
		case st.op == "startEvent" && r.Code == 201:
			var ev struct {
				ID string `json:"id"`
			}
			r.decode(t, &ev)
			vars["event_id"] = ev.ID
		case st.op == "listNotifications" && vars["notification_id"] == "":
			var pg struct {
				Items []struct {
					ID       string `json:"id"`
					DeviceID string `json:"device_id"`
				} `json:"items"`
			}
			r.decode(t, &pg)
			for _, n := range pg.Items {
				if n.DeviceID == "device-1234" { // the open example's device
					vars["notification_id"] = n.ID
				}
			}
		case st.op == "createManagerKey" && keys[hotzone.KindManager] == "":
			var mk managerKeyCreated
			r.decode(t, &mk)
			keys[hotzone.KindManager], vars["key_id"] = mk.ManagerKey, mk.ID
		}
	}
	for _, o := range d.ops() {
		if !usedOps[o.id] && openAPIElsewhere[o.id] == "" {
			t.Errorf("%s is not exercised: add it to openAPISteps", o.id)
		}
		content, _ := d.object(o.ptr + "/requestBody")["content"].(map[string]any)
		jsonBody, _ := content["application/json"].(map[string]any)
		exs, _ := jsonBody["examples"].(map[string]any)
		for name := range exs {
			if !usedExamples[o.id+" "+name] {
				t.Errorf("request example %s of %s is never sent: add it to openAPISteps", name, o.id)
			}
		}
	}
}

// TestOpenAPISecurity holds each operation's documented security to the
// router: no key is 401, a kind the operation does not list is 403, and
// a kind it lists gets past the key check. Path parameters name nothing
// that exists and no body is sent, so nothing changes.
func TestOpenAPISecurity(t *testing.T) {
	e := newEnv(t, openAPIOptions(nil))
	d := loadOpenAPI(t)
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/main-st", b.AdminKey, circleStore("Main St", 40.7128, -74.006, 800))
	var mk managerKeyCreated
	e.must(201, "POST", "/v1/stores/main-st/manager-keys", b.AdminKey, nil).decode(t, &mk)
	keys := map[hotzone.KeyKind]string{hotzone.KindOperator: e.operator, hotzone.KindAdmin: b.AdminKey, hotzone.KindApp: b.AppKey, hotzone.KindManager: mk.ManagerKey}
	nothing := map[string]string{"store_id": "no-such-store", "device_id": "no-such-device", "key_id": "no-such-key"}
	for _, o := range d.ops() {
		path := d.fill(o, nothing, nil)
		if len(o.schemes()) == 0 {
			if r := e.do(o.method, path, "", nil); r.Code == 401 || r.Code == 403 {
				t.Errorf("%s %s without a key = %d, but it documents no security", o.method, path, r.Code)
			}
			continue
		}
		r := e.do(o.method, path, "", nil)
		if r.Code != 401 {
			t.Errorf("%s %s without a key = %d, want 401", o.method, path, r.Code)
		}
		d.checkResponse(o.id+" without a key", o, r)
		for _, k := range openAPIKinds {
			r := e.do(o.method, path, keys[k], nil)
			switch {
			case o.accepts(k) && (r.Code == 401 || r.Code == 403):
				t.Errorf("%s %s with a %s key = %d, but its security lists %v", o.method, path, k, r.Code, o.schemes())
			case !o.accepts(k) && r.Code != 403:
				t.Errorf("%s %s with a %s key = %d, want 403 (its security lists %v)", o.method, path, k, r.Code, o.schemes())
			}
			d.checkResponse(fmt.Sprintf("%s with a %s key", o.id, k), o, r)
		}
	}
}

// TestOpenAPIBodyErrors sends each operation with a JSON body an unknown
// member (400 naming it), a body that is not JSON (415) and a declared
// length over the limit (413), and holds the problems to the document.
func TestOpenAPIBodyErrors(t *testing.T) {
	e := newEnv(t, openAPIOptions(nil))
	d := loadOpenAPI(t)
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/main-st", b.AdminKey, circleStore("Main St", 40.7128, -74.006, 800))
	e.device(b.AppKey, "device-1234")
	keys := map[hotzone.KeyKind]string{hotzone.KindOperator: e.operator, hotzone.KindAdmin: b.AdminKey, hotzone.KindApp: b.AppKey}
	limits := map[string]int64{"postPing": limitPing, "importStores": limitImport}
	for _, o := range d.ops() {
		if o.op["requestBody"] == nil {
			continue
		}
		var key string
		for _, k := range []hotzone.KeyKind{hotzone.KindAdmin, hotzone.KindOperator} {
			if o.accepts(k) {
				key = keys[k]
				break
			}
		}
		path := d.fill(o, nil, nil)

		r := e.do(o.method, path, key, `{"no_such_member": 1}`)
		var p problem
		if r.Code == 400 {
			r.decode(t, &p)
		}
		if r.Code != 400 || len(p.Errors) == 0 || p.Errors[0].Field != "no_such_member" {
			t.Errorf("%s %s with an unknown member = %d %s, want 400 naming no_such_member", o.method, path, r.Code, r.Body)
		}
		d.checkResponse(o.id+" with an unknown member", o, r)

		req := httptest.NewRequest(o.method, path, strings.NewReader("name=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+key)
		if r := serve(e, req); r.Code != 415 {
			t.Errorf("%s %s with a form body = %d, want 415", o.method, path, r.Code)
		} else {
			d.checkResponse(o.id+" with a form body", o, r)
		}

		limit := cmpOr(limits[o.id], limitDefault)
		req = httptest.NewRequest(o.method, path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		req.ContentLength = limit + 1
		if r := serve(e, req); r.Code != 413 {
			t.Errorf("%s %s declaring %d bytes = %d, want 413", o.method, path, limit+1, r.Code)
		} else {
			d.checkResponse(o.id+" over the limit", o, r)
		}
	}
}

func cmpOr(v, def int64) int64 {
	if v != 0 {
		return v
	}
	return def
}

func serve(e *env, req *http.Request) response {
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return response{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// TestOpenAPIStream reads the live stream over a real connection and
// holds its messages to the document's x-sse-events schemas.
func TestOpenAPIStream(t *testing.T) {
	e := newEnv(t, openAPIOptions(nil))
	d := loadOpenAPI(t)
	o := d.op("streamLiveEvent")
	b := e.brand("Krispy")
	e.must(201, "PUT", "/v1/stores/main-st", b.AdminKey, circleStore("Main St", 40.7128, -74.006, 800))
	var mk managerKeyCreated
	e.must(201, "POST", "/v1/stores/main-st/manager-keys", b.AdminKey, nil).decode(t, &mk)
	e.must(201, "POST", "/v1/stores/main-st/events", mk.ManagerKey, map[string]any{"title": "Hot Now", "body": "Fresh, right now"})

	srv := httptest.NewServer(e.srv)
	defer srv.Close()
	defer e.srv.CloseStreams()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+d.fill(o, nil, nil), nil)
	req.Header.Set("Authorization", "Bearer "+mk.ManagerKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rptr, ok := d.responsePtr(o, resp.StatusCode)
	if !ok || resp.StatusCode != 200 {
		t.Fatalf("stream = %d, want 200", resp.StatusCode)
	}
	content, _ := d.object(rptr)["content"].(map[string]any)
	key, ok := mediaKey(content, resp.Header.Get("Content-Type"))
	if !ok {
		t.Fatalf("stream Content-Type %q is not among %v", resp.Header.Get("Content-Type"), slices.Sorted(maps.Keys(content)))
	}
	eventsPtr := rptr + "/content/" + pointerToken(key) + "/x-sse-events"
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 1<<20)
	next := func() sseMessage {
		t.Helper()
		var m sseMessage
		for lines.Scan() {
			line := lines.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				m.event = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				m.data = v
			}
			if line == "" && m.event != "" {
				return m
			}
		}
		t.Fatalf("stream ended: %v", lines.Err())
		return m
	}
	check := func(m sseMessage, want string) {
		t.Helper()
		if m.event != want {
			t.Fatalf("stream event = %q, want %q", m.event, want)
		}
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(m.data))
		if err != nil {
			t.Fatalf("%s data is not JSON: %v: %s", m.event, err, m.data)
		}
		ptr := eventsPtr + "/" + pointerToken(m.event)
		if d.at(ptr) == nil {
			t.Fatalf("event %q is not in x-sse-events", m.event)
		}
		if err := d.validate(ptr, v); err != nil {
			t.Errorf("%s data does not match its schema: %v\n%s", m.event, err, m.data)
		}
		if extra := d.undocumented([]any{d.at(ptr)}, v, "$"); len(extra) > 0 {
			t.Errorf("%s data has members openapi.json does not describe: %v", m.event, extra)
		}
	}
	check(next(), "counts")
	e.must(200, "DELETE", "/v1/stores/main-st/events/live", mk.ManagerKey, nil)
	check(next(), "ended")
}

// TestOpenAPIServed: GET /openapi.json answers the embedded document as
// application/json, revalidates with its ETag, and compresses.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, openAPIOptions(nil))
	r := e.must(200, "GET", "/openapi.json", "", nil)
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if !bytes.Equal(r.Body, openAPIDoc) {
		t.Error("GET /openapi.json does not answer the embedded document")
	}
	var doc map[string]any
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("GET /openapi.json is not JSON: %v", err)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache", cc)
	}
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}

	req := httptest.NewRequest("GET", "/openapi.json", nil)
	req.Header.Set("If-None-Match", etag)
	if r := serve(e, req); r.Code != 304 || len(r.Body) != 0 {
		t.Errorf("GET /openapi.json with If-None-Match = %d (%d bytes), want 304", r.Code, len(r.Body))
	}

	req = httptest.NewRequest("GET", "/openapi.json", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	r = serve(e, req)
	if r.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding = %q, want gzip", r.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	if body, err := io.ReadAll(zr); err != nil || !bytes.Equal(body, openAPIDoc) {
		t.Errorf("gzip body: %v, equal = %v", err, bytes.Equal(body, openAPIDoc))
	}
	if r := e.do("POST", "/openapi.json", "", nil); r.Code != 405 {
		t.Errorf("POST /openapi.json = %d, want 405", r.Code)
	}
}
