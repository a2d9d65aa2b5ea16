package bolt

import (
	"syscall"

	bbolt "go.etcd.io/bbolt"
)

// releaseMapped tells the kernel that the pages of the database file this
// process has read through bbolt's memory map need not stay mapped. They
// stay in the page cache (the next read maps them again without touching
// the disk); they only stop counting as this process's resident memory,
// where opening (which reads every device) and registrations would
// otherwise leave the whole file. bbolt reads through the map and writes
// with write(2), so nothing is lost. It runs inside a read transaction:
// bbolt remaps only under its write lock, which a reader holds off.
func (db *DB) releaseMapped() {
	_ = db.bolt.View(func(tx *bbolt.Tx) error {
		info := db.bolt.Info()
		size := int(tx.Size())
		if info == nil || info.Data == 0 || size <= 0 {
			return nil
		}
		// The map is bbolt's, outside Go's heap: its address goes to the
		// kernel as it is.
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, info.Data, uintptr(size), syscall.MADV_DONTNEED); errno != 0 {
			return errno
		}
		return nil
	})
}
