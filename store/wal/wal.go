// Package wal is a write-ahead journal: records appended in groups, one
// disk sync per group, read back in order when the journal is opened
// again. A backend writes a change here first, answers once the sync
// returns, and applies the change to its main file later, in batches;
// once the main file holds every record, the journal starts over.
//
// The file is written in place, never appended to: it is grown ahead in
// steps (growStep) and overwritten from its start after each Reset, so a
// group's write changes data blocks only, not the file's size. A group
// is one write of whole blocks (the partial block before it rewritten
// with it) that is durable when it returns (O_DSYNC, and O_DIRECT where
// the file system allows): one call and one device round trip, not a
// write and an fdatasync. Records are
// numbered: replay follows the numbers from the start of the file and
// stops at the first record that is torn, damaged or out of sequence,
// which is where the last group ended (what lies beyond is a group that
// never completed, or an older pass over the file).
//
// It imports nothing of hotzone: records are bytes.
//
// # Caveats
//
//   - Not safe for concurrent use: one writer owns it.
//   - A record is at most MaxRecord bytes.
//   - After a failed Append the journal must not be appended to again
//     before a Reset: whether the group reached the disk is not known.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"unsafe"
)

// MaxRecord bounds a record's payload, so a damaged length cannot make
// replay allocate what it likes.
const MaxRecord = 16 << 20

// growStep is how far ahead of the data the file is grown, with zeros
// and a full sync, so that a group's write changes no size.
const growStep = 4 << 20

// blockSize is what a group's write is aligned to, at both ends, as
// O_DIRECT wants (no device here has larger logical blocks).
const blockSize = 4096

// headerSize is a record's length (uint32), CRC-32C (uint32, of the
// sequence number and the payload) and sequence number (uint64).
const headerSize = 16

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrBroken: an Append failed, and the journal refuses more until Reset.
var ErrBroken = errors.New("wal: a write failed; reset before writing again")

// Log is an open journal.
type Log struct {
	f      *os.File    // for groups: durable writes
	w      groupWriter // what writes them: f, or AIO over it
	plain  *os.File    // for replay and growth: ordinary reads and writes
	off    int64       // where the next group goes
	size   int64       // bytes the file has (grown ahead)
	next   uint64      // the next record's number
	broken bool
	recs   []byte // the group being written
	buf    []byte // its blocks, aligned in memory
	tail   []byte // what the block off is in holds before off
}

// Open opens (creating if needed) the journal at path. Replay it, apply
// what it holds, then Reset before appending.
func Open(path string) (*Log, error) {
	plain, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	f, direct, err := openData(path)
	if err != nil {
		_ = plain.Close()
		return nil, fmt.Errorf("wal: %w", err)
	}
	st, err := plain.Stat()
	if err != nil {
		_ = f.Close()
		_ = plain.Close()
		return nil, fmt.Errorf("wal: %w", err)
	}
	l := &Log{f: f, w: f, plain: plain, size: st.Size(), broken: true}
	if direct && useAIO {
		if w, err := asyncWriter(f); err == nil {
			l.w = w
		}
	}
	return l, nil
}

// groupWriter writes a group's blocks and returns once they are
// durable: the file itself (O_DSYNC), or asynchronous I/O over it.
type groupWriter interface {
	WriteAt(b []byte, off int64) (int, error)
	Close() error
}

// useAIO: a journal opened with O_DIRECT writes through asyncWriter
// where the system has it; tests turn it off to check the plain path.
var useAIO = true

// Replay calls fn, in order, with every record of the journal's last
// pass: the records from the start of the file for as long as they are
// whole and numbered one after the other. Which of them are already
// applied elsewhere is the caller's to know.
func (l *Log) Replay(fn func(seq uint64, payload []byte) error) error {
	var (
		off    int64
		prev   uint64
		first  = true
		header [headerSize]byte
	)
	for off+headerSize <= l.size {
		if _, err := l.plain.ReadAt(header[:], off); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("wal: replay: %w", err)
		}
		n := binary.LittleEndian.Uint32(header[0:])
		sum := binary.LittleEndian.Uint32(header[4:])
		seq := binary.LittleEndian.Uint64(header[8:])
		if n == 0 || n > MaxRecord || off+headerSize+int64(n) > l.size || (!first && seq != prev+1) {
			break
		}
		payload := make([]byte, n)
		if _, err := l.plain.ReadAt(payload, off+headerSize); err != nil {
			return fmt.Errorf("wal: replay: %w", err)
		}
		if crc32.Update(crc32.Checksum(header[8:], crcTable), crcTable, payload) != sum {
			break
		}
		if err := fn(seq, payload); err != nil {
			return err
		}
		first, prev = false, seq
		off += headerSize + int64(n)
	}
	return nil
}

// Reset starts the journal over: the next group is written at its start,
// its first record numbered next. Everything the journal held must be
// applied (and durable) elsewhere first.
func (l *Log) Reset(next uint64) {
	l.off, l.next, l.broken, l.tail = 0, next, false, l.tail[:0]
}

// Next is the number the next record gets.
func (l *Log) Next() uint64 { return l.next }

// Append writes payloads as consecutive records, one write and one disk
// sync for all of them, and answers the number of the last. When it
// fails, nothing of the group counts as written (though some of it may
// be on the disk), its numbers are spent, and the journal takes no more
// until Reset.
func (l *Log) Append(payloads ...[]byte) (uint64, error) {
	if l.broken {
		return 0, ErrBroken
	}
	b := l.recs[:0]
	seq := l.next
	for _, p := range payloads {
		if len(p) == 0 || len(p) > MaxRecord {
			return 0, fmt.Errorf("wal: a record of %d bytes (1 to %d)", len(p), MaxRecord)
		}
		var h [headerSize]byte
		binary.LittleEndian.PutUint32(h[0:], uint32(len(p)))
		binary.LittleEndian.PutUint64(h[8:], seq)
		binary.LittleEndian.PutUint32(h[4:], crc32.Update(crc32.Checksum(h[8:], crcTable), crcTable, p))
		b = append(append(b, h[:]...), p...)
		seq++
	}
	l.recs = b
	if len(b) == 0 {
		return l.next - 1, nil
	}
	if err := l.write(b); err != nil {
		// Some of it may be on the disk: its numbers are not given out
		// again, so a later pass can never read it as its own.
		l.broken, l.next = true, seq
		return 0, err
	}
	l.off += int64(len(b))
	l.next = seq
	if cap(l.recs) > 1<<20 {
		l.recs, l.buf = nil, nil // a burst's buffers are not kept
	}
	return seq - 1, nil
}

// write puts b at the tail, durably: the blocks from the one the tail is
// in to the one b ends in, the tail block's earlier bytes as earlier
// groups wrote them (kept in memory), the rest of the last block zeros.
// It grows the file first when b would not fit.
func (l *Log) write(b []byte) error {
	start := l.off &^ (blockSize - 1)
	end := (l.off + int64(len(b)) + blockSize - 1) &^ (blockSize - 1)
	if end > l.size {
		if err := l.grow(end); err != nil {
			return err
		}
	}
	n := int(end - start)
	if cap(l.buf) < n {
		l.buf = alignedBuffer(n)
	}
	blocks := l.buf[:n]
	head := copy(blocks, l.tail)
	copy(blocks[head:], b)
	clear(blocks[head+len(b):])
	if _, err := l.w.WriteAt(blocks, start); err != nil {
		return fmt.Errorf("wal: write: %w", err)
	}
	last := (l.off + int64(len(b))) &^ (blockSize - 1)
	l.tail = append(l.tail[:0], blocks[last-start:head+len(b)]...)
	return nil
}

// alignedBuffer is n bytes whose start is block aligned, as O_DIRECT
// needs of memory too.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+blockSize)
	off := blockSize - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))&(blockSize-1))
	if off == blockSize {
		off = 0
	}
	return b[off : off+n : off+n]
}

// grow extends the file with zeros to past end, in steps, and syncs it
// all (the size included).
func (l *Log) grow(end int64) error {
	size := l.size
	for size < end {
		size += growStep
	}
	zeros := make([]byte, 1<<20)
	for at := l.size; at < size; at += int64(len(zeros)) {
		if _, err := l.plain.WriteAt(zeros[:min(int64(len(zeros)), size-at)], at); err != nil {
			return fmt.Errorf("wal: grow: %w", err)
		}
	}
	if err := l.plain.Sync(); err != nil {
		return fmt.Errorf("wal: grow: %w", err)
	}
	l.size = size
	return nil
}

// Size is how many bytes the journal holds since the last Reset.
func (l *Log) Size() int64 { return l.off }

// Close closes the file.
func (l *Log) Close() error {
	var err error
	if l.w != groupWriter(l.f) {
		err = l.w.Close()
	}
	return errors.Join(err, l.f.Close(), l.plain.Close())
}
