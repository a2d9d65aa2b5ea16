package hotzone_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeGo stands in for the go command in TestScriptsTestPhases: it says
// what it was asked to run, lists one package with one fuzz target, and
// succeeds.
const fakeGo = `#!/usr/bin/env bash
echo "RAN go $*" >&2 # stderr: stdout is what the script reads
case "$1" in
  list) echo example.com/p ;;
  test) case "$*" in *"-list ^Fuzz"*) echo FuzzThing ;; esac ;;
esac
`

// TestScriptsTestPhases: scripts/test says what each phase does before
// it starts it, so minutes of compiling with -race are not minutes of
// silence, and says when it is done.
func TestScriptsTestPhases(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "scripts/test")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "FUZZTIME=1s")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/test with a fake go: %v\n%s", err, out)
	}
	// Each kind of go run (the -race compile, the -race run, the
	// listing, the fuzzing) comes after a phase line of its own.
	kinds := []*regexp.Regexp{
		regexp.MustCompile(`^RAN go test -race -count=1 -run \^\$ \./\.\.\.$`),
		regexp.MustCompile(`^RAN go test -race -count=1 \./\.\.\.$`),
		regexp.MustCompile(`^RAN go list \./\.\.\.$`),
		regexp.MustCompile(`^RAN go test -run=\^\$ -fuzz=\^FuzzThing\$ -fuzztime=1s example.com/p$`),
	}
	phases, next := 0, 0
	phaseAt := map[int]int{} // kind -> phases seen before it
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "==> ") {
			phases++
			continue
		}
		if next < len(kinds) && kinds[next].MatchString(line) {
			phaseAt[next] = phases
			next++
		}
	}
	if next != len(kinds) {
		t.Fatalf("scripts/test ran %d of the %d expected go commands in order:\n%s", next, len(kinds), out)
	}
	if phaseAt[0] != 1 || phaseAt[1] != 2 || phaseAt[2] != 3 {
		t.Errorf("phase lines before the compile, the run and the fuzzing: %v, want 1, 2, 3:\n%s", phaseAt, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "==> all tests passed") {
		t.Errorf("the last line is %q, want it to say all tests passed", last)
	}
	if !strings.HasPrefix(lines[0], "==> ") {
		t.Errorf("the first line is %q, want a phase line before anything runs", lines[0])
	}
}

// mdLink is a Markdown link's target: [text](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestReadme holds README.md to the repository it describes: its links
// and docs/'s resolve inside the repository (a clone has nothing
// beside it), it names the Go version go.mod wants, the contract and
// where the server serves it, the tablet's button as the page names it,
// and a walkthrough server that does not collide with the demo's.
func TestReadme(t *testing.T) {
	readme := readFile(t, "README.md")
	docs, _ := filepath.Glob("docs/*.md")
	for _, name := range append([]string{"README.md"}, docs...) {
		for _, m := range mdLink.FindAllStringSubmatch(readFile(t, name), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			p := filepath.Join(filepath.Dir(name), target)
			if rel, err := filepath.Rel(".", p); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s links %s, outside the repository", name, m[1])
			} else if _, err := os.Stat(p); err != nil {
				t.Errorf("%s links %s, which does not exist", name, m[1])
			}
		}
	}

	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, "go.mod"))
	if goVersion == nil || !strings.Contains(readme, "Go "+goVersion[1]) {
		t.Errorf("README.md does not say Go %v is needed (go.mod)", goVersion)
	}
	for _, want := range []string{"](docs/api.md)", "GET /openapi.json", "bash", "go test ./...", "--version"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md does not mention %s", want)
		}
	}

	button := regexp.MustCompile(`<button id="start"[^>]*>([^<]+)</button>`).FindStringSubmatch(readFile(t, "api/web/tablet.html"))
	if button == nil || !strings.Contains(strings.Join(strings.Fields(readme), " "), "**"+button[1]+"**") {
		t.Errorf("README.md does not name the tablet's start button as the page does (%v)", button)
	}

	// The walkthrough's server listens where its requests go, and not
	// on the demo's :8080, which the first command may still hold.
	_, walk, ok := strings.Cut(readme, "## Five-minute walkthrough")
	walk, _, _ = strings.Cut(walk, "\n## ")
	addr := regexp.MustCompile(`serve [^\n]*--addr :(\d+)`).FindStringSubmatch(walk)
	base := regexp.MustCompile(`H=http://localhost:(\d+)`).FindStringSubmatch(walk)
	if !ok || addr == nil || base == nil || addr[1] != base[1] || addr[1] == "8080" {
		t.Errorf("walkthrough: serve --addr %v, H= %v; want the same port, not the demo's 8080", addr, base)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
