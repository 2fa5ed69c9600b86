package control

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// Errors returned (wrapped) by Join and logged by the Registry.
var (
	// ErrUnauthorized: the peer does not hold the cluster token.
	ErrUnauthorized = errors.New("unknown peer: cluster token mismatch")
	// ErrHandshake: the handshake failed for another reason (not a
	// spate control peer, protocol version, I/O).
	ErrHandshake = errors.New("control handshake failed")
	// ErrProtocol: a peer sent a malformed or unexpected message.
	ErrProtocol = errors.New("control protocol violation")
)

// The handshake is the one of cluster/transport (handshake.go), with its
// own magic and labels so a MAC from one protocol is never valid in the
// other:
//
//	worker   -> registry  hello:     magic "SPCC" | version u16 | nonceW [16]
//	registry -> worker    challenge: magic | version u16 | status u8, then
//	                                 ok: nonceR [16] | HMAC(token, "registry", …) [32]
//	                                 refused: reasonLen u16 | reason
//	worker   -> registry  proof:     HMAC(token, "worker", …) [32]
//	registry -> worker    verdict:   status u8, then refused: reasonLen u16 | reason
//
// Both MACs cover the label, the version and both nonces; they are
// compared with crypto/subtle.ConstantTimeCompare. A worker that finds
// the registry's MAC wrong hangs up without sending its own proof.
const (
	magic           = "SPCC"
	protocolVersion = 1
	nonceSize       = 16
	macSize         = sha256.Size
	maxReasonBytes  = 512

	statusOK           = 0
	statusUnauthorized = 1
	statusVersion      = 2
)

var (
	labelRegistry = []byte("spate control registry")
	labelWorker   = []byte("spate control worker")
)

func handshakeMAC(token string, label, nonceW, nonceR []byte) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write(label)
	var v [2]byte
	binary.LittleEndian.PutUint16(v[:], protocolVersion)
	m.Write(v[:])
	m.Write(nonceW)
	m.Write(nonceR)
	return m.Sum(nil)
}

// clientHandshake runs the worker's side on conn, whose deadline the
// caller has set; on failure the caller closes conn.
func clientHandshake(conn net.Conn, token string) error {
	nonceW := make([]byte, nonceSize)
	if _, err := rand.Read(nonceW); err != nil {
		return err
	}
	hello := binary.LittleEndian.AppendUint16([]byte(magic), protocolVersion)
	hello = append(hello, nonceW...)
	if _, err := conn.Write(hello); err != nil {
		return fmt.Errorf("%w: sending hello: %w", ErrHandshake, err)
	}
	var head [7]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return fmt.Errorf("%w: reading challenge (is this a spate coordinator's control address?): %w", ErrHandshake, err)
	}
	if string(head[:4]) != magic {
		return fmt.Errorf("%w: the peer is not a spate control registry", ErrHandshake)
	}
	if head[6] != statusOK {
		return readRefusal(conn, head[6])
	}
	var ch [nonceSize + macSize]byte
	if _, err := io.ReadFull(conn, ch[:]); err != nil {
		return fmt.Errorf("%w: reading challenge: %w", ErrHandshake, err)
	}
	nonceR, macR := ch[:nonceSize], ch[nonceSize:]
	if subtle.ConstantTimeCompare(macR, handshakeMAC(token, labelRegistry, nonceW, nonceR)) != 1 {
		return fmt.Errorf("the coordinator could not prove the cluster token: %w", ErrUnauthorized)
	}
	if _, err := conn.Write(handshakeMAC(token, labelWorker, nonceW, nonceR)); err != nil {
		return fmt.Errorf("%w: sending proof: %w", ErrHandshake, err)
	}
	var st [1]byte
	if _, err := io.ReadFull(conn, st[:]); err != nil {
		return fmt.Errorf("%w: reading verdict: %w", ErrHandshake, err)
	}
	if st[0] != statusOK {
		return readRefusal(conn, st[0])
	}
	return nil
}

func readRefusal(conn net.Conn, status byte) error {
	var n [2]byte
	reason := "(no reason given)"
	if _, err := io.ReadFull(conn, n[:]); err == nil {
		buf := make([]byte, min(int(binary.LittleEndian.Uint16(n[:])), maxReasonBytes))
		if _, err := io.ReadFull(conn, buf); err == nil {
			reason = string(buf)
		}
	}
	if status == statusUnauthorized {
		return fmt.Errorf("refused by the coordinator (%s): %w", reason, ErrUnauthorized)
	}
	return fmt.Errorf("%w: refused by the coordinator: %s", ErrHandshake, reason)
}

func writeRefusal(conn net.Conn, prefix []byte, status byte, reason string) {
	msg := append(prefix, status)
	msg = binary.LittleEndian.AppendUint16(msg, uint16(len(reason)))
	msg = append(msg, reason...)
	_, _ = conn.Write(msg) // best effort: the connection is closed next
}

// serverHandshake runs the registry's side on conn, whose deadline the
// caller has set. On failure it has told the worker why where the
// protocol allows, and the caller logs the error and closes conn.
func serverHandshake(conn net.Conn, token string) error {
	var hello [6 + nonceSize]byte
	if _, err := io.ReadFull(conn, hello[:]); err != nil {
		return fmt.Errorf("%w: reading hello: %w", ErrHandshake, err)
	}
	if string(hello[:4]) != magic {
		return fmt.Errorf("%w: the peer does not speak the spate control protocol", ErrHandshake)
	}
	prefix := binary.LittleEndian.AppendUint16([]byte(magic), protocolVersion)
	if v := binary.LittleEndian.Uint16(hello[4:]); v != protocolVersion {
		reason := fmt.Sprintf("control protocol version %d not supported (this coordinator speaks %d)", v, protocolVersion)
		writeRefusal(conn, prefix, statusVersion, reason)
		return fmt.Errorf("%w: %s", ErrHandshake, reason)
	}
	nonceW := hello[6:]
	nonceR := make([]byte, nonceSize)
	if _, err := rand.Read(nonceR); err != nil {
		return err
	}
	ch := append(prefix, statusOK)
	ch = append(ch, nonceR...)
	ch = append(ch, handshakeMAC(token, labelRegistry, nonceW, nonceR)...)
	if _, err := conn.Write(ch); err != nil {
		return fmt.Errorf("%w: sending challenge: %w", ErrHandshake, err)
	}
	proof := make([]byte, macSize)
	if _, err := io.ReadFull(conn, proof); err != nil {
		if err == io.EOF {
			return fmt.Errorf("worker hung up at the challenge (it holds another cluster token): %w", ErrUnauthorized)
		}
		return fmt.Errorf("%w: reading proof: %w", ErrHandshake, err)
	}
	if subtle.ConstantTimeCompare(proof, handshakeMAC(token, labelWorker, nonceW, nonceR)) != 1 {
		writeRefusal(conn, nil, statusUnauthorized, "cluster token mismatch")
		return ErrUnauthorized
	}
	if _, err := conn.Write([]byte{statusOK}); err != nil {
		return fmt.Errorf("%w: sending verdict: %w", ErrHandshake, err)
	}
	return nil
}
