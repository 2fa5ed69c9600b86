package control

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// maxFrameBytes bounds one control message (16 MiB: a deploy carries a
// query's whole plan), so a confused or hostile peer cannot make the
// reader allocate without bound.
const maxFrameBytes = 16 << 20

// writeFrame writes m as a 4-byte big-endian length followed by that
// many bytes of JSON. The caller serialises writers.
func writeFrame(w io.Writer, m *message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("control: encoding %s: %w", m.Type, err)
	}
	if len(body) > maxFrameBytes {
		return fmt.Errorf("control: %s message of %d bytes exceeds %d", m.Type, len(body), maxFrameBytes)
	}
	buf := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	buf = append(buf, body...)
	_, err = w.Write(buf)
	return err
}

// readFrame reads one frame written by writeFrame. It returns io.EOF when
// the stream ends cleanly between frames.
func readFrame(r io.Reader) (*message, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if n == 0 || n > maxFrameBytes {
		return nil, fmt.Errorf("%w: frame of %d bytes (want 1 to %d)", ErrProtocol, n, maxFrameBytes)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	m := new(message)
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return m, nil
}
