package wal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func open(t *testing.T, path string) *Log {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// replayAll answers the records past applied, and the last number.
func replayAll(t *testing.T, l *Log, applied uint64) ([]string, uint64) {
	t.Helper()
	var got []string
	last := applied
	err := l.Replay(func(seq uint64, p []byte) error {
		if seq > applied {
			got = append(got, fmt.Sprintf("%d:%s", seq, p))
			last = seq
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return got, last
}

func eq(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestAppendReplayReset: what is appended replays in order after a
// reopen, only past what was applied; after a Reset the file is written
// over from its start and the older pass is not replayed.
func TestAppendReplayReset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	l := open(t, path)
	if _, err := l.Append([]byte("x")); err != ErrBroken {
		t.Fatalf("Append before Reset = %v, want ErrBroken", err)
	}
	l.Reset(1)
	if last, err := l.Append([]byte("a"), []byte("bb")); err != nil || last != 2 {
		t.Fatalf("Append = %d, %v", last, err)
	}
	if last, err := l.Append([]byte("ccc")); err != nil || last != 3 {
		t.Fatalf("Append = %d, %v", last, err)
	}
	l.Close()

	l = open(t, path)
	got, last := replayAll(t, l, 0)
	if want := []string{"1:a", "2:bb", "3:ccc"}; !eq(got, want) || last != 3 {
		t.Fatalf("replay = %v (last %d), want %v", got, last, want)
	}
	if got, last := replayAll(t, l, 2); !eq(got, []string{"3:ccc"}) || last != 3 {
		t.Fatalf("replay after 2 = %v (last %d)", got, last)
	}
	if got, last := replayAll(t, l, 3); len(got) != 0 || last != 3 {
		t.Fatalf("replay after 3 = %v (last %d)", got, last)
	}
	// Applied through 3: a new pass from the start, shorter than the old.
	l.Reset(4)
	if _, err := l.Append([]byte("d")); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = open(t, path)
	if got, last := replayAll(t, l, 3); !eq(got, []string{"4:d"}) || last != 4 {
		t.Fatalf("replay of the second pass = %v (last %d)", got, last)
	}
	// Reset, then a crash before anything is written: the old pass is
	// all applied, nothing replays.
	l.Reset(5)
	l.Close()
	l = open(t, path)
	if got, last := replayAll(t, l, 4); len(got) != 0 || last != 4 {
		t.Fatalf("replay after an empty reset = %v (last %d)", got, last)
	}
}

// TestTornTail: a damaged or cut record ends the replay there; what came
// before it replays.
func TestTornTail(t *testing.T) {
	for _, damage := range []string{"flip a payload byte", "cut the record"} {
		t.Run(damage, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j")
			l := open(t, path)
			l.Reset(1)
			if _, err := l.Append([]byte("first")); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Append([]byte("second")); err != nil {
				t.Fatal(err)
			}
			off := l.Size() - int64(len("second"))
			l.Close()
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if damage == "cut the record" {
				err = f.Truncate(off + 2)
			} else {
				_, err = f.WriteAt([]byte("S"), off)
			}
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			l = open(t, path)
			if got, last := replayAll(t, l, 0); !eq(got, []string{"1:first"}) || last != 1 {
				t.Fatalf("replay = %v (last %d), want the first record only", got, last)
			}
		})
	}
}

// TestGrow: groups larger than the growth step, and many small ones,
// replay whole.
func TestGrow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	l := open(t, path)
	l.Reset(1)
	big := bytes.Repeat([]byte("z"), growStep+100)
	if _, err := l.Append(big); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if _, err := l.Append([]byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	l = open(t, path)
	n, last := 0, uint64(0)
	err := l.Replay(func(seq uint64, p []byte) error {
		if seq == 1 && !bytes.Equal(p, big) {
			t.Fatal("the big record came back different")
		}
		n, last = n+1, seq
		return nil
	})
	if err != nil || n != 1001 || last != 1001 {
		t.Fatalf("replayed %d records, last %d, %v", n, last, err)
	}
	if st, _ := os.Stat(path); st.Size()%growStep != 0 {
		t.Errorf("file size %d is not a multiple of the growth step", st.Size())
	}
}

// FuzzReplay: whatever bytes the file holds, replay answers without
// panicking, and only records that were written whole come back.
func FuzzReplay(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 64))
	dir := f.TempDir()
	l, err := Open(filepath.Join(dir, "seed"))
	if err != nil {
		f.Fatal(err)
	}
	l.Reset(1)
	if _, err := l.Append([]byte("a"), []byte("bb")); err != nil {
		f.Fatal(err)
	}
	l.Close()
	seed, _ := os.ReadFile(filepath.Join(dir, "seed"))
	f.Add(seed[:64])
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "j")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var prev uint64
		first := true
		err = l.Replay(func(seq uint64, p []byte) error {
			if (!first && seq != prev+1) || len(p) == 0 || len(p) > len(data) {
				t.Fatalf("record %d after %d, %d bytes", seq, prev, len(p))
			}
			first, prev = false, seq
			return nil
		})
		if err != nil {
			t.Fatalf("Replay of a file's bytes: %v", err)
		}
	})
}
