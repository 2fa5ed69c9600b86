package transport

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"unicode/utf8"
)

// The handshake authenticates both ends with the cluster token without
// sending it: each side proves it knows the token with an HMAC-SHA256 over
// both sides' fresh nonces and the channel ID (challenge-response), and the
// MACs are compared in constant time.
//
//	sender -> receiver  hello:     magic "SPTE" | version u16 | nonceS [16]
//	                               | idLen u16 | channel ID
//	receiver -> sender  challenge: magic | version u16 | status u8, then
//	                               ok: nonceR [16] | HMAC(token, "receiver", …) [32]
//	                               refused: reasonLen u16 | reason
//	sender -> receiver  proof:     HMAC(token, "sender", …) [32]
//	receiver -> sender  verdict:   status u8, then
//	                               ok: window u64 | max frame u64
//	                               refused: reasonLen u16 | reason
//
// A sender that finds the receiver's MAC wrong closes without sending its
// own, so it never talks to a receiver that does not know the token either.
const (
	magic        = "SPTE"
	nonceSize    = 16
	macSize      = sha256.Size
	maxChannelID = 1024 // bytes

	statusOK           = 0
	statusUnauthorized = 1
	statusVersion      = 2
	statusRefused      = 3
)

var (
	labelReceiver = []byte("spate transport receiver")
	labelSender   = []byte("spate transport sender")
)

// handshakeMAC is HMAC-SHA256(token, label | version | nonces | channel ID).
func handshakeMAC(token string, label []byte, senderNonce, receiverNonce []byte, channelID string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write(label)
	var v [2]byte
	binary.LittleEndian.PutUint16(v[:], protocolVersion)
	m.Write(v[:])
	m.Write(senderNonce)
	m.Write(receiverNonce)
	binary.LittleEndian.PutUint16(v[:], uint16(len(channelID)))
	m.Write(v[:])
	m.Write([]byte(channelID))
	return m.Sum(nil)
}

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
	nonceS := make([]byte, nonceSize)
	if _, err := rand.Read(nonceS); err != nil {
		return g, err
	}
	hello := make([]byte, 0, 24+len(channelID))
	hello = append(hello, magic...)
	hello = binary.LittleEndian.AppendUint16(hello, protocolVersion)
	hello = append(hello, nonceS...)
	hello = binary.LittleEndian.AppendUint16(hello, uint16(len(channelID)))
	hello = append(hello, channelID...)
	if _, err := conn.Write(hello); err != nil {
		return g, fmt.Errorf("%w: sending hello: %w", ErrHandshake, err)
	}

	var head [7]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return g, fmt.Errorf("%w: reading challenge: %w", ErrHandshake, err)
	}
	if string(head[:4]) != magic {
		return g, fmt.Errorf("%w: the peer is not a spate transport listener", ErrHandshake)
	}
	if head[6] != statusOK {
		return g, readRefusal(conn, head[6])
	}
	var ch [nonceSize + macSize]byte
	if _, err := io.ReadFull(conn, ch[:]); err != nil {
		return g, fmt.Errorf("%w: reading challenge: %w", ErrHandshake, err)
	}
	nonceR, macR := ch[:nonceSize], ch[nonceSize:]
	want := handshakeMAC(token, labelReceiver, nonceS, nonceR, channelID)
	if subtle.ConstantTimeCompare(macR, want) != 1 {
		return g, fmt.Errorf("receiver could not prove the cluster token: %w", ErrUnauthorized)
	}
	if _, err := conn.Write(handshakeMAC(token, labelSender, nonceS, nonceR, channelID)); err != nil {
		return g, fmt.Errorf("%w: sending proof: %w", ErrHandshake, err)
	}

	var st [1]byte
	if _, err := io.ReadFull(conn, st[:]); err != nil {
		return g, fmt.Errorf("%w: reading verdict: %w", ErrHandshake, err)
	}
	if st[0] != statusOK {
		return g, readRefusal(conn, st[0])
	}
	var ok [16]byte
	if _, err := io.ReadFull(conn, ok[:]); err != nil {
		return g, fmt.Errorf("%w: reading verdict: %w", ErrHandshake, err)
	}
	g.window = int64(binary.LittleEndian.Uint64(ok[:8]))
	g.maxFrame = int64(binary.LittleEndian.Uint64(ok[8:]))
	if g.window <= 0 || g.maxFrame <= 0 {
		return g, fmt.Errorf("%w: receiver granted window %d, max frame %d", ErrProtocol, g.window, g.maxFrame)
	}
	return g, nil
}

// readRefusal reads the reason that follows a refusal status.
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
		return fmt.Errorf("refused by the receiver (%s): %w", reason, ErrUnauthorized)
	}
	return fmt.Errorf("%w: refused by the receiver: %s", ErrHandshake, reason)
}

func writeRefusal(conn net.Conn, prefix []byte, status byte, reason string) {
	msg := append(prefix, status)
	msg = binary.LittleEndian.AppendUint16(msg, uint16(len(reason)))
	msg = append(msg, reason...)
	_, _ = conn.Write(msg) // best effort: the connection is closed next
}

// serverHandshake runs the receiver's side on conn, whose deadline the
// caller has set. It returns the channel ID the sender asked for; on
// failure it has told the sender why (where the protocol allows) and the
// caller closes conn.
func serverHandshake(conn net.Conn, token string, g grant) (string, error) {
	var hello [24]byte
	if _, err := io.ReadFull(conn, hello[:]); err != nil {
		return "", fmt.Errorf("%w: reading hello: %w", ErrHandshake, err)
	}
	if string(hello[:4]) != magic {
		return "", fmt.Errorf("%w: the peer does not speak the spate transport protocol", ErrHandshake)
	}
	version := binary.LittleEndian.Uint16(hello[4:])
	nonceS := hello[6 : 6+nonceSize]
	idLen := int(binary.LittleEndian.Uint16(hello[22:]))
	prefix := binary.LittleEndian.AppendUint16([]byte(magic), protocolVersion)
	if version != protocolVersion {
		reason := fmt.Sprintf("protocol version %d not supported (this receiver speaks %d)", version, protocolVersion)
		writeRefusal(conn, prefix, statusVersion, reason)
		return "", fmt.Errorf("%w: %s", ErrHandshake, reason)
	}
	if idLen == 0 || idLen > maxChannelID {
		reason := fmt.Sprintf("channel ID of %d bytes (want 1 to %d)", idLen, maxChannelID)
		writeRefusal(conn, prefix, statusRefused, reason)
		return "", fmt.Errorf("%w: %s", ErrHandshake, reason)
	}
	idBuf := make([]byte, idLen)
	if _, err := io.ReadFull(conn, idBuf); err != nil {
		return "", fmt.Errorf("%w: reading hello: %w", ErrHandshake, err)
	}
	id := string(idBuf)
	if err := validChannelID(id); err != nil {
		writeRefusal(conn, prefix, statusRefused, err.Error())
		return "", fmt.Errorf("%w: %w", ErrHandshake, err)
	}

	nonceR := make([]byte, nonceSize)
	if _, err := rand.Read(nonceR); err != nil {
		return id, err
	}
	ch := append(prefix, statusOK)
	ch = append(ch, nonceR...)
	ch = append(ch, handshakeMAC(token, labelReceiver, nonceS, nonceR, id)...)
	if _, err := conn.Write(ch); err != nil {
		return id, fmt.Errorf("%w: sending challenge: %w", ErrHandshake, err)
	}

	proof := make([]byte, macSize)
	if _, err := io.ReadFull(conn, proof); err != nil {
		if err == io.EOF {
			// A sender that rejects our MAC hangs up here, before its proof.
			return id, fmt.Errorf("sender hung up at the challenge (it holds another cluster token): %w", ErrUnauthorized)
		}
		return id, fmt.Errorf("%w: reading proof: %w", ErrHandshake, err)
	}
	want := handshakeMAC(token, labelSender, nonceS, nonceR, id)
	if subtle.ConstantTimeCompare(proof, want) != 1 {
		writeRefusal(conn, nil, statusUnauthorized, "cluster token mismatch")
		return id, ErrUnauthorized
	}
	ok := []byte{statusOK}
	ok = binary.LittleEndian.AppendUint64(ok, uint64(g.window))
	ok = binary.LittleEndian.AppendUint64(ok, uint64(g.maxFrame))
	if _, err := conn.Write(ok); err != nil {
		return id, fmt.Errorf("%w: sending verdict: %w", ErrHandshake, err)
	}
	return id, nil
}
