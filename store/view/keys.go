package view

import (
	"crypto/subtle"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotzone/hotzone"
)

// Keys is the key table: every valid key by the SHA-256 of its secret.
// Every request authenticates, so a lookup takes no lock (a sync.Map,
// read without writing to shared memory); changes take mu.
type Keys struct {
	mu      sync.Mutex
	m       sync.Map              // [32]byte -> *hotzone.Key
	touched map[[32]byte]struct{} // keys whose last use awaits writing

	// recent finds a secret seen before without SHA-256, which cost a
	// request more than the rest of its authentication: a seeded hash
	// of the secret (the seed is random, so nobody can aim at a slot)
	// to the secret, compared in constant time, and its key. Copied on
	// write (a new secret is rare once the keys in use are in it),
	// filled under mu only while m still holds the key, and dropped
	// whole by every change under mu, so a deleted key is never found
	// through it. It holds secrets that arrive with every request
	// anyway, at most recentMax of them.
	recent atomic.Pointer[map[uint64]recentKey]
	seed   maphash.Seed
}

type recentKey struct {
	secret string
	key    *hotzone.Key
}

// recentMax bounds recent: past it, further keys are hashed each time.
const recentMax = 4096

// NewKeys returns an empty table.
func NewKeys() *Keys {
	return &Keys{touched: map[[32]byte]struct{}{}, seed: maphash.MakeSeed()}
}

func (ks *Keys) load(h [32]byte) *hotzone.Key {
	if v, ok := ks.m.Load(h); ok {
		return v.(*hotzone.Key)
	}
	return nil
}

// Put adds a key. An operator key replaces every other: only one is
// valid at a time.
func (ks *Keys) Put(k *hotzone.Key) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if k.Kind == hotzone.KindOperator {
		ks.m.Range(func(h, v any) bool {
			if v.(*hotzone.Key).Kind == hotzone.KindOperator {
				ks.m.Delete(h)
			}
			return true
		})
	}
	ks.m.Store(k.Hash, k)
	ks.recent.Store(nil)
}

// Delete removes keys by hash and returns the ones it held.
func (ks *Keys) Delete(hashes ...[32]byte) []*hotzone.Key {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var out []*hotzone.Key
	for _, h := range hashes {
		if v, ok := ks.m.LoadAndDelete(h); ok {
			out = append(out, v.(*hotzone.Key))
			delete(ks.touched, h)
		}
	}
	ks.recent.Store(nil)
	return out
}

// Lookup returns the key of a presented secret. The table is keyed by
// the secret's hash, so the lookup never touches the secret; the final
// constant-time compare guards the hash equality itself.
func (ks *Keys) Lookup(secret string) (*hotzone.Key, bool) {
	if secret == "" {
		return nil, false
	}
	sh := maphash.String(ks.seed, secret)
	if m := ks.recent.Load(); m != nil {
		if r, ok := (*m)[sh]; ok && equalSecret(r.secret, secret) {
			return r.key, true
		}
	}
	h := hotzone.HashKey(secret)
	k := ks.load(h)
	if k == nil || subtle.ConstantTimeCompare(k.Hash[:], h[:]) != 1 {
		return nil, false
	}
	ks.remember(sh, secret, k)
	return k, true
}

// remember adds a secret just found to recent, unless the key went
// meanwhile or recent is full.
func (ks *Keys) remember(sh uint64, secret string, k *hotzone.Key) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.load(k.Hash) != k {
		return
	}
	old := ks.recent.Load()
	var n int
	if old != nil {
		n = len(*old)
	}
	if n >= recentMax {
		return
	}
	m := make(map[uint64]recentKey, n+1)
	if old != nil {
		for h, r := range *old {
			m[h] = r
		}
	}
	// Its own copy: the secret is part of a request's header otherwise.
	m[sh] = recentKey{secret: strings.Clone(secret), key: k}
	ks.recent.Store(&m)
}

// equalSecret compares in time that depends on the lengths only.
func equalSecret(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := 0; i < len(a); i++ {
		d |= a[i] ^ b[i]
	}
	return d == 0
}

// Get returns a copy of the key with this hash.
func (ks *Keys) Get(hash [32]byte) (hotzone.Key, bool) {
	ks.mu.Lock() // LastUsedAt is written under it
	defer ks.mu.Unlock()
	if k := ks.load(hash); k != nil {
		return *k, true
	}
	return hotzone.Key{}, false
}

// Active tells whether k is still in the table.
func (ks *Keys) Active(k *hotzone.Key) bool { return ks.load(k.Hash) != nil }

// Touch notes that k was used at now (to the second); TakeTouched hands
// the keys so noted to whoever writes them.
func (ks *Keys) Touch(k *hotzone.Key, now time.Time) {
	now = now.UTC().Truncate(time.Second)
	ks.mu.Lock()
	if held := ks.load(k.Hash); held != nil && now.After(held.LastUsedAt) {
		held.LastUsedAt = now
		ks.touched[k.Hash] = struct{}{}
	}
	ks.mu.Unlock()
}

// TakeTouched returns copies of the keys touched since the last call
// and forgets them; Retouch puts back ones whose write failed.
func (ks *Keys) TakeTouched() []hotzone.Key {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var out []hotzone.Key
	for h := range ks.touched {
		if k := ks.load(h); k != nil {
			out = append(out, *k)
		}
	}
	clear(ks.touched)
	return out
}

// Retouch marks keys touched again.
func (ks *Keys) Retouch(keys []hotzone.Key) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, k := range keys {
		if ks.load(k.Hash) != nil {
			ks.touched[k.Hash] = struct{}{}
		}
	}
}

// Authenticate is Lookup as the storage contract answers it: the key,
// or ErrUnauthorized.
func (ks *Keys) Authenticate(secret string) (*hotzone.Key, error) {
	k, ok := ks.Lookup(secret)
	if !ok {
		return nil, hotzone.ErrUnauthorized
	}
	return k, nil
}
