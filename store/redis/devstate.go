package redis

import (
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/hotzone/hotzone"
)

// devState is what a decision about a device is made on, as this node
// last read or wrote it: the record (decoded) and its version, the
// queue history, and the device's entry for one event (nid "" for
// none). A state is never changed once made: a newer one replaces it.
type devState struct {
	dev  hotzone.Device
	rv   string
	hist string
	// The entry for event ev as stored: its id and JSON.
	ev, nid, body string
}

// entryFor answers the device's entry for an event as this state knows
// it; for another event it takes none, which decide checks.
func (s *devState) entryFor(eventID string) (nid, body string) {
	if s.ev == eventID {
		return s.nid, s.body
	}
	return "", ""
}

// stateCache keeps devStates, so that a decision needs no read first:
// decide checks the record's version, the history and the entry it was
// made on, and answers the device's state as stored when any of them
// moved on (another node's decision or registration), so a stale state
// costs the read it would have cost anyway, and never a wrong
// decision. Nothing but a decision that writes is made on a state from
// here; one that would write nothing reads the device first.
//
// It holds at most about its capacity: each part keeps two generations,
// and when the newer is full the older goes, so the devices decided or
// seen most recently stay.
type stateCache struct {
	seed  maphash.Seed
	half  int // a generation's bound, per part
	parts [stateParts]stateGen
}

const stateParts = 64

type stateGen struct {
	mu       sync.Mutex
	cur, old map[string]*devState
}

// init sizes the cache for about capacity devices; 0 turns it off.
func (c *stateCache) init(capacity int) {
	c.seed = maphash.MakeSeed()
	c.half = capacity / stateParts / 2
	for i := range c.parts {
		c.parts[i].cur = map[string]*devState{}
	}
}

// on tells whether the cache keeps anything, so that a caller need not
// decode a state only to have it dropped.
func (c *stateCache) on() bool { return c.half > 0 }

func (c *stateCache) part(k string) *stateGen {
	return &c.parts[maphash.String(c.seed, k)%stateParts]
}

// get answers a device's state, or nil.
func (c *stateCache) get(brandID, deviceID string) *devState {
	if !c.on() {
		return nil
	}
	k := brandID + "\x00" + deviceID
	p := c.part(k)
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.cur[k]; ok {
		return s
	}
	s, ok := p.old[k]
	if ok {
		p.setLocked(c.half, k, s)
	}
	return s
}

// put keeps a device's state.
func (c *stateCache) put(brandID, deviceID string, s *devState) {
	if !c.on() {
		return
	}
	k := brandID + "\x00" + deviceID
	p := c.part(k)
	p.mu.Lock()
	p.setLocked(c.half, k, s)
	p.mu.Unlock()
}

// keep decodes and keeps a device's state as a registration or its
// first ping read it (record JSON, version, history; no entry), unless
// the cache is off: then nothing is decoded only to be dropped. A record
// that does not decode is not kept; the decision reads it then.
func (c *stateCache) keep(brandID, deviceID, rec, rv, hist string) {
	if !c.on() {
		return
	}
	if st, err := stateFrom(brandID, rec, rv, hist, "", "", ""); err == nil && st != nil {
		c.put(brandID, deviceID, st)
	}
}

func (p *stateGen) setLocked(half int, k string, s *devState) {
	if _, ok := p.cur[k]; !ok && len(p.cur) >= half {
		p.old, p.cur = p.cur, make(map[string]*devState, half)
	}
	p.cur[k] = s
}

// forget drops a device's state (erased, or its record rewritten here
// without being read back).
func (c *stateCache) forget(brandID, deviceID string) {
	if !c.on() {
		return
	}
	k := brandID + "\x00" + deviceID
	p := c.part(k)
	p.mu.Lock()
	delete(p.cur, k)
	delete(p.old, k)
	p.mu.Unlock()
}

// stateFrom decodes a device's state as read: record JSON ("" for an
// unknown device: nil), version, history, and its entry for an event.
func stateFrom(brandID, rec, rv, hist, eventID, nid, body string) (*devState, error) {
	if rec == "" {
		return nil, nil
	}
	s := &devState{rv: rv, hist: hist, ev: eventID, nid: nid, body: body}
	if err := decodeDevice(rec, &s.dev); err != nil {
		return nil, err
	}
	s.dev.BrandID = brandID
	return s, nil
}

// stateLen is how many values stateOf answers in Lua (see stateLua).
const stateLen = 5

// stateOf reads a device's state for an event as stateLua's stateOf
// answers it.
func stateOf(brandID, eventID, deviceID string, v []string) (*devState, error) {
	if len(v) != stateLen {
		return nil, fmt.Errorf("redis: device %s: state of %d values, want %d", deviceID, len(v), stateLen)
	}
	s, err := stateFrom(brandID, v[0], v[1], v[2], eventID, v[3], v[4])
	if err != nil {
		return nil, fmt.Errorf("redis: device %s: %w", deviceID, err)
	}
	return s, nil
}
