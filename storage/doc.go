// Package storage will hold Spate's durable things: the ingest log, the
// checkpoint store (memory, local directory, S3) and catalog persistence.
// It is empty until the fault-tolerance work lands (see docs/ARCHITECTURE.md);
// today all state lives in the serving process's memory.
package storage
