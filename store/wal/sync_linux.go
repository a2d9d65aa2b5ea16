package wal

import (
	"errors"
	"os"
	"syscall"
)

// openData opens the journal for writes that are durable when they
// return: O_DSYNC makes each write one device write with its flush,
// where a write and an fdatasync are two calls and two waits. O_DIRECT
// skips the page cache the journal is never read from while running; a
// file system that refuses it (tmpfs) gets O_DSYNC alone.
func openData(path string) (f *os.File, direct bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_DSYNC|syscall.O_DIRECT, 0o600)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, syscall.EINVAL) {
		return nil, false, err
	}
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_DSYNC, 0o600)
	return f, false, err
}

// asyncWriter is AIO over f (aio_linux.go), or an error when the system
// has none to give.
func asyncWriter(f *os.File) (groupWriter, error) {
	w, err := newAIOWriter(f)
	if err != nil {
		return nil, err
	}
	return w, nil
}
