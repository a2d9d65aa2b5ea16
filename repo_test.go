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
