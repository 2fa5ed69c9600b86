package exec

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// CopyOptions is the data format of COPY … FROM STDIN.
type CopyOptions struct {
	CSV       bool   // CSV when true, PostgreSQL text format otherwise
	Delimiter byte   // default '\t' (text) or ',' (CSV)
	Null      string // NULL marker; default `\N` (text) or "" (CSV, unquoted only)
	NullSet   bool   // Null was given explicitly (so "" is meaningful for text)
	Header    bool   // skip the first line
	// HeaderMatch: the first line must hold the schema's field names, in
	// order (PostgreSQL's HEADER MATCH); else 22P04.
	HeaderMatch bool
	Quote       byte   // CSV only, default '"'
	Escape      byte   // CSV only, default the quote character
	Table       string // table name for error context ("COPY <Table>, line …")
}

// SQLTypeMetadataKey is the Arrow field metadata key under which the
// planner may record a column's SQL type where the physical type is wider:
// "integer" makes COPY and RecordFromValues range-check an Int64 column to
// 32 bits (SQLSTATE 22003), as PostgreSQL does for INT; "varchar(n)" /
// "char(n)" make them reject longer text (22001 "value too long for type
// character varying(n)"; trailing spaces beyond n are dropped).
const SQLTypeMetadataKey = "spate.sqltype"

func isInt32Field(f arrow.Field) bool {
	v, ok := f.Metadata.GetValue(SQLTypeMetadataKey)
	return ok && v == "integer"
}

// varcharLimit returns n for a field whose SQL type is "varchar(n)" (or
// "character varying(n)", "char(n)"), else 0.
func varcharLimit(f arrow.Field) (int, string) {
	v, ok := f.Metadata.GetValue(SQLTypeMetadataKey)
	if !ok {
		return 0, ""
	}
	i := strings.IndexByte(v, '(')
	if i < 0 || !strings.HasSuffix(v, ")") {
		return 0, ""
	}
	name := strings.TrimSpace(v[:i])
	switch name {
	case "varchar", "character varying":
		name = "character varying"
	case "char", "character", "bpchar":
		name = "character"
	default:
		return 0, ""
	}
	n, err := strconv.Atoi(strings.TrimSpace(v[i+1 : len(v)-1]))
	if err != nil || n <= 0 {
		return 0, ""
	}
	return n, fmt.Sprintf("%s(%d)", name, n)
}

func errTooLong(typ string) *Error {
	return &Error{Code: CodeStringDataRightTrunc, Message: "value too long for type " + typ}
}

// checkLen enforces a varchar limit the way PostgreSQL does on
// assignment: trailing spaces beyond the limit are dropped, anything else
// is an error.
func checkLen(b []byte, limit int, typ string) ([]byte, error) {
	if limit <= 0 || len(b) <= limit {
		return b, nil
	}
	if utf8.RuneCount(b) <= limit {
		return b, nil
	}
	// keep the first limit characters if the rest is spaces
	cut, n := 0, 0
	for cut < len(b) && n < limit {
		_, sz := utf8.DecodeRune(b[cut:])
		cut += sz
		n++
	}
	for _, c := range b[cut:] {
		if c != ' ' {
			return nil, errTooLong(typ)
		}
	}
	return b[:cut], nil
}

// CopyDecoder parses COPY data (PostgreSQL text or CSV format) straight
// into Arrow columns of a schema. Write accepts arbitrary chunks (records
// may span chunks); a batch is emitted every batchRows rows and Flush emits
// the rest. Errors carry a SQLSTATE (22P02 invalid value, 22003 out of
// range, 22P04 malformed data) and a PostgreSQL-style context naming the
// table, line and column. Not safe for concurrent use. Emitted batches are
// valid only during the Emit call. The decoder holds the Arrow buffers of
// the batch being filled: call Close when done (also after an error).
type CopyDecoder struct {
	schema    *arrow.Schema
	opts      CopyOptions
	batchRows int
	mem       memory.Allocator
	cols      []copyCol
	carry     []byte
	line      int64 // lines consumed so far
	rows      int64
	pending   int
	header    bool // header still to skip
	done      bool // saw the \. end marker
	failed    bool // a data error happened: only Flush and Close remain
	scratch   []byte
	fields    []fieldRef
	nullB     []byte
}

// fieldRef locates one field of the current record.
type fieldRef struct {
	start, end int
	scratch    bool // bytes live in d.scratch, not in the input
	quoted     bool // CSV: the field was quoted (never NULL)
	null       bool // text: the field was the NULL marker
}

var _ = bytes.IndexByte

// NewCopyDecoder returns a decoder for rows of schema. batchRows <= 0 means
// 65536. Options: WithAllocator.
func NewCopyDecoder(schema *arrow.Schema, opts CopyOptions, batchRows int, options ...Option) (*CopyDecoder, error) {
	o := buildOptions(options)
	if batchRows <= 0 {
		batchRows = 1 << 16
	}
	if opts.Delimiter == 0 {
		opts.Delimiter = '\t'
		if opts.CSV {
			opts.Delimiter = ','
		}
	}
	if opts.CSV {
		if opts.Quote == 0 {
			opts.Quote = '"'
		}
		if opts.Escape == 0 {
			opts.Escape = opts.Quote
		}
	} else if opts.Null == "" && !opts.NullSet {
		opts.Null = `\N`
	}
	if opts.Delimiter == '\n' || opts.Delimiter == '\r' || (opts.CSV && opts.Delimiter == opts.Quote) {
		return nil, &Error{Code: CodeInvalidParameter, Message: "COPY delimiter must not be a newline or the quote character"}
	}
	d := &CopyDecoder{schema: schema, opts: opts, batchRows: batchRows, mem: o.mem, header: opts.Header, nullB: []byte(opts.Null)}
	for i := 0; i < schema.NumFields(); i++ {
		c, err := newCopyCol(schema.Field(i).Type)
		if err != nil {
			return nil, err
		}
		if ci, ok := c.(*copyInt64); ok && isInt32Field(schema.Field(i)) {
			ci.int32 = true
		}
		if cs, ok := c.(*copyString); ok {
			cs.limit, cs.typ = varcharLimit(schema.Field(i))
		}
		d.cols = append(d.cols, c)
	}
	d.startBatch()
	return d, nil
}

// matchHeader checks the header line's fields (in d.fields, over data)
// against the column names.
func (d *CopyDecoder) matchHeader(data []byte) *Error {
	if len(d.fields) != len(d.cols) {
		return &Error{Code: CodeBadCopyFormat, Message: fmt.Sprintf("wrong number of fields in header line: got %d, expected %d", len(d.fields), len(d.cols))}
	}
	for i, f := range d.fields {
		src := data
		if f.scratch {
			src = d.scratch
		}
		got, want := string(src[f.start:f.end]), d.schema.Field(i).Name
		if f.null {
			return &Error{Code: CodeBadCopyFormat, Message: fmt.Sprintf("column name mismatch in header line field %d: got null value (\"%s\"), expected \"%s\"", i+1, d.opts.Null, want)}
		}
		if got != want {
			return &Error{Code: CodeBadCopyFormat, Message: fmt.Sprintf("column name mismatch in header line field %d: got \"%s\", expected \"%s\"", i+1, got, want)}
		}
	}
	return nil
}

// Rows returns the number of rows decoded so far (emitted or pending).
func (d *CopyDecoder) Rows() int64 { return d.rows }

func (d *CopyDecoder) startBatch() {
	for _, c := range d.cols {
		c.start(d.mem, d.batchRows)
	}
	d.pending = 0
}

func (d *CopyDecoder) emitBatch(emit Emit) error {
	if d.pending == 0 {
		return nil
	}
	cols := make([]arrow.Array, len(d.cols))
	for i, c := range d.cols {
		cols[i] = c.finish(d.mem, d.pending)
	}
	rec := array.NewRecordBatch(d.schema, cols, int64(d.pending))
	releaseAll(cols)
	d.startBatch()
	defer rec.Release()
	return emit(rec)
}

// EmitPending emits the rows decoded so far as one batch, without ending
// the input: a partial line stays buffered for the next Write. COPY uses it
// so that rows of a slow COPY reach continuous queries without waiting for
// a full batch. It does nothing after an error.
func (d *CopyDecoder) EmitPending(emit Emit) error {
	if d.failed {
		return nil
	}
	return d.emitBatch(emit)
}

// Write decodes p (any chunk of the COPY data) and emits full batches.
// After an error only Flush (to get the rows before the bad record) and
// Close may be called.
func (d *CopyDecoder) Write(p []byte, emit Emit) error {
	if d.failed {
		return fmt.Errorf("exec: CopyDecoder: Write after an error")
	}
	if d.done {
		return nil
	}
	data := p
	if len(d.carry) > 0 {
		d.carry = append(d.carry, p...)
		data = d.carry
	}
	pos, err := d.parse(data, false, emit)
	if err != nil {
		return err
	}
	rest := data[pos:]
	if len(d.carry) > 0 {
		n := copy(d.carry, rest)
		d.carry = d.carry[:n]
	} else {
		d.carry = append(d.carry[:0], rest...)
	}
	return nil
}

// Flush decodes a final record without a trailing newline and emits the
// remaining rows.
//
// After Write returned a data error, Flush emits the rows decoded before
// the bad record and nothing after it (COPY into a stream is not atomic).
func (d *CopyDecoder) Flush(emit Emit) error {
	if d.failed {
		d.carry = d.carry[:0]
		return d.emitBatch(emit)
	}
	if !d.done && len(d.carry) > 0 {
		data := d.carry
		pos, err := d.parse(data, true, emit)
		if err != nil {
			return err
		}
		if pos < len(data) {
			d.line++
			return d.errCtx(&Error{Code: CodeBadCopyFormat, Message: "unterminated CSV quoted field"}, "", -1, nil)
		}
	}
	d.carry = d.carry[:0]
	return d.emitBatch(emit)
}

// Close releases the buffers of the pending batch. Idempotent.
func (d *CopyDecoder) Close() {
	for _, c := range d.cols {
		c.release()
	}
}

func (d *CopyDecoder) errCtx(e *Error, record string, col int, field []byte) error {
	ctx := fmt.Sprintf("COPY %s, line %d", d.opts.Table, d.line)
	if col >= 0 {
		ctx += fmt.Sprintf(", column %s: \"%s\"", d.schema.Field(col).Name, field)
	} else if record != "" {
		ctx += fmt.Sprintf(": \"%s\"", record)
	}
	e.Context = ctx
	return e
}

// parse consumes complete records from data and returns the offset of the
// first unconsumed byte. final treats the end of data as a record end.
func (d *CopyDecoder) parse(data []byte, final bool, emit Emit) (int, error) {
	pos := 0
	for pos < len(data) && !d.done {
		var end, next int // record is data[pos:end]; the next starts at next
		var ok bool
		var err error
		d.fields = d.fields[:0]
		d.scratch = d.scratch[:0]
		lines := int64(1)
		if d.opts.CSV {
			end, next, lines, ok, err = d.splitCSV(data, pos, final)
		} else {
			end, next, ok = d.splitText(data, pos, final)
		}
		if err != nil {
			return pos, err
		}
		if !ok {
			return pos, nil
		}
		rec := data[pos:end]
		d.line += lines
		pos = next
		if len(rec) == 2 && rec[0] == '\\' && rec[1] == '.' {
			d.done = true
			break
		}
		if d.header {
			d.header = false
			if d.opts.HeaderMatch {
				if err := d.matchHeader(data); err != nil {
					return pos, d.errCtx(err, string(rec), -1, nil)
				}
			}
			continue
		}
		if len(d.fields) != len(d.cols) {
			if len(d.fields) > len(d.cols) {
				return pos, d.errCtx(&Error{Code: CodeBadCopyFormat, Message: "extra data after last expected column"}, string(rec), -1, nil)
			}
			return pos, d.errCtx(&Error{Code: CodeBadCopyFormat, Message: fmt.Sprintf("missing data for column \"%s\"", d.schema.Field(len(d.fields)).Name)}, string(rec), -1, nil)
		}
		for i, f := range d.fields {
			src := data
			if f.scratch {
				src = d.scratch
			}
			b := src[f.start:f.end]
			if f.null || (d.opts.CSV && !f.quoted && bytes.Equal(b, d.nullB)) {
				d.cols[i].appendNull(d.pending)
				continue
			}
			if err := d.cols[i].appendField(d.pending, b); err != nil {
				for _, c := range d.cols[:i] {
					c.rollback(d.pending)
				}
				d.failed = true
				e := err.(*Error)
				return pos, d.errCtx(e, "", i, b)
			}
		}
		d.pending++
		d.rows++
		if d.pending == d.batchRows {
			if err := d.emitBatch(emit); err != nil {
				return pos, err
			}
		}
	}
	return pos, nil
}

// splitText finds the record at pos in text format and fills d.fields.
func (d *CopyDecoder) splitText(data []byte, pos int, final bool) (end, next int, ok bool) {
	nl := bytes.IndexByte(data[pos:], '\n')
	if nl < 0 {
		if !final {
			return 0, 0, false
		}
		end, next = len(data), len(data)
	} else {
		end, next = pos+nl, pos+nl+1
	}
	if end > pos && data[end-1] == '\r' {
		end--
	}
	line := data[pos:end]
	delim := d.opts.Delimiter
	start := pos
	for {
		k := bytes.IndexByte(data[start:end], delim)
		fe := end
		if k >= 0 {
			fe = start + k
		}
		d.addTextField(data, start, fe)
		if k < 0 {
			break
		}
		start = fe + 1
	}
	_ = line
	return end, next, true
}

func (d *CopyDecoder) addTextField(data []byte, s, e int) {
	f := data[s:e]
	if len(f) == len(d.nullB) && bytes.Equal(f, d.nullB) {
		d.fields = append(d.fields, fieldRef{null: true})
		return
	}
	if bytes.IndexByte(f, '\\') < 0 {
		d.fields = append(d.fields, fieldRef{start: s, end: e})
		return
	}
	st := len(d.scratch)
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' || i+1 >= len(f) {
			d.scratch = append(d.scratch, c)
			continue
		}
		i++
		c = f[i]
		switch c {
		case 'b':
			d.scratch = append(d.scratch, '\b')
		case 'f':
			d.scratch = append(d.scratch, '\f')
		case 'n':
			d.scratch = append(d.scratch, '\n')
		case 'r':
			d.scratch = append(d.scratch, '\r')
		case 't':
			d.scratch = append(d.scratch, '\t')
		case 'v':
			d.scratch = append(d.scratch, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(f) && isHex(f[i+1]) {
				i++
				v = v*16 + hexVal(f[i])
				n++
			}
			if n == 0 {
				d.scratch = append(d.scratch, 'x')
			} else {
				d.scratch = append(d.scratch, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; n++ {
				i++
				v = v*8 + int(f[i]-'0')
			}
			d.scratch = append(d.scratch, byte(v))
		default:
			d.scratch = append(d.scratch, c)
		}
	}
	d.fields = append(d.fields, fieldRef{start: st, end: len(d.scratch), scratch: true})
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}

// splitCSV finds the CSV record at pos (quoted fields may contain
// newlines) and fills d.fields.
func (d *CopyDecoder) splitCSV(data []byte, pos int, final bool) (end, next int, lines int64, ok bool, err error) {
	q, esc, delim := d.opts.Quote, d.opts.Escape, d.opts.Delimiter
	nl := bytes.IndexByte(data[pos:], '\n')
	lineEnd := len(data)
	if nl >= 0 {
		lineEnd = pos + nl
	}
	// Fast path: the line has no quote character.
	if (nl >= 0 || final) && bytes.IndexByte(data[pos:lineEnd], q) < 0 {
		end, next = lineEnd, lineEnd+1
		if nl < 0 {
			next = len(data)
		}
		if end > pos && data[end-1] == '\r' {
			end--
		}
		start := pos
		for {
			k := bytes.IndexByte(data[start:end], delim)
			fe := end
			if k >= 0 {
				fe = start + k
			}
			d.fields = append(d.fields, fieldRef{start: start, end: fe})
			if k < 0 {
				break
			}
			start = fe + 1
		}
		return end, next, 1, true, nil
	}
	// General path: a state machine over the bytes.
	i := pos
	lines = 1
	for {
		// start of a field at i
		if i < len(data) && data[i] == q {
			st := len(d.scratch)
			i++
			for {
				if i >= len(data) {
					if final {
						d.line++
						return 0, 0, 0, false, d.errCtx(&Error{Code: CodeBadCopyFormat, Message: "unterminated CSV quoted field"}, "", -1, nil)
					}
					d.fields = d.fields[:0]
					return 0, 0, 0, false, nil
				}
				c := data[i]
				if c == esc && i+1 < len(data) && (data[i+1] == q || (esc != q && data[i+1] == esc)) {
					d.scratch = append(d.scratch, data[i+1])
					i += 2
					continue
				}
				if c == esc && esc == q && i+1 >= len(data) && !final {
					// cannot tell yet whether this quote is doubled
					d.fields = d.fields[:0]
					return 0, 0, 0, false, nil
				}
				if c == q {
					i++
					break
				}
				if c == '\n' {
					lines++
				}
				d.scratch = append(d.scratch, c)
				i++
			}
			// after the closing quote: more unquoted text until delimiter
			for i < len(data) && data[i] != delim && data[i] != '\n' && data[i] != '\r' {
				if data[i] == q {
					// reopen a quoted section glued to the field
					break
				}
				d.scratch = append(d.scratch, data[i])
				i++
			}
			d.fields = append(d.fields, fieldRef{start: st, end: len(d.scratch), scratch: true, quoted: true})
		} else {
			st := i
			for i < len(data) && data[i] != delim && data[i] != '\n' {
				i++
			}
			fe := i
			if fe > st && fe <= len(data) && (i >= len(data) || data[i] == '\n') && data[fe-1] == '\r' {
				fe--
			}
			d.fields = append(d.fields, fieldRef{start: st, end: fe})
		}
		if i >= len(data) {
			if !final {
				d.fields = d.fields[:0]
				return 0, 0, 0, false, nil
			}
			return len(data), len(data), lines, true, nil
		}
		switch data[i] {
		case delim:
			i++
			continue
		case '\r':
			if i+1 < len(data) && data[i+1] == '\n' {
				return i, i + 2, lines, true, nil
			}
			if i+1 >= len(data) && !final {
				d.fields = d.fields[:0]
				return 0, 0, 0, false, nil
			}
			return i, i + 1, lines, true, nil
		case '\n':
			return i, i + 1, lines, true, nil
		default:
			// a quote right after a quoted section's trailing text
			i++
		}
	}
}

// ---- typed column builders ----

type copyCol interface {
	start(mem memory.Allocator, capRows int)
	appendField(row int, b []byte) error
	appendNull(row int)
	rollback(row int) // undo the append of row (the last one)
	finish(mem memory.Allocator, n int) arrow.Array
	release()
}

func newCopyCol(dt arrow.DataType) (copyCol, error) {
	switch physOf(dt) {
	case physInt64:
		return &copyInt64{dt: dt}, nil
	case physFloat64:
		return &copyFloat64{}, nil
	case physString:
		return &copyString{}, nil
	case physBool:
		return &copyBool{}, nil
	}
	return nil, fmt.Errorf("exec: COPY into a column of type %s is not supported", dt)
}

// validBuf is a validity bitmap under construction.
type validBuf struct {
	buf   *memory.Buffer
	bits  []byte
	nulls int
}

func (v *validBuf) start(mem memory.Allocator, n int) {
	v.buf, v.bits = allocBits(mem, n)
	v.nulls = 0
}
func (v *validBuf) set(row int)  { v.bits[row>>3] |= 1 << uint(row&7) }
func (v *validBuf) null(row int) { v.nulls++ }
func (v *validBuf) unset(row int) {
	if v.bits[row>>3]&(1<<uint(row&7)) != 0 {
		v.bits[row>>3] &^= 1 << uint(row&7)
	} else {
		v.nulls--
	}
}
func (v *validBuf) take() *memory.Buffer {
	b := v.buf
	v.buf = nil
	if v.nulls == 0 {
		b.Release()
		return nil
	}
	return b
}
func (v *validBuf) release() {
	if v.buf != nil {
		v.buf.Release()
		v.buf = nil
	}
}

type copyInt64 struct {
	dt    arrow.DataType
	int32 bool // SQL INTEGER: values must fit in 32 bits
	buf   *memory.Buffer
	vals  []int64
	v     validBuf
}

func (c *copyInt64) start(mem memory.Allocator, n int) {
	c.buf, c.vals = allocInt64(mem, n)
	c.v.start(mem, n)
}
func (c *copyInt64) appendNull(row int) { c.vals[row] = 0; c.v.null(row) }
func (c *copyInt64) rollback(row int)   { c.v.unset(row) }
func (c *copyInt64) appendField(row int, b []byte) error {
	var x int64
	switch c.dt.ID() {
	case arrow.INT64:
		v, ok, ovf := parseInt64Bytes(b)
		if !ok {
			return errInvalidInput("bigint", string(b))
		}
		if ovf {
			return &Error{Code: CodeNumericOutOfRange, Message: "value \"" + string(b) + "\" is out of range for type bigint"}
		}
		if c.int32 && (v < math.MinInt32 || v > math.MaxInt32) {
			return &Error{Code: CodeNumericOutOfRange, Message: "value \"" + string(b) + "\" is out of range for type integer"}
		}
		x = v
	case arrow.TIMESTAMP:
		us, ok, rng := parseTimestampFast(bstr(b))
		if !ok || rng {
			v, err := ParseTimestamp(string(b))
			if err != nil {
				return err
			}
			us = v
		}
		x = us
	default:
		v, err := parseTextAs(c.dt, b)
		if err != nil {
			return err
		}
		x = v
	}
	c.vals[row] = x
	c.v.set(row)
	return nil
}
func (c *copyInt64) finish(mem memory.Allocator, n int) arrow.Array {
	c.buf.Resize(n * 8)
	a := makeFixed(c.dt, n, c.v.take(), c.buf)
	c.buf = nil
	return a
}
func (c *copyInt64) release() {
	if c.buf != nil {
		c.buf.Release()
		c.buf = nil
	}
	c.v.release()
}

type copyFloat64 struct {
	buf  *memory.Buffer
	vals []float64
	v    validBuf
}

func (c *copyFloat64) start(mem memory.Allocator, n int) {
	c.buf, c.vals = allocFloat64(mem, n)
	c.v.start(mem, n)
}
func (c *copyFloat64) appendNull(row int) { c.vals[row] = 0; c.v.null(row) }
func (c *copyFloat64) rollback(row int)   { c.v.unset(row) }
func (c *copyFloat64) appendField(row int, b []byte) error {
	f, ok, rng := parseFloatBytes(b)
	if !ok {
		return errInvalidInput("double precision", string(b))
	}
	if rng {
		return &Error{Code: CodeNumericOutOfRange, Message: fmt.Sprintf("\"%s\" is out of range for type double precision", b)}
	}
	c.vals[row] = f
	c.v.set(row)
	return nil
}
func (c *copyFloat64) finish(mem memory.Allocator, n int) arrow.Array {
	c.buf.Resize(n * 8)
	a := makeFixed(tFloat, n, c.v.take(), c.buf)
	c.buf = nil
	return a
}
func (c *copyFloat64) release() {
	if c.buf != nil {
		c.buf.Release()
		c.buf = nil
	}
	c.v.release()
}

type copyBool struct {
	buf  *memory.Buffer
	bits []byte
	v    validBuf
}

func (c *copyBool) start(mem memory.Allocator, n int) {
	c.buf, c.bits = allocBits(mem, n)
	c.v.start(mem, n)
}
func (c *copyBool) appendNull(row int) { c.v.null(row) }
func (c *copyBool) rollback(row int)   { clearBit(c.bits, row); c.v.unset(row) }
func (c *copyBool) appendField(row int, b []byte) error {
	x, ok := parseBoolText(bstr(b))
	if !ok {
		return errInvalidInput("boolean", string(b))
	}
	if x {
		setBit(c.bits, row)
	}
	c.v.set(row)
	return nil
}
func (c *copyBool) finish(mem memory.Allocator, n int) arrow.Array {
	a := makeFixed(tBool, n, c.v.take(), c.buf)
	c.buf = nil
	return a
}
func (c *copyBool) release() {
	if c.buf != nil {
		c.buf.Release()
		c.buf = nil
	}
	c.v.release()
}

type copyString struct {
	limit int    // varchar(n) limit in characters, 0 = none
	typ   string // for the error message
	offs  []int32
	data  []byte
	v     validBuf
}

func (c *copyString) start(mem memory.Allocator, n int) {
	if cap(c.offs) < n+1 {
		c.offs = make([]int32, 1, n+1)
	}
	c.offs = c.offs[:1]
	c.offs[0] = 0
	c.data = c.data[:0]
	c.v.start(mem, n)
}
func (c *copyString) appendNull(row int) {
	c.offs = append(c.offs, int32(len(c.data)))
	c.v.null(row)
}
func (c *copyString) rollback(row int) {
	c.offs = c.offs[:row+1]
	c.data = c.data[:c.offs[row]]
	c.v.unset(row)
}
func (c *copyString) appendField(row int, b []byte) error {
	if err := CheckUTF8(b); err != nil {
		return err
	}
	if c.limit > 0 {
		var err error
		if b, err = checkLen(b, c.limit, c.typ); err != nil {
			return err
		}
	}
	c.data = append(c.data, b...)
	c.offs = append(c.offs, int32(len(c.data)))
	c.v.set(row)
	return nil
}
func (c *copyString) finish(mem memory.Allocator, n int) arrow.Array {
	ob, offs := allocInt32(mem, n+1)
	copy(offs, c.offs)
	db := memory.NewResizableBuffer(mem)
	db.Resize(len(c.data))
	copy(db.Bytes(), c.data)
	return makeString(n, c.v.take(), ob, db)
}
func (c *copyString) release() { c.v.release() }

var _ = strconv.Itoa
