package view

import (
	"sync"

	"github.com/hotzone/hotzone"
)

// Brands is every brand and its policy.
type Brands struct {
	mu sync.RWMutex
	m  map[string]*brandEntry
}

type brandEntry struct {
	brand  hotzone.Brand
	policy hotzone.Policy
}

// NewBrands returns an empty Brands.
func NewBrands() *Brands { return &Brands{m: map[string]*brandEntry{}} }

// Put adds or replaces a brand with its policy.
func (b *Brands) Put(br hotzone.Brand, p hotzone.Policy) {
	b.mu.Lock()
	b.m[br.ID] = &brandEntry{brand: br, policy: p}
	b.mu.Unlock()
}

// SetPolicy replaces a known brand's policy.
func (b *Brands) SetPolicy(brandID string, p hotzone.Policy) {
	b.mu.Lock()
	if e := b.m[brandID]; e != nil {
		e.policy = p
	}
	b.mu.Unlock()
}

// Brand returns a brand.
func (b *Brands) Brand(brandID string) (hotzone.Brand, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if e := b.m[brandID]; e != nil {
		return e.brand, true
	}
	return hotzone.Brand{}, false
}

// Policy returns a brand's policy. Its QuietHours is shared: a policy is
// changed by replacing it (SetPolicy), never in place.
func (b *Brands) Policy(brandID string) (hotzone.Policy, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if e := b.m[brandID]; e != nil {
		return e.policy, true
	}
	return hotzone.Policy{}, false
}

// IDs returns every brand's id, in no order.
func (b *Brands) IDs() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]string, 0, len(b.m))
	for id := range b.m {
		out = append(out, id)
	}
	return out
}

// Len is how many brands there are.
func (b *Brands) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.m)
}
