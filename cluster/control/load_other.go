//go:build !unix

package control

// cpuSeconds is not measured on this platform; it reports 0.
func cpuSeconds() float64 { return 0 }
