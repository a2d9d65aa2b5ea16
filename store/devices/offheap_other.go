//go:build !linux

package devices

import "unsafe"

// mapAnon has no mapping to offer here: records stay on the heap.
func mapAnon(int) unsafe.Pointer { return nil }

func dropPages(unsafe.Pointer, int) {}

func adviseHuge(unsafe.Pointer, int) {}
