package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3"; without it the module's version is
// used, "(devel)" for a build from a checkout.
var version = ""

// versionLine is what `hotzone version` prints: the release, the commit
// the binary was built from (with the build's time, and "modified" when
// the tree had uncommitted changes), and the Go toolchain and platform.
func versionLine() string {
	v, commit, when, modified := version, "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	line := "hotzone " + v
	if commit != "" {
		line += " commit " + commit[:min(12, len(commit))]
		if when != "" {
			line += " " + when
		}
		if modified {
			line += " (modified)"
		}
	}
	return fmt.Sprintf("%s %s %s/%s", line, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func printVersion(w io.Writer) {
	fmt.Fprintln(w, versionLine())
}
