package exec

import (
	"bytes"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// keyCol is the columnar storage of one group-key column, indexed by group
// id. bind sets the input batch column that appendRow / eqRow read.
type keyCol interface {
	bind(a arrow.Array)
	appendRow(row int)
	eqRow(g uint32, row int) bool
	cmp(g1, g2 uint32) int // NULLs sort last
	export(mem memory.Allocator, gids []uint32) arrow.Array
	bytes() int64
	// frozen returns a read-only copy of the keys stored now for export
	// on another goroutine: key storage is append-only, so the copy
	// shares it.
	frozen() keyCol
}

func newKeyCol(dt arrow.DataType) keyCol {
	switch physOf(dt) {
	case physInt64:
		return &int64Keys{dt: dt}
	case physFloat64:
		return &float64Keys{}
	case physString:
		return &stringKeys{offs: []int32{0}}
	case physBool:
		return &boolKeys{}
	case physUint64:
		return &uint64Keys{}
	}
	return &stringKeys{offs: []int32{0}, other: dt}
}

type int64Keys struct {
	dt    arrow.DataType
	vals  []int64
	null  []bool
	in    []int64
	inVal validity
}

func (k *int64Keys) bind(a arrow.Array) { k.in, k.inVal = Int64s(a), validityOf(a) }
func (k *int64Keys) appendRow(row int) {
	if k.inVal.valid(row) {
		k.vals = append(k.vals, k.in[row])
		k.null = append(k.null, false)
	} else {
		k.vals = append(k.vals, 0)
		k.null = append(k.null, true)
	}
}
func (k *int64Keys) eqRow(g uint32, row int) bool {
	if !k.inVal.valid(row) {
		return k.null[g]
	}
	return !k.null[g] && k.vals[g] == k.in[row]
}
func (k *int64Keys) cmp(a, b uint32) int {
	if k.null[a] || k.null[b] {
		return nullCmp(k.null[a], k.null[b])
	}
	x, y := k.vals[a], k.vals[b]
	if x < y {
		return -1
	} else if x > y {
		return 1
	}
	return 0
}
func (k *int64Keys) export(mem memory.Allocator, gids []uint32) arrow.Array {
	n := len(gids)
	buf, out := allocInt64(mem, n)
	vb, vbits := allocBits(mem, n)
	for j, g := range gids {
		out[j] = k.vals[g]
		if !k.null[g] {
			setBit(vbits, j)
		}
	}
	return makeFixed(k.dt, n, vb, buf)
}
func (k *int64Keys) bytes() int64   { return int64(len(k.vals)) * 9 }
func (k *int64Keys) frozen() keyCol { return &int64Keys{dt: k.dt, vals: k.vals, null: k.null} }

func nullCmp(an, bn bool) int {
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	}
	return -1
}

type uint64Keys struct {
	vals  []uint64
	null  []bool
	in    []uint64
	inVal validity
}

func (k *uint64Keys) bind(a arrow.Array) { k.in, k.inVal = Uint64s(a), validityOf(a) }
func (k *uint64Keys) appendRow(row int) {
	if k.inVal.valid(row) {
		k.vals = append(k.vals, k.in[row])
		k.null = append(k.null, false)
	} else {
		k.vals = append(k.vals, 0)
		k.null = append(k.null, true)
	}
}
func (k *uint64Keys) eqRow(g uint32, row int) bool {
	if !k.inVal.valid(row) {
		return k.null[g]
	}
	return !k.null[g] && k.vals[g] == k.in[row]
}
func (k *uint64Keys) cmp(a, b uint32) int {
	if k.null[a] || k.null[b] {
		return nullCmp(k.null[a], k.null[b])
	}
	x, y := k.vals[a], k.vals[b]
	if x < y {
		return -1
	} else if x > y {
		return 1
	}
	return 0
}
func (k *uint64Keys) export(mem memory.Allocator, gids []uint32) arrow.Array {
	n := len(gids)
	buf, out := allocUint64(mem, n)
	vb, vbits := allocBits(mem, n)
	for j, g := range gids {
		out[j] = k.vals[g]
		if !k.null[g] {
			setBit(vbits, j)
		}
	}
	return makeFixed(arrow.PrimitiveTypes.Uint64, n, vb, buf)
}
func (k *uint64Keys) bytes() int64   { return int64(len(k.vals)) * 9 }
func (k *uint64Keys) frozen() keyCol { return &uint64Keys{vals: k.vals, null: k.null} }

type float64Keys struct {
	vals  []float64
	null  []bool
	in    []float64
	inVal validity
}

func (k *float64Keys) bind(a arrow.Array) { k.in, k.inVal = Float64s(a), validityOf(a) }
func (k *float64Keys) appendRow(row int) {
	if k.inVal.valid(row) {
		v := k.in[row]
		if v == 0 {
			v = 0 // normalise -0
		}
		k.vals = append(k.vals, v)
		k.null = append(k.null, false)
	} else {
		k.vals = append(k.vals, 0)
		k.null = append(k.null, true)
	}
}
func (k *float64Keys) eqRow(g uint32, row int) bool {
	if !k.inVal.valid(row) {
		return k.null[g]
	}
	return !k.null[g] && fcmp(k.vals[g], k.in[row]) == 0
}
func (k *float64Keys) cmp(a, b uint32) int {
	if k.null[a] || k.null[b] {
		return nullCmp(k.null[a], k.null[b])
	}
	return fcmp(k.vals[a], k.vals[b])
}
func (k *float64Keys) export(mem memory.Allocator, gids []uint32) arrow.Array {
	n := len(gids)
	buf, out := allocFloat64(mem, n)
	vb, vbits := allocBits(mem, n)
	for j, g := range gids {
		out[j] = k.vals[g]
		if !k.null[g] {
			setBit(vbits, j)
		}
	}
	return makeFixed(tFloat, n, vb, buf)
}
func (k *float64Keys) bytes() int64   { return int64(len(k.vals)) * 9 }
func (k *float64Keys) frozen() keyCol { return &float64Keys{vals: k.vals, null: k.null} }

type boolKeys struct {
	vals  []int8 // 0 false, 1 true, -1 null
	in    *array.Boolean
	inVal validity
}

func (k *boolKeys) bind(a arrow.Array) { k.in, k.inVal = a.(*array.Boolean), validityOf(a) }
func (k *boolKeys) val(row int) int8 {
	if !k.inVal.valid(row) {
		return -1
	}
	if k.in.Value(row) {
		return 1
	}
	return 0
}
func (k *boolKeys) appendRow(row int)            { k.vals = append(k.vals, k.val(row)) }
func (k *boolKeys) eqRow(g uint32, row int) bool { return k.vals[g] == k.val(row) }
func (k *boolKeys) cmp(a, b uint32) int {
	x, y := k.vals[a], k.vals[b]
	if x < 0 || y < 0 {
		return nullCmp(x < 0, y < 0)
	}
	return int(x) - int(y)
}
func (k *boolKeys) export(mem memory.Allocator, gids []uint32) arrow.Array {
	n := len(gids)
	db, out := allocBits(mem, n)
	vb, vbits := allocBits(mem, n)
	for j, g := range gids {
		if k.vals[g] >= 0 {
			setBit(vbits, j)
			if k.vals[g] == 1 {
				setBit(out, j)
			}
		}
	}
	return makeFixed(tBool, n, vb, db)
}
func (k *boolKeys) bytes() int64   { return int64(len(k.vals)) }
func (k *boolKeys) frozen() keyCol { return &boolKeys{vals: k.vals} }

// stringKeys stores keys as one byte arena with offsets. other, when set,
// is a non-string type stored by its text form (exported as text).
type stringKeys struct {
	offs  []int32
	data  []byte
	null  []bool
	in    strView
	inVal validity
	other arrow.DataType
	inArr arrow.Array
}

func (k *stringKeys) bind(a arrow.Array) {
	k.inVal = validityOf(a)
	k.inArr = a
	if k.other == nil {
		k.in = stringsOf(a)
	}
}
func (k *stringKeys) rowBytes(row int) []byte {
	if k.other != nil {
		return []byte(k.inArr.ValueStr(row))
	}
	return k.in.bytes(row)
}
func (k *stringKeys) appendRow(row int) {
	if k.inVal.valid(row) {
		k.data = append(k.data, k.rowBytes(row)...)
		k.null = append(k.null, false)
	} else {
		k.null = append(k.null, true)
	}
	k.offs = append(k.offs, int32(len(k.data)))
}
func (k *stringKeys) get(g uint32) []byte { return k.data[k.offs[g]:k.offs[g+1]] }
func (k *stringKeys) eqRow(g uint32, row int) bool {
	if !k.inVal.valid(row) {
		return k.null[g]
	}
	return !k.null[g] && bytes.Equal(k.get(g), k.rowBytes(row))
}
func (k *stringKeys) cmp(a, b uint32) int {
	if k.null[a] || k.null[b] {
		return nullCmp(k.null[a], k.null[b])
	}
	return bytes.Compare(k.get(a), k.get(b))
}
func (k *stringKeys) export(mem memory.Allocator, gids []uint32) arrow.Array {
	sb := newStringBuf(len(gids))
	for _, g := range gids {
		if k.null[g] {
			sb.appendNull()
		} else {
			sb.append(k.get(g))
		}
	}
	return sb.finish(mem)
}
func (k *stringKeys) bytes() int64 { return int64(len(k.data)) + int64(len(k.offs))*5 }
func (k *stringKeys) frozen() keyCol {
	return &stringKeys{offs: k.offs, data: k.data, null: k.null, other: k.other}
}

// groupTable maps group keys to dense group ids (0, 1, 2, … in order of
// first appearance) with open addressing on the 64-bit key hash; keys are
// compared on hash equality. A single int64-layout key uses a specialised
// table whose slots hold the key itself (one cache miss per probe), with
// the NULL key kept aside.
type groupTable struct {
	keys   []keyCol
	hashes []uint64 // per group: HashColumns of the key
	slots  []uint32 // general path: group id + 1; 0 = empty
	mask   uint64
	n      int
	// single int64 key fast path
	fast    bool
	fkeys   *int64Keys
	fslots  []fastSlot
	nullGid int64 // group id of the NULL key, -1 if none
}

type fastSlot struct {
	key int64
	gid uint32 // group id + 1; 0 = empty
}

func newGroupTable(keyTypes []arrow.DataType) *groupTable {
	t := &groupTable{nullGid: -1}
	for _, dt := range keyTypes {
		t.keys = append(t.keys, newKeyCol(dt))
	}
	if len(keyTypes) == 1 && physOf(keyTypes[0]) == physInt64 {
		t.fast = true
		t.fkeys = t.keys[0].(*int64Keys)
		t.fslots = make([]fastSlot, 16)
	} else {
		t.slots = make([]uint32, 16)
	}
	t.mask = 15
	return t
}

// frozen returns a read-only copy of the keys and hashes of the groups
// there are now (no index: the copy is for export only).
func (t *groupTable) frozen() *groupTable {
	f := &groupTable{hashes: t.hashes[:t.n:t.n], n: t.n, nullGid: t.nullGid}
	for _, k := range t.keys {
		f.keys = append(f.keys, k.frozen())
	}
	return f
}

// reserve sizes the table for about n groups.
func (t *groupTable) reserve(n int) {
	size := 16
	for size*3 < n*4 {
		size *= 2
	}
	if t.fast {
		if size > len(t.fslots) && t.n == 0 {
			t.fslots = make([]fastSlot, size)
			t.mask = uint64(size - 1)
		}
		t.fkeys.vals = slices.Grow(t.fkeys.vals, n)
		t.fkeys.null = slices.Grow(t.fkeys.null, n)
	} else if size > len(t.slots) && t.n == 0 {
		t.slots = make([]uint32, size)
		t.mask = uint64(size - 1)
	}
	t.hashes = slices.Grow(t.hashes, n)
}

func (t *groupTable) bind(cols []arrow.Array) {
	for i, k := range t.keys {
		k.bind(cols[i])
	}
}

func (t *groupTable) grow() {
	if t.fast {
		ns := make([]fastSlot, len(t.fslots)*2)
		mask := uint64(len(ns) - 1)
		for _, s := range t.fslots {
			if s.gid == 0 {
				continue
			}
			i := t.hashes[s.gid-1] & mask
			for ns[i].gid != 0 {
				i = (i + 1) & mask
			}
			ns[i] = s
		}
		t.fslots, t.mask = ns, mask
		return
	}
	ns := make([]uint32, len(t.slots)*2)
	mask := uint64(len(ns) - 1)
	for g := 0; g < t.n; g++ {
		i := t.hashes[g] & mask
		for ns[i] != 0 {
			i = (i + 1) & mask
		}
		ns[i] = uint32(g + 1)
	}
	t.slots, t.mask = ns, mask
}

// find maps rows (nil = 0..n-1) of the bound batch to group ids in gids,
// inserting new groups. hashes are per batch row.
func (t *groupTable) find(rows []int32, n int, hashes []uint64, gids []uint32) []uint32 {
	if rows != nil {
		n = len(rows)
	}
	if cap(gids) < n {
		gids = make([]uint32, n)
	}
	gids = gids[:n]
	if t.fast {
		return t.findFast(rows, n, hashes, gids)
	}
	for j := 0; j < n; j++ {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		h := hashes[r]
		i := h & t.mask
		for {
			s := t.slots[i]
			if s == 0 {
				g := t.insert(r, h)
				t.slots[i] = g + 1
				if uint64(t.n)*4 >= uint64(len(t.slots))*3 {
					t.grow()
				}
				gids[j] = g
				break
			}
			g := s - 1
			if t.hashes[g] == h && t.eq(g, r) {
				gids[j] = g
				break
			}
			i = (i + 1) & t.mask
		}
	}
	return gids
}

func (t *groupTable) findFast(rows []int32, n int, hashes []uint64, gids []uint32) []uint32 {
	in := t.fkeys.in
	valid := t.fkeys.inVal
	for j := 0; j < n; j++ {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		if !valid.all() && !valid.valid(r) {
			if t.nullGid < 0 {
				t.nullGid = int64(t.insert(r, hashes[r]))
			}
			gids[j] = uint32(t.nullGid)
			continue
		}
		h := hashes[r]
		k := in[r]
		i := h & t.mask
		for {
			s := &t.fslots[i]
			if s.gid == 0 {
				g := t.insert(r, h)
				s.key, s.gid = k, g+1
				if uint64(t.n)*4 >= uint64(len(t.fslots))*3 {
					t.grow()
				}
				gids[j] = g
				break
			}
			if s.key == k {
				gids[j] = s.gid - 1
				break
			}
			i = (i + 1) & t.mask
		}
	}
	return gids
}

func (t *groupTable) eq(g uint32, r int) bool {
	for _, k := range t.keys {
		if !k.eqRow(g, r) {
			return false
		}
	}
	return true
}

// insert appends row r of the bound batch as a new group (the caller
// links it into the slots).
func (t *groupTable) insert(r int, h uint64) uint32 {
	g := uint32(t.n)
	for _, k := range t.keys {
		k.appendRow(r)
	}
	t.hashes = append(t.hashes, h)
	t.n++
	return g
}

// sorted returns the group ids ordered by key values (NULLs last).
func (t *groupTable) sorted() []uint32 {
	if t.fast {
		return t.sortedFast()
	}
	gids := make([]uint32, t.n)
	for i := range gids {
		gids[i] = uint32(i)
	}
	slices.SortFunc(gids, func(a, b uint32) int {
		for _, k := range t.keys {
			if c := k.cmp(a, b); c != 0 {
				return c
			}
		}
		return 0
	})
	return gids
}

// sortedFast radix-sorts the non-NULL int64 keys (LSD, 8 bits a pass,
// skipping passes where every key has the same byte) and appends the NULL
// group.
func (t *groupTable) sortedFast() []uint32 {
	n := t.n
	if t.nullGid >= 0 {
		n--
	}
	keys := make([]uint64, 0, n)
	gids := make([]uint32, 0, t.n)
	for g, v := range t.fkeys.vals {
		if int64(g) == t.nullGid {
			continue
		}
		keys = append(keys, uint64(v)^(1<<63))
		gids = append(gids, uint32(g))
	}
	if n > 1 {
		var counts [8][256]int
		for _, k := range keys {
			for p := 0; p < 8; p++ {
				counts[p][byte(k>>(8*p))]++
			}
		}
		k2 := make([]uint64, n)
		g2 := make([]uint32, n)
		for p := 0; p < 8; p++ {
			c := &counts[p]
			if c[byte(keys[0]>>(8*p))] == n {
				continue // every key has this byte
			}
			pos := 0
			for b := 0; b < 256; b++ {
				cnt := c[b]
				c[b] = pos
				pos += cnt
			}
			shift := uint(8 * p)
			for i, k := range keys {
				d := c[byte(k>>shift)]
				c[byte(k>>shift)]++
				k2[d] = k
				g2[d] = gids[i]
			}
			keys, k2 = k2, keys
			gids, g2 = g2, gids
		}
	}
	if t.nullGid >= 0 {
		gids = append(gids, uint32(t.nullGid))
	}
	return gids
}

func (t *groupTable) cmpGroups(a, b uint32) int {
	for _, k := range t.keys {
		if c := k.cmp(a, b); c != 0 {
			return c
		}
	}
	return 0
}

func (t *groupTable) bytes() int64 {
	b := int64(len(t.slots))*4 + int64(len(t.fslots))*16 + int64(len(t.hashes))*8
	for _, k := range t.keys {
		b += k.bytes()
	}
	return b
}
