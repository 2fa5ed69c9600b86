package control

import (
	"errors"
	"net"

	"github.com/spatedb/spate/cluster/auth"
)

// Errors returned (wrapped) by Join and logged by the Registry.
var (
	// ErrUnauthorized: the peer does not hold the cluster token.
	ErrUnauthorized = auth.ErrUnauthorized
	// ErrHandshake: the handshake failed for another reason (not a
	// spate control peer, protocol version, I/O).
	ErrHandshake = auth.ErrHandshake
	// ErrProtocol: a peer sent a malformed or unexpected message.
	ErrProtocol = errors.New("control protocol violation")
)

// handshake is the cluster handshake (cluster/auth) as the control plane
// uses it: magic "SPCC", the worker as client, the registry as server,
// no extra bytes.
var handshake = auth.Protocol{Name: "control", Magic: "SPCC", Version: 2, ClientRole: "worker", ServerRole: "registry"}

// clientHandshake runs the worker's side on conn, whose deadline the
// caller has set; on failure the caller closes conn.
func clientHandshake(conn net.Conn, token string) error {
	return handshake.Client(conn, token, "")
}

// serverHandshake runs the registry's side on conn, whose deadline the
// caller has set. On failure it has told the worker why where the
// protocol allows, and the caller logs the error and closes conn.
func serverHandshake(conn net.Conn, token string) error {
	_, err := handshake.Server(conn, token, nil)
	return err
}
