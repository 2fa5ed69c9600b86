package pgwire

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/spatedb/spate/cluster"
)

// Authentication and TLS.
//
// TLS: with Config.TLS an SSLRequest is answered 'S' and crypto/tls runs
// the handshake on the socket; the startup packet and everything after
// it travel encrypted. Config.RequireTLS refuses a startup packet that
// came in the clear (FATAL 28000).
//
// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL runs it: the server
// offers SCRAM-SHA-256, and over TLS also SCRAM-SHA-256-PLUS with
// tls-server-end-point channel binding (RFC 5929); the user name in the
// client's message is ignored (the startup packet's is used). A role that
// does not exist, may not log in or has no password gets a mock exchange
// with a salt derived from its name, and the same failure as a wrong
// password (FATAL 28P01 password authentication failed for user "…"), so
// clients cannot tell which roles exist. Malformed SASL messages end the
// connection with FATAL 08P01.

// SQLSTATEs of authentication.
const (
	codeInvalidAuthorization = "28000"
	codeInvalidPassword      = "28P01"
)

// SASL mechanism names.
const (
	mechSCRAM     = "SCRAM-SHA-256"
	mechSCRAMPlus = "SCRAM-SHA-256-PLUS"
)

// maxSASLMessage bounds a SASL message (PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH).
const maxSASLMessage = 65535

// channelBindingHash is the tls-server-end-point channel-binding data of
// cfg's certificate (RFC 5929 §4.1): its hash with the hash function of
// its signature (SHA-256 for MD5 and SHA-1). It is nil without TLS, when
// the certificate is chosen per connection (GetCertificate) or there are
// several, or the signature algorithm has no defined hash: then
// SCRAM-SHA-256-PLUS is not offered.
func channelBindingHash(cfg *tls.Config) ([]byte, error) {
	if cfg == nil || len(cfg.Certificates) != 1 || len(cfg.Certificates[0].Certificate) == 0 {
		return nil, nil
	}
	cert := cfg.Certificates[0].Leaf
	if cert == nil {
		var err error
		if cert, err = x509.ParseCertificate(cfg.Certificates[0].Certificate[0]); err != nil {
			return nil, fmt.Errorf("pgwire: parsing the TLS certificate: %w", err)
		}
	}
	var h hash.Hash
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256:
		h = sha256.New()
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h = sha512.New384()
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h = sha512.New()
	default: // Ed25519 and others: no channel binding defined
		return nil, nil
	}
	h.Write(cert.Raw)
	return h.Sum(nil), nil
}

// startTLS answers an SSLRequest with 'S' and runs the TLS handshake;
// the connection then reads and writes through TLS.
func (c *conn) startTLS() bool {
	if _, err := c.nc.Write([]byte{'S'}); err != nil {
		return false
	}
	tc := tls.Server(c.nc, c.srv.cfg.TLS)
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.log.Debug().Err(err).Msg("pgwire: TLS handshake failed")
		return false
	}
	c.nc = tc
	c.br = bufio.NewReaderSize(tc, 32<<10)
	c.tls = true
	return true
}

// needsPassword reports whether the client must authenticate.
func (c *conn) needsPassword() bool {
	if c.srv.cfg.Auth == AuthSCRAM {
		return true
	}
	return !isLoopback(c.nc.RemoteAddr())
}

func isLoopback(a net.Addr) bool {
	switch x := a.(type) {
	case *net.TCPAddr:
		return x.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authenticate runs SCRAM-SHA-256 when the client must authenticate. It
// returns nil when the client may go on, and a *fatalError to end the
// connection with.
func (c *conn) authenticate() error {
	if !c.needsPassword() {
		return nil
	}
	var verifier cluster.SCRAMVerifier
	known := false
	if a, ok := c.srv.engine.(cluster.Authenticator); ok {
		verifier, known = a.PasswordVerifier(c.user)
	}
	if !known {
		verifier = c.srv.mockVerifier(c.user)
	}
	ex := &scramExchange{verifier: verifier, known: known, cbData: c.channelBinding()}
	mechs := []string{mechSCRAM}
	if ex.cbData != nil {
		mechs = []string{mechSCRAMPlus, mechSCRAM}
	}
	c.send(&pgproto3.AuthenticationSASL{AuthMechanisms: mechs})
	if err := c.flush(); err != nil {
		return err
	}

	// SASLInitialResponse: the mechanism and client-first-message.
	body, err := c.readAuthMessage()
	if err != nil {
		return err
	}
	var initial pgproto3.SASLInitialResponse
	if err := initial.Decode(body); err != nil {
		return saslError("malformed SASLInitialResponse message")
	}
	if !contains(mechs, initial.AuthMechanism) {
		return saslError("client selected an invalid SASL authentication mechanism")
	}
	ex.plus = initial.AuthMechanism == mechSCRAMPlus
	serverFirst, err := ex.clientFirst(string(initial.Data))
	if err != nil {
		return err
	}
	c.send(&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)})
	if err := c.flush(); err != nil {
		return err
	}

	// SASLResponse: client-final-message.
	if body, err = c.readAuthMessage(); err != nil {
		return err
	}
	serverFinal, err := ex.clientFinal(string(body))
	if err != nil {
		return err
	}
	if !ex.ok {
		msg := fmt.Sprintf("password authentication failed for user %q", c.user)
		c.log.Info().Str("user", c.user).Bool("role_has_password", known).Msg("pgwire: password authentication failed")
		return fatal(errors.New(msg), errorResponse("FATAL", codeInvalidPassword, msg))
	}
	c.send(&pgproto3.AuthenticationSASLFinal{Data: []byte(serverFinal)})
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// channelBinding is the channel-binding data to offer SCRAM-SHA-256-PLUS
// with, nil when it is not offered.
func (c *conn) channelBinding() []byte {
	if !c.tls {
		return nil
	}
	return c.srv.cbHash
}

// readAuthMessage reads a password message ('p') during authentication.
func (c *conn) readAuthMessage() ([]byte, error) {
	f, err := readFrame(c.br, min(c.srv.cfg.MaxMessageSize, maxSASLMessage))
	if err != nil {
		var tl *tooLargeError
		var pe *protocolError
		switch {
		case errors.As(err, &tl):
			return nil, saslError("SASL message too long")
		case errors.As(err, &pe):
			return nil, fatal(err, toErrorResponse("FATAL", pe))
		}
		return nil, fatal(err, nil) // the client went away
	}
	if f.typ == 'X' {
		return nil, fatal(errClientGone, nil)
	}
	if f.typ != 'p' {
		return nil, fatal(errors.New("expected a SASL response"), errorResponse("FATAL", codeProtocolViolation,
			fmt.Sprintf("expected SASL response, got message type %d", f.typ)))
	}
	return f.body, nil
}

func saslError(msg string) error {
	return fatal(errors.New(msg), errorResponse("FATAL", codeProtocolViolation, msg))
}

// mockVerifier is the verifier of a role that cannot authenticate: its
// salt is derived from the name and a server secret, so repeated attempts
// see the same salt, as for a real role.
func (s *Server) mockVerifier(user string) cluster.SCRAMVerifier {
	m := hmac.New(sha256.New, s.mockKey[:])
	m.Write([]byte(user))
	sum := m.Sum(nil)
	return cluster.SCRAMVerifier{Iterations: cluster.SCRAMIterations, Salt: sum[:16], StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)}
}

// scramExchange is the server side of one SCRAM-SHA-256 exchange. It is a
// pure state machine fed the client's messages.
type scramExchange struct {
	verifier cluster.SCRAMVerifier
	known    bool   // the verifier is the role's (else the exchange fails)
	cbData   []byte // channel-binding data; nil when PLUS is not offered
	plus     bool   // the client chose SCRAM-SHA-256-PLUS

	gs2Header       string // of client-first, as sent
	clientFirstBare string
	serverFirst     string
	nonce           string // client nonce + server nonce

	ok bool // the client proved it knows the password
}

// malformed is PostgreSQL's error for a bad SCRAM message.
func malformedSCRAM(detail string) error {
	msg := "malformed SCRAM message: " + detail
	return fatal(errors.New(msg), errorResponse("FATAL", codeProtocolViolation, msg))
}

// validNonce reports whether s is a SCRAM nonce: printable ASCII but ','.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

// clientFirst reads client-first-message and returns server-first-message.
func (ex *scramExchange) clientFirst(msg string) (string, error) {
	rest := msg
	switch {
	case strings.HasPrefix(rest, "n,"):
		if ex.plus {
			return "", malformedSCRAM("the client chose SCRAM-SHA-256-PLUS without channel binding")
		}
		rest = rest[1:]
	case strings.HasPrefix(rest, "y,"):
		if ex.plus {
			return "", malformedSCRAM("the client chose SCRAM-SHA-256-PLUS without channel binding")
		}
		if ex.cbData != nil {
			// The client thinks the server cannot bind the channel, which
			// it offered: someone in between removed SCRAM-SHA-256-PLUS.
			return "", saslError("SCRAM channel binding negotiation error: the client supports channel binding but thinks the server does not, and this server does")
		}
		rest = rest[1:]
	case strings.HasPrefix(rest, "p="):
		i := strings.IndexByte(rest, ',')
		if i < 0 {
			return "", malformedSCRAM("unterminated channel binding type")
		}
		if !ex.plus {
			return "", saslError("channel binding was requested, but the client did not choose SCRAM-SHA-256-PLUS")
		}
		if rest[2:i] != "tls-server-end-point" {
			return "", saslError(fmt.Sprintf("unsupported SCRAM channel-binding type %q", rest[2:i]))
		}
		rest = rest[i:]
	default:
		return "", malformedSCRAM("unexpected channel-binding flag")
	}
	// rest is ",[authzid],client-first-bare".
	if strings.HasPrefix(rest, ",a=") {
		return "", saslError("client uses authorization identity, but it is not supported")
	}
	if !strings.HasPrefix(rest, ",,") {
		return "", malformedSCRAM("expected a comma after the authorization identity")
	}
	ex.gs2Header = msg[:len(msg)-len(rest)+2]
	ex.clientFirstBare = rest[2:]
	attrs := strings.Split(ex.clientFirstBare, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return "", saslError("client requires an unsupported SCRAM extension")
	}
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || !validNonce(attrs[1][2:]) {
		return "", malformedSCRAM("expected n=<user>,r=<nonce>")
	}
	var b [18]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	ex.nonce = attrs[1][2:] + base64.RawStdEncoding.EncodeToString(b[:])
	ex.serverFirst = "r=" + ex.nonce + ",s=" + base64.StdEncoding.EncodeToString(ex.verifier.Salt) + ",i=" + strconv.Itoa(ex.verifier.Iterations)
	return ex.serverFirst, nil
}

// clientFinal reads client-final-message, sets ok when the proof is
// right, and returns server-final-message.
func (ex *scramExchange) clientFinal(msg string) (string, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return "", malformedSCRAM("no proof")
	}
	withoutProof, proof64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return "", malformedSCRAM("expected c=<channel binding>,r=<nonce>")
	}
	cb, err := base64.StdEncoding.DecodeString(attrs[0][2:])
	if err != nil {
		return "", malformedSCRAM("channel binding is not base64")
	}
	want := []byte(ex.gs2Header)
	if ex.plus {
		want = append(want, ex.cbData...)
	}
	if !bytes.Equal(cb, want) {
		return "", saslError("SCRAM channel binding check failed")
	}
	if attrs[1][2:] != ex.nonce {
		return "", malformedSCRAM("the nonce does not match")
	}
	proof, err := base64.StdEncoding.DecodeString(proof64)
	if err != nil || len(proof) != sha256.Size {
		return "", malformedSCRAM("the proof is not 32 bytes of base64")
	}
	authMessage := ex.clientFirstBare + "," + ex.serverFirst + "," + withoutProof
	// ClientKey = proof XOR HMAC(StoredKey, AuthMessage); the client knows
	// the password when SHA-256(ClientKey) = StoredKey.
	sig := hmac.New(sha256.New, ex.verifier.StoredKey)
	sig.Write([]byte(authMessage))
	clientKey := sig.Sum(nil)
	for k := range clientKey {
		clientKey[k] ^= proof[k]
	}
	stored := sha256.Sum256(clientKey)
	ex.ok = ex.known && subtle.ConstantTimeCompare(stored[:], ex.verifier.StoredKey) == 1
	srv := hmac.New(sha256.New, ex.verifier.ServerKey)
	srv.Write([]byte(authMessage))
	return "v=" + base64.StdEncoding.EncodeToString(srv.Sum(nil)), nil
}
