package exec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// KeyHashColumn is the name of the uint64 column every snapshot batch
// carries: the HashColumns hash of the row's group key.
const KeyHashColumn = "__key_hash"

// metaCounterPrefix marks Meta entries that are counters: PartitionSnapshot
// keeps them in the first part only, so totals are not multiplied.
const metaCounterPrefix = "count."

// Release drops the snapshot's batches. Safe to call more than once; the
// snapshot must not be used afterwards.
func (s *Snapshot) Release() {
	if s == nil {
		return
	}
	for _, b := range s.Batches {
		if b != nil {
			b.Release()
		}
	}
	s.Batches = nil
}

func keyHashIndex(rec arrow.RecordBatch) (int, error) {
	idx := rec.Schema().FieldIndices(KeyHashColumn)
	if len(idx) != 1 || rec.Column(idx[0]).DataType().ID() != arrow.UINT64 {
		return 0, fmt.Errorf("exec: snapshot batch has no uint64 %s column", KeyHashColumn)
	}
	return idx[0], nil
}

// PartitionSnapshot splits snap by key hash into len(splits)+1 snapshots:
// part i holds the rows whose __key_hash h satisfies splits[i-1] <= h <
// splits[i] (part 0 from 0, the last part up to and including MaxUint64).
// splits must be strictly increasing. Every part gets the snapshot's Kind,
// Positions and Meta, except Meta counters ("count.*"), which go to part 0
// only. Empty batches are left out. snap is not modified or retained; the
// caller owns (and releases) the parts. Options: WithAllocator.
func PartitionSnapshot(snap *Snapshot, splits []uint64, opts ...Option) ([]*Snapshot, error) {
	o := buildOptions(opts)
	for i := 1; i < len(splits); i++ {
		if splits[i] <= splits[i-1] {
			return nil, fmt.Errorf("exec: PartitionSnapshot: split points must be strictly increasing")
		}
	}
	parts := make([]*Snapshot, len(splits)+1)
	for i := range parts {
		p := &Snapshot{Kind: snap.Kind, Meta: map[string]string{}, Positions: map[string]uint64{}}
		for k, v := range snap.Meta {
			if i > 0 && strings.HasPrefix(k, metaCounterPrefix) {
				continue
			}
			p.Meta[k] = v
		}
		for k, v := range snap.Positions {
			p.Positions[k] = v
		}
		parts[i] = p
	}
	for _, rec := range snap.Batches {
		hi, err := keyHashIndex(rec)
		if err != nil {
			for _, p := range parts {
				p.Release()
			}
			return nil, err
		}
		hashes := Uint64s(rec.Column(hi))
		rows := make([][]int32, len(parts))
		for r, h := range hashes {
			p := sort.Search(len(splits), func(i int) bool { return splits[i] > h })
			rows[p] = append(rows[p], int32(r))
		}
		for p, idx := range rows {
			if len(idx) == 0 {
				continue
			}
			if len(idx) == int(rec.NumRows()) {
				rec.Retain()
				parts[p].Batches = append(parts[p].Batches, rec)
				continue
			}
			cols := make([]arrow.Array, rec.NumCols())
			for c := range cols {
				cols[c] = takeArray(o.mem, rec.Column(c), idx)
			}
			parts[p].Batches = append(parts[p].Batches, array.NewRecordBatch(rec.Schema(), cols, int64(len(idx))))
			releaseAll(cols)
		}
	}
	return parts, nil
}

const snapshotMagic = "SPATESNAP1\n"

type snapshotHeader struct {
	Kind      string            `json:"kind"`
	Meta      map[string]string `json:"meta,omitempty"`
	Positions map[string]uint64 `json:"positions,omitempty"`
	Batches   int               `json:"batches"`
}

// Marshal encodes the snapshot: a magic line, a length-prefixed JSON
// header (Kind, Meta, Positions, batch count), then each batch as a
// length-prefixed Arrow IPC stream (schema with metadata + one record
// batch). The snapshot is not modified.
func (s *Snapshot) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(snapshotMagic)
	hdr, err := json.Marshal(snapshotHeader{Kind: s.Kind, Meta: s.Meta, Positions: s.Positions, Batches: len(s.Batches)})
	if err != nil {
		return nil, err
	}
	var lenb [8]byte
	binary.LittleEndian.PutUint64(lenb[:], uint64(len(hdr)))
	buf.Write(lenb[:])
	buf.Write(hdr)
	for _, rec := range s.Batches {
		var b bytes.Buffer
		w := ipc.NewWriter(&b, ipc.WithSchema(rec.Schema()))
		if err := w.Write(rec); err != nil {
			w.Close()
			return nil, fmt.Errorf("exec: snapshot marshal: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("exec: snapshot marshal: %w", err)
		}
		binary.LittleEndian.PutUint64(lenb[:], uint64(b.Len()))
		buf.Write(lenb[:])
		buf.Write(b.Bytes())
	}
	return buf.Bytes(), nil
}

// UnmarshalSnapshot decodes the output of Marshal. The caller owns the
// returned snapshot and releases it. Options: WithAllocator.
func UnmarshalSnapshot(data []byte, opts ...Option) (*Snapshot, error) {
	o := buildOptions(opts)
	if !bytes.HasPrefix(data, []byte(snapshotMagic)) {
		return nil, fmt.Errorf("exec: not a snapshot")
	}
	data = data[len(snapshotMagic):]
	next := func() ([]byte, error) {
		if len(data) < 8 {
			return nil, fmt.Errorf("exec: truncated snapshot")
		}
		n := binary.LittleEndian.Uint64(data)
		data = data[8:]
		if uint64(len(data)) < n {
			return nil, fmt.Errorf("exec: truncated snapshot")
		}
		b := data[:n]
		data = data[n:]
		return b, nil
	}
	hb, err := next()
	if err != nil {
		return nil, err
	}
	var hdr snapshotHeader
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, fmt.Errorf("exec: snapshot header: %w", err)
	}
	s := &Snapshot{Kind: hdr.Kind, Meta: hdr.Meta, Positions: hdr.Positions}
	if s.Meta == nil {
		s.Meta = map[string]string{}
	}
	if s.Positions == nil {
		s.Positions = map[string]uint64{}
	}
	for i := 0; i < hdr.Batches; i++ {
		b, err := next()
		if err != nil {
			s.Release()
			return nil, err
		}
		r, err := ipc.NewReader(bytes.NewReader(b), ipc.WithAllocator(o.mem))
		if err != nil {
			s.Release()
			return nil, fmt.Errorf("exec: snapshot batch %d: %w", i, err)
		}
		if !r.Next() {
			err := r.Err()
			r.Release()
			s.Release()
			return nil, fmt.Errorf("exec: snapshot batch %d: missing record: %v", i, err)
		}
		rec := r.RecordBatch()
		rec.Retain()
		r.Release()
		s.Batches = append(s.Batches, rec)
	}
	return s, nil
}

// MergeSnapshots combines two snapshots of one operator configuration
// over disjoint key ranges (the inverse of PartitionSnapshot): the
// batches of both, the lower watermark, the counters added. a and b are
// not modified; the caller owns (and releases) the result.
func MergeSnapshots(a, b *Snapshot) (*Snapshot, error) {
	if a.Kind != b.Kind || a.Meta["config"] != b.Meta["config"] {
		return nil, fmt.Errorf("exec: MergeSnapshots: a %q snapshot and a %q one of another configuration", a.Kind, b.Kind)
	}
	m := &Snapshot{Kind: a.Kind, Meta: map[string]string{}, Positions: map[string]uint64{}}
	for k, v := range a.Meta {
		m.Meta[k] = v
	}
	for k, v := range b.Meta {
		old, ok := m.Meta[k]
		switch {
		case !ok:
			m.Meta[k] = v
		case strings.HasPrefix(k, metaCounterPrefix), k == "watermark":
			x, err1 := strconv.ParseInt(old, 10, 64)
			y, err2 := strconv.ParseInt(v, 10, 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("exec: MergeSnapshots: meta %s is not a number", k)
			}
			if k == "watermark" {
				m.Meta[k] = strconv.FormatInt(min(x, y), 10)
			} else {
				m.Meta[k] = strconv.FormatInt(x+y, 10)
			}
		}
	}
	for _, p := range []map[string]uint64{a.Positions, b.Positions} {
		for k, v := range p {
			m.Positions[k] = max(m.Positions[k], v)
		}
	}
	for _, s := range []*Snapshot{a, b} {
		for _, rec := range s.Batches {
			rec.Retain()
			m.Batches = append(m.Batches, rec)
		}
	}
	return m, nil
}
