// Package transport is Spate's worker-to-worker data plane: the network
// version of the Go channels that carry messages between operator
// instances inside one process (cluster/pipeline.go). A channel carries
// one upstream instance's output to one input side of one downstream
// instance: Arrow record batches, event-time watermarks and barriers, in
// order, each with a per-channel sequence number, under credit-based flow
// control.
//
// # Using it
//
// The downstream worker runs one Listener for all its incoming channels
// and dispatches what Accept returns by ChannelID:
//
//	l, err := transport.Listen(":7100", token)  // or ListenConfig{…}.Listen
//	r, err := l.Accept(ctx)                       // *Receiver; refused peers come back as errors
//	for {
//		f, err := r.Recv(ctx)                     // io.EOF after the sender's Close
//		switch f.Kind {
//		case transport.KindBatch:     …; f.Rec.Release() // the caller owns f.Rec
//		case transport.KindWatermark: … f.Watermark
//		case transport.KindBarrier:   … f.Barrier
//		}
//	}
//
// The upstream worker dials one Sender per channel:
//
//	s, err := transport.Dial(ctx, addr, token, "q1/s2/i0->s3/i1/side0")
//	seq, err := s.SendBatch(ctx, rec) // blocks while the receiver grants no credit
//	seq, err = s.SendWatermark(ctx, wm)
//	seq, err = s.SendBarrier(ctx, transport.Barrier{ID: id, Source: src})
//	err = s.Close()
//
// Batch ownership: SendBatch never keeps a reference to the batch it is
// given (the caller releases it as usual); Recv hands over a batch with
// one reference that the caller must Release. Batches still queued when a
// Receiver closes are released by it. Sender, Receiver and Listener each
// own their goroutines and stop and wait for them in Close, which is
// idempotent.
//
// # One TCP connection per channel
//
// Each channel is its own TCP connection rather than a stream multiplexed
// with others over a connection per worker pair. The kernel then keeps
// channels apart: a stalled consumer stops only its own channel (no
// head-of-line blocking behind another channel's frames), a broken
// channel breaks nothing else, and no demultiplexing or per-stream
// windowing of our own is needed. The cost is file descriptors: an
// exchange from p to q instances is p×q connections, so a worker holds
// about p+q per exchange it takes part in, hundreds at SEEP's scale of 50
// VMs (mind the open-files limit). Should that become a limit,
// channels between one pair of workers can share a connection by adding
// a channel number to the frame header; credits are already per channel.
//
// # Handshake
//
// Every channel opens with the cluster handshake of cluster/auth (magic
// "SPTE", the sender as client, the channel ID as the hello's extra
// bytes): both sides prove they hold the cluster token with an
// HMAC-SHA256 over both nonces and the channel ID, compared in constant
// time; the token itself never crosses the wire, a sender never talks to
// a receiver that cannot prove the token either, and a refused peer gets
// the reason (cluster token mismatch, protocol version) before the
// connection closes. The receiver then sends its grant (window and
// largest frame). Dial and Accept return errors wrapping ErrUnauthorized
// or ErrHandshake that name the peer and the channel, e.g.
//
//	transport: refused peer 10.0.0.7:51234 for channel "q1/x": sender hung up at the challenge (it holds another cluster token): unknown peer: cluster token mismatch
//
// The handshake is bounded by HandshakeTimeout (10 s) and, on the sending
// side, by Dial's context. The connection is not encrypted.
//
// # Frames
//
// After the handshake every frame starts with a 24-byte header (frame.go):
// kind, two length or value fields and the sequence number. A Batch frame
// carries one Arrow IPC message: its flatbuffer metadata, then its body
// exactly as the IPC stream format lays it out. The schema goes once per
// channel, in a Schema frame before the first batch. Watermark (int64 µs)
// and Barrier (uint64 id, uint32 source) frames are a header only; Close
// carries the last sequence number sent. The receiver sends Credit frames
// and, when it stops first, a Close frame with the reason.
//
// Batches are never copied row by row, nor whole in user space: the
// sender encodes a batch with ipc.GetRecordBatchPayload (which references
// the batch's buffers; only bitmaps of sliced arrays are rebuilt) and
// hands the header, metadata and buffers to one writev; the receiver
// reads the body from the socket into one buffer from its allocator
// (directly, but for what its 64 KiB read-ahead already held), and ipc's
// reader makes the columns slices of it (zero-copy: the batch keeps the
// body alive through Arrow reference counts). Only the metadata of each
// batch is decoded. Dictionary-encoded
// columns are refused (Spate's physical types have none, and dictionary
// deltas would make replay from a sequence number depend on frames before
// it).
//
// # Sequence numbers and Resume
//
// The sender numbers batches, watermarks and barriers 1, 2, 3, … (or from
// DialConfig.FirstSeq, for a replay), in the order they go on the wire;
// SendBatch and friends return the number, Frame.Seq carries it and
// Receiver.Position is the last delivered. Recv fails with ErrSequence on
// anything but the next number. For recovery, Resume(seq) positions a
// Receiver after seq: frames numbered up to seq are dropped (their credit
// returned, their batches released) and seq+1 must come next, so an
// upstream can replay its buffer from any point at or before seq+1 and
// the downstream sees each frame once.
//
// # Flow control and memory
//
// Credit is counted in bytes of frames on the wire (header + IPC metadata
// + body; a watermark or barrier costs 24). The receiver grants its
// window (ListenConfig.Window, 8 MiB by default) in the handshake and
// grants back each frame's bytes when Recv takes it (batched: when a
// quarter of the window is due, or the queue runs empty). The sender
// waits for credit before writing anything of a frame, so SendBatch
// blocks, honouring its context, while the consumer does not take frames,
// and a send that times out leaves the channel intact. A frame larger
// than the whole window goes only when nothing else is outstanding. The
// receiver checks the sender keeps to its credit (ErrProtocol otherwise).
//
// Memory per channel is thus bounded: the receiver queues at most
// max(Window, largest frame) bytes of frames, whose decoded batches take
// about the same memory (they are views over the bodies), plus a 64 KiB
// read buffer; the sender keeps no queue at all (the batch being sent is
// the caller's), only the kernel's socket buffers hold bytes in flight.
// Frames are limited to MaxFrameBytes (256 MiB); Stats reports the queue
// depth in frames and bytes and the time a sender spent waiting for
// credit.
//
// # Failures
//
// Nothing blocks without a bound: Send* and Recv honour their contexts,
// Close honours CloseTimeout (5 s), handshakes HandshakeTimeout. A peer
// that dies (process killed, connection reset or cut mid-frame) makes
// Recv return the frames that arrived whole and then an error wrapping
// ErrPeerGone, and the sender's pending and later sends fail with
// ErrPeerGone; the tests kill real peer processes with SIGKILL. A host
// that vanishes without a reset is detected by TCP keepalive (Go's
// defaults) or, sooner, by the caller's context and the coordinator's
// failure detection.
//
// # Performance
//
// BenchmarkChannelThroughput: loopback, 64K-row batches of 4 columns
// (int64, float64, timestamp_us, a short string; 2.08 MB per frame), one
// sender and one consumer that releases each batch, on this 2-core VM
// (AMD EPYC, Go 1.26, arrow-go v18.8.0; three runs of 2 s, ranges; CPU is
// both ends together):
//
//	what                                       MB/s         batches/s    rows/s      CPU ms/batch
//	channel, 8 MiB window (default)            2,120–2,200  1,020–1,060  67–69 M     1.40–1.44
//	channel, 2 MiB window                      1,890–2,010    910–970    60–64 M     1.41–1.48
//	channel, 32 MiB window                     1,880–2,290    900–1,100  59–72 M     1.35–1.70
//	channel, 8 MiB window, BodyPool            3,820–4,280  1,840–2,060  121–135 M   0.68–0.77
//	raw TCP, same bytes, reused buffer         4,230–4,360  2,040–2,100  133–138 M   0.60–0.62
//	arrow-go IPC stream over TCP (no credit)   2,130–2,240  1,030–1,080  67–71 M     1.33–1.40
//
// The channel costs no more than arrow-go's plain IPC stream (credit,
// sequence numbers and framing are within the noise); the gap to raw TCP
// is the receive side allocating, zeroing and later collecting a fresh
// 2 MB body per batch. With a BodyPool as the receive allocator, which
// recycles bodies, the channel runs at the raw TCP ceiling; it is opt-in
// because it turns a consumer's use of a batch after Release into reading
// another batch's bytes (see BodyPool). Spate's runtime does not use it:
// its operators keep strings that point into batches they were pushed
// without retaining them (found when MAX over TEXT came out scrambled
// after a recovery), and `spate bench net` measures both.
//
// # Why raw TCP with Arrow IPC framing, not gRPC
//
// gRPC is not a dependency of Spate; the comparison lives in the separate
// module ./flightbench (go test -bench . there), which streams the same
// batches with Arrow Flight's DoPut and with this package in one run:
//
//	Flight DoPut (gRPC)              1,120–1,460 MB/s   2.4–3.2 CPU ms/batch
//	channel (Go allocator)           1,800–1,860 MB/s   1.69–1.73 CPU ms/batch
//	channel (BodyPool)               3,260–3,980 MB/s   0.74–0.92 CPU ms/batch
//
// Flight copies each body several times in user space: into a
// bytes.Buffer for FlightData.DataBody, through protobuf marshalling, into
// 16 KiB HTTP/2 frames, and back on the receiving side; runtime.memmove
// is 34% of its CPU profile against 2% for the channel. On a 2-core
// machine that CPU is taken from the operators. gRPC would also bring a
// dozen modules and a second flow control (HTTP/2 windows in bytes, sized
// by a bandwidth estimator) beside the credits the runtime needs to
// reason about. Raw TCP keeps the data path to one writev per batch on
// the sending side and reads straight into the body on the receiving
// side, with credits and sequence numbers defined by us.
//
// # Not done
//
// No TLS: the token authenticates peers but the bytes travel in the clear
// (a tls.Conn could wrap the connection in Dial and Listen). No
// compression (ipc's LZ4/ZSTD could be passed to the payload encoder; on
// loopback it only costs CPU). No heartbeat frames: an idle channel to a
// vanished host is noticed by keepalive or the caller's context. No
// multiplexing (above).
package transport
