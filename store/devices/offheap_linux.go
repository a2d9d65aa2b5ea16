package devices

import (
	"syscall"
	"unsafe"
)

// mapAnon maps n bytes of private anonymous memory: zeroed, and resident
// only once touched.
func mapAnon(n int) unsafe.Pointer {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil || len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}

// dropPages gives a region's pages back to the system; the mapping stays
// and reads zeros until written again.
func dropPages(p unsafe.Pointer, n int) {
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, uintptr(p), uintptr(n), syscall.MADV_DONTNEED)
}

// adviseHuge asks for transparent huge pages over [p, p+n): a hint,
// ignored where THP is off.
func adviseHuge(p unsafe.Pointer, n int) {
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, uintptr(p), uintptr(n), madvHugepage)
}

const madvHugepage = 14 // MADV_HUGEPAGE
