//go:build !unix

package transport

import "time"

// cpuTime is not measured here: the cpu-ms/batch metric reads 0.
func cpuTime() time.Duration { return 0 }
