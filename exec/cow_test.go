package exec

import (
	"bytes"
	"sync/atomic"
	"testing"
)

// TestHashAggregateFreeze checks copy-on-write checkpoints: a snapshot
// built from Freeze on another goroutine while the aggregate goes on
// (updating the frozen groups, adding groups, closing windows) equals the
// checkpoint of an aggregate that stopped at the freeze. The state spans
// several cowVec chunks. Run under -race by make test.
func TestHashAggregateFreeze(t *testing.T) {
	const unit = 1000000
	// every accumulator and window kind, within one chunk
	small := injectNulls(genAggInput(7, 24000, 40000, unit), []int{0, 3, 5}, 3)
	for wname, w := range map[string]WindowSpec{
		"none":    {},
		"tumble":  {Kind: WindowTumble, TimeCol: 2, Size: 4000 * unit, TimeUnit: unit},
		"hop":     {Kind: WindowHop, TimeCol: 2, Size: 6000 * unit, Slide: 2000 * unit, TimeUnit: unit},
		"session": {Kind: WindowSession, TimeCol: 2, Gap: 3000 * unit, TimeUnit: unit},
	} {
		t.Run(wname, func(t *testing.T) { testFreeze(t, w, allAggs, small) })
	}
	// groups over several chunks
	var big []item // rows only: no window closes, batches of 1024
	for _, it := range genAggInput(8, 2*cowSize+cowSize/2, 3*cowSize, unit) {
		if it.wm == nil {
			big = append(big, it)
		}
	}
	some := []AggSpec{allAggs[0], allAggs[2], allAggs[4], allAggs[8], allAggs[11], allAggs[14]}
	for wname, w := range map[string]WindowSpec{
		"chunks/none":   {},
		"chunks/tumble": {Kind: WindowTumble, TimeCol: 2, Size: 1 << 40, TimeUnit: unit},
	} {
		t.Run(wname, func(t *testing.T) { testFreeze(t, w, some, big) })
	}
}

func testFreeze(t *testing.T, w WindowSpec, aggs []AggSpec, in []item) {
	schema := aggSchema(tInt)
	cfg := AggConfig{Keys: []int{0}, KeyNames: []string{"k1"}, Aggs: aggs, Window: w}
	mk := func() *HashAggregate {
		op, err := NewHashAggregate(schema, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	for _, p := range []int{len(in) / 3, 2 * len(in) / 3} {
		ref := mk()
		collectRun(t, ref, schema, in[:p], 1024, false)
		snap, err := ref.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		want, err := snap.Marshal()
		snap.Release()
		ref.Close()
		if err != nil {
			t.Fatal(err)
		}

		op := mk()
		collectRun(t, op, schema, in[:p], 1024, false)
		build, err := op.Freeze()
		if err != nil {
			t.Fatal(err)
		}
		built := make(chan []byte, 1)
		go func() {
			snap, err := build()
			if err != nil {
				t.Error(err)
				built <- nil
				return
			}
			b, err := snap.Marshal()
			snap.Release()
			if err != nil {
				t.Error(err)
			}
			built <- b
		}()
		collectRun(t, op, schema, in[p:], 1024, true)
		op.Close()
		if got := <-built; !bytes.Equal(got, want) {
			t.Fatalf("split %d: the snapshot built after the aggregate went on (%d bytes) differs from the checkpoint at the freeze (%d bytes)", p, len(got), len(want))
		}
	}
}

// TestCowVec checks the chunked vector against a plain slice through
// freezes, writes and growth.
func TestCowVec(t *testing.T) {
	var v cowVec[int64]
	var inUse atomic.Int32
	inUse.Add(1) // the frozen copies are read at the end
	var plain []int64
	var frozen []cowVec[int64]
	var frozenWant [][]int64
	for step := 0; step < 40; step++ {
		n := len(plain) + step*517
		v.grow(n)
		for len(plain) < n {
			plain = append(plain, 0)
		}
		for i := 0; i < len(plain); i += 1 + step {
			v.set(uint32(i), int64(step*100000+i))
			plain[i] = int64(step*100000 + i)
		}
		if step%5 == 0 {
			frozen = append(frozen, v.freeze(&inUse))
			frozenWant = append(frozenWant, append([]int64(nil), plain...))
		}
	}
	check := func(name string, v *cowVec[int64], want []int64) {
		if v.len() != len(want) {
			t.Fatalf("%s: len %d, want %d", name, v.len(), len(want))
		}
		for i, x := range want {
			if got := v.at(uint32(i)); got != x {
				t.Fatalf("%s: element %d = %d, want %d", name, i, got, x)
			}
		}
	}
	check("live", &v, plain)
	for i := range frozen {
		check("frozen", &frozen[i], frozenWant[i])
	}
}
