package transport

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"unicode/utf8"

	"github.com/spatedb/spate/cluster/auth"
)

// The handshake is the cluster handshake (cluster/auth) with magic
// "SPTE", the sender as client and the receiver as server, and the
// channel ID as the hello's extra bytes (so both MACs cover it). After
// the ok verdict the receiver sends its grant: window u64 | max frame u64.
const maxChannelID = 1024 // bytes

var handshake = auth.Protocol{Name: "transport", Magic: "SPTE", Version: protocolVersion,
	ClientRole: "sender", ServerRole: "receiver", MaxExtra: maxChannelID}

func validChannelID(id string) error {
	if id == "" || len(id) > maxChannelID || !utf8.ValidString(id) {
		return fmt.Errorf("transport: channel ID must be 1 to %d bytes of UTF-8, got %d bytes", maxChannelID, len(id))
	}
	return nil
}

// grant is what the receiver tells the sender once the handshake succeeds.
type grant struct {
	window   int64 // initial credit, bytes
	maxFrame int64 // largest frame the receiver accepts, bytes
}

// clientHandshake runs the sender's side on conn, whose deadline the
// caller has set. On failure the caller closes conn.
func clientHandshake(conn net.Conn, token, channelID string) (grant, error) {
	var g grant
	if err := handshake.Client(conn, token, channelID); err != nil {
		return g, err
	}
	var ok [16]byte
	if _, err := io.ReadFull(conn, ok[:]); err != nil {
		return g, fmt.Errorf("%w: reading the grant: %w", ErrHandshake, err)
	}
	g.window = int64(binary.LittleEndian.Uint64(ok[:8]))
	g.maxFrame = int64(binary.LittleEndian.Uint64(ok[8:]))
	if g.window <= 0 || g.maxFrame <= 0 {
		return g, fmt.Errorf("%w: receiver granted window %d, max frame %d", ErrProtocol, g.window, g.maxFrame)
	}
	return g, nil
}

// serverHandshake runs the receiver's side on conn, whose deadline the
// caller has set. It returns the channel ID the sender asked for; on
// failure it has told the sender why (where the protocol allows) and the
// caller closes conn.
func serverHandshake(conn net.Conn, token string, g grant) (string, error) {
	id, err := handshake.Server(conn, token, validChannelID)
	if err != nil {
		return id, err
	}
	ok := binary.LittleEndian.AppendUint64(nil, uint64(g.window))
	ok = binary.LittleEndian.AppendUint64(ok, uint64(g.maxFrame))
	if _, err := conn.Write(ok); err != nil {
		return id, fmt.Errorf("%w: sending the grant: %w", ErrHandshake, err)
	}
	return id, nil
}
