package wal

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

// TestAIOInUse: where the journal's file takes O_DIRECT and the system
// gives an AIO context, groups go through AIO, and what they wrote
// replays after a reopen.
func TestAIOInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	f, direct, err := openData(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !direct {
		t.Skip("this file system refuses O_DIRECT: groups are written plainly")
	}
	if w, err := newAIOWriter(f); errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EAGAIN) {
		t.Skipf("no AIO here: %v", err)
	} else if err == nil {
		w.Close()
	}
	l := open(t, path)
	if _, ok := l.w.(*aioWriter); !ok {
		t.Fatalf("groups are written by %T, want *aioWriter", l.w)
	}
	l.Reset(1)
	for _, p := range []string{"a", "b", "c"} {
		if _, err := l.Append([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	got, _ := replayAll(t, open(t, path), 0)
	if !eq(got, []string{"1:a", "2:b", "3:c"}) {
		t.Fatalf("replayed %v", got)
	}
}

// TestAIOWriteError: a write the kernel refuses (O_DIRECT wants whole
// blocks) is an error, not a hang or a success, and the writer goes on
// working.
func TestAIOWriteError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	f, direct, err := openData(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !direct {
		t.Skip("this file system refuses O_DIRECT")
	}
	w, err := newAIOWriter(f)
	if err != nil {
		t.Skipf("no AIO here: %v", err)
	}
	defer w.Close()
	buf := alignedBuffer(2 * blockSize)
	if _, err := w.WriteAt(buf[:100], 0); err == nil {
		t.Fatal("a 100-byte O_DIRECT write succeeded")
	}
	copy(buf, "hello")
	if n, err := w.WriteAt(buf[:blockSize], blockSize); err != nil || n != blockSize {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2*blockSize || string(got[blockSize:blockSize+5]) != "hello" {
		t.Fatalf("the file holds %d bytes, %q at the block", len(got), got[blockSize:min(len(got), blockSize+5)])
	}
}

// TestPlainWrites: the same journal behaviour with AIO off, the path a
// system without it takes.
func TestPlainWrites(t *testing.T) {
	useAIO = false
	defer func() { useAIO = true }()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{{"AppendReplayReset", TestAppendReplayReset}, {"TornTail", TestTornTail}, {"Grow", TestGrow}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t)
			l := open(t, filepath.Join(t.TempDir(), "j"))
			if _, ok := l.w.(*os.File); !ok {
				t.Fatalf("with AIO off, groups are written by %T", l.w)
			}
		})
	}
}

// TestIOCBLayout: the struct is the kernel's 64 bytes, its fields where
// linux/aio_abi.h puts them.
func TestIOCBLayout(t *testing.T) {
	var cb iocb
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"size", unsafe.Sizeof(cb), 64},
		{"aio_rw_flags", unsafe.Offsetof(cb.rwFlags), 12},
		{"aio_lio_opcode", unsafe.Offsetof(cb.opcode), 16},
		{"aio_fildes", unsafe.Offsetof(cb.fildes), 20},
		{"aio_buf", unsafe.Offsetof(cb.buf), 24},
		{"aio_nbytes", unsafe.Offsetof(cb.nbytes), 32},
		{"aio_offset", unsafe.Offsetof(cb.offset), 40},
		{"aio_flags", unsafe.Offsetof(cb.flags), 56},
		{"aio_resfd", unsafe.Offsetof(cb.resfd), 60},
		{"io_event", unsafe.Sizeof(ioEvent{}), 32},
	} {
		if c.got != c.want {
			t.Errorf("%s at %d, want %d", c.name, c.got, c.want)
		}
	}
}
