package wal

import (
	"os"
	"syscall"
)

// datasync writes the file's data (and no more metadata than reading it
// back needs): the file was grown ahead, so that is its pages.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
