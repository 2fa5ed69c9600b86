package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Log is the ingest log of one relation: an append-only sequence of Arrow
// record batches numbered 1, 2, 3, … in a directory of segment files. It
// makes INSERT and COPY replayable: an upstream that must re-send what a
// lost instance's checkpoint does not cover reads it back from the
// position the checkpoint records.
//
// Append writes a batch (buffered); Sync makes everything appended so far
// durable (fsync) and is what an acknowledgement waits for, so a COPY of
// many batches costs one fsync. After a crash, OpenLog keeps every whole
// entry — every synced one, and those not yet synced that the OS had
// written — and drops a torn tail.
//
// On disk, a segment is named by the number of its first entry
// (00000000000000000001.log) and holds entries
//
//	length u32 | crc32c u32 | seq u64 | Arrow IPC stream (schema + 1 batch)
//
// little-endian, the CRC over seq and the IPC bytes. A new segment starts
// once the current one exceeds LogOptions.SegmentBytes; Trim removes
// whole segments below a position.
type Log struct {
	dir  string
	opts LogOptions

	mu sync.Mutex
	// protected by mu
	f        *os.File
	w        *bufio.Writer
	segFirst uint64 // first seq of the open segment
	segSize  int64
	next     uint64 // seq of the next entry
	synced   uint64 // entries up to this seq are durable
	closed   bool
}

// LogOptions configures a Log. Zero values mean the defaults.
type LogOptions struct {
	// SegmentBytes is the size past which a new segment starts. Default
	// 64 MiB.
	SegmentBytes int64
	// Allocator for batches Read decodes. Default memory.DefaultAllocator.
	Allocator memory.Allocator
}

const (
	logSuffix      = ".log"
	entryHeader    = 16
	maxEntryBytes  = 1 << 30
	defaultSegment = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned (wrapped) when a log entry that is not the torn
// tail of the last segment fails its checks.
var ErrCorrupt = errors.New("storage: ingest log is corrupt")

// OpenLog opens (creating it if needed) the log in dir. It scans the last
// segment, cuts off a torn or corrupt tail (the entries a crash left
// half-written, never synced), and positions the log after the last
// whole entry.
func OpenLog(dir string, opts LogOptions) (*Log, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = defaultSegment
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	l := &Log{dir: dir, opts: opts, next: 1}
	segs, err := l.segments()
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		if err := l.startSegment(1); err != nil {
			return nil, err
		}
		return l, nil
	}
	last := segs[len(segs)-1]
	path := l.segPath(last)
	good, lastSeq, err := scanSegment(path, last)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: cutting the torn tail of %s: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("storage: %w", err)
	}
	l.f, l.w = f, bufio.NewWriterSize(f, 1<<20)
	l.segFirst, l.segSize = last, good
	l.next = max(lastSeq+1, last)
	l.synced = l.next - 1
	return l, nil
}

func (l *Log) segPath(first uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%020d%s", first, logSuffix))
}

// segments lists the first seq of every segment, ascending.
func (l *Log) segments() ([]uint64, error) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	var out []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, logSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, logSuffix), 10, 64)
		if err != nil || n == 0 {
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// scanSegment reads a segment's entries and returns the length of its
// whole, valid prefix and the last seq in it (first-1 for none).
func scanSegment(path string, first uint64) (good int64, last uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("storage: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	last = first - 1
	for {
		seq, body, n, err := readEntry(r)
		if err != nil || seq != last+1 {
			return good, last, nil // the torn or corrupt tail starts here
		}
		_ = body
		good += n
		last = seq
	}
}

// readEntry reads one entry; io.EOF at a clean end, another error for a
// torn or corrupt one.
func readEntry(r *bufio.Reader) (seq uint64, body []byte, n int64, err error) {
	var h [entryHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return 0, nil, 0, io.EOF
		}
		return 0, nil, 0, ErrCorrupt
	}
	size := binary.LittleEndian.Uint32(h[0:])
	crc := binary.LittleEndian.Uint32(h[4:])
	seq = binary.LittleEndian.Uint64(h[8:])
	if size > maxEntryBytes {
		return 0, nil, 0, ErrCorrupt
	}
	body = make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, 0, ErrCorrupt
	}
	c := crc32.Update(crc32.Checksum(h[8:16], crcTable), crcTable, body)
	if c != crc {
		return 0, nil, 0, ErrCorrupt
	}
	return seq, body, int64(entryHeader) + int64(size), nil
}

func (l *Log) startSegment(first uint64) error {
	f, err := os.OpenFile(l.segPath(first), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		return err
	}
	l.f, l.w = f, bufio.NewWriterSize(f, 1<<20)
	l.segFirst, l.segSize = first, 0
	return nil
}

// Append adds a batch and returns its sequence number. The entry is
// durable only after Sync.
func (l *Log) Append(rec arrow.RecordBatch) (uint64, error) {
	var buf bytes.Buffer
	buf.Write(make([]byte, entryHeader))
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		return 0, fmt.Errorf("storage: encoding a batch for the ingest log: %w", err)
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	entry := buf.Bytes()
	if len(entry)-entryHeader > maxEntryBytes {
		return 0, fmt.Errorf("storage: batch of %d bytes is too large for the ingest log", len(entry))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, errors.New("storage: ingest log is closed")
	}
	if l.segSize > 0 && l.segSize+int64(len(entry)) > l.opts.SegmentBytes {
		if err := l.syncLocked(); err != nil {
			return 0, err
		}
		if err := l.f.Close(); err != nil {
			return 0, fmt.Errorf("storage: %w", err)
		}
		if err := l.startSegment(l.next); err != nil {
			return 0, err
		}
	}
	seq := l.next
	binary.LittleEndian.PutUint32(entry[0:], uint32(len(entry)-entryHeader))
	binary.LittleEndian.PutUint64(entry[8:], seq)
	binary.LittleEndian.PutUint32(entry[4:], crc32.Update(crc32.Checksum(entry[8:16], crcTable), crcTable, entry[entryHeader:]))
	if _, err := l.w.Write(entry); err != nil {
		return 0, fmt.Errorf("storage: writing the ingest log: %w", err)
	}
	l.segSize += int64(len(entry))
	l.next++
	return seq, nil
}

// Sync makes every appended entry durable.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.syncLocked()
}

func (l *Log) syncLocked() error {
	if l.synced == l.next-1 {
		return nil
	}
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("storage: writing the ingest log: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("storage: syncing the ingest log: %w", err)
	}
	l.synced = l.next - 1
	return nil
}

// Next is the sequence number the next Append gets.
func (l *Log) Next() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

// StartAt makes an empty log (no entry ever appended) number its first
// entry seq, as if the entries before it had been trimmed: a server
// given a new data directory resumes from a restart point at seq, and
// the log goes on from there.
func (l *Log) StartAt(seq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("storage: ingest log is closed")
	}
	if l.next != 1 || l.segSize != 0 || l.segFirst != 1 {
		return fmt.Errorf("storage: the ingest log is not empty (next entry %d)", l.next)
	}
	if seq <= 1 {
		return nil
	}
	old := l.segPath(l.segFirst)
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if err := os.Remove(old); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if err := l.startSegment(seq); err != nil {
		return err
	}
	l.next, l.synced = seq, seq-1
	return nil
}

// Read calls fn with every durable entry from seq from on, in order; fn
// owns nothing (it must Retain a batch it keeps). Entries trimmed away
// are an error.
func (l *Log) Read(from uint64, fn func(seq uint64, rec arrow.RecordBatch) error) error {
	l.mu.Lock()
	last := l.synced
	l.mu.Unlock()
	segs, err := l.segments()
	if err != nil {
		return err
	}
	if len(segs) == 0 || (from < segs[0] && from <= last) {
		return fmt.Errorf("storage: ingest log entries before %d were trimmed; %d asked", max(segs[0], 1), from)
	}
	for i, first := range segs {
		if i+1 < len(segs) && segs[i+1] <= from {
			continue
		}
		if first > last {
			break
		}
		if err := l.readSegment(first, from, last, fn); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) readSegment(first, from, last uint64, fn func(uint64, arrow.RecordBatch) error) error {
	f, err := os.Open(l.segPath(first))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: ingest log segment %d was trimmed while read", first)
	}
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	want := first
	for want <= last {
		seq, body, _, err := readEntry(r)
		if err == io.EOF {
			return nil
		}
		if err != nil || seq != want {
			return fmt.Errorf("%w: segment %d, entry %d", ErrCorrupt, first, want)
		}
		want++
		if seq < from {
			continue
		}
		if err := decodeEntry(body, l.opts.Allocator, func(rec arrow.RecordBatch) error { return fn(seq, rec) }); err != nil {
			return err
		}
	}
	return nil
}

func decodeEntry(body []byte, mem memory.Allocator, fn func(arrow.RecordBatch) error) error {
	rd, err := ipc.NewReader(bytes.NewReader(body), ipc.WithAllocator(mem))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer rd.Release()
	if !rd.Next() {
		return fmt.Errorf("%w: an entry without a batch", ErrCorrupt)
	}
	return fn(rd.RecordBatch())
}

// Trim removes the segments whose entries are all at or below upto (the
// checkpoints cover them). The open segment is never removed.
func (l *Log) Trim(upto uint64) error {
	l.mu.Lock()
	current := l.segFirst
	l.mu.Unlock()
	segs, err := l.segments()
	if err != nil {
		return err
	}
	for i, first := range segs {
		if first == current || i+1 >= len(segs) || segs[i+1]-1 > upto {
			break
		}
		if err := os.Remove(l.segPath(first)); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	}
	return nil
}

// Close syncs and closes the log.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.syncLocked()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
