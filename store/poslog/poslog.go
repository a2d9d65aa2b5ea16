// Package poslog keeps device positions on disk for a node that holds
// them in memory (store/devices): an append-only log of blocks, one per
// write-behind flush, and a snapshot that compaction writes from memory
// and that makes the log start over.
//
// A position update costs a few dozen bytes appended, not a rewrite of
// the page that holds it: a database's B-tree (bbolt's) rewrites every
// page a flush touches, and devices pinging at random touch them all.
//
// It imports the root package, store/kvlog (for SyncDir) and the
// standard library only.
//
// # Caveats
//
//   - A block is written with one write and made durable with one
//     fdatasync; a crash in the middle leaves a torn last block, which
//     Replay drops (its positions are lost: at most one flush interval).
//   - Positions of an erased device stay in the files until the next
//     compaction; Replay's caller drops them (their generation is gone).
//   - Replay applies records in file order; positions carry their own
//     time, and the caller keeps the newest, so order does not matter.
package poslog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/hotzone/hotzone"
	"github.com/hotzone/hotzone/store/kvlog"
)

// The files in the data directory.
const (
	LogFile      = "positions.log"
	SnapshotFile = "positions.snap"
)

// Record is a device's positions as written.
type Record struct {
	BrandID, DeviceID string
	// Gen is the device's registration the positions belong to.
	Gen      int64
	Position hotzone.DevicePosition
}

// Log is the open files. Its methods are not safe for concurrent use: one
// write-behind loop owns it.
type Log struct {
	dir      string
	log      *os.File
	logSize  int64
	synced   int64 // logSize at the last good sync
	snapSize int64
}

var (
	blockMagic = [4]byte{'H', 'Z', 'P', '1'}
	crcTable   = crc32.MakeTable(crc32.Castagnoli)
	// ErrBadBlock: a block that does not decode (torn or damaged).
	ErrBadBlock = errors.New("poslog: damaged block")
)

// maxBlock bounds a block's payload, so a damaged length cannot make
// Replay allocate what it likes.
const maxBlock = 256 << 20

// Open opens (creating if needed) the log in dir.
func Open(dir string) (*Log, error) {
	f, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("poslog: %w", err)
	}
	l := &Log{dir: dir, log: f}
	if st, err := f.Stat(); err == nil {
		l.logSize, l.synced = st.Size(), st.Size()
	}
	if st, err := os.Stat(filepath.Join(dir, SnapshotFile)); err == nil {
		l.snapSize = st.Size()
	}
	return l, nil
}

// Replay calls fn with every record of the snapshot, then of the log. A
// torn or damaged block ends the log there: it is cut off, so the next
// Append follows the last good block. A damaged snapshot is an error.
func (l *Log) Replay(fn func(Record)) error {
	if snap, err := os.Open(filepath.Join(l.dir, SnapshotFile)); err == nil {
		_, err := readBlocks(snap, fn)
		snap.Close()
		if err != nil {
			return fmt.Errorf("poslog: snapshot: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("poslog: %w", err)
	}
	if _, err := l.log.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("poslog: %w", err)
	}
	good, err := readBlocks(l.log, fn)
	if err != nil && !errors.Is(err, ErrBadBlock) {
		return fmt.Errorf("poslog: log: %w", err)
	}
	if good < l.logSize {
		if err := l.log.Truncate(good); err != nil {
			return fmt.Errorf("poslog: cut a torn block: %w", err)
		}
		l.logSize, l.synced = good, good
	}
	_, err = l.log.Seek(l.logSize, io.SeekStart)
	return err
}

// readBlocks calls fn with each record of r's blocks and answers how many
// bytes of whole, good blocks it read.
func readBlocks(r io.Reader, fn func(Record)) (int64, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var good int64
	var head [12]byte
	for {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return good, nil
			}
			return good, ErrBadBlock
		}
		n := binary.LittleEndian.Uint32(head[4:])
		if [4]byte(head[:4]) != blockMagic || n > maxBlock {
			return good, ErrBadBlock
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return good, ErrBadBlock
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(head[8:]) {
			return good, ErrBadBlock
		}
		if err := DecodeBlock(payload, fn); err != nil {
			return good, err
		}
		good += int64(len(head)) + int64(n)
	}
}

// Append writes b as one block and makes it durable before it returns.
func (l *Log) Append(b *Block) error {
	if err := l.Write(b); err != nil {
		return err
	}
	return l.Sync()
}

// Write writes b as one block, not yet durable (Sync makes it so), and
// empties b. A large flush goes as several blocks of one sync, so no
// buffer ever holds all of it.
func (l *Log) Write(b *Block) error {
	if b.Len() == 0 {
		return nil
	}
	block := b.Bytes()
	if _, err := l.log.WriteAt(block, l.logSize); err != nil {
		// Whatever part was written is a torn block past logSize; the
		// next append writes over it.
		return fmt.Errorf("poslog: append: %w", err)
	}
	l.logSize += int64(len(block))
	b.Reset()
	return nil
}

// Sync makes what Write wrote durable. When it fails, what was written
// since the last sync counts as not written: the next write goes over
// it, so replay never meets a block that may be torn before one that
// is not.
func (l *Log) Sync() error {
	if err := l.log.Sync(); err != nil {
		l.logSize = l.synced
		return fmt.Errorf("poslog: sync: %w", err)
	}
	l.synced = l.logSize
	return nil
}

// Sizes are the log's and the snapshot's bytes.
func (l *Log) Sizes() (logBytes, snapshotBytes int64) { return l.logSize, l.snapSize }

// Compact writes every record each yields as the new snapshot, durably,
// and starts the log over. Records appended before it are in what each
// yields (the caller's memory has them), so nothing is lost; a crash in
// the middle leaves the old snapshot and log, or the new snapshot and
// the old log, and both replay to the same positions.
func (l *Log) Compact(each func(yield func(Record))) error {
	tmp := filepath.Join(l.dir, SnapshotFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("poslog: compact: %w", err)
	}
	defer os.Remove(tmp) // after a successful rename there is nothing there
	w := bufio.NewWriterSize(f, 1<<20)
	var (
		b     Block
		size  int64
		werr  error
		flush = func() {
			if werr != nil || b.Len() == 0 {
				return
			}
			block := b.Bytes()
			_, werr = w.Write(block)
			size += int64(len(block))
			b.Reset()
		}
	)
	each(func(r Record) {
		b.Add(r.BrandID, r.DeviceID, r.Gen, &r.Position)
		if b.Len() == 4096 {
			flush()
		}
	})
	flush()
	if werr == nil {
		werr = w.Flush()
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("poslog: compact: %w", werr)
	}
	if err := os.Rename(tmp, filepath.Join(l.dir, SnapshotFile)); err != nil {
		return fmt.Errorf("poslog: compact: %w", err)
	}
	if err := kvlog.SyncDir(l.dir); err != nil {
		return fmt.Errorf("poslog: compact: %w", err)
	}
	l.snapSize = size
	if err := l.log.Truncate(0); err != nil {
		return fmt.Errorf("poslog: compact: start the log over: %w", err)
	}
	l.logSize, l.synced = 0, 0
	return l.log.Sync()
}

// Close closes the log.
func (l *Log) Close() error { return l.log.Close() }

// Bits of a record's flags.
const (
	recLast = 1 << iota
	recQual
)

// Block is one block being built: records grouped by brand (a brand
// given again right after itself continues its group). Its bytes are:
// magic, payload length (uint32), CRC-32C of the payload, payload; the
// payload is groups of brand, record count (uint32) and records.
type Block struct {
	buf      []byte
	n        int    // records
	brand    string // of the open group
	countAt  int    // where the open group's count is; 0 when none
	inGroup  uint32
	finished bool
}

// Add adds a device's positions; the block keeps nothing of its
// arguments but their bytes.
func (b *Block) Add(brandID string, deviceID string, gen int64, pos *hotzone.DevicePosition) {
	b.addGroup(brandID)
	b.buf = appendString(b.buf, deviceID)
	b.buf = appendRecordTail(b.buf, gen, pos)
	b.n++
	b.inGroup++
}

// AddBytes is Add with the device id as bytes.
func (b *Block) AddBytes(brandID string, deviceID []byte, gen int64, pos *hotzone.DevicePosition) {
	b.addGroup(brandID)
	b.buf = binary.AppendUvarint(b.buf, uint64(len(deviceID)))
	b.buf = append(b.buf, deviceID...)
	b.buf = appendRecordTail(b.buf, gen, pos)
	b.n++
	b.inGroup++
}

func (b *Block) addGroup(brandID string) {
	if b.buf == nil || b.finished {
		b.Reset()
	}
	if b.countAt != 0 && brandID == b.brand {
		return
	}
	b.closeGroup()
	b.buf = appendString(b.buf, brandID)
	b.countAt = len(b.buf)
	b.buf = append(b.buf, 0, 0, 0, 0)
	b.brand, b.inGroup = brandID, 0
}

func (b *Block) closeGroup() {
	if b.countAt != 0 {
		binary.LittleEndian.PutUint32(b.buf[b.countAt:], b.inGroup)
		b.countAt = 0
	}
}

// Len is how many records the block has.
func (b *Block) Len() int { return b.n }

// Size is how many bytes the block has so far.
func (b *Block) Size() int { return len(b.buf) }

// Reset empties the block, keeping its buffer.
func (b *Block) Reset() {
	b.buf = append(b.buf[:0], blockMagic[:]...)
	b.buf = append(b.buf, make([]byte, 8)...)
	b.n, b.countAt, b.inGroup, b.finished, b.brand = 0, 0, 0, false, ""
}

// Bytes finishes the block and answers its bytes; the block is empty
// again at the next Add.
func (b *Block) Bytes() []byte {
	if b.buf == nil {
		b.Reset()
	}
	b.closeGroup()
	binary.LittleEndian.PutUint32(b.buf[4:], uint32(len(b.buf)-12))
	binary.LittleEndian.PutUint32(b.buf[8:], crc32.Checksum(b.buf[12:], crcTable))
	b.finished = true
	return b.buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendRecordTail(buf []byte, gen int64, pos *hotzone.DevicePosition) []byte {
	buf = binary.AppendVarint(buf, gen)
	var flags byte
	if !pos.Last.TS.IsZero() {
		flags |= recLast
	}
	if pos.Qualifying != nil {
		flags |= recQual
	}
	buf = append(buf, flags)
	if flags&recLast != 0 {
		buf = appendPosition(buf, pos.Last)
	}
	if flags&recQual != 0 {
		buf = appendPosition(buf, *pos.Qualifying)
	}
	return buf
}

func appendPosition(buf []byte, p hotzone.Position) []byte {
	buf = binary.AppendVarint(buf, p.TS.Unix())
	buf = binary.AppendUvarint(buf, uint64(p.TS.Nanosecond()))
	for _, f := range [...]float64{p.Lat, p.Lon, p.AccuracyM} {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(f))
	}
	return buf
}

// DecodeBlock calls fn with each record of a block's payload; it answers
// ErrBadBlock for a payload that does not decode whole.
func DecodeBlock(p []byte, fn func(Record)) error {
	d := decoder{b: p}
	for len(d.b) > 0 && !d.bad {
		brand := d.str()
		n := d.uint32()
		for k := uint32(0); k < n && !d.bad; k++ {
			r := Record{BrandID: brand, DeviceID: d.str(), Gen: d.varint()}
			flags := d.byte()
			if flags&^(recLast|recQual) != 0 {
				d.bad = true
			}
			if flags&recLast != 0 {
				r.Position.Last = d.position()
			}
			if flags&recQual != 0 {
				q := d.position()
				r.Position.Qualifying = &q
			}
			if !d.bad {
				fn(r)
			}
		}
	}
	if d.bad {
		return ErrBadBlock
	}
	return nil
}

// decoder reads a payload; after the first error every read yields zero
// values and bad stays set.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) uint32() uint32 {
	if len(d.b) < 4 {
		d.bad, d.b = true, nil
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) varint() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) position() hotzone.Position {
	sec := d.varint()
	nsec := d.uvarint()
	if d.bad || nsec >= 1e9 || len(d.b) < 24 {
		d.bad, d.b = true, nil
		return hotzone.Position{}
	}
	var f [3]float64
	for i := range f {
		f[i] = math.Float64frombits(binary.LittleEndian.Uint64(d.b[8*i:]))
	}
	d.b = d.b[24:]
	return hotzone.Position{Lat: f[0], Lon: f[1], AccuracyM: f[2], TS: time.Unix(sec, int64(nsec)).UTC()}
}
