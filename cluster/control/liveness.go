package control

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Status is a worker's liveness as the registry sees it.
type Status string

// The liveness statuses. Dead is final for a worker ID: a worker that
// comes back reconnects and registers under a new ID.
const (
	// StatusAlive: the worker's heartbeats arrive on time.
	StatusAlive Status = "alive"
	// StatusSuspect: a heartbeat is overdue by more than half an
	// interval; a heartbeat makes the worker alive again.
	StatusSuspect Status = "suspect"
	// StatusDead: the control connection broke, or no heartbeat came
	// for DeadAfter intervals.
	StatusDead Status = "dead"
)

// eventKind is what the driver observed about one worker.
type eventKind int

const (
	evJoined       eventKind = iota // the worker registered
	evHeartbeat                     // a heartbeat arrived
	evDisconnected                  // its control connection broke or closed
)

// livenessEvent is one observation fed to livenessState.observe.
type livenessEvent struct {
	kind   eventKind
	worker string
}

// transition is a status change the state machine decided; the driver
// acts on it (logs it, emits a WorkerEvent, closes a dead worker's
// connection). From is "" for a worker that just joined.
type transition struct {
	worker   string
	from, to Status
	reason   string
}

// livenessState is the failure detector: a pure state machine with no
// goroutines, clock or network (STYLE #2). The driver feeds it events
// and ticks with the current time and performs the transitions it
// returns. It is not safe for concurrent use; the Registry guards it
// with its mutex.
type livenessState struct {
	interval     time.Duration // expected heartbeat interval
	suspectAfter time.Duration // silence that makes a worker suspect
	deadAfter    time.Duration // silence that makes a worker dead
	workers      map[string]*liveWorker
}

type liveWorker struct {
	status    Status
	lastHeard time.Time // registration or last heartbeat
}

// newLivenessState returns a detector that suspects a worker after 1.5
// intervals of silence and declares it dead after deadAfterIntervals.
func newLivenessState(interval time.Duration, deadAfterIntervals int) *livenessState {
	return &livenessState{
		interval:     interval,
		suspectAfter: interval + interval/2,
		deadAfter:    time.Duration(deadAfterIntervals) * interval,
		workers:      make(map[string]*liveWorker),
	}
}

// observe applies one event at time now and returns the transitions it
// causes (none or one).
func (s *livenessState) observe(ev livenessEvent, now time.Time) []transition {
	w := s.workers[ev.worker]
	switch ev.kind {
	case evJoined:
		if w != nil {
			return nil
		}
		s.workers[ev.worker] = &liveWorker{status: StatusAlive, lastHeard: now}
		return []transition{{worker: ev.worker, to: StatusAlive, reason: "registered"}}
	case evHeartbeat:
		if w == nil || w.status == StatusDead {
			return nil
		}
		w.lastHeard = now
		if w.status == StatusSuspect {
			w.status = StatusAlive
			return []transition{{worker: ev.worker, from: StatusSuspect, to: StatusAlive, reason: "heartbeat arrived"}}
		}
		return nil
	case evDisconnected:
		if w == nil || w.status == StatusDead {
			return nil
		}
		from := w.status
		w.status = StatusDead
		return []transition{{worker: ev.worker, from: from, to: StatusDead, reason: "control connection closed"}}
	}
	return nil
}

// tick checks every live worker's silence at time now and returns the
// transitions, ordered by worker ID.
func (s *livenessState) tick(now time.Time) []transition {
	var out []transition
	for id, w := range s.workers {
		if w.status == StatusDead {
			continue
		}
		silent := now.Sub(w.lastHeard)
		switch {
		case silent >= s.deadAfter:
			out = append(out, transition{worker: id, from: w.status, to: StatusDead,
				reason: fmt.Sprintf("no heartbeat for %v (%d intervals of %v)", silent, int(s.deadAfter/s.interval), s.interval)})
			w.status = StatusDead
		case silent > s.suspectAfter && w.status == StatusAlive:
			out = append(out, transition{worker: id, from: StatusAlive, to: StatusSuspect,
				reason: fmt.Sprintf("no heartbeat for %v (interval %v)", silent, s.interval)})
			w.status = StatusSuspect
		}
	}
	slices.SortFunc(out, func(a, b transition) int { return strings.Compare(a.worker, b.worker) })
	return out
}

// status returns the worker's status and when it was last heard from.
func (s *livenessState) status(worker string) (Status, time.Time, bool) {
	w := s.workers[worker]
	if w == nil {
		return "", time.Time{}, false
	}
	return w.status, w.lastHeard, true
}
