// Package pgwire is Spate's PostgreSQL wire-protocol server (protocol 3.0).
//
// A Server accepts TCP connections and runs one goroutine per connection.
// Each connection holds one cluster.Session and speaks the simple and the
// extended query protocol, COPY FROM STDIN, COPY TO STDOUT and streaming
// results (SUBSCRIBE), with CancelRequest support.
//
// # Security
//
// Authentication (auth.go) is "trust" for loopback clients and
// SCRAM-SHA-256 (with SCRAM-SHA-256-PLUS channel binding over TLS) for
// every other client by default (Config.Auth); an Engine that implements
// cluster.Authenticator supplies the roles' verifiers. An SSLRequest is
// answered 'S' and the connection upgraded with crypto/tls when
// Config.TLS is set, 'N' otherwise; Config.RequireTLS refuses plaintext
// sessions. Limits (limits.go): MaxMessageSize, MaxConnections, the
// statement_timeout and idle_session_timeout session settings.
//
// # Goroutines
//
// The Server owns its accept loop and every connection goroutine; Close
// stops and waits for all of them. A connection goroutine owns one reader
// goroutine that frames client messages from the socket into a small queue,
// so that a running statement (a SUBSCRIBE that never ends on its own)
// notices a closed socket while no message is lost for the statements that
// follow.
//
// # Values on the wire
//
// Result columns use these type OIDs: boolean 16, integer 23, bigint 20,
// double precision 701, text 25, timestamp 1114, interval 1186; any other
// type is sent as text (25). Text output follows PostgreSQL (DateStyle ISO,
// IntervalStyle postgres); binary output is PostgreSQL's binary format, with
// intervals as (µs, 0 days, 0 months).
//
// Bound parameters reach cluster.Session.Execute as nil (NULL), or, in text
// format, as the string the client sent. In binary format they are decoded by
// type OID (the client's OID from Parse when it gave one, else the type from
// Describe): int2/int4/int8 → int64, float4/float8 → float64, bool → bool,
// text/varchar/bpchar/name/unknown → string, timestamp/timestamptz and
// interval → int64 microseconds (since the Unix epoch for timestamps; an
// interval's days count 24 h and its months 30 days).
package pgwire

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"
)

// Defaults of Config.
const (
	DefaultListen         = "127.0.0.1:5433"
	DefaultMaxMessageSize = 64 << 20
	DefaultServerVersion  = "15.0 (Spate)"
	DefaultStartupTimeout = 60 * time.Second
	DefaultMaxConnections = 100
)

// AuthMethod says which clients must authenticate with a password.
type AuthMethod string

// The authentication methods.
const (
	// AuthLoopbackTrust trusts clients connecting from a loopback address
	// (127.0.0.0/8, ::1) without a password, as PostgreSQL's default
	// pg_hba.conf trusts local connections, and authenticates every other
	// client with SCRAM-SHA-256.
	AuthLoopbackTrust AuthMethod = "loopback-trust"
	// AuthSCRAM authenticates every client with SCRAM-SHA-256.
	AuthSCRAM AuthMethod = "scram"
)

// Config configures a Server. The zero value of each field means its
// default; Validate reports values that cannot work.
type Config struct {
	// Listen is the TCP address ListenAndServe listens on.
	// Default "127.0.0.1:5433".
	Listen string
	// MaxMessageSize is the largest client message body in bytes. A larger
	// message gets ErrorResponse 54000 and the connection is closed.
	// Default 64 MiB.
	MaxMessageSize int
	// ServerVersion is reported as the server_version parameter. Clients
	// parse its leading number, so it should start with "15." or similar.
	// Default "15.0 (Spate)".
	ServerVersion string
	// StartupTimeout bounds the time a new connection may take to send its
	// startup packet (like PostgreSQL's authentication_timeout).
	// Default 60 s.
	StartupTimeout time.Duration
	// Logger receives connection-level events (protocol violations,
	// recovered panics). Default: the zero zerolog.Logger, which discards.
	Logger zerolog.Logger
	// Auth says which clients authenticate with SCRAM-SHA-256 (the others
	// are trusted). Default AuthLoopbackTrust.
	Auth AuthMethod
	// TLS, when set, makes the server answer SSLRequest with 'S' and run
	// a TLS handshake with this configuration (it needs a certificate).
	// Default nil: SSLRequest is answered 'N' and clients stay in the
	// clear.
	TLS *tls.Config
	// RequireTLS refuses sessions that did not negotiate TLS (FATAL
	// 28000). Needs TLS. Default false.
	RequireTLS bool
	// MaxConnections is the most client sessions at a time; a client
	// beyond it gets FATAL 53300 after its startup packet (cancel
	// requests still work). Default 100.
	MaxConnections int
	// StatementTimeout and IdleSessionTimeout are the initial values of
	// each session's statement_timeout and idle_session_timeout settings,
	// which SET changes. Default 0: no limit.
	StatementTimeout   time.Duration
	IdleSessionTimeout time.Duration
}

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = DefaultServerVersion
	}
	if cfg.StartupTimeout == 0 {
		cfg.StartupTimeout = DefaultStartupTimeout
	}
	if cfg.Auth == "" {
		cfg.Auth = AuthLoopbackTrust
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	return cfg
}

// Validate reports whether the configuration, with defaults applied to its
// zero fields, can be used.
func (cfg Config) Validate() error {
	cfg = cfg.withDefaults()
	var errs []error
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		errs = append(errs, fmt.Errorf("pgwire: Listen %q: %w", cfg.Listen, err))
	}
	if cfg.MaxMessageSize < 1024 {
		errs = append(errs, fmt.Errorf("pgwire: MaxMessageSize %d is below the minimum of 1024 bytes", cfg.MaxMessageSize))
	}
	if cfg.MaxMessageSize > 1<<30 {
		errs = append(errs, fmt.Errorf("pgwire: MaxMessageSize %d is above the maximum of 1 GiB", cfg.MaxMessageSize))
	}
	if cfg.StartupTimeout < 0 {
		errs = append(errs, fmt.Errorf("pgwire: StartupTimeout %v is negative", cfg.StartupTimeout))
	}
	if cfg.Auth != AuthLoopbackTrust && cfg.Auth != AuthSCRAM {
		errs = append(errs, fmt.Errorf("pgwire: Auth %q: use %q or %q", cfg.Auth, AuthLoopbackTrust, AuthSCRAM))
	}
	if cfg.TLS != nil && len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil {
		errs = append(errs, errors.New("pgwire: TLS has no certificate"))
	}
	if cfg.RequireTLS && cfg.TLS == nil {
		errs = append(errs, errors.New("pgwire: RequireTLS needs a TLS configuration (a certificate and key)"))
	}
	if cfg.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("pgwire: MaxConnections %d is below 1", cfg.MaxConnections))
	}
	if cfg.StatementTimeout < 0 || cfg.IdleSessionTimeout < 0 {
		errs = append(errs, errors.New("pgwire: StatementTimeout and IdleSessionTimeout must not be negative"))
	}
	return errors.Join(errs...)
}
