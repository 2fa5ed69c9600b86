package exec

import (
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
)

// sessionState holds SESSION windows: a key table (key -> kid) and, per
// key, its open sessions (sid) sorted by start. Each session has its own
// accumulator slot. A row at event time t belongs to a session when
// start-gap < t < last+gap (strictly, so a session closed by a watermark
// wm >= last+gap can never be extended by a row that is not late); a row
// that bridges several sessions merges them. A session is emitted when the
// watermark reaches last+gap, with window_start = first event time and
// window_end = last event time + gap.
type sessionState struct {
	h       *HashAggregate
	keys    *groupTable
	kidSess [][]uint32
	start   []int64 // per sid, µs
	last    []int64 // per sid, µs
	kid     []uint32
	alive   []bool
	accs    []acc
	free    []uint32
	live    int
	kids    []uint32 // scratch
}

func newSessionState(h *HashAggregate) *sessionState {
	s := &sessionState{h: h, keys: newGroupTable(h.keyTypes)}
	for _, d := range h.aggs {
		s.accs = append(s.accs, newAcc(d))
	}
	return s
}

func (s *sessionState) alloc(kid uint32, t int64) uint32 {
	var sid uint32
	if n := len(s.free); n > 0 {
		sid = s.free[n-1]
		s.free = s.free[:n-1]
		for _, a := range s.accs {
			a.reset(sid)
		}
	} else {
		sid = uint32(len(s.start))
		s.start = append(s.start, 0)
		s.last = append(s.last, 0)
		s.kid = append(s.kid, 0)
		s.alive = append(s.alive, false)
		for _, a := range s.accs {
			a.grow(len(s.start))
		}
	}
	s.start[sid], s.last[sid], s.kid[sid], s.alive[sid] = t, t, kid, true
	s.live++
	return sid
}

// insertSorted adds sid to kid's list, keeping it sorted by start.
func (s *sessionState) insertSorted(kid, sid uint32) {
	l := s.kidSess[kid]
	i := len(l)
	for i > 0 && s.start[l[i-1]] > s.start[sid] {
		i--
	}
	s.kidSess[kid] = slices.Insert(l, i, sid)
}

// assign finds or creates the session of key kid for event time t,
// merging sessions the row bridges. Merged-away sessions are recorded in
// fwd and appended to dead.
func (s *sessionState) assign(kid uint32, t int64, fwd map[uint32]uint32, dead *[]uint32) (uint32, error) {
	gap := s.h.cfg.Window.Gap
	l := s.kidSess[kid]
	target := int32(-1)
	kept := l[:0:0]
	for _, sid := range l {
		if s.start[sid]-gap < t && t < s.last[sid]+gap {
			if target < 0 {
				target = int32(sid)
				kept = append(kept, sid)
				continue
			}
			tg := uint32(target)
			for _, a := range s.accs {
				if err := a.merge(tg, sid); err != nil {
					return 0, err
				}
			}
			s.start[tg] = min(s.start[tg], s.start[sid])
			s.last[tg] = max(s.last[tg], s.last[sid])
			s.alive[sid] = false
			s.live--
			fwd[sid] = tg
			*dead = append(*dead, sid)
			continue
		}
		kept = append(kept, sid)
	}
	if target < 0 {
		sid := s.alloc(kid, t)
		s.kidSess[kid] = kept
		s.insertSorted(kid, sid)
		return sid, nil
	}
	tg := uint32(target)
	s.start[tg] = min(s.start[tg], t)
	s.last[tg] = max(s.last[tg], t)
	s.kidSess[kid] = kept
	return tg, nil
}

func (s *sessionState) push(rec arrow.RecordBatch, keys, args []arrow.Array, n int) error {
	tus, allOK, ok := s.h.eventTimes(rec, n)
	var rows []int32
	if !allOK {
		rows = make([]int32, 0, n)
		for i := 0; i < n; i++ {
			if ok[i] {
				rows = append(rows, int32(i))
			}
		}
		if len(rows) == 0 {
			return nil
		}
	}
	s.keys.bind(keys)
	s.kids = s.keys.find(rows, n, s.h.hashes, s.kids)
	s.kidSess = growTo(s.kidSess, s.keys.n)
	sids := make([]uint32, len(s.kids))
	fwd := map[uint32]uint32{}
	var dead []uint32
	for j, kid := range s.kids {
		r := j
		if rows != nil {
			r = int(rows[j])
		}
		sid, err := s.assign(kid, tus[r], fwd, &dead)
		if err != nil {
			return err
		}
		sids[j] = sid
	}
	if len(fwd) > 0 {
		for j, sid := range sids {
			for {
				t, moved := fwd[sid]
				if !moved {
					break
				}
				sid = t
			}
			sids[j] = sid
		}
	}
	for i, a := range s.accs {
		if err := a.update(sids, rows, args[i]); err != nil {
			return err
		}
	}
	for _, sid := range dead {
		for _, a := range s.accs {
			a.reset(sid)
		}
		s.free = append(s.free, sid)
	}
	return nil
}

// close emits the sessions with last+gap <= wm (every session when all),
// ordered by window end, window start, then key, and frees them.
func (s *sessionState) close(wm int64, all bool, emit Emit) error {
	gap := s.h.cfg.Window.Gap
	var due []uint32
	for sid, alive := range s.alive {
		if alive && (all || s.last[sid]+gap <= wm) {
			due = append(due, uint32(sid))
		}
	}
	if len(due) == 0 {
		return nil
	}
	slices.SortFunc(due, func(a, b uint32) int {
		if c := cmpInt64(s.last[a]+gap, s.last[b]+gap); c != 0 {
			return c
		}
		if c := cmpInt64(s.start[a], s.start[b]); c != 0 {
			return c
		}
		return s.keys.cmpGroups(s.kid[a], s.kid[b])
	})
	for i := 0; i < len(due); i += maxEmitRows {
		part := due[i:min(i+maxEmitRows, len(due))]
		kids := make([]uint32, len(part))
		ws := make([]int64, len(part))
		we := make([]int64, len(part))
		for j, sid := range part {
			kids[j], ws[j], we[j] = s.kid[sid], s.start[sid], s.last[sid]+gap
		}
		if err := s.h.emitRows(s.keys, kids, s.accs, part, ws, we, emit); err != nil {
			return err
		}
	}
	for _, sid := range due {
		kid := s.kid[sid]
		s.kidSess[kid] = slices.DeleteFunc(s.kidSess[kid], func(x uint32) bool { return x == sid })
		s.alive[sid] = false
		s.live--
		for _, a := range s.accs {
			a.reset(sid)
		}
		s.free = append(s.free, sid)
	}
	s.compact()
	return nil
}

// compact rebuilds the key table when most keys have no open session, so
// a stream of ever-new keys does not grow state without bound.
func (s *sessionState) compact() {
	n := s.keys.n
	if n < 1024 {
		return
	}
	liveKeys := 0
	for _, l := range s.kidSess[:n] {
		if len(l) > 0 {
			liveKeys++
		}
	}
	if liveKeys*2 > n {
		return
	}
	// Re-insert live keys into a fresh table through exported key columns.
	var keep []uint32
	for kid, l := range s.kidSess[:n] {
		if len(l) > 0 {
			keep = append(keep, uint32(kid))
		}
	}
	mem := s.h.mem
	cols := make([]arrow.Array, len(s.keys.keys))
	for i, k := range s.keys.keys {
		cols[i] = k.export(mem, keep)
	}
	defer releaseAll(cols)
	hashes := make([]uint64, len(keep))
	for j, kid := range keep {
		hashes[j] = s.keys.hashes[kid]
	}
	nt := newGroupTable(s.h.keyTypes)
	nt.bind(cols)
	newKids := nt.find(nil, len(keep), hashes, nil)
	newSess := make([][]uint32, nt.n)
	for j, kid := range keep {
		nk := newKids[j]
		newSess[nk] = s.kidSess[kid]
		for _, sid := range s.kidSess[kid] {
			s.kid[sid] = nk
		}
	}
	s.keys, s.kidSess = nt, newSess
}

func (s *sessionState) bytes() int64 {
	b := s.keys.bytes() + int64(len(s.start))*21
	for _, a := range s.accs {
		b += a.bytes()
	}
	return b
}
