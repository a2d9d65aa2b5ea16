package kvlog

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func replay(t *testing.T, l *Log) map[string]string {
	t.Helper()
	m := map[string]string{}
	if err := l.Replay(func(k, v []byte) {
		if len(v) == 0 {
			delete(m, string(k))
		} else {
			m[string(k)] = string(v)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

func appendKV(t *testing.T, l *Log, kv ...string) {
	t.Helper()
	var b Block
	for i := 0; i+1 < len(kv); i += 2 {
		b.Add([]byte(kv[i]), []byte(kv[i+1]))
	}
	if err := l.Append(&b); err != nil {
		t.Fatal(err)
	}
}

// TestLogCompactReplay: the last value of a key wins, an empty value
// deletes, a compaction keeps everything, and a torn last block is cut.
func TestLogCompactReplay(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, "p")
	if err != nil {
		t.Fatal(err)
	}
	appendKV(t, l, "a", "1", "b", "2")
	appendKV(t, l, "a", "3", "b", "")
	if err := l.Compact(func(yield func(k, v []byte)) { yield([]byte("a"), []byte("3")) }); err != nil {
		t.Fatal(err)
	}
	appendKV(t, l, "c", "4")
	l.Close()
	// A torn block after the good ones.
	f, _ := os.OpenFile(filepath.Join(dir, "p.log"), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("HZK1\x10\x00\x00\x00garbage"))
	f.Close()
	l, err = Open(dir, "p")
	if err != nil {
		t.Fatal(err)
	}
	if got := replay(t, l); fmt.Sprint(got) != "map[a:3 c:4]" {
		t.Errorf("replayed %v, want a:3 c:4", got)
	}
	appendKV(t, l, "d", "5") // after the cut
	l.Close()
	l, _ = Open(dir, "p")
	defer l.Close()
	if got := replay(t, l); fmt.Sprint(got) != "map[a:3 c:4 d:5]" {
		t.Errorf("replayed after appending past a cut block: %v, want a:3 c:4 d:5", got)
	}
}

// TestCrashBetweenRenameAndTruncate: log blocks a compaction covered,
// left behind by a crash before the log was emptied, are not applied
// over the snapshot's newer values.
func TestCrashBetweenRenameAndTruncate(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, "p")
	appendKV(t, l, "a", "old")
	appendKV(t, l, "a", "new")
	stale, _ := os.ReadFile(filepath.Join(dir, "p.log"))
	if err := l.Compact(func(yield func(k, v []byte)) { yield([]byte("a"), []byte("newest")) }); err != nil {
		t.Fatal(err)
	}
	l.Close()
	// As if the truncation never happened.
	if err := os.WriteFile(filepath.Join(dir, "p.log"), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	l, _ = Open(dir, "p")
	if got := replay(t, l); got["a"] != "newest" {
		t.Errorf("a = %q after replay, want the snapshot's newest", got["a"])
	}
	appendKV(t, l, "a", "after")
	l.Close()
	l, _ = Open(dir, "p")
	defer l.Close()
	if got := replay(t, l); got["a"] != "after" {
		t.Errorf("a = %q, want the block appended after the replay", got["a"])
	}
	// An empty snapshot still knows what it covers.
	if err := l.Compact(func(func(k, v []byte)) {}); err != nil {
		t.Fatal(err)
	}
}

// FuzzReplay: whatever the files hold, Replay never panics, and answers
// an error or the records of whole blocks.
func FuzzReplay(f *testing.F) {
	var b Block
	b.Add([]byte("k"), []byte("v"))
	f.Add(b.frame(1), []byte{})
	f.Add([]byte("HZK1\xff\xff\xff\xff"), b.frame(3))
	f.Fuzz(func(t *testing.T, logBytes, snapBytes []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "p.log"), logBytes, 0o600)
		if len(snapBytes) > 0 {
			os.WriteFile(filepath.Join(dir, "p.snap"), snapBytes, 0o600)
		}
		l, err := Open(dir, "p")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		_ = l.Replay(func(k, v []byte) {})
	})
}
