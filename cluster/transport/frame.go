package transport

import (
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
)

// Wire format after the handshake. Every frame starts with a fixed
// 24-byte little-endian header:
//
//	offset size field
//	0      1    kind (wireKind)
//	1      3    reserved, zero
//	4      4    a: metadata length (schema, batch); source (barrier);
//	            reason length (close, receiver to sender); 1 for a
//	            watermark that marks the sender's input idle, else 0
//	8      8    seq: sequence number (batch, watermark, barrier); the last
//	            sequence number sent (close, sender to receiver)
//	16     8    b: body length (batch); watermark (int64 bits); barrier id
//	            or checkpoint epoch; granted bytes (credit)
//
// A schema or batch header is followed by a bytes of Arrow IPC message
// metadata (the flatbuffer, without the IPC stream's continuation marker
// and length prefix) and b bytes of IPC message body (the column buffers,
// each padded to 8 bytes, exactly as the IPC stream format lays them out).
// A close frame from the receiver is followed by a bytes of UTF-8 reason.
//
// A log header is followed by a bytes the sender attaches to the next
// data frame (Frame.Log); it has no sequence number of its own.
//
// Sender to receiver: schema (once, before the first batch), batch,
// watermark, barrier, checkpoint (a barrier of another kind), log, close.
// Receiver to sender: credit, close.
const headerSize = 24

// wireKind is the first byte of a frame header.
type wireKind uint8

const (
	wireBatch      wireKind = 1
	wireWatermark  wireKind = 2
	wireBarrier    wireKind = 3
	wireCheckpoint wireKind = 4
	wireLog        wireKind = 5
	wireSchema     wireKind = 16
	wireClose      wireKind = 17
	wireCredit     wireKind = 18
)

// watermarkIdle in a watermark frame's a field marks the sender idle.
const watermarkIdle = 1

// Limits on what a peer may announce in a header, checked before any
// allocation so a corrupt or hostile stream cannot make us allocate
// without bound.
const (
	maxMetaBytes   = 16 << 20 // flatbuffer metadata of one IPC message
	maxReasonBytes = 1 << 10  // reason text in a receiver's close frame
	// MaxLogBytes bounds what SendLog attaches to one frame.
	MaxLogBytes = 4 << 20
)

// Kind says what a Frame carries.
type Kind uint8

// The kinds of frame a Receiver delivers. Each carries a sequence number.
const (
	// KindBatch: Frame.Rec holds an Arrow record batch.
	KindBatch = Kind(wireBatch)
	// KindWatermark: Frame.Watermark holds an event-time watermark (µs).
	KindWatermark = Kind(wireWatermark)
	// KindBarrier: Frame.Barrier holds a barrier.
	KindBarrier = Kind(wireBarrier)
	// KindCheckpoint: Frame.Barrier holds a checkpoint barrier (ID is the
	// checkpoint's epoch).
	KindCheckpoint = Kind(wireCheckpoint)
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindBatch:
		return "batch"
	case KindWatermark:
		return "watermark"
	case KindBarrier:
		return "barrier"
	case KindCheckpoint:
		return "checkpoint"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Barrier is a checkpoint or flush barrier travelling in-band behind the
// data sent before it.
type Barrier struct {
	ID     uint64 // barrier id, assigned by whoever starts the barrier
	Source uint32 // the source (stage) it started from
}

// Frame is one data frame taken from a Receiver.
//
// Rec is set only for KindBatch. Its reference belongs to the caller of
// Recv, which must Release it exactly once (it may Retain it to keep it
// longer, or pass it on). Its buffers are views over the bytes read from
// the socket: nothing else refers to them, and they stay valid until the
// last reference is released.
type Frame struct {
	Seq       uint64            // per-channel sequence number, assigned by the sender
	Kind      Kind              // what the frame carries
	Rec       arrow.RecordBatch // KindBatch: the batch (owned by the caller)
	Watermark int64             // KindWatermark: event time in µs
	Idle      bool              // KindWatermark: the sender's input is idle (SendIdle)
	Barrier   Barrier           // KindBarrier, KindCheckpoint
	// Log is what the sender attached to this frame with SendLog (nil:
	// nothing); any kind of frame may carry it.
	Log []byte
}

// header is a decoded frame header.
type header struct {
	kind wireKind
	a    uint32
	seq  uint64
	b    uint64
}

func (h header) put(buf []byte) {
	_ = buf[headerSize-1]
	buf[0] = byte(h.kind)
	buf[1], buf[2], buf[3] = 0, 0, 0
	binary.LittleEndian.PutUint32(buf[4:], h.a)
	binary.LittleEndian.PutUint64(buf[8:], h.seq)
	binary.LittleEndian.PutUint64(buf[16:], h.b)
}

func parseHeader(buf []byte) (header, error) {
	_ = buf[headerSize-1]
	if buf[1]|buf[2]|buf[3] != 0 {
		return header{}, fmt.Errorf("%w: reserved header bytes are not zero", ErrProtocol)
	}
	return header{
		kind: wireKind(buf[0]),
		a:    binary.LittleEndian.Uint32(buf[4:]),
		seq:  binary.LittleEndian.Uint64(buf[8:]),
		b:    binary.LittleEndian.Uint64(buf[16:]),
	}, nil
}

// frameCost is what a data frame costs in credit: its size on the wire.
func frameCost(metaLen, bodyLen int64) int64 {
	return headerSize + metaLen + bodyLen
}

// hasDictionary reports whether a type is or contains a dictionary type,
// which the channel does not carry (Spate's physical types have none, and
// dictionary deltas would make replay from a sequence number depend on
// frames dropped before it).
func hasDictionary(dt arrow.DataType) bool {
	if dt.ID() == arrow.DICTIONARY {
		return true
	}
	if nt, ok := dt.(arrow.NestedType); ok {
		for _, f := range nt.Fields() {
			if hasDictionary(f.Type) {
				return true
			}
		}
	}
	return false
}
