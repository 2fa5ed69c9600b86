package cluster

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestInputSeq: a consumer's numbering of one producer across a
// restored incarnation — what came after the checkpoint barrier is
// dropped when it comes again, also when the restored one dies in turn
// before it has sent it all, and the producer's input log after the
// barrier is kept whole.
func TestInputSeq(t *testing.T) {
	var s inputSeq
	s.reset(4)
	take := func(m message) bool { return !s.arrive(&m) }
	for i := range 3 {
		if !take(message{hasWM: true, log: []uint32{uint32(i)}}) {
			t.Fatalf("message %d taken as a duplicate", i)
		}
	}
	take(message{ckpt: 5, log: []uint32{9}})
	take(message{barrier: 77, log: []uint32{8}}) // flush barriers are not numbered
	for i := range 4 {
		take(message{hasWM: true, log: []uint32{uint32(10 + i)}})
	}
	if log, ok := s.logAfter(5); !ok || !slices.Equal(log, []uint32{10, 11, 12, 13}) {
		t.Errorf("log after 5: %v %v", log, ok)
	}
	if log, _ := s.logAfter(4); !slices.Equal(log, []uint32{0, 1, 2, 9, 10, 11, 12, 13}) {
		t.Errorf("log after 4: %v", log)
	}
	// A producer restored from 5 sends two of the four again, then dies.
	if err := s.resume(5); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if take(message{hasWM: true, log: []uint32{99}}) {
			t.Fatal("a duplicate taken")
		}
	}
	// Its successor, restored from 5 too, sends all four again and one more.
	if err := s.resume(5); err != nil {
		t.Fatal(err)
	}
	var taken int
	for range 5 {
		if take(message{hasWM: true}) {
			taken++
		}
	}
	if taken != 1 {
		t.Errorf("took %d of five messages after the resume, want the one new", taken)
	}
	if err := s.resume(3); err == nil {
		t.Error("a resume from an unknown checkpoint was accepted")
	}
	if log, _ := s.logAfter(5); !slices.Equal(log, []uint32{10, 11, 12, 13}) {
		t.Errorf("duplicates changed the log: %v", log)
	}
}

// TestLogEncoding: input logs survive encodeLog and decodeLog, and
// decodeLog refuses garbage and logs longer than its bound.
func TestLogEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var log []uint32
		for range rng.IntN(300) {
			slot := uint32(rng.IntN(3))
			if rng.IntN(10) == 0 {
				slot = uint32(rng.IntN(1 << 20))
			}
			for range 1 + rng.IntN(5) {
				log = append(log, slot)
			}
		}
		got, err := decodeLog(encodeLog(log), len(log))
		if err != nil || !slices.Equal(got, log) {
			t.Fatalf("round trip of %d slots: %v (%d slots back)", len(log), err, len(got))
		}
		if len(log) > 0 {
			if _, err := decodeLog(encodeLog(log), len(log)-1); err == nil {
				t.Fatal("a log over the bound was accepted")
			}
		}
	}
	for _, bad := range [][]byte{{0x80}, {1}, {1, 0}, {0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1}} {
		if _, err := decodeLog(bad, maxLogSlots); err == nil {
			t.Errorf("decoded garbage %v", bad)
		}
	}
}

// TestInputSeqUnarrive: a batch numbered but not applied (its delivery
// was cut short) is taken again when it comes again.
func TestInputSeqUnarrive(t *testing.T) {
	var s inputSeq
	s.reset(1)
	m := message{hasWM: true, log: []uint32{0}}
	s.arrive(&m)
	b := message{log: []uint32{1, 1}}
	if s.arrive(&b) {
		t.Fatal("a new batch taken as a duplicate")
	}
	s.unarrive(&b)
	if s.arrive(&b) {
		t.Fatal("the batch given back was taken as a duplicate")
	}
	if log, _ := s.logAfter(1); !slices.Equal(log, []uint32{0, 1, 1}) {
		t.Errorf("log %v", log)
	}
}

// TestInputSeqTrimmedLog: once the log after a barrier is no longer
// kept whole, logAfter says so rather than give a part of it.
func TestInputSeqTrimmedLog(t *testing.T) {
	var s inputSeq
	s.reset(1)
	for e := uint64(2); e < 2+keptLogs+1; e++ {
		s.arrive(&message{hasWM: true, log: []uint32{1}})
		s.arrive(&message{ckpt: e})
	}
	if _, ok := s.logAfter(1); ok {
		t.Error("a trimmed log was given as whole")
	}
	if log, ok := s.logAfter(2 + keptLogs); !ok || len(log) != 0 {
		t.Errorf("the newest barrier's log: %v %v", log, ok)
	}
	if log, ok := s.logAfter(3); !ok || len(log) != keptLogs-1 {
		t.Errorf("log after 3: %v %v, want %d entries", log, ok, keptLogs-1)
	}
}
