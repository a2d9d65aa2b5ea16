package main

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/hotzone/hotzone/store/bolt"
)

// runCLI runs the program in-process with an empty environment.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut strings.Builder
	err = run(t.Context(), args, func(string) string { return "" }, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestVersion: `hotzone version` and --version print one line naming
// the program, its version and the Go toolchain, and succeed.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version"} {
		out, _, err := runCLI(t, arg)
		if err != nil || !strings.HasPrefix(out, "hotzone ") || !strings.Contains(out, runtime.Version()) || strings.Count(out, "\n") != 1 {
			t.Errorf("hotzone %s = %q, %v; want one line with the version and %s", arg, out, err, runtime.Version())
		}
	}
}

// TestHelp: every command's --help succeeds and prints its flags;
// serve's names the settings that exist only in the environment.
func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "--help"}, []string{"Usage: hotzone serve", "-addr", "HOTZONE_ADDR", "HOTZONE_OPERATOR_KEY", "HOTZONE_SECRET_KEY"}},
		{[]string{"serve", "-h"}, []string{"Usage: hotzone serve"}},
		{[]string{"healthcheck", "--help"}, []string{"Usage: hotzone healthcheck", "-addr", "HOTZONE_ADDR", "-path"}},
		{[]string{"simulate", "--help"}, []string{"Usage: hotzone simulate", "-admin-key", "HOTZONE_SIM_ADMIN_KEY"}},
	}
	for _, tt := range tests {
		_, help, err := runCLI(t, tt.args...)
		if err != nil {
			t.Errorf("hotzone %v = %v, want success (exit 0)", tt.args, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(help, w) {
				t.Errorf("hotzone %v does not mention %s:\n%s", tt.args, w, help)
			}
		}
	}
	if out, _, err := runCLI(t, "help"); err != nil || !strings.Contains(out, "hotzone version") {
		t.Errorf("hotzone help = %v, %q; want the commands, version among them", err, out)
	}
}

// TestWrongFlag: a wrong flag or command is answered with the error and
// one line on where to find help, not the whole usage.
func TestWrongFlag(t *testing.T) {
	tests := []struct {
		args      []string
		want, see string
	}{
		{[]string{"serve", "--nope"}, "flag provided but not defined: -nope", "hotzone serve --help"},
		{[]string{"serve", "--flush-interval", "soon"}, `invalid value "soon" for flag -flush-interval`, "hotzone serve --help"},
		{[]string{"serve", "extra"}, "serve takes no arguments", "hotzone serve --help"},
		{[]string{"healthcheck", "--nope"}, "flag provided but not defined: -nope", "hotzone healthcheck --help"},
		{[]string{"simulate", "--speed", "9"}, "flag provided but not defined: -speed", "hotzone simulate --help"},
		{[]string{"serv"}, `unknown command "serv"`, "hotzone help"},
	}
	for _, tt := range tests {
		out, stderr, err := runCLI(t, tt.args...)
		if err == nil {
			t.Errorf("hotzone %v succeeded, want an error", tt.args)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], tt.want) || !strings.Contains(lines[1], tt.see) {
			t.Errorf("hotzone %v = %q, want %q and a line pointing to %q", tt.args, err, tt.want, tt.see)
		}
		if out != "" || stderr != "" {
			t.Errorf("hotzone %v printed the usage besides the error:\nstdout: %s\nstderr: %s", tt.args, out, stderr)
		}
	}
}

// TestServeAddrInUse: a start on an address another program holds says
// so and names --addr.
func TestServeAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := filepath.Join(t.TempDir(), "data")
	_, _, err = runCLI(t, "serve", "--addr", ln.Addr().String(), "--data", data)
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "--addr :8081") {
		t.Errorf("serve on a held address = %v, want it to say the address is in use and suggest --addr", err)
	}
	// The address is taken before anything else: a start that cannot
	// bind leaves no data directory (no database, no key) behind.
	if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a start that could not bind left %s behind (%v)", data, err)
	}
}

// TestServeDataDirInUse: a second serve on a data directory another
// process holds says so, and what to do, instead of bbolt's "timeout".
func TestServeDataDirInUse(t *testing.T) {
	data := t.TempDir()
	db, err := bolt.Open(data, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, _, err = runCLI(t, "serve", "--addr", "127.0.0.1:0", "--data", data)
	if err == nil || !strings.Contains(err.Error(), "another hotzone process is using the data directory") || !strings.Contains(err.Error(), "--data") {
		t.Errorf("serve on a data dir in use = %v, want it to name the other process and --data", err)
	}
}

// TestServeDebugAddr: --debug-addr serves Go's profiles on a listener of
// its own; the API's address never does.
func TestServeDebugAddr(t *testing.T) {
	base, out, stop := startServer(t, nil, "--data", t.TempDir(), "--debug-addr", "127.0.0.1:0")
	defer stop()
	m := regexp.MustCompile(`profiles on (http://\S+/debug/pprof/)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no profiles line in:\n%s", out)
	}
	resp, err := http.Get(m[1] + "heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Errorf("GET heap profile = %d %.80q", resp.StatusCode, body)
	}
	resp, err = http.Get(base + "/debug/pprof/heap")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the API's address answered /debug/pprof/heap with %d, want 404", resp.StatusCode)
	}
}
