package main

import (
	"bufio"
	"io"
	"os"
	"strings"
	"testing"
)

// TestDockerfile checks what can be checked without a Docker engine: the
// points the operations issue asks of the image.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		froms                               []string
		lines                               []string
		user, volume, expose, health, entry string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		// Join continuation lines.
		for strings.HasSuffix(line, "\\") && sc.Scan() {
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(sc.Text())
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, line)
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			froms = append(froms, rest)
		case "USER":
			user = rest
		case "VOLUME":
			volume = rest
		case "EXPOSE":
			expose = rest
		case "HEALTHCHECK":
			health = rest
		case "ENTRYPOINT":
			entry = rest
		}
	}
	all := strings.Join(lines, "\n")
	checks := []struct {
		name string
		ok   bool
	}{
		{"multi-stage (two FROM or more)", len(froms) >= 2},
		{"static binary: CGO_ENABLED=0", strings.Contains(all, "CGO_ENABLED=0")},
		{"non-root USER in the final stage", user != "" && !strings.HasPrefix(user, "root") && !strings.HasPrefix(user, "0")},
		{"VOLUME /data", strings.Contains(volume, "/data")},
		{"EXPOSE 8080", strings.Contains(expose, "8080")},
		{"HEALTHCHECK runs the binary's healthcheck", strings.Contains(health, "hotzone") && strings.Contains(health, "healthcheck")},
		{"ENTRYPOINT is the binary", strings.Contains(entry, "hotzone")},
		{"data dir set to /data", strings.Contains(all, "HOTZONE_DATA=/data")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("Dockerfile: want %s", c.name)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	base, _, stop := startServer(t, nil, "--data", t.TempDir())
	addr := strings.TrimPrefix(base, "http://")
	env := func(k string) string { return map[string]string{"HOTZONE_ADDR": addr}[k] }
	// Ready once the dispatcher runs; poll briefly.
	var err error
	for range 200 {
		if err = run(t.Context(), []string{"healthcheck"}, env, io.Discard, io.Discard); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("healthcheck against a running server: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"healthcheck"}, env, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck after stop succeeded, want an error")
	}
}
