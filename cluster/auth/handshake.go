// Package auth is the handshake both of Spate's cluster protocols open
// with — the control plane (cluster/control) and the data plane
// (cluster/transport): each side proves it holds the shared cluster token
// without sending it, by an HMAC-SHA256 over both sides' fresh nonces,
// compared in constant time.
//
//	client -> server  hello:     magic [4] | version u16 | nonceC [16]
//	                             | extraLen u16 | extra (e.g. a channel ID)
//	server -> client  challenge: magic | version u16 | status u8, then
//	                             ok: nonceS [16] | HMAC(token, server label, …) [32]
//	                             refused: reasonLen u16 | reason
//	client -> server  proof:     HMAC(token, client label, …) [32]
//	server -> client  verdict:   status u8, then
//	                             refused: reasonLen u16 | reason
//
// Both MACs cover the label, the version, both nonces and the extra
// bytes; the labels are "spate <protocol> <role>", so a MAC from one
// protocol or role is never valid in another. A client that finds the
// server's MAC wrong hangs up without sending its proof, so it never talks
// to a server that does not know the token either. After an ok verdict
// the protocol goes on (the data plane's receiver sends its credit grant
// next). The caller bounds the handshake with the connection's deadline.
package auth

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

// Errors returned (wrapped) by Client and Server.
var (
	// ErrUnauthorized: the peer does not hold the cluster token.
	ErrUnauthorized = errors.New("unknown peer: cluster token mismatch")
	// ErrHandshake: the handshake failed for another reason (not a
	// spate peer, protocol version, a refused extra, I/O).
	ErrHandshake = errors.New("handshake failed")
)

// Sizes on the wire.
const (
	NonceSize      = 16
	MACSize        = sha256.Size
	maxReasonBytes = 512
)

// Verdict statuses.
const (
	StatusOK           = 0
	StatusUnauthorized = 1
	StatusVersion      = 2
	StatusRefused      = 3
)

// Protocol is one use of the handshake.
type Protocol struct {
	Name       string // "control", "transport": in labels and messages
	Magic      string // 4 bytes opening every hello and challenge
	Version    uint16
	ClientRole string // "worker", "sender"
	ServerRole string // "registry", "receiver"
	// MaxExtra is the longest extra a server accepts, in bytes.
	MaxExtra int
}

func (p Protocol) mac(token, role string, nonceC, nonceS []byte, extra string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("spate " + p.Name + " " + role))
	var v [2]byte
	binary.LittleEndian.PutUint16(v[:], p.Version)
	m.Write(v[:])
	m.Write(nonceC)
	m.Write(nonceS)
	binary.LittleEndian.PutUint16(v[:], uint16(len(extra)))
	m.Write(v[:])
	m.Write([]byte(extra))
	return m.Sum(nil)
}

func (p Protocol) handshakeErr(format string, args ...any) error {
	return fmt.Errorf("%s %w: %s", p.Name, ErrHandshake, fmt.Sprintf(format, args...))
}

// Hello is the client's opening message (exported for tests that speak
// the protocol by hand).
func (p Protocol) Hello(nonce []byte, extra string) []byte {
	b := make([]byte, 0, 24+len(extra))
	b = append(b, p.Magic...)
	b = binary.LittleEndian.AppendUint16(b, p.Version)
	b = append(b, nonce...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(extra)))
	return append(b, extra...)
}

// Client runs the client's side on conn; extra (a channel ID, or empty)
// goes to the server and into both MACs. On failure the caller closes
// conn.
func (p Protocol) Client(conn net.Conn, token, extra string) error {
	nonceC := make([]byte, NonceSize)
	if _, err := rand.Read(nonceC); err != nil {
		return err
	}
	if _, err := conn.Write(p.Hello(nonceC, extra)); err != nil {
		return p.handshakeErr("sending hello: %v", err)
	}
	var head [7]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return p.handshakeErr("reading challenge: %v (the peer did not answer: it is stopping, or is not a spate %s %s)", err, p.Name, p.ServerRole)
	}
	if string(head[:4]) != p.Magic {
		return p.handshakeErr("the peer is not a spate %s %s", p.Name, p.ServerRole)
	}
	if head[6] != StatusOK {
		return p.ReadRefusal(conn, head[6])
	}
	var ch [NonceSize + MACSize]byte
	if _, err := io.ReadFull(conn, ch[:]); err != nil {
		return p.handshakeErr("reading challenge: %v", err)
	}
	nonceS, macS := ch[:NonceSize], ch[NonceSize:]
	if subtle.ConstantTimeCompare(macS, p.mac(token, p.ServerRole, nonceC, nonceS, extra)) != 1 {
		return fmt.Errorf("the %s could not prove the cluster token: %w", p.ServerRole, ErrUnauthorized)
	}
	if _, err := conn.Write(p.mac(token, p.ClientRole, nonceC, nonceS, extra)); err != nil {
		return p.handshakeErr("sending proof: %v", err)
	}
	var st [1]byte
	if _, err := io.ReadFull(conn, st[:]); err != nil {
		return p.handshakeErr("reading verdict: %v", err)
	}
	if st[0] != StatusOK {
		return p.ReadRefusal(conn, st[0])
	}
	return nil
}

// ReadRefusal reads the reason that follows a refusal status and returns
// the error it means.
func (p Protocol) ReadRefusal(conn net.Conn, status byte) error {
	var n [2]byte
	reason := "(no reason given)"
	if _, err := io.ReadFull(conn, n[:]); err == nil {
		buf := make([]byte, min(int(binary.LittleEndian.Uint16(n[:])), maxReasonBytes))
		if _, err := io.ReadFull(conn, buf); err == nil {
			reason = string(buf)
		}
	}
	if status == StatusUnauthorized {
		return fmt.Errorf("refused by the %s (%s): %w", p.ServerRole, reason, ErrUnauthorized)
	}
	return p.handshakeErr("refused by the %s: %s", p.ServerRole, reason)
}

func writeRefusal(conn net.Conn, prefix []byte, status byte, reason string) {
	if len(reason) > maxReasonBytes {
		reason = reason[:maxReasonBytes]
	}
	msg := append(prefix, status)
	msg = binary.LittleEndian.AppendUint16(msg, uint16(len(reason)))
	msg = append(msg, reason...)
	_, _ = conn.Write(msg) // best effort: the connection is closed next
}

// Server runs the server's side on conn and returns the client's extra.
// check, if set, may refuse the extra (its error is sent to the client as
// the reason). On failure Server has told the client why where the
// protocol allows, and the caller logs the error and closes conn; on
// success it has sent the ok verdict status and the protocol goes on.
func (p Protocol) Server(conn net.Conn, token string, check func(extra string) error) (string, error) {
	var hello [6 + NonceSize + 2]byte
	if _, err := io.ReadFull(conn, hello[:]); err != nil {
		return "", p.handshakeErr("reading hello: %v", err)
	}
	if string(hello[:4]) != p.Magic {
		return "", p.handshakeErr("the peer does not speak the spate %s protocol", p.Name)
	}
	prefix := binary.LittleEndian.AppendUint16([]byte(p.Magic), p.Version)
	if v := binary.LittleEndian.Uint16(hello[4:]); v != p.Version {
		reason := fmt.Sprintf("%s protocol version %d not supported (this %s speaks %d)", p.Name, v, p.ServerRole, p.Version)
		writeRefusal(conn, prefix, StatusVersion, reason)
		return "", p.handshakeErr("%s", reason)
	}
	nonceC := hello[6 : 6+NonceSize]
	n := int(binary.LittleEndian.Uint16(hello[6+NonceSize:]))
	if n > p.MaxExtra {
		reason := fmt.Sprintf("hello of %d extra bytes (at most %d)", n, p.MaxExtra)
		writeRefusal(conn, prefix, StatusRefused, reason)
		return "", p.handshakeErr("%s", reason)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return "", p.handshakeErr("reading hello: %v", err)
	}
	extra := string(buf)
	if check != nil {
		if err := check(extra); err != nil {
			writeRefusal(conn, prefix, StatusRefused, err.Error())
			return extra, fmt.Errorf("%s %w: %w", p.Name, ErrHandshake, err)
		}
	}
	nonceS := make([]byte, NonceSize)
	if _, err := rand.Read(nonceS); err != nil {
		return extra, err
	}
	ch := append(prefix, StatusOK)
	ch = append(ch, nonceS...)
	ch = append(ch, p.mac(token, p.ServerRole, nonceC, nonceS, extra)...)
	if _, err := conn.Write(ch); err != nil {
		return extra, p.handshakeErr("sending challenge: %v", err)
	}
	proof := make([]byte, MACSize)
	if _, err := io.ReadFull(conn, proof); err != nil {
		if err == io.EOF {
			// A client that rejects our MAC hangs up here, before its proof.
			return extra, fmt.Errorf("%s hung up at the challenge (it holds another cluster token, or it gave up, as a sender whose query was dropped does): %w", p.ClientRole, ErrUnauthorized)
		}
		return extra, p.handshakeErr("reading proof: %v", err)
	}
	if subtle.ConstantTimeCompare(proof, p.mac(token, p.ClientRole, nonceC, nonceS, extra)) != 1 {
		writeRefusal(conn, nil, StatusUnauthorized, "cluster token mismatch")
		return extra, ErrUnauthorized
	}
	if _, err := conn.Write([]byte{StatusOK}); err != nil {
		return extra, p.handshakeErr("sending verdict: %v", err)
	}
	return extra, nil
}
