//go:build !linux

package wal

import (
	"errors"
	"os"
)

// openData opens the journal for writes that are durable when they
// return, as far as this system's O_SYNC goes.
func openData(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_SYNC, 0o600)
	return f, false, err
}

// asyncWriter: no asynchronous writer here; groups are written plainly.
func asyncWriter(*os.File) (groupWriter, error) {
	return nil, errors.New("wal: no asynchronous I/O on this system")
}
