package bolt

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/hotzone/hotzone/store/wal"
)

// Registrations are written ahead to a journal (store/wal) instead of
// committed to bbolt one group at a time. A bbolt commit of a few
// devices rewrites every page on the way to each (and syncs twice); a
// journal group is one durable write of the changes. The changes stay in
// memory (the overlay) until a checkpoint applies them to bbolt in one
// transaction; opening applies what the journal holds before anything
// else.
//
// There are two journal files. A checkpoint freezes the overlay, turns
// new groups to the other file (started over), and applies the frozen
// part while registrations go on; once that commits, the first file holds
// nothing bbolt lacks, and it is the one the next checkpoint starts over.
//
// The overlay covers the devices and tokens buckets and nothing else.
// Every reader of those buckets looks in it first; every writer of them
// goes through the journal, or applies the overlay in its own bbolt
// transaction (devUpdate) so that bbolt is current when it writes.

// JournalFiles are the journal's two files in the data directory.
var JournalFiles = [2]string{"devices-1.journal", "devices-2.journal"}

const (
	// checkpointEntries is the overlay size that brings a checkpoint
	// before the next flush interval does.
	checkpointEntries = 8192
	// lingerMax bounds how long a group waits for more (journalLoop):
	// a few times a journal write's latency here (about 120 µs).
	lingerMax = 300 * time.Microsecond
)

// metaJournalApplied is the number of the last journal record the bbolt
// file holds (or that was given up, unwritten).
var metaJournalApplied = []byte("journal_applied")

// A journal record is a change set: for each change, its bucket
// (classDevice or classToken), whether it puts or deletes, the key and,
// for a put, the value, lengths as uvarints.
const (
	classDevice = 'd'
	classToken  = 't'
	changeDel   = 0
	changePut   = 1
)

type journal struct {
	logs   [2]*wal.Log
	active int // the file groups go to; under writeMu
	// writeMu: one writer of the devices and tokens buckets at a time: a
	// journal group, a checkpoint's switch of files, or a writer that
	// goes to bbolt itself. ckMu: one checkpoint (or such writer) at a
	// time; taken before writeMu.
	writeMu sync.Mutex
	ckMu    sync.Mutex
	// stale: a checkpoint failed, so the inactive file holds records
	// bbolt lacks (they are back in the overlay); the next checkpoint
	// applies everything without switching files. Under ckMu.
	stale bool

	mu     sync.RWMutex
	over   map[string][]byte // class+key -> value; nil: deleted
	frozen map[string][]byte // what a checkpoint is applying, or nil
	n      atomic.Int64      // len(over)+len(frozen), read without mu

	qmu     sync.Mutex
	pending []*journalCall
	running bool
	spare   []*journalCall    // the last group's slice, for the next
	group   map[string][]byte // writeGroup's, under writeMu
	want    int               // arrived is sent when pending reaches it
	arrived chan struct{}     // buffered 1

	// calls are reused: a call is its caller's again once its error is
	// received, as writeGroup sends it last. The pool is the journal's,
	// not the process's: a channel made inside a testing/synctest bubble
	// must not be used from another.
	calls sync.Pool

	checkpointing atomic.Bool    // one started by a group is running
	bg            sync.WaitGroup // and Close waits for it
}

type journalCall struct {
	fn  func(*devTx) error
	err chan error
}

func openJournal(dir string) (*journal, error) {
	j := &journal{over: make(map[string][]byte, checkpointEntries), group: map[string][]byte{}, arrived: make(chan struct{}, 1)}
	for i, name := range JournalFiles {
		log, err := wal.Open(filepath.Join(dir, name))
		if err != nil {
			if i == 1 {
				_ = j.logs[0].Close()
			}
			return nil, err
		}
		j.logs[i] = log
	}
	return j, nil
}

func (j *journal) close() error { return errors.Join(j.logs[0].Close(), j.logs[1].Close()) }

// overKey is class+key in buf.
func overKey(buf []byte, class byte, key []byte) []byte {
	return append(append(buf[:0], class), key...)
}

// lookup answers the overlay's value for key: ok says the overlay has
// it, and a nil value that it is deleted.
func (j *journal) lookup(class byte, key []byte) (v []byte, ok bool) {
	if j.n.Load() == 0 {
		return nil, false
	}
	var buf [160]byte
	k := overKey(buf[:], class, key)
	j.mu.RLock()
	if v, ok = j.over[string(k)]; !ok && j.frozen != nil {
		v, ok = j.frozen[string(k)]
	}
	j.mu.RUnlock()
	return v, ok
}

func (j *journal) count() { j.n.Store(int64(len(j.over) + len(j.frozen))) }

// deviceRecord reads a device's record outside any transaction; the
// bytes are the caller's. The overlay is looked in before the read-only
// transaction begins: a checkpoint may commit and empty the overlay in
// between, and a transaction begun before that commit would find the
// record in neither.
func (db *DB) deviceRecord(key []byte) ([]byte, error) {
	if v, ok := db.journal.lookup(classDevice, key); ok {
		return v, nil // never changed in place: a change replaces it
	}
	var out []byte
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketDevices).Get(key); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

// devTx is a journal group's view of the devices and tokens buckets
// while one call runs: its own changes, then the group's, then the
// overlay's, then bbolt's.
type devTx struct {
	db    *DB
	btx   *bbolt.Tx
	group map[string][]byte
	mine  []change
}

type change struct {
	key string // class+key
	val []byte // nil: delete
}

func (t *devTx) get(class byte, key []byte) []byte {
	var buf [160]byte
	k := overKey(buf[:], class, key)
	for i := len(t.mine) - 1; i >= 0; i-- {
		if t.mine[i].key == string(k) {
			return t.mine[i].val
		}
	}
	if v, ok := t.group[string(k)]; ok {
		return v
	}
	if v, ok := t.db.journal.lookup(class, key); ok {
		return v
	}
	b := bucketDevices
	if class == classToken {
		b = bucketTokens
	}
	return t.btx.Bucket(b).Get(key)
}

func (t *devTx) put(class byte, key, val []byte) {
	t.mine = append(t.mine, change{string(overKey(nil, class, key)), val})
}

func (t *devTx) del(class byte, key []byte) {
	t.mine = append(t.mine, change{string(overKey(nil, class, key)), nil})
}

func encodeChanges(b []byte, cs []change) []byte {
	for _, c := range cs {
		op := byte(changePut)
		if c.val == nil {
			op = changeDel
		}
		b = append(b, c.key[0], op)
		b = binary.AppendUvarint(b, uint64(len(c.key)-1))
		b = append(b, c.key[1:]...)
		if c.val != nil {
			b = binary.AppendUvarint(b, uint64(len(c.val)))
			b = append(b, c.val...)
		}
	}
	return b
}

var errBadRecord = errors.New("store: damaged journal record")

// decodeChanges calls fn with each change of a journal record; the
// slices are p's.
func decodeChanges(p []byte, fn func(class, op byte, key, val []byte) error) error {
	for len(p) > 0 {
		if len(p) < 2 {
			return errBadRecord
		}
		class, op := p[0], p[1]
		if class != classDevice && class != classToken || op != changeDel && op != changePut {
			return errBadRecord
		}
		p = p[2:]
		key, rest, ok := lenPrefixed(p)
		if !ok || len(key) == 0 {
			return errBadRecord
		}
		p = rest
		var val []byte
		if op == changePut {
			if val, p, ok = lenPrefixed(p); !ok || len(val) == 0 {
				return errBadRecord
			}
		}
		if err := fn(class, op, key, val); err != nil {
			return err
		}
	}
	return nil
}

func lenPrefixed(p []byte) (field, rest []byte, ok bool) {
	n, w := binary.Uvarint(p)
	if w <= 0 || n > uint64(len(p)-w) {
		return nil, nil, false
	}
	return p[w : w+int(n)], p[w+int(n):], true
}

// applyChange writes one change to tx's buckets.
func applyChange(tx *bbolt.Tx, class, op byte, key, val []byte) error {
	b := tx.Bucket(bucketDevices)
	if class == classToken {
		b = tx.Bucket(bucketTokens)
	}
	if op == changeDel {
		return b.Delete(key)
	}
	return b.Put(key, val)
}

// devGroup runs fn in a journal group and returns once the group's
// changes are durable in the journal and visible to readers, or failed.
// fn reads and writes through its devTx only; it runs once, and what it
// wrote counts only if it returns nil.
func (db *DB) devGroup(fn func(*devTx) error) error {
	j := db.journal
	c, _ := j.calls.Get().(*journalCall)
	if c == nil {
		c = &journalCall{err: make(chan error, 1)}
	}
	c.fn = fn
	j.qmu.Lock()
	j.pending = append(j.pending, c)
	if j.want > 0 && len(j.pending) >= j.want {
		j.want = 0
		select {
		case j.arrived <- struct{}{}:
		default:
		}
	}
	start := !j.running
	j.running = true
	j.qmu.Unlock()
	if start {
		go db.journalLoop()
	}
	err := <-c.err
	c.fn = nil
	j.calls.Put(c)
	return err
}

// journalLoop writes the groups that gather while one is written, as
// the committer does for bbolt. After a group of more than one it
// lingers: the next is written once as many have arrived as the last
// held, or lingerMax after, whichever is first. Each write costs the
// same whatever it holds (on the VM measured, some 30 µs of CPU in the
// kernel for the write and its flush, and thread hand-offs around the
// wait), so under many concurrent registrations fewer, fuller groups
// leave more CPU to answer them; a lone client never waits, and k
// clients in step wait only for each other.
func (db *DB) journalLoop() {
	j := db.journal
	last := 0
	var timer *time.Timer
	for {
		j.qmu.Lock()
		if last > 1 && len(j.pending) < last {
			j.want = last
			select {
			case <-j.arrived: // a signal left from a group already taken
			default:
			}
			j.qmu.Unlock()
			if timer == nil {
				timer = time.NewTimer(lingerMax)
			} else {
				timer.Reset(lingerMax)
			}
			select {
			case <-j.arrived:
			case <-timer.C:
			}
			j.qmu.Lock()
			j.want = 0
		}
		calls := j.pending
		if len(calls) == 0 {
			j.running = false
			j.qmu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return
		}
		// Swapped only here: pending and spare never share an array.
		j.pending, j.spare = j.spare[:0], nil
		j.qmu.Unlock()
		last = len(calls)
		db.writeGroup(calls)
		clear(calls)
		j.spare = calls
		if j.n.Load() >= checkpointEntries && j.checkpointing.CompareAndSwap(false, true) {
			// Apart, so groups go on while it applies. A failure here is
			// the write-behind loop's to report: it checkpoints each
			// interval.
			j.bg.Add(1)
			go func() {
				defer j.bg.Done()
				defer j.checkpointing.Store(false)
				_ = db.Checkpoint()
			}()
		}
	}
}

func (db *DB) writeGroup(calls []*journalCall) {
	j := db.journal
	errs := make([]error, len(calls))
	j.writeMu.Lock()
	err := func() error {
		// Begun with writeMu held: no checkpoint commit changes what
		// this group reads in bbolt without the same keys being in the
		// frozen overlay until writeMu is next free.
		btx, err := db.bolt.Begin(false)
		if err != nil {
			return err
		}
		defer func() { _ = btx.Rollback() }()
		// The group map is the journal's, reused: one writeGroup at a
		// time holds writeMu.
		clear(j.group)
		t := &devTx{db: db, btx: btx, group: j.group}
		var payloads [][]byte
		for i, c := range calls {
			t.mine = t.mine[:0]
			if errs[i] = c.fn(t); errs[i] != nil || len(t.mine) == 0 {
				continue
			}
			payloads = append(payloads, encodeChanges(nil, t.mine))
			for _, ch := range t.mine {
				t.group[ch.key] = ch.val
			}
		}
		if len(payloads) == 0 {
			return nil
		}
		if _, err := j.logs[j.active].Append(payloads...); err != nil {
			return err
		}
		j.mu.Lock()
		for k, v := range t.group {
			j.over[k] = v
		}
		j.count()
		j.mu.Unlock()
		return nil
	}()
	j.writeMu.Unlock()
	if err != nil {
		err = fmt.Errorf("store: journal: %w", err)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	for i, c := range calls {
		c.err <- errs[i]
	}
	if err != nil {
		// The journal takes nothing more until what it holds is in
		// bbolt and it starts over; if that fails too, the next
		// checkpoint tries again, and registrations fail until then.
		_ = db.devUpdate(nil)
	}
}

// devUpdate runs fn in a bbolt write transaction after applying the
// overlay in it, so fn finds bbolt current and may write the devices
// and tokens buckets itself; the journal then starts over. It holds off
// registrations until it commits.
func (db *DB) devUpdate(fn func(*bbolt.Tx) error) error {
	j := db.journal
	j.ckMu.Lock()
	defer j.ckMu.Unlock()
	j.writeMu.Lock()
	defer j.writeMu.Unlock()
	log := j.logs[j.active]
	issued := log.Next() - 1 // every number given out is applied or void
	tx, err := db.bolt.Begin(true)
	if err != nil {
		return err
	}
	if err := db.applyOverlayTx(tx, j.over, issued, fn); err != nil {
		_ = tx.Rollback()
		return err
	}
	// The overlay's readers wait from the commit until it is cleared: a
	// transaction that follows this one must not find in the overlay
	// what fn removed (an erased device, which a decision would then
	// log for). fn ran before, so it may read the overlay itself.
	j.mu.Lock()
	err = tx.Commit()
	if err == nil {
		clear(j.over)
		j.count()
	}
	j.mu.Unlock()
	if err != nil {
		return err
	}
	log.Reset(issued + 1)
	j.stale = false // the other file's records were in the overlay too
	return nil
}

// Checkpoint applies what the journal holds to the bbolt file. Groups go
// on meanwhile, to the other file. The write-behind loop calls it each
// interval, and a journal group when the overlay has grown; Close calls
// it last.
func (db *DB) Checkpoint() error {
	j := db.journal
	j.ckMu.Lock()
	if j.stale {
		j.ckMu.Unlock()
		return db.devUpdate(nil)
	}
	defer j.ckMu.Unlock()
	j.writeMu.Lock()
	log := j.logs[j.active]
	if len(j.over) == 0 && log.Size() == 0 {
		j.writeMu.Unlock()
		return nil
	}
	issued := log.Next() - 1
	j.mu.Lock()
	frozen := j.over
	j.frozen, j.over = frozen, make(map[string][]byte, checkpointEntries)
	j.mu.Unlock()
	// The other file holds nothing bbolt lacks: groups go there now.
	j.active ^= 1
	j.logs[j.active].Reset(issued + 1)
	j.writeMu.Unlock()

	err := db.applyOverlay(frozen, issued, nil)

	j.writeMu.Lock()
	j.mu.Lock()
	if err != nil {
		// Back under what came since; the file they are in may not be
		// started over until they are applied.
		for k, v := range frozen {
			if _, newer := j.over[k]; !newer {
				j.over[k] = v
			}
		}
		j.stale = true
	}
	j.frozen = nil
	j.count()
	j.mu.Unlock()
	j.writeMu.Unlock()
	return err
}

// failApply, when a test sets it, can fail an overlay's application.
var failApply func() error

// applyOverlay writes over to bbolt, then runs fn (when not nil), and
// records that bbolt holds the journal through issued, in one
// transaction.
func (db *DB) applyOverlay(over map[string][]byte, issued uint64, fn func(*bbolt.Tx) error) error {
	return db.bolt.Update(func(tx *bbolt.Tx) error { return db.applyOverlayTx(tx, over, issued, fn) })
}

// applyOverlayTx is applyOverlay's work inside tx.
func (db *DB) applyOverlayTx(tx *bbolt.Tx, over map[string][]byte, issued uint64, fn func(*bbolt.Tx) error) error {
	if failApply != nil {
		if err := failApply(); err != nil {
			return err
		}
	}
	// In key order: bbolt inserts by shifting a node's entries, so
	// random order costs more copying. The map is not written while
	// this runs (the live overlay is under writeMu; a frozen one is
	// only read).
	for _, k := range slices.Sorted(maps.Keys(over)) {
		v := over[k]
		op := byte(changePut)
		if v == nil {
			op = changeDel
		}
		if err := applyChange(tx, k[0], op, []byte(k[1:]), v); err != nil {
			return err
		}
	}
	if fn != nil {
		if err := fn(tx); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketMeta).Put(metaJournalApplied, binary.BigEndian.AppendUint64(nil, issued))
}

// replayJournal applies, inside the opening transaction, every record
// the journal's files hold past what bbolt has, in order; the journal
// starts over once that transaction commits (startJournal).
func (db *DB) replayJournal(tx *bbolt.Tx) (uint64, error) {
	var applied uint64
	if v := tx.Bucket(bucketMeta).Get(metaJournalApplied); len(v) == 8 {
		applied = binary.BigEndian.Uint64(v)
	}
	type record struct {
		seq     uint64
		payload []byte
	}
	var recs []record
	for _, log := range db.journal.logs {
		err := log.Replay(func(seq uint64, p []byte) error {
			if seq > applied {
				recs = append(recs, record{seq, p})
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("store: journal: %w", err)
		}
	}
	slices.SortFunc(recs, func(a, b record) int { return cmp.Compare(a.seq, b.seq) })
	last := applied
	for _, r := range recs {
		if r.seq != last+1 {
			return 0, fmt.Errorf("store: journal: record %d follows %d: records are missing", r.seq, last)
		}
		if err := decodeChanges(r.payload, func(class, op byte, key, val []byte) error {
			return applyChange(tx, class, op, key, val)
		}); err != nil {
			return 0, fmt.Errorf("store: journal record %d: %w", r.seq, err)
		}
		last = r.seq
	}
	if err := tx.Bucket(bucketMeta).Put(metaJournalApplied, binary.BigEndian.AppendUint64(nil, last)); err != nil {
		return 0, err
	}
	return last, nil
}

// startJournal starts the journal over once bbolt holds everything in
// it, through record last.
func (db *DB) startJournal(last uint64) {
	db.journal.active = 0
	db.journal.logs[0].Reset(last + 1)
}
