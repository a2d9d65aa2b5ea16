package view

import (
	"sync"
	"sync/atomic"

	"github.com/hotzone/hotzone"
)

// Brands is every brand and its policy. Every ping reads a policy, so
// reads take no lock: a sync.Map of brands (read without writing to
// shared memory once a brand is known), each policy behind an atomic
// pointer.
type Brands struct {
	m sync.Map // brand id -> *brandEntry
	n atomic.Int64
}

type brandEntry struct {
	brand  hotzone.Brand
	policy atomic.Pointer[hotzone.Policy]
}

// NewBrands returns an empty Brands.
func NewBrands() *Brands { return &Brands{} }

// Put adds or replaces a brand with its policy.
func (b *Brands) Put(br hotzone.Brand, p hotzone.Policy) {
	e := &brandEntry{brand: br}
	e.policy.Store(&p)
	if _, loaded := b.m.Swap(br.ID, e); !loaded {
		b.n.Add(1)
	}
}

// SetPolicy replaces a known brand's policy.
func (b *Brands) SetPolicy(brandID string, p hotzone.Policy) {
	if v, ok := b.m.Load(brandID); ok {
		v.(*brandEntry).policy.Store(&p)
	}
}

// Brand returns a brand.
func (b *Brands) Brand(brandID string) (hotzone.Brand, bool) {
	if v, ok := b.m.Load(brandID); ok {
		return v.(*brandEntry).brand, true
	}
	return hotzone.Brand{}, false
}

// Policy returns a brand's policy. Its QuietHours is shared: a policy is
// changed by replacing it (SetPolicy), never in place.
func (b *Brands) Policy(brandID string) (hotzone.Policy, bool) {
	if v, ok := b.m.Load(brandID); ok {
		return *v.(*brandEntry).policy.Load(), true
	}
	return hotzone.Policy{}, false
}

// IDs returns every brand's id, in no order.
func (b *Brands) IDs() []string {
	var out []string
	b.m.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	return out
}

// Len is how many brands there are.
func (b *Brands) Len() int { return int(b.n.Load()) }
