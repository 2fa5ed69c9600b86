package cluster

import "fmt"

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
	if m.ckpt != 0 {
		if len(s.barriers) == keptBarriers {
			s.barriers = append(s.barriers[:0], s.barriers[1:]...)
		}
		s.barriers = append(s.barriers, barrierPos{m.ckpt, s.at})
	}
	return false
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
