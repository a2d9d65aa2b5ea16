package redis

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/geo"
)

// positions are the pings this node holds behind: written every
// FlushInterval in one pipelined batch, so a ping that triggers nothing
// costs no round trip of its own. A crash loses what is held (at most
// one interval), as the contract allows.
type positions struct {
	mu   sync.Mutex
	held map[devRef]*heldPos
}

type devRef struct{ brand, device string }

type heldPos struct {
	last hotzone.Position
	qual *hotzone.Position
}

func (ps *positions) init() { ps.held = map[devRef]*heldPos{} }

// record keeps p unless a newer report is held.
func (ps *positions) record(brandID, deviceID string, p hotzone.Position, qualifying bool) {
	ref := devRef{brandID, deviceID}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	h := ps.held[ref]
	if h == nil {
		h = &heldPos{last: p}
		ps.held[ref] = h
	} else if p.TS.After(h.last.TS) {
		h.last = p
	}
	if qualifying && (h.qual == nil || p.TS.After(h.qual.TS)) {
		q := p
		h.qual = &q
	}
}

// drop forgets what is held for an erased device.
func (ps *positions) drop(brandID, deviceID string) {
	ps.mu.Lock()
	delete(ps.held, devRef{brandID, deviceID})
	ps.mu.Unlock()
}

// overlay answers the stored position with what is held, where newer.
func (ps *positions) overlay(brandID, deviceID string, stored *hotzone.DevicePosition) *hotzone.DevicePosition {
	ps.mu.Lock()
	h := ps.held[devRef{brandID, deviceID}]
	var cp heldPos
	if h != nil {
		cp = *h
	}
	ps.mu.Unlock()
	if h == nil {
		return stored
	}
	out := &hotzone.DevicePosition{Last: cp.last}
	if stored != nil {
		*out = *stored
		if cp.last.TS.After(stored.Last.TS) {
			out.Last = cp.last
		}
	}
	if cp.qual != nil && (out.Qualifying == nil || cp.qual.TS.After(out.Qualifying.TS)) {
		q := *cp.qual
		out.Qualifying = &q
	}
	return out
}

// brandQual is the qualifying positions held for a brand's devices.
func (ps *positions) brandQual(brandID string) map[string]hotzone.Position {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := map[string]hotzone.Position{}
	for ref, h := range ps.held {
		if ref.brand == brandID && h.qual != nil {
			out[ref.device] = *h.qual
		}
	}
	return out
}

// take hands over everything held.
func (ps *positions) take() map[devRef]*heldPos {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := ps.held
	ps.held = make(map[devRef]*heldPos, len(out))
	return out
}

// putPosition stores a device's positions where they are newer, and
// only for a device that exists. KEYS[1]: the device hash. ARGV: last,
// its nanos, qualifying ("" for none), its nanos. Answers the old
// qualifying position when the qualifying one changed, else nil.
var putPosition = valkey.NewLuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if ARGV[2] > (redis.call('HGET', KEYS[1], 'lts') or '') then
  redis.call('HSET', KEYS[1], 'last', ARGV[1], 'lts', ARGV[2])
end
if ARGV[3] ~= '' then
  local old = redis.call('HGET', KEYS[1], 'qual') or ''
  if ARGV[4] > (redis.call('HGET', KEYS[1], 'qts') or '') then
    redis.call('HSET', KEYS[1], 'qual', ARGV[3], 'qts', ARGV[4])
    return {old}
  end
end
return false`)

// flushLoop writes what is held behind every FlushInterval until ctx
// ends (Close flushes the rest).
func (db *DB) flushLoop(ctx context.Context) {
	t := time.NewTicker(db.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			db.stats.observe(db.flush(ctx))
		}
	}
}

// FlushPositions writes the positions and key uses held behind now.
func (db *DB) FlushPositions(ctx context.Context) error { return db.flush(ctx) }

// flush writes held positions, then moves each changed qualifying
// position between grid cells, then the keys' last uses. What fails is
// held again for the next flush.
func (db *DB) flush(ctx context.Context) error {
	held := db.pos.take()
	if len(held) > 0 {
		refs := make([]devRef, 0, len(held))
		calls := make([]valkey.LuaExec, 0, len(held))
		for ref, h := range held {
			q, qts := "", ""
			if h.qual != nil {
				q, qts = packPos(*h.qual), nanos(h.qual.TS)
			}
			refs = append(refs, ref)
			calls = append(calls, valkey.LuaExec{Keys: []string{db.devShard(ref.brand, ref.device) + ":d:" + ref.device},
				Args: []string{packPos(h.last), nanos(h.last.TS), q, qts}})
		}
		rs, _ := db.execMulti(ctx, putPosition, calls)
		var cells []valkey.Completed
		var firstErr error
		for i, r := range rs {
			ref := refs[i]
			h := held[ref]
			old, err := strs(r)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				// Held again unless something newer arrived meanwhile.
				db.pos.record(ref.brand, ref.device, h.last, false)
				if h.qual != nil {
					db.pos.record(ref.brand, ref.device, *h.qual, true)
				}
				continue
			}
			if len(old) == 0 || h.qual == nil {
				continue
			}
			nc := geo.CellOf(h.qual.Point())
			cells = append(cells, db.cmd("HSET", []string{db.cellKey(ref.brand, nc)}, ref.device, packPos(*h.qual)))
			if op, ok := unpackPos(old[0]); ok {
				if oc := geo.CellOf(op.Point()); oc != nc {
					cells = append(cells, db.cmd("HDEL", []string{db.cellKey(ref.brand, oc)}, ref.device))
				}
			}
		}
		if _, err := db.doMulti(ctx, cells); err != nil && firstErr == nil {
			firstErr = err
		}
		if firstErr != nil {
			return fmt.Errorf("redis: write positions: %w", firstErr)
		}
	}
	return db.flushTouches(ctx)
}
