package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Dropping duplicates after a repair (SEEP): a lost instance whose
// input comes from one upstream instance is deterministic — restored
// from checkpoint E and fed the same messages after E's barrier, it
// sends its consumers the same messages again, in the same order. So a
// repair restores it alone: its consumers (and the sink) keep running,
// and each drops the messages it already had from the lost incarnation.
//
// Positions are counted on the consumer, relative to checkpoint
// barriers: inputSeq counts what arrived from one producer instance and
// notes where each checkpoint barrier came. The restored producer's
// channels open with a resume mark for E (a channel named with it, or a
// message first on a local outlet); the consumer then drops as many
// messages as it had received after E's barrier, and counts on from
// there. Nothing depends on absolute numbers, so a consumer restored
// from E starts counting at zero (reset).

// keptBarriers bounds the checkpoint barriers an inputSeq remembers: a
// repair resumes from the newest complete checkpoint, which is among the
// last few begun.
const keptBarriers = 32

// inputSeq is a consumer's position on one producer instance's output,
// across the producer's incarnations: messages are numbered from 1 in
// the order the producer sends them.
type inputSeq struct {
	got      uint64       // the highest number taken
	at       uint64       // the number of the producer's last message
	barriers []barrierPos // the last checkpoint barriers, oldest first
}

type barrierPos struct {
	epoch uint64
	at    uint64 // the barrier's number
	// log is the producer's input log after the barrier (instances with
	// several inputs), kept for the last keptLogs barriers; trimmed says
	// it was dropped.
	log     []uint32
	trimmed bool
}

// arrive numbers m and reports whether it is a duplicate to drop. Flush
// barriers are not numbered: a replay may add some (replayFlush), and a
// repair abandons the flushes waiting for them.
func (s *inputSeq) arrive(m *message) (dup bool) {
	if m.barrier != 0 {
		return false
	}
	s.at++
	if s.at <= s.got {
		return true
	}
	s.got = s.at
	s.addLog(m.log) // a barrier's ends the interval before it
	if m.ckpt != 0 {
		if len(s.barriers) == keptBarriers {
			s.barriers = append(s.barriers[:0], s.barriers[1:]...)
		}
		if n := len(s.barriers); n >= keptLogs {
			s.barriers[n-keptLogs].log, s.barriers[n-keptLogs].trimmed = nil, true
		}
		s.barriers = append(s.barriers, barrierPos{epoch: m.ckpt, at: s.at})
	}
	return false
}

// unarrive takes back arrive's numbering of m, a batch that was not
// applied after all (its delivery was cut short): it will come again.
func (s *inputSeq) unarrive(m *message) {
	if m.barrier != 0 || m.ckpt != 0 {
		return
	}
	s.at--
	s.got--
	if n := len(s.barriers); n > 0 && len(m.log) > 0 {
		b := &s.barriers[n-1]
		b.log = b.log[:len(b.log)-len(m.log)]
	}
}

// resume takes a restored producer's mark: what it sends next follows
// epoch's barrier, so the messages after that barrier this consumer
// already took are dropped when they come again.
func (s *inputSeq) resume(epoch uint64) error {
	for i := len(s.barriers) - 1; i >= 0; i-- {
		if b := s.barriers[i]; b.epoch == epoch {
			s.at = b.at
			return nil
		}
	}
	return fmt.Errorf("a producer resumed after checkpoint %d, whose barrier this consumer does not remember", epoch)
}

// reset starts numbering after checkpoint epoch's barrier (the consumer
// was restored from it).
func (s *inputSeq) reset(epoch uint64) {
	*s = inputSeq{barriers: []barrierPos{{epoch: epoch}}}
}

// An instance with several inputs is deterministic too once the order in
// which it took them is known. It logs the input slot of every message
// it handles (flush barriers aside) since its last checkpoint cut, and
// each message it sends carries what of that log the consumer has not
// had yet — so whatever a consumer received was produced by a prefix of
// the log the consumer holds. A repair asks the lost instance's
// consumers for the log after the checkpoint (collectLogs), and the
// restored instance takes its inputs in that order (follow) until the
// log is through.

// keptLogs bounds the checkpoint intervals whose logs a consumer keeps.
const keptLogs = 4

// forgetInputLogs, set by tests, has every consumer say it no longer
// keeps the log a repair asks for.
var forgetInputLogs bool

// addLog appends a producer's log (sent with a message that was not a
// duplicate) to what follows its last checkpoint barrier.
func (s *inputSeq) addLog(log []uint32) {
	if len(log) == 0 || len(s.barriers) == 0 {
		return
	}
	b := &s.barriers[len(s.barriers)-1]
	b.log = append(b.log, log...)
}

// logAfter is the producer's log since checkpoint epoch's barrier as far
// as this consumer knows it; ok is false when it does not remember the
// barrier, or no longer keeps all of the log after it.
func (s *inputSeq) logAfter(epoch uint64) (log []uint32, ok bool) {
	if forgetInputLogs {
		return nil, false
	}
	for i := len(s.barriers) - 1; i >= 0; i-- {
		if s.barriers[i].epoch != epoch {
			continue
		}
		for _, b := range s.barriers[i:] {
			if b.trimmed {
				return nil, false
			}
			log = append(log, b.log...)
		}
		return log, true
	}
	return nil, false
}

// encodeLog writes a log of input slots as runs: (slot, count) varints.
func encodeLog(log []uint32) []byte {
	var out []byte
	for i := 0; i < len(log); {
		j := i + 1
		for j < len(log) && log[j] == log[i] {
			j++
		}
		out = binary.AppendUvarint(out, uint64(log[i]))
		out = binary.AppendUvarint(out, uint64(j-i))
		i = j
	}
	return out
}

// decodeLog reads encodeLog's runs, refusing more than max slots.
func decodeLog(b []byte, max int) ([]uint32, error) {
	var log []uint32
	for len(b) > 0 {
		slot, n1 := binary.Uvarint(b)
		if n1 <= 0 {
			return nil, errors.New("malformed input log")
		}
		count, n2 := binary.Uvarint(b[n1:])
		if n2 <= 0 || count == 0 || count > uint64(max-len(log)) || slot > math.MaxUint32 {
			return nil, errors.New("malformed input log")
		}
		for range count {
			log = append(log, uint32(slot))
		}
		b = b[n1+n2:]
	}
	return log, nil
}

// maxLogSlots bounds a decoded input log.
const maxLogSlots = 1 << 24

// logDelta is the part of the instance's input log outlet i has not
// carried yet (a copy), now counted as carried; nil for an instance with
// one input.
func (in *instance) logDelta(i int) []uint32 {
	if !in.logsInputs {
		return nil
	}
	for len(in.sentLog) <= i {
		in.sentLog = append(in.sentLog, 0)
	}
	from := in.sentLog[i]
	if from >= len(in.plog) {
		return nil
	}
	in.sentLog[i] = len(in.plog)
	return append([]uint32(nil), in.plog[from:]...)
}

// resetLog starts the input log afresh at a checkpoint cut.
func (in *instance) resetLog() {
	in.plog = in.plog[:0]
	clear(in.sentLog)
}

// takeFollowing queues m (from slot) while the instance follows a log,
// then handles what the log allows.
func (in *instance) takeFollowing(slot int, m message) error {
	in.pending[slot] = append(in.pending[slot], m)
	for len(in.follow) > 0 {
		s := int(in.follow[0])
		if s >= len(in.pending) {
			return fmt.Errorf("the input log names input %d of %d", s, len(in.pending))
		}
		if len(in.pending[s]) == 0 {
			return nil
		}
		next := in.pending[s][0]
		in.pending[s] = in.pending[s][1:]
		in.follow = in.follow[1:]
		if err := in.admit(s, next); err != nil {
			return err
		}
	}
	// The log is through: what waits goes in, input by input.
	in.follow = nil
	for s, q := range in.pending {
		in.pending[s] = nil
		for _, m := range q {
			if err := in.admit(s, m); err != nil {
				return err
			}
		}
	}
	in.pending = nil
	return nil
}

// setResume makes a restored instance's checkpoint barriers of the
// epochs a repair aborted (up to skip) dropped, or, when its consumers
// keep running (resume is its checkpoint), passed on.
func (in *instance) setResume(skip, resume uint64) {
	in.resume = resume
	if resume == 0 {
		in.skipCkpt = skip
		return
	}
	in.passCkpt, in.passed = skip, map[uint64]int{}
}

// passBarrier counts in a barrier of an aborted epoch and, from the last
// input, sends it on where the lost incarnation sent it (its consumers
// number it, and may be aligning it); the input log restarts there as it
// did. Nothing is held back meanwhile: while the instance follows a log,
// the log already has its inputs in the order alignment gave them — and a
// replay's flush barrier must not wait behind an epoch nobody completes.
func (in *instance) passBarrier(epoch uint64) error {
	in.passed[epoch]++
	if in.passed[epoch] < len(in.barred) {
		return nil
	}
	delete(in.passed, epoch)
	if err := in.forward(message{ckpt: epoch}); err != nil {
		return err
	}
	in.resetLog()
	return nil
}
