package api

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docsAPI is the human-readable contract, kept next to the code.
const docsAPI = "../docs/api.md"

// docsPlanned starts the part of docs/api.md that describes what is not
// served yet; its routes are not in openapi.json.
const docsPlanned = "## Planned additions"

// docsRoute is a route named in the text: `GET /v1/stores/{store_id}`.
var docsRoute = regexp.MustCompile("`(GET|PUT|POST|PATCH|DELETE) (/[^`?\\s]*)")

// docsParam is any path parameter; the text may name one differently.
var docsParam = regexp.MustCompile(`\{[^}]*\}`)

// docsRow is one row of docs/api.md's table of every operation.
var docsRow = regexp.MustCompile("^\\| `([A-Z]+)` \\| `([^`]+)` \\| ([^|]+) \\| ([^|]+) \\|$")

// TestDocsMatchOpenAPI holds docs/api.md to openapi.json, so the two
// cannot drift: its table lists exactly the document's operations with
// their keys and statuses, every route the text names (outside the
// planned additions) is one of them, and every member name the
// document's schemas define appears in the text.
func TestDocsMatchOpenAPI(t *testing.T) {
	raw, err := os.ReadFile(docsAPI)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	d := loadOpenAPI(t)

	want := map[string]string{} // "GET /path" -> "keys | statuses"
	kindOrder := []string{"operator", "admin", "app", "manager"}
	for _, o := range d.ops() {
		var kinds []string
		for _, k := range kindOrder {
			for _, s := range o.schemes() {
				if string(openAPISchemes[s]) == k {
					kinds = append(kinds, k)
				}
			}
		}
		keys := strings.Join(kinds, ", ")
		if keys == "" {
			keys = "none"
		}
		want[o.method+" "+o.path] = keys + " | " + strings.Join(o.statuses(), ", ")
	}

	got := map[string]string{}
	for line := range strings.SplitSeq(doc, "\n") {
		m := docsRow.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		key := m[1] + " " + m[2]
		if _, dup := got[key]; dup {
			t.Errorf("%s: %s is in the table twice", docsAPI, key)
		}
		got[key] = strings.TrimSpace(m[3]) + " | " + strings.TrimSpace(m[4])
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		switch g, ok := got[key]; {
		case !ok:
			t.Errorf("%s: the table of every operation lacks `%s` (openapi.json: %s)", docsAPI, key, want[key])
		case g != want[key]:
			t.Errorf("%s: %s is listed as %q, openapi.json says %q", docsAPI, key, g, want[key])
		}
	}
	for _, key := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[key]; !ok {
			t.Errorf("%s: the table lists %s, which openapi.json does not document", docsAPI, key)
		}
	}

	// Every route named in the text is served and documented.
	served := map[string]bool{}
	for key := range want {
		served[docsParam.ReplaceAllString(key, "{}")] = true
	}
	text, _, _ := strings.Cut(doc, docsPlanned)
	for _, m := range docsRoute.FindAllStringSubmatch(text, -1) {
		if key := m[1] + " " + docsParam.ReplaceAllString(m[2], "{}"); !served[key] {
			t.Errorf("%s names `%s %s`, which openapi.json does not document", docsAPI, m[1], m[2])
		}
	}
	if !strings.Contains(doc, "GET /openapi.json") {
		t.Errorf("%s does not point to GET /openapi.json", docsAPI)
	}

	// Every member the schemas define is named in the text.
	names := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				if props, ok := sub.(map[string]any); ok && k == "properties" {
					for name, schema := range props {
						if _, isSchema := schema.(map[string]any); isSchema {
							names[name] = true
						}
					}
				}
				walk(sub)
			}
		case []any:
			for _, sub := range v {
				walk(sub)
			}
		}
	}
	walk(d.root["paths"])
	walk(d.root["components"])
	for _, name := range slices.Sorted(maps.Keys(names)) {
		if !strings.Contains(text, "`"+name+"`") && !strings.Contains(text, `"`+name+`"`) {
			t.Errorf("%s never names the member %q that openapi.json defines", docsAPI, name)
		}
	}
}
