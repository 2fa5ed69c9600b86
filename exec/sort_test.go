package exec

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestSort(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: tInt, Nullable: true},
		{Name: "s", Type: tText, Nullable: true},
		{Name: "x", Type: tFloat, Nullable: true},
		{Name: "seq", Type: tInt, Nullable: true},
	}, nil)
	r := rand.New(rand.NewSource(5))
	var rows [][]any
	for i := 0; i < 100; i++ {
		rows = append(rows, []any{int64(r.Intn(5)), fmt.Sprint(r.Intn(4)), float64(r.Intn(3)), int64(i)})
	}
	for _, tc := range []struct {
		keys          []SortKey
		limit, offset int64
	}{
		{[]SortKey{{Col: 0}}, -1, -1},
		{[]SortKey{{Col: 0, Desc: true, NullsFirst: true}, {Col: 1}}, 10, 5},
		{[]SortKey{{Col: 1, NullsFirst: true}, {Col: 2, Desc: true}}, -1, 20},
		{[]SortKey{{Col: 2}}, 0, 0},
		{nil, 7, 3},
	} {
		tc := tc
		t.Run(fmt.Sprintf("%v/%d/%d", tc.keys, tc.limit, tc.offset), func(t *testing.T) {
			runOpTest(t, opTest{
				schema:   schema,
				input:    rowsItems(rows),
				nullCols: []int{0, 1, 2},
				ordered:  true,
				build: func(mem memory.Allocator) (Operator, error) {
					return NewSort(schema, tc.keys, tc.limit, tc.offset, WithAllocator(mem))
				},
				ref: func(in []item) [][]any {
					var rs [][]any
					for _, it := range in {
						rs = append(rs, it.row)
					}
					sort.SliceStable(rs, func(i, j int) bool {
						for _, k := range tc.keys {
							a, b := rs[i][k.Col], rs[j][k.Col]
							if a == nil || b == nil {
								if a == nil && b == nil {
									continue
								}
								return (a == nil) == k.NullsFirst
							}
							c := cmpAny(a, b)
							if c == 0 {
								continue
							}
							return (c < 0) != k.Desc
						}
						return false
					})
					lo := max(0, int(tc.offset))
					lo = min(lo, len(rs))
					hi := len(rs)
					if tc.limit >= 0 {
						hi = min(hi, lo+int(tc.limit))
					}
					return rs[lo:hi]
				},
			})
		})
	}
}

func TestLimit(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "a", Type: tInt, Nullable: true}}, nil)
	var rows [][]any
	for i := 0; i < 30; i++ {
		rows = append(rows, []any{int64(i)})
	}
	for _, lo := range [][2]int64{{5, 3}, {-1, 10}, {100, 0}, {0, 0}, {4, -1}} {
		lo := lo
		t.Run(fmt.Sprint(lo), func(t *testing.T) {
			runOpTest(t, opTest{
				schema:  schema,
				input:   rowsItems(rows),
				ordered: true,
				build: func(mem memory.Allocator) (Operator, error) {
					return NewLimit(schema, lo[0], lo[1], WithAllocator(mem)), nil
				},
				ref: func(in []item) [][]any {
					off := int(max(lo[1], 0))
					hi := len(in)
					if lo[0] >= 0 {
						hi = min(hi, off+int(lo[0]))
					}
					var out [][]any
					for i := off; i < hi; i++ {
						out = append(out, in[i].row)
					}
					return out
				},
			})
		})
	}
}
