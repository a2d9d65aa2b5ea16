// Package poslog keeps device positions on disk for a node that holds
// them in memory (store/devices): an append-only log of blocks, one per
// write-behind flush, and a snapshot that compaction writes from memory
// and that makes the log start over.
//
// A position update costs a few dozen bytes appended, not a rewrite of
// the page that holds it: a database's B-tree (bbolt's) rewrites every
// page a flush touches, and devices pinging at random touch them all.
//
// It imports the root package and the standard library only.
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
	"slices"
	"strings"
	"time"

	"github.com/hotzone/hotzone"
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
		l.logSize = st.Size()
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
		l.logSize = good
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

// Append writes recs as one block and makes it durable before it
// returns.
func (l *Log) Append(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	block := appendBlock(nil, recs)
	if _, err := l.log.WriteAt(block, l.logSize); err != nil {
		// Whatever part was written is a torn block past logSize; the
		// next append writes over it.
		return fmt.Errorf("poslog: append: %w", err)
	}
	if err := l.log.Sync(); err != nil {
		return fmt.Errorf("poslog: sync: %w", err)
	}
	l.logSize += int64(len(block))
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
		batch   []Record
		size    int64
		werr    error
		flushed = func() {
			if werr != nil || len(batch) == 0 {
				return
			}
			block := appendBlock(nil, batch)
			_, werr = w.Write(block)
			size += int64(len(block))
			batch = batch[:0]
		}
	)
	each(func(r Record) {
		batch = append(batch, r)
		if len(batch) == 4096 {
			flushed()
		}
	})
	flushed()
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
	if err := syncDir(l.dir); err != nil {
		return fmt.Errorf("poslog: compact: %w", err)
	}
	l.snapSize = size
	if err := l.log.Truncate(0); err != nil {
		return fmt.Errorf("poslog: compact: start the log over: %w", err)
	}
	l.logSize = 0
	return l.log.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close closes the log.
func (l *Log) Close() error { return l.log.Close() }

// Bits of a record's flags.
const (
	recLast = 1 << iota
	recQual
)

// appendBlock appends a block of recs, grouped by brand, to buf: magic,
// payload length, CRC-32C of the payload, payload.
func appendBlock(buf []byte, recs []Record) []byte {
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(recs[a].BrandID, recs[b].BrandID) })
	start := len(buf)
	buf = append(buf, blockMagic[:]...)
	buf = append(buf, make([]byte, 8)...)
	payload := len(buf)
	for i := 0; i < len(order); {
		brand := recs[order[i]].BrandID
		j := i + 1
		for j < len(order) && recs[order[j]].BrandID == brand {
			j++
		}
		buf = appendString(buf, brand)
		buf = binary.AppendUvarint(buf, uint64(j-i))
		for _, k := range order[i:j] {
			buf = appendRecord(buf, &recs[k])
		}
		i = j
	}
	binary.LittleEndian.PutUint32(buf[start+4:], uint32(len(buf)-payload))
	binary.LittleEndian.PutUint32(buf[start+8:], crc32.Checksum(buf[payload:], crcTable))
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendRecord(buf []byte, r *Record) []byte {
	buf = appendString(buf, r.DeviceID)
	buf = binary.AppendVarint(buf, r.Gen)
	var flags byte
	if !r.Position.Last.TS.IsZero() {
		flags |= recLast
	}
	if r.Position.Qualifying != nil {
		flags |= recQual
	}
	buf = append(buf, flags)
	if flags&recLast != 0 {
		buf = appendPosition(buf, r.Position.Last)
	}
	if flags&recQual != 0 {
		buf = appendPosition(buf, *r.Position.Qualifying)
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
		n := d.uvarint()
		for k := uint64(0); k < n && !d.bad; k++ {
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
