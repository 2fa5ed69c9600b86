package storage

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var logSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "sym", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// logBatch is rows [start, start+n) with a NULL every seventh sym.
func logBatch(mem memory.Allocator, start, n int64) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, logSchema)
	defer b.Release()
	for i := start; i < start+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(i)
		if i%7 == 0 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("s%d", i%13))
		}
	}
	return b.NewRecordBatch()
}

// readAll returns the ids of every entry from seq from on, and the seqs.
func readAll(t *testing.T, l *Log, from uint64) (ids []int64, seqs []uint64) {
	t.Helper()
	err := l.Read(from, func(seq uint64, rec arrow.RecordBatch) error {
		seqs = append(seqs, seq)
		col := rec.Column(0).(*array.Int64)
		for i := range int(rec.NumRows()) {
			ids = append(ids, col.Value(i))
			if rec.Column(1).IsNull(i) != (col.Value(i)%7 == 0) {
				return fmt.Errorf("row %d: sym NULL where it should not be, or the reverse", col.Value(i))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids, seqs
}

func TestLogAppendReadReopen(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	l, err := OpenLog(dir, LogOptions{SegmentBytes: 4 << 10, Allocator: mem}) // small segments: many files
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 50; i++ {
		rec := logBatch(mem, i*10, 10)
		seq, err := l.Append(rec)
		rec.Release()
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("Append %d: seq %d, %v", i, seq, err)
		}
	}
	// Entries not yet synced are not read (a new segment syncs the one
	// before it, so only the open segment's entries wait).
	if _, seqs := readAll(t, l, 1); len(seqs) >= 50 {
		t.Fatalf("read all %d entries before Sync", len(seqs))
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	ids, seqs := readAll(t, l, 1)
	if len(ids) != 500 || len(seqs) != 50 || ids[499] != 499 {
		t.Fatalf("read %d rows in %d entries", len(ids), len(seqs))
	}
	_, seqs = readAll(t, l, 31)
	if len(seqs) != 20 || seqs[0] != 31 || seqs[19] != 50 {
		t.Fatalf("from 31: %v", seqs)
	}
	segs, _ := l.segments()
	if len(segs) < 5 {
		t.Fatalf("only %d segments with 4 KiB segments", len(segs))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = OpenLog(dir, LogOptions{SegmentBytes: 4 << 10, Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Next() != 51 {
		t.Fatalf("reopened at %d, want 51", l.Next())
	}
	rec := logBatch(mem, 500, 10)
	if seq, err := l.Append(rec); err != nil || seq != 51 {
		t.Fatalf("append after reopen: %d %v", seq, err)
	}
	rec.Release()
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if ids, _ := readAll(t, l, 1); len(ids) != 510 {
		t.Fatalf("%d rows after reopen", len(ids))
	}
	// Trim drops whole segments at or below the position, keeps the rest.
	if err := l.Trim(30); err != nil {
		t.Fatal(err)
	}
	after, _ := l.segments()
	if len(after) >= len(segs) || after[0] > 31 {
		t.Fatalf("segments %v after Trim(30), before %v", after, segs)
	}
	if _, seqs := readAll(t, l, 31); len(seqs) != 21 {
		t.Fatalf("after Trim: %d entries from 31", len(seqs))
	}
	if err := l.Read(1, func(uint64, arrow.RecordBatch) error { return nil }); err == nil || !strings.Contains(err.Error(), "trimmed") {
		t.Fatalf("reading trimmed entries: %v", err)
	}
}

// TestLogTornTail: whatever a crash leaves after the last whole entry (a
// half-written entry, garbage, a corrupt CRC) is cut off on open, and
// the log goes on from there.
func TestLogTornTail(t *testing.T) {
	for name, damage := range map[string]func(path string, size int64) error{
		"half entry": func(p string, size int64) error { return os.Truncate(p, size-5) },
		"garbage": func(p string, _ int64) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("\x10\x00\x00\x00garbage-garbage-garbage"))
			return err
		},
		"flipped byte": func(p string, size int64) error {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte{0xff}, size-3)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := OpenLog(dir, LogOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i := int64(0); i < 3; i++ {
				rec := logBatch(memory.DefaultAllocator, i*5, 5)
				l.Append(rec)
				rec.Release()
			}
			l.Close()
			p := l.segPath(1)
			fi, _ := os.Stat(p)
			if err := damage(p, fi.Size()); err != nil {
				t.Fatal(err)
			}
			l, err = OpenLog(dir, LogOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			wantNext := uint64(4) // garbage after whole entries keeps all three
			if name != "garbage" {
				wantNext = 3 // the damaged last entry is gone
			}
			if l.Next() != wantNext {
				t.Fatalf("next %d after %s, want %d", l.Next(), name, wantNext)
			}
			rec := logBatch(memory.DefaultAllocator, 100, 5)
			if seq, err := l.Append(rec); err != nil || seq != wantNext {
				t.Fatalf("append: %d %v", seq, err)
			}
			rec.Release()
			l.Sync()
			_, seqs := readAll(t, l, 1)
			if len(seqs) != int(wantNext) {
				t.Fatalf("entries %v", seqs)
			}
		})
	}
}

// TestLogSurvivesSIGKILL: a child process appends and syncs batches,
// printing each synced seq, and is killed with SIGKILL mid-stream; every
// seq it reported synced is in the log when it is opened again.
func TestLogSurvivesSIGKILL(t *testing.T) {
	if os.Getenv("SPATE_LOG_CHILD") != "" {
		logChild(os.Getenv("SPATE_LOG_CHILD"))
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLogSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), "SPATE_LOG_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var acked uint64
	deadline := time.Now().Add(30 * time.Second)
	for sc.Scan() {
		if n, err := strconv.ParseUint(strings.TrimPrefix(sc.Text(), "synced "), 10, 64); err == nil {
			acked = n
		}
		if acked >= 200 || time.Now().After(deadline) {
			break
		}
	}
	syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	if acked < 200 {
		t.Fatalf("the child synced only %d entries", acked)
	}
	l, err := OpenLog(dir, LogOptions{SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ids, seqs := readAll(t, l, 1)
	if uint64(len(seqs)) < acked {
		t.Fatalf("%d entries survived, %d were acknowledged", len(seqs), acked)
	}
	for i, id := range ids {
		if id != int64(i) {
			t.Fatalf("row %d has id %d", i, id)
		}
	}
	t.Logf("%d entries acknowledged before SIGKILL, %d in the log after", acked, len(seqs))
}

func logChild(dir string) {
	l, err := OpenLog(dir, LogOptions{SegmentBytes: 64 << 10})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := int64(0); ; i++ {
		rec := logBatch(memory.DefaultAllocator, i*3, 3)
		_, err := l.Append(rec)
		rec.Release()
		if err == nil && i%2 == 1 {
			err = l.Sync()
			if err == nil {
				fmt.Printf("synced %d\n", i+1)
			}
		}
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
}

func TestLogCorruptMiddleSegment(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir, LogOptions{SegmentBytes: 2 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 20; i++ {
		rec := logBatch(memory.DefaultAllocator, i*10, 10)
		l.Append(rec)
		rec.Release()
	}
	l.Sync()
	segs, _ := l.segments()
	f, _ := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%020d.log", segs[1])), os.O_RDWR, 0)
	f.WriteAt([]byte{0xee}, 40)
	f.Close()
	err = l.Read(1, func(uint64, arrow.RecordBatch) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading over a corrupt entry: %v", err)
	}
	l.Close()
}

// TestLogStartAt: an empty log can begin at any position (a new data
// directory resuming from a restart point), keeps numbering from there
// after a reopen, and refuses once it holds an entry.
func TestLogStartAt(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	l, err := OpenLog(dir, LogOptions{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StartAt(23); err != nil {
		t.Fatal(err)
	}
	if l.Next() != 23 {
		t.Fatalf("next %d after StartAt(23)", l.Next())
	}
	if _, seqs := readAll(t, l, 23); len(seqs) != 0 {
		t.Fatalf("entries %v in an empty log", seqs)
	}
	rec := logBatch(mem, 0, 5)
	seq, err := l.Append(rec)
	rec.Release()
	if err != nil || seq != 23 {
		t.Fatalf("first append: %d %v", seq, err)
	}
	if err := l.StartAt(40); err == nil {
		t.Fatal("StartAt on a log with an entry")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = OpenLog(dir, LogOptions{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Next() != 24 {
		t.Fatalf("reopened at %d, want 24", l.Next())
	}
	if ids, seqs := readAll(t, l, 23); len(ids) != 5 || len(seqs) != 1 || seqs[0] != 23 {
		t.Fatalf("read %v %v", ids, seqs)
	}
	if err := l.Read(1, func(uint64, arrow.RecordBatch) error { return nil }); err == nil || !strings.Contains(err.Error(), "trimmed") {
		t.Fatalf("reading before the start: %v", err)
	}
}
