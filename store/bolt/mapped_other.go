//go:build !linux

package bolt

// releaseMapped does nothing where madvise is not at hand; see
// mapped_linux.go.
func (db *DB) releaseMapped() {}
