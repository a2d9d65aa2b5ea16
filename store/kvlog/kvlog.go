// Package kvlog keeps a map of small records on disk for a node that
// holds the map in memory: an append-only log of blocks, one per
// write-behind flush, and a snapshot that compaction writes from memory
// and that makes the log start over. It is store/poslog's layout for
// records of any kind (store/bolt keeps presence in it).
//
// A change costs its bytes appended, not a rewrite of the page that holds
// it: a B-tree (bbolt's) rewrites every page a flush touches, and keys
// changed at random touch them all.
//
// It imports the standard library only.
//
// # Caveats
//
//   - A block is written with one write and made durable with one
//     fdatasync; a crash in the middle leaves a torn last block, which
//     Replay drops (its changes are lost: at most one flush interval).
//   - Replay applies records in file order, the last of a key winning;
//     an empty value is a deletion. Blocks are numbered: the snapshot's
//     carry the number of the last log block it covers, so log blocks
//     that survive a crash between a compaction's rename and its
//     truncation are skipped, not applied over newer values.
//   - Methods are not safe for concurrent use: one write-behind loop owns
//     a Log.
package kvlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// Log is a log file and its snapshot in one directory.
type Log struct {
	dir, name string
	log       *os.File
	logSize   int64
	snapSize  int64
	seq       uint64 // the last block's number
}

var (
	blockMagic = [4]byte{'H', 'Z', 'K', '1'}
	crcTable   = crc32.MakeTable(crc32.Castagnoli)
	// ErrBadBlock: a block that does not decode (torn or damaged).
	ErrBadBlock = errors.New("kvlog: damaged block")
)

// maxBlock bounds a block's payload, so a damaged length cannot make
// Replay allocate what it likes.
const maxBlock = 256 << 20

// Open opens (creating if needed) name.log, with name.snap beside it, in
// dir.
func Open(dir, name string) (*Log, error) {
	f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("kvlog: %w", err)
	}
	l := &Log{dir: dir, name: name, log: f}
	if st, err := f.Stat(); err == nil {
		l.logSize = st.Size()
	}
	if st, err := os.Stat(l.snapPath()); err == nil {
		l.snapSize = st.Size()
	}
	return l, nil
}

func (l *Log) snapPath() string { return filepath.Join(l.dir, l.name+".snap") }

// Replay calls fn with every record of the snapshot, then of the log, in
// order. A torn or damaged block ends the log there: it is cut off, so
// the next Append follows the last good block. A damaged snapshot is an
// error. fn must not keep key or value.
func (l *Log) Replay(fn func(key, value []byte)) error {
	if snap, err := os.Open(l.snapPath()); err == nil {
		_, err := readBlocks(snap, func(seq uint64) bool { l.seq = max(l.seq, seq); return true }, fn)
		snap.Close()
		if err != nil {
			return fmt.Errorf("kvlog: snapshot: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("kvlog: %w", err)
	}
	if _, err := l.log.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("kvlog: %w", err)
	}
	// A snapshot block's number is the last log block it covers.
	covered := l.seq
	good, err := readBlocks(l.log, func(seq uint64) bool {
		l.seq = max(l.seq, seq)
		return seq > covered
	}, fn)
	if err != nil && !errors.Is(err, ErrBadBlock) {
		return fmt.Errorf("kvlog: log: %w", err)
	}
	if good < l.logSize {
		if err := l.log.Truncate(good); err != nil {
			return fmt.Errorf("kvlog: cut a torn block: %w", err)
		}
		l.logSize = good
	}
	_, err = l.log.Seek(l.logSize, io.SeekStart)
	return err
}

// header is a block's: magic, payload length, payload CRC-32C, number.
const header = 20

// readBlocks calls fn with each record of r's blocks that use (given
// the block's number) accepts, and answers how many bytes of whole, good
// blocks it read.
func readBlocks(r io.Reader, use func(seq uint64) bool, fn func(key, value []byte)) (int64, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var good int64
	var head [header]byte
	for {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return good, nil
			}
			return good, ErrBadBlock
		}
		if [4]byte(head[:4]) != blockMagic {
			return good, ErrBadBlock
		}
		n := binary.LittleEndian.Uint32(head[4:])
		if n > maxBlock {
			return good, ErrBadBlock
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return good, ErrBadBlock
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(head[8:]) {
			return good, ErrBadBlock
		}
		if use(binary.LittleEndian.Uint64(head[12:])) {
			if err := decode(payload, fn); err != nil {
				return good, err
			}
		}
		good += int64(len(head)) + int64(n)
	}
}

// decode calls fn with each record of a block's payload.
func decode(p []byte, fn func(key, value []byte)) error {
	for len(p) > 0 {
		var parts [2][]byte
		for i := range parts {
			n, w := binary.Uvarint(p)
			if w <= 0 || n > uint64(len(p)-w) {
				return ErrBadBlock
			}
			parts[i], p = p[w:w+int(n)], p[w+int(n):]
		}
		fn(parts[0], parts[1])
	}
	return nil
}

// Block gathers records for one write.
type Block struct{ buf []byte }

// Add appends a record; an empty value deletes the key.
func (b *Block) Add(key, value []byte) {
	b.buf = binary.AppendUvarint(b.buf, uint64(len(key)))
	b.buf = append(b.buf, key...)
	b.buf = binary.AppendUvarint(b.buf, uint64(len(value)))
	b.buf = append(b.buf, value...)
}

// Len is the block's size in bytes.
func (b *Block) Len() int { return len(b.buf) }

// Reset empties the block for reuse.
func (b *Block) Reset() { b.buf = b.buf[:0] }

// frame is the block as written: header, then payload.
func (b *Block) frame(seq uint64) []byte {
	out := make([]byte, header, header+len(b.buf))
	copy(out, blockMagic[:])
	binary.LittleEndian.PutUint32(out[4:], uint32(len(b.buf)))
	binary.LittleEndian.PutUint32(out[8:], crc32.Checksum(b.buf, crcTable))
	binary.LittleEndian.PutUint64(out[12:], seq)
	return append(out, b.buf...)
}

// Append writes a block to the log and makes it durable. After an error
// the log may hold part of the block (Replay drops it); the caller
// writes its records again.
func (l *Log) Append(b *Block) error {
	if len(b.buf) == 0 {
		return nil
	}
	if len(b.buf) > maxBlock {
		return fmt.Errorf("kvlog: a block of %d bytes is over %d", len(b.buf), maxBlock)
	}
	f := b.frame(l.seq + 1)
	n, err := l.log.WriteAt(f, l.logSize)
	if err == nil {
		err = l.log.Sync()
	}
	if err != nil {
		// Torn or not, the next block overwrites whatever of it landed.
		return fmt.Errorf("kvlog: append: %w", err)
	}
	l.logSize += int64(n)
	l.seq++
	return nil
}

// Sizes are the bytes in the log and in the snapshot, for deciding when
// to compact.
func (l *Log) Sizes() (logBytes, snapshotBytes int64) { return l.logSize, l.snapSize }

// Compact writes every current record (each calls yield once per key) as
// the new snapshot, durably, and empties the log. A crash part way
// leaves the old snapshot and log, which still hold everything.
func (l *Log) Compact(each func(yield func(key, value []byte))) error {
	tmp := l.snapPath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("kvlog: compact: %w", err)
	}
	defer os.Remove(tmp)
	w := bufio.NewWriterSize(f, 1<<20)
	var size int64
	var b Block
	var werr error
	flush := func(always bool) {
		if werr == nil && (b.Len() > 0 || always) {
			var n int
			n, werr = w.Write(b.frame(l.seq))
			size += int64(n)
			b.Reset()
		}
	}
	each(func(key, value []byte) {
		if len(value) == 0 {
			return
		}
		b.Add(key, value)
		if b.Len() >= 1<<20 {
			flush(false)
		}
	})
	// At least one block, even empty: it carries the number of the last
	// log block the snapshot covers.
	flush(size == 0)
	if werr == nil {
		werr = w.Flush()
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, l.snapPath())
	}
	if werr == nil {
		werr = SyncDir(l.dir)
	}
	if werr != nil {
		return fmt.Errorf("kvlog: compact: %w", werr)
	}
	// The snapshot holds everything now: the log starts over.
	if err := l.log.Truncate(0); err != nil {
		return fmt.Errorf("kvlog: compact: %w", err)
	}
	if err := l.log.Sync(); err != nil {
		return fmt.Errorf("kvlog: compact: %w", err)
	}
	l.logSize, l.snapSize = 0, size
	return nil
}

// SyncDir makes a directory's entries (a rename into it) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close closes the log file.
func (l *Log) Close() error { return l.log.Close() }
