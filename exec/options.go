package exec

import "github.com/apache/arrow-go/v18/arrow/memory"

// Option configures a constructor of this package (Compile, NewCalc,
// NewHashAggregate, NewSort, NewLimit, NewCopyDecoder, RecordFromValues).
type Option func(*options)

type options struct {
	mem memory.Allocator
}

// WithAllocator makes the operator allocate every Arrow buffer it creates
// (outputs and state) from mem. Default: memory.DefaultAllocator.
func WithAllocator(mem memory.Allocator) Option {
	return func(o *options) { o.mem = mem }
}

func buildOptions(opts []Option) options {
	o := options{mem: memory.DefaultAllocator}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.mem == nil {
		o.mem = memory.DefaultAllocator
	}
	return o
}
