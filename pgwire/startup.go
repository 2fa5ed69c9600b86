package pgwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Startup packet codes (the first int32 after the length).
const (
	codeSSLRequest    = 80877103
	codeGSSEncRequest = 80877104
	codeCancelRequest = 80877102
	protocolV3        = 3 << 16
)

// Startup packet length bounds, as PostgreSQL's (length field included).
const (
	minStartupPacket = 8
	maxStartupPacket = 10000
)

// reportedParams are the parameters sent as ParameterStatus at startup and
// again when a SET changes them.
var reportedParams = []string{
	"application_name",
	"client_encoding",
	"DateStyle",
	"integer_datetimes",
	"IntervalStyle",
	"is_superuser",
	"server_encoding",
	"server_version",
	"session_authorization",
	"standard_conforming_strings",
	"TimeZone",
}

// handshake runs the startup phase: TLS negotiation (GSS encryption is
// refused), CancelRequest, StartupMessage, authentication, session
// creation and the greeting. It reports whether the connection continues
// to the query phase.
func (c *conn) handshake() bool {
	if t := c.srv.cfg.StartupTimeout; t > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(t))
	}
	sslDone, gssDone := false, false
	for {
		body, err := readStartupPacket(c.br)
		if err != nil {
			var pe *protocolError
			if errors.As(err, &pe) {
				c.log.Debug().Err(err).Msg("pgwire: bad startup packet")
				c.send(toErrorResponse("FATAL", pe))
				_ = c.flush()
			}
			return false
		}
		code := binary.BigEndian.Uint32(body)
		switch {
		case code == codeSSLRequest && !sslDone, code == codeGSSEncRequest && !gssDone:
			// TLS when configured (auth.go), else 'N' and the client goes
			// on in the clear; no GSS encryption. Nothing may have been
			// pipelined behind the request.
			if c.br.Buffered() > 0 {
				c.send(errorResponse("FATAL", codeProtocolViolation, "received unencrypted data after SSL request"))
				_ = c.flush()
				return false
			}
			if code == codeSSLRequest {
				sslDone = true
				if c.srv.cfg.TLS != nil {
					if !c.startTLS() {
						return false
					}
					continue
				}
			} else {
				gssDone = true
			}
			if _, err := c.nc.Write([]byte{'N'}); err != nil {
				return false
			}
		case code == codeCancelRequest:
			var cr pgproto3.CancelRequest
			if err := cr.Decode(body); err == nil {
				c.srv.cancelRequest(cr.ProcessID, cr.SecretKey)
			}
			return false
		case code>>16 == 3:
			return c.start(code, body[4:])
		default:
			msg := fmt.Sprintf("unsupported frontend protocol %d.%d: server supports 3.0 to 3.0", code>>16, code&0xffff)
			if code == codeSSLRequest || code == codeGSSEncRequest {
				msg = "encryption was already negotiated"
			}
			c.send(errorResponse("FATAL", codeFeatureNotSupported, msg))
			_ = c.flush()
			return false
		}
	}
}

// readStartupPacket reads one length-prefixed startup packet and returns
// its body (from the code on).
func readStartupPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[:])))
	if n < minStartupPacket || n > maxStartupPacket {
		return nil, &protocolError{code: codeProtocolViolation, msg: fmt.Sprintf("invalid length of startup packet: %d", n)}
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// parseStartupParams decodes the name/value pairs of a StartupMessage.
func parseStartupParams(b []byte) (map[string]string, error) {
	params := make(map[string]string)
	bad := &protocolError{code: codeProtocolViolation, msg: "invalid startup packet layout: expected terminator as last byte"}
	for {
		if len(b) == 0 {
			return nil, bad
		}
		if b[0] == 0 {
			if len(b) != 1 {
				return nil, bad
			}
			return params, nil
		}
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return nil, bad
		}
		name := string(b[:i])
		b = b[i+1:]
		j := bytes.IndexByte(b, 0)
		if j < 0 {
			return nil, bad
		}
		params[name] = string(b[:j])
		b = b[j+1:]
	}
}

// start handles a StartupMessage of protocol 3.x: it refuses the client
// when a limit says so, authenticates it (auth.go), opens the session and
// greets the client.
func (c *conn) start(version uint32, body []byte) bool {
	params, err := parseStartupParams(body)
	if err != nil {
		c.send(toErrorResponse("FATAL", err))
		_ = c.flush()
		return false
	}
	c.startup = params
	// Protocol 3.x with a newer minor version, or _pq_ options: answer
	// with what the server speaks (3.0, no options), as PostgreSQL does.
	var unknownOpts []string
	for k := range params {
		if strings.HasPrefix(k, "_pq_.") {
			unknownOpts = append(unknownOpts, k)
		}
	}
	if version&0xffff != 0 || len(unknownOpts) > 0 {
		sort.Strings(unknownOpts)
		c.send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknownOpts})
	}
	c.user = params["user"]
	if c.user == "" {
		msg := "no PostgreSQL user name specified in startup packet"
		c.endWith(fatal(errors.New(msg), errorResponse("FATAL", codeInvalidAuthorization, msg)))
		return false
	}
	database := params["database"]
	if database == "" {
		database = "spate"
	}
	refuse := func(err error) bool {
		c.endWith(err)
		return false
	}
	switch {
	case c.srv.startingUp.Load():
		return refuse(startingUp())
	case c.overLimit:
		return refuse(tooManyConnections())
	case c.srv.cfg.RequireTLS && !c.tls:
		return refuse(tlsRequired())
	}
	if err := c.authenticate(); err != nil {
		return refuse(err)
	}
	sess, err := c.srv.engine.NewSession(c.ctx, c.user, database)
	if err != nil {
		c.send(toErrorResponse("FATAL", err))
		_ = c.flush()
		return false
	}
	c.sess = sess
	if err := c.applySessionDefaults(); err != nil {
		return refuse(err)
	}
	c.mu.Lock()
	now := time.Now()
	c.activity = activity{user: c.user, database: database, application: params["application_name"],
		started: now, state: "idle", stateChange: now}
	c.mu.Unlock()
	c.srv.register(c)
	c.log = c.log.With().Uint32("pid", c.pid).Str("user", c.user).Logger()

	c.send(&pgproto3.AuthenticationOk{})
	for _, name := range reportedParams {
		v := c.paramValue(name)
		c.reports[name] = v
		c.send(&pgproto3.ParameterStatus{Name: name, Value: v})
	}
	c.send(&pgproto3.BackendKeyData{ProcessID: c.pid, SecretKey: c.secret[:]})
	c.send(&pgproto3.ReadyForQuery{TxStatus: txIdle})
	if err := c.flush(); err != nil {
		return false
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	c.state = stateIdle
	c.idle = true
	return true
}

// paramValue is the current value of a reported parameter: the server
// version from the Config, else the session's setting, else the startup
// parameter (application_name), else PostgreSQL's default.
func (c *conn) paramValue(name string) string {
	switch name {
	case "server_version":
		return c.srv.cfg.ServerVersion
	case "server_encoding", "client_encoding", "integer_datetimes":
		// Fixed: Spate speaks UTF-8 only and has integer timestamps.
		return map[string]string{"server_encoding": "UTF8", "client_encoding": "UTF8", "integer_datetimes": "on"}[name]
	}
	if v, ok := c.sess.Setting(name); ok && v != "" {
		return v
	}
	if v, ok := c.sess.Setting(strings.ToLower(name)); ok && v != "" {
		return v
	}
	switch name {
	case "application_name":
		return c.startup["application_name"]
	case "DateStyle":
		return "ISO, MDY"
	case "IntervalStyle":
		return "postgres"
	case "TimeZone":
		return "UTC"
	case "standard_conforming_strings", "is_superuser":
		return "on"
	case "session_authorization":
		return c.user
	}
	return ""
}

// reportChanges sends ParameterStatus for every reported parameter whose
// value changed (after SET).
func (c *conn) reportChanges() {
	for _, name := range reportedParams {
		v := c.paramValue(name)
		if c.reports[name] != v {
			c.reports[name] = v
			c.send(&pgproto3.ParameterStatus{Name: name, Value: v})
		}
	}
}
