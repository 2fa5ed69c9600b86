package exec

import (
	"fmt"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// physical is the layout class of an Arrow type as the kernels see it.
type physical uint8

const (
	physNull physical = iota
	physBool
	physInt64 // Int64, Timestamp_us, Duration_us (and any 64-bit integer layout)
	physFloat64
	physString
	physUint64
	physOther
)

func physOf(dt arrow.DataType) physical {
	switch dt.ID() {
	case arrow.NULL:
		return physNull
	case arrow.BOOL:
		return physBool
	case arrow.INT64, arrow.TIMESTAMP, arrow.DURATION, arrow.DATE64:
		return physInt64
	case arrow.FLOAT64:
		return physFloat64
	case arrow.STRING:
		return physString
	case arrow.UINT64:
		return physUint64
	}
	return physOther
}

// Int64s returns a zero-copy view of the values of an Int64, Timestamp or
// Duration array (any array with a 64-bit integer layout). Values at null
// positions are unspecified. The slice aliases the array's buffer: it is
// valid while the array is retained and must not be modified.
func Int64s(arr arrow.Array) []int64 {
	d := arr.Data()
	if d.Len() == 0 || len(d.Buffers()) < 2 || d.Buffers()[1] == nil {
		return nil
	}
	v := arrow.Int64Traits.CastFromBytes(d.Buffers()[1].Bytes())
	return v[d.Offset() : d.Offset()+d.Len()]
}

// Float64s returns a zero-copy view of a Float64 array's values, with the
// same validity rules as Int64s.
func Float64s(arr arrow.Array) []float64 {
	d := arr.Data()
	if d.Len() == 0 || d.Buffers()[1] == nil {
		return nil
	}
	v := arrow.Float64Traits.CastFromBytes(d.Buffers()[1].Bytes())
	return v[d.Offset() : d.Offset()+d.Len()]
}

// Uint64s returns a zero-copy view of a Uint64 array's values.
func Uint64s(arr arrow.Array) []uint64 {
	d := arr.Data()
	if d.Len() == 0 || d.Buffers()[1] == nil {
		return nil
	}
	v := arrow.Uint64Traits.CastFromBytes(d.Buffers()[1].Bytes())
	return v[d.Offset() : d.Offset()+d.Len()]
}

// strView gives fast access to a String array's bytes.
type strView struct {
	offs []int32
	data []byte
}

func stringsOf(arr arrow.Array) strView {
	s := arr.(*array.String)
	// ValueOffsets are absolute positions in the whole data buffer (and
	// need not start at 0 for a sliced or IPC-read array).
	var data []byte
	if b := s.Data().Buffers()[2]; b != nil {
		data = b.Bytes()
	}
	return strView{offs: s.ValueOffsets(), data: data}
}

// bytes returns the bytes of row i (aliasing the array).
func (v strView) bytes(i int) []byte { return v.data[v.offs[i]:v.offs[i+1]] }

// str returns row i as a string aliasing the array's memory: only for
// transient use (comparison, parsing), never stored.
func (v strView) str(i int) string {
	b := v.data[v.offs[i]:v.offs[i+1]]
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// validity is a read view of an array's validity bitmap; bits == nil means
// all valid.
type validity struct {
	bits []byte
	off  int
}

func validityOf(arr arrow.Array) validity {
	if arr.NullN() == 0 {
		return validity{}
	}
	if arr.DataType().ID() == arrow.NULL {
		return validity{bits: zeroBits(arr.Len()), off: 0}
	}
	return validity{bits: arr.NullBitmapBytes(), off: arr.Data().Offset()}
}

var zeroBitmap [1024]byte

func zeroBits(n int) []byte {
	if (n+7)/8 <= len(zeroBitmap) {
		return zeroBitmap[:]
	}
	return make([]byte, (n+7)/8)
}

func (v validity) valid(i int) bool {
	return v.bits == nil || v.bits[(v.off+i)>>3]&(1<<uint((v.off+i)&7)) != 0
}

func (v validity) all() bool { return v.bits == nil }

// ---- buffers ----

func allocInt64(mem memory.Allocator, n int) (*memory.Buffer, []int64) {
	b := memory.NewResizableBuffer(mem)
	b.Resize(n * 8)
	if n == 0 {
		return b, nil
	}
	return b, arrow.Int64Traits.CastFromBytes(b.Bytes())[:n]
}

func allocFloat64(mem memory.Allocator, n int) (*memory.Buffer, []float64) {
	b := memory.NewResizableBuffer(mem)
	b.Resize(n * 8)
	if n == 0 {
		return b, nil
	}
	return b, arrow.Float64Traits.CastFromBytes(b.Bytes())[:n]
}

func allocUint64(mem memory.Allocator, n int) (*memory.Buffer, []uint64) {
	b := memory.NewResizableBuffer(mem)
	b.Resize(n * 8)
	if n == 0 {
		return b, nil
	}
	return b, arrow.Uint64Traits.CastFromBytes(b.Bytes())[:n]
}

// allocBits returns a zeroed bitmap of n bits.
func allocBits(mem memory.Allocator, n int) (*memory.Buffer, []byte) {
	b := memory.NewResizableBuffer(mem)
	nb := int(bitutil.BytesForBits(int64(n)))
	b.Resize(nb)
	bs := b.Bytes()
	for i := range bs {
		bs[i] = 0
	}
	return b, bs
}

func setBit(b []byte, i int)   { b[i>>3] |= 1 << uint(i&7) }
func clearBit(b []byte, i int) { b[i>>3] &^= 1 << uint(i&7) }
func getBit(b []byte, i int) bool {
	return b[i>>3]&(1<<uint(i&7)) != 0
}

func countSet(b []byte, n int) int {
	c := 0
	full := n / 8
	for _, x := range b[:full] {
		c += bits.OnesCount8(x)
	}
	for i := full * 8; i < n; i++ {
		if getBit(b, i) {
			c++
		}
	}
	return c
}

// makeFixed builds an array of a fixed-width type from a data buffer and an
// optional validity bitmap (nil = all valid), taking ownership of both.
func makeFixed(dt arrow.DataType, n int, valid, data *memory.Buffer) arrow.Array {
	nulls := 0
	if valid != nil {
		nulls = n - countSet(valid.Bytes(), n)
		if nulls == 0 {
			valid.Release()
			valid = nil
		}
	}
	d := array.NewData(dt, n, []*memory.Buffer{valid, data}, nil, nulls, 0)
	a := array.MakeFromData(d)
	d.Release()
	if valid != nil {
		valid.Release()
	}
	data.Release()
	return a
}

// makeString builds a String array from offsets and bytes, taking ownership
// of the buffers.
func makeString(n int, valid, offsets, data *memory.Buffer) arrow.Array {
	nulls := 0
	if valid != nil {
		nulls = n - countSet(valid.Bytes(), n)
		if nulls == 0 {
			valid.Release()
			valid = nil
		}
	}
	d := array.NewData(arrow.BinaryTypes.String, n, []*memory.Buffer{valid, offsets, data}, nil, nulls, 0)
	a := array.MakeFromData(d)
	d.Release()
	if valid != nil {
		valid.Release()
	}
	offsets.Release()
	data.Release()
	return a
}

// stringBuf accumulates a String array.
type stringBuf struct {
	offs  []int32
	data  []byte
	valid []byte // nil until the first null
	n     int
}

func newStringBuf(n int) *stringBuf {
	s := &stringBuf{offs: make([]int32, 1, n+1)}
	return s
}

func (s *stringBuf) append(b []byte) {
	s.data = append(s.data, b...)
	s.offs = append(s.offs, int32(len(s.data)))
	if s.valid != nil {
		s.growValid()
		setBit(s.valid, s.n)
	}
	s.n++
}

func (s *stringBuf) appendString(v string) {
	s.data = append(s.data, v...)
	s.offs = append(s.offs, int32(len(s.data)))
	if s.valid != nil {
		s.growValid()
		setBit(s.valid, s.n)
	}
	s.n++
}

func (s *stringBuf) growValid() {
	for len(s.valid)*8 <= s.n {
		s.valid = append(s.valid, 0)
	}
}

func (s *stringBuf) appendNull() {
	if s.valid == nil {
		s.valid = make([]byte, (s.n+8)/8+1)
		for i := 0; i < s.n; i++ {
			setBit(s.valid, i)
		}
	}
	s.growValid()
	s.offs = append(s.offs, int32(len(s.data)))
	s.n++
}

func (s *stringBuf) finish(mem memory.Allocator) arrow.Array {
	ob := memory.NewResizableBuffer(mem)
	ob.Resize(len(s.offs) * 4)
	copy(ob.Bytes(), arrow.Int32Traits.CastToBytes(s.offs))
	db := memory.NewResizableBuffer(mem)
	db.Resize(len(s.data))
	copy(db.Bytes(), s.data)
	var vb *memory.Buffer
	if s.valid != nil {
		vb = memory.NewResizableBuffer(mem)
		vb.Resize(int(bitutil.BytesForBits(int64(s.n))))
		copy(vb.Bytes(), s.valid)
	}
	return makeString(s.n, vb, ob, db)
}

// ---- constant columns ----

// constArray returns a column of n copies of the Go value v (nil = NULL) of
// type dt.
func constArray(mem memory.Allocator, dt arrow.DataType, v any, n int) (arrow.Array, error) {
	if v == nil {
		if dt.ID() == arrow.NULL {
			return array.NewNull(n), nil
		}
		return array.MakeArrayOfNull(mem, dt, n), nil
	}
	switch physOf(dt) {
	case physBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("exec: literal %v (%T) is not a bool", v, v)
		}
		buf, bs := allocBits(mem, n)
		if b {
			for i := range bs {
				bs[i] = 0xff
			}
		}
		return makeFixed(dt, n, nil, buf), nil
	case physInt64:
		x, ok := toInt64(v)
		if !ok {
			return nil, fmt.Errorf("exec: literal %v (%T) is not an int64", v, v)
		}
		buf, vs := allocInt64(mem, n)
		for i := range vs {
			vs[i] = x
		}
		return makeFixed(dt, n, nil, buf), nil
	case physFloat64:
		var x float64
		switch t := v.(type) {
		case float64:
			x = t
		case int64:
			x = float64(t)
		case int:
			x = float64(t)
		default:
			return nil, fmt.Errorf("exec: literal %v (%T) is not a float64", v, v)
		}
		buf, vs := allocFloat64(mem, n)
		for i := range vs {
			vs[i] = x
		}
		return makeFixed(dt, n, nil, buf), nil
	case physString:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("exec: literal %v (%T) is not a string", v, v)
		}
		ob, offs := allocInt32(mem, n+1)
		for i := range offs {
			offs[i] = int32(i * len(s))
		}
		db := memory.NewResizableBuffer(mem)
		db.Resize(n * len(s))
		d := db.Bytes()
		for i := 0; i < n; i++ {
			copy(d[i*len(s):], s)
		}
		return makeString(n, nil, ob, db), nil
	case physUint64:
		x, ok := v.(uint64)
		if !ok {
			return nil, fmt.Errorf("exec: literal %v (%T) is not a uint64", v, v)
		}
		buf, vs := allocUint64(mem, n)
		for i := range vs {
			vs[i] = x
		}
		return makeFixed(dt, n, nil, buf), nil
	}
	return nil, fmt.Errorf("exec: unsupported literal type %s", dt)
}

func toInt64(v any) (int64, bool) {
	switch t := v.(type) {
	case int64:
		return t, true
	case int:
		return int64(t), true
	case int32:
		return int64(t), true
	}
	return 0, false
}

func allocInt32(mem memory.Allocator, n int) (*memory.Buffer, []int32) {
	b := memory.NewResizableBuffer(mem)
	b.Resize(n * 4)
	if n == 0 {
		return b, nil
	}
	return b, arrow.Int32Traits.CastFromBytes(b.Bytes())[:n]
}

// ---- take / gather ----

// takeArray returns the rows idx of arr as a new array (owned by the caller).
func takeArray(mem memory.Allocator, arr arrow.Array, idx []int32) arrow.Array {
	n := len(idx)
	dt := arr.DataType()
	vin := validityOf(arr)
	var vb *memory.Buffer
	if !vin.all() {
		var bs []byte
		vb, bs = allocBits(mem, n)
		for j, i := range idx {
			if vin.valid(int(i)) {
				setBit(bs, j)
			}
		}
	}
	switch physOf(dt) {
	case physNull:
		return array.NewNull(n)
	case physInt64:
		src := Int64s(arr)
		buf, out := allocInt64(mem, n)
		for j, i := range idx {
			out[j] = src[i]
		}
		return makeFixed(dt, n, vb, buf)
	case physUint64:
		src := Uint64s(arr)
		buf, out := allocUint64(mem, n)
		for j, i := range idx {
			out[j] = src[i]
		}
		return makeFixed(dt, n, vb, buf)
	case physFloat64:
		src := Float64s(arr)
		buf, out := allocFloat64(mem, n)
		for j, i := range idx {
			out[j] = src[i]
		}
		return makeFixed(dt, n, vb, buf)
	case physBool:
		src := arr.(*array.Boolean)
		buf, out := allocBits(mem, n)
		for j, i := range idx {
			if src.Value(int(i)) {
				setBit(out, j)
			}
		}
		return makeFixed(dt, n, vb, buf)
	case physString:
		sv := stringsOf(arr)
		total := 0
		for _, i := range idx {
			total += int(sv.offs[i+1] - sv.offs[i])
		}
		ob, offs := allocInt32(mem, n+1)
		db := memory.NewResizableBuffer(mem)
		db.Resize(total)
		d := db.Bytes()
		pos := int32(0)
		offs[0] = 0
		for j, i := range idx {
			pos += int32(copy(d[pos:], sv.data[sv.offs[i]:sv.offs[i+1]]))
			offs[j+1] = pos
		}
		return makeString(n, vb, ob, db)
	}
	if vb != nil {
		vb.Release()
	}
	// Fallback for other types: builder-based.
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	for _, i := range idx {
		if err := b.AppendValueFromString(arr.ValueStr(int(i))); err != nil {
			b.AppendNull()
		}
	}
	return b.NewArray()
}

// selectionIndices returns the indices of rows where the boolean array is
// valid and true; all reports whether that is every row.
func selectionIndices(mask arrow.Array, buf []int32) (idx []int32, all bool) {
	b := mask.(*array.Boolean)
	n := b.Len()
	v := validityOf(mask)
	idx = buf[:0]
	data := b.Data().Buffers()[1].Bytes()
	off := b.Data().Offset()
	if v.all() && off == 0 {
		for i := 0; i < n; i++ {
			if data[i>>3]&(1<<uint(i&7)) != 0 {
				idx = append(idx, int32(i))
			}
		}
	} else {
		for i := 0; i < n; i++ {
			if v.valid(i) && getBit(data, off+i) {
				idx = append(idx, int32(i))
			}
		}
	}
	return idx, len(idx) == n
}

// gatherSrc picks for each output row a source array and a row in it.
// srcs[k] may be nil to mean NULL.
func gather(mem memory.Allocator, dt arrow.DataType, srcs []arrow.Array, which []int32, rows []int32) arrow.Array {
	n := len(which)
	vs := make([]validity, len(srcs))
	for k, s := range srcs {
		if s != nil {
			vs[k] = validityOf(s)
		}
	}
	vb, vbits := allocBits(mem, n)
	for j := 0; j < n; j++ {
		k := which[j]
		if k >= 0 && srcs[k] != nil && vs[k].valid(int(rows[j])) {
			setBit(vbits, j)
		}
	}
	switch physOf(dt) {
	case physNull:
		vb.Release()
		return array.NewNull(n)
	case physInt64:
		ss := make([][]int64, len(srcs))
		for k, s := range srcs {
			if s != nil {
				ss[k] = Int64s(s)
			}
		}
		buf, out := allocInt64(mem, n)
		for j := 0; j < n; j++ {
			if getBit(vbits, j) {
				out[j] = ss[which[j]][rows[j]]
			} else {
				out[j] = 0
			}
		}
		return makeFixed(dt, n, vb, buf)
	case physFloat64:
		ss := make([][]float64, len(srcs))
		for k, s := range srcs {
			if s != nil {
				ss[k] = Float64s(s)
			}
		}
		buf, out := allocFloat64(mem, n)
		for j := 0; j < n; j++ {
			if getBit(vbits, j) {
				out[j] = ss[which[j]][rows[j]]
			} else {
				out[j] = 0
			}
		}
		return makeFixed(dt, n, vb, buf)
	case physBool:
		buf, out := allocBits(mem, n)
		for j := 0; j < n; j++ {
			if getBit(vbits, j) && srcs[which[j]].(*array.Boolean).Value(int(rows[j])) {
				setBit(out, j)
			}
		}
		return makeFixed(dt, n, vb, buf)
	case physString:
		ss := make([]strView, len(srcs))
		for k, s := range srcs {
			if s != nil {
				ss[k] = stringsOf(s)
			}
		}
		sb := newStringBuf(n)
		for j := 0; j < n; j++ {
			if getBit(vbits, j) {
				sb.append(ss[which[j]].bytes(int(rows[j])))
			} else {
				sb.appendNull()
			}
		}
		vb.Release()
		return sb.finish(mem)
	}
	vb.Release()
	panic(fmt.Sprintf("exec: gather of unsupported type %s", dt))
}

// releaseAll releases every non-nil array.
func releaseAll(arrs []arrow.Array) {
	for _, a := range arrs {
		if a != nil {
			a.Release()
		}
	}
}

func sortInt64s(x []int64)   { slices.Sort(x) }
func sortStrings(x []string) { slices.Sort(x) }
