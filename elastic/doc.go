// Package elastic will hold load metrics, the bottleneck policy, key-range
// split planning and the VM pool (local processes, EC2). It is empty until
// the scale-out work lands (see docs/ARCHITECTURE.md).
package elastic
