package api

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// redoclyCLI is the linter TestOpenAPILint runs, pinned so that a new
// release's new rules do not fail an unchanged document. 2.x still runs
// on Node.js 20.
const redoclyCLI = "@redocly/cli@2.77.0"

// TestOpenAPILint runs a standard OpenAPI linter, Redocly's with its
// recommended rules, over openapi.json, as a reader's tooling would, and
// wants no warning and no error. The warnings that describe the service
// rather than the document are listed, each with its reason, in
// .redocly.lint-ignore.yaml at the repository root. The test needs npx
// (Node.js) and the npm registry; it skips where npx is missing and in
// -short runs. npx keeps its cache in ~/.npm, outside the repository.
func TestOpenAPILint(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the linter is fetched from the npm registry")
	}
	npx, err := exec.LookPath("npx")
	if err != nil {
		t.Skip("npx not installed (Node.js); the OpenAPI document is not linted")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npx, "--yes", redoclyCLI, "lint", "--format=json", "api/openapi.json")
	cmd.Dir = ".." // where .redocly.lint-ignore.yaml is found
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_UPDATE_NOTIFIER=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, runErr := cmd.Output() // exits 1 on errors; warnings are in the report
	var report struct {
		Totals struct {
			Errors   int `json:"errors"`
			Warnings int `json:"warnings"`
			Ignored  int `json:"ignored"`
		} `json:"totals"`
		Problems []struct {
			RuleID   string `json:"ruleId"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
			Location []struct {
				Pointer string `json:"pointer"`
			} `json:"location"`
		} `json:"problems"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("npx %s lint: %v (%v)\nstdout: %.2000s\nstderr: %.2000s", redoclyCLI, err, runErr, out, stderr.String())
	}
	for _, p := range report.Problems {
		where := ""
		if len(p.Location) > 0 {
			where = p.Location[0].Pointer
		}
		t.Errorf("%s %s at %s: %s", p.Severity, p.RuleID, where, p.Message)
	}
	if report.Totals.Errors+report.Totals.Warnings != 0 || runErr != nil {
		t.Fatalf("%s lint: %d errors, %d warnings (%v)", redoclyCLI, report.Totals.Errors, report.Totals.Warnings, runErr)
	}
	t.Logf("%s lint api/openapi.json: clean; %d warnings ignored as listed in %s", redoclyCLI, report.Totals.Ignored,
		filepath.Join("..", ".redocly.lint-ignore.yaml"))
}
