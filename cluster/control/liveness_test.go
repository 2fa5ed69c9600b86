package control

import (
	"reflect"
	"testing"
	"time"
)

func TestLivenessStateMachine(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		ev   *livenessEvent // nil: a tick
		at   int            // ms after t0
		want []transition
	}
	join := &livenessEvent{kind: evJoined, worker: "w1"}
	hb := &livenessEvent{kind: evHeartbeat, worker: "w1"}
	bye := &livenessEvent{kind: evDisconnected, worker: "w1"}
	alive := transition{worker: "w1", to: StatusAlive}
	toSuspect := transition{worker: "w1", from: StatusAlive, to: StatusSuspect}
	revived := transition{worker: "w1", from: StatusSuspect, to: StatusAlive}
	tests := []struct {
		name  string
		steps []step
		final Status
	}{
		{"heartbeats on time keep it alive", []step{
			{join, 0, []transition{alive}},
			{nil, 1000, nil}, {hb, 1000, nil},
			{nil, 2400, nil}, {hb, 2400, nil},
			{nil, 3800, nil},
		}, StatusAlive},
		{"silence: suspect then dead", []step{
			{join, 0, []transition{alive}},
			{nil, 1500, nil}, // exactly 1.5 intervals: not yet
			{nil, 1501, []transition{toSuspect}},
			{nil, 2000, nil}, // already suspect
			{nil, 3000, []transition{{worker: "w1", from: StatusSuspect, to: StatusDead}}},
			{nil, 9000, nil},
			{hb, 9000, nil}, // dead is final
		}, StatusDead},
		{"a heartbeat revives a suspect", []step{
			{join, 0, []transition{alive}},
			{nil, 2000, []transition{toSuspect}},
			{hb, 2100, []transition{revived}},
			{nil, 3000, nil},
			{nil, 5100, []transition{{worker: "w1", from: StatusAlive, to: StatusDead}}},
		}, StatusDead},
		{"one long silence goes straight to dead", []step{
			{join, 0, []transition{alive}},
			{nil, 3000, []transition{{worker: "w1", from: StatusAlive, to: StatusDead}}},
		}, StatusDead},
		{"disconnect is dead at once", []step{
			{join, 0, []transition{alive}},
			{bye, 10, []transition{{worker: "w1", from: StatusAlive, to: StatusDead}}},
			{bye, 20, nil},
			{nil, 5000, nil},
		}, StatusDead},
		{"disconnect of a suspect", []step{
			{join, 0, []transition{alive}},
			{nil, 2000, []transition{toSuspect}},
			{bye, 2001, []transition{{worker: "w1", from: StatusSuspect, to: StatusDead}}},
		}, StatusDead},
		{"events for unknown workers are ignored", []step{
			{hb, 0, nil}, {bye, 0, nil}, {nil, 10000, nil},
		}, ""},
		{"a second join is ignored", []step{
			{join, 0, []transition{alive}}, {join, 500, nil},
		}, StatusAlive},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newLivenessState(time.Second, 3)
			for i, st := range tc.steps {
				var got []transition
				if st.ev == nil {
					got = s.tick(at(st.at))
				} else {
					got = s.observe(*st.ev, at(st.at))
				}
				for j := range got {
					got[j].reason = "" // reasons are for humans
				}
				if !reflect.DeepEqual(got, st.want) {
					t.Fatalf("step %d: got %+v, want %+v", i, got, st.want)
				}
			}
			if st, _, _ := s.status("w1"); st != tc.final {
				t.Fatalf("final status %q, want %q", st, tc.final)
			}
		})
	}
}

func TestLivenessTickOrdersWorkers(t *testing.T) {
	s := newLivenessState(time.Second, 3)
	t0 := time.Unix(0, 0)
	for _, w := range []string{"w3", "w1", "w2"} {
		s.observe(livenessEvent{kind: evJoined, worker: w}, t0)
	}
	s.observe(livenessEvent{kind: evHeartbeat, worker: "w2"}, t0.Add(2*time.Second))
	got := s.tick(t0.Add(3 * time.Second))
	if len(got) != 2 || got[0].worker != "w1" || got[1].worker != "w3" || got[0].to != StatusDead {
		t.Fatalf("got %+v", got)
	}
	if st, _, _ := s.status("w2"); st != StatusAlive {
		t.Fatalf("w2 is %q", st)
	}
}
