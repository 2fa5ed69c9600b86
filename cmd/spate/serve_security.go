package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/pgwire"
)

// securityFlags are the flags of `spate serve` that protect the
// PostgreSQL-protocol port: authentication, TLS and limits.
type securityFlags struct {
	auth               string
	tlsCert, tlsKey    string
	tlsRequired        bool
	passwordFile       string
	maxConnections     int
	maxMessageSize     int
	statementTimeout   time.Duration
	idleSessionTimeout time.Duration

	// Set by load:
	tls      *tls.Config
	password string // the superuser's, from passwordFile
}

func (f *securityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.auth, "auth", string(pgwire.AuthLoopbackTrust), "client authentication: loopback-trust (clients on 127.0.0.1/::1 need no password, every other client authenticates with SCRAM-SHA-256) or scram (every client authenticates with SCRAM-SHA-256)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate (chain) for TLS on the PostgreSQL port; with --tls-key. Without it clients are told TLS is not available")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&f.tlsRequired, "tls-required", false, "refuse clients that did not negotiate TLS (FATAL 28000); needs --tls-cert and --tls-key")
	fs.StringVar(&f.passwordFile, "superuser-password-file", "", "file whose first line is the password of the built-in superuser spate, set at every start (stored as a SCRAM-SHA-256 verifier; ALTER ROLE spate PASSWORD '…' also sets it)")
	fs.IntVar(&f.maxConnections, "max-connections", pgwire.DefaultMaxConnections, "most client sessions at a time; beyond it clients get FATAL 53300 sorry, too many clients already")
	fs.IntVar(&f.maxMessageSize, "max-message-size", pgwire.DefaultMaxMessageSize, "largest client protocol message in bytes; a larger one ends the connection with FATAL 54000")
	fs.DurationVar(&f.statementTimeout, "statement-timeout", 0, "default statement_timeout of every session, e.g. 30s (0: none); SET statement_timeout changes it per session; SUBSCRIBE is not bound by it")
	fs.DurationVar(&f.idleSessionTimeout, "idle-session-timeout", 0, "default idle_session_timeout of every session, e.g. 10m (0: none); an idle session is closed with FATAL 57P05")
}

// load checks the flags and reads the files they name.
func (f *securityFlags) load() error {
	switch pgwire.AuthMethod(f.auth) {
	case pgwire.AuthLoopbackTrust, pgwire.AuthSCRAM:
	default:
		return fmt.Errorf("--auth %q: use %s or %s", f.auth, pgwire.AuthLoopbackTrust, pgwire.AuthSCRAM)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if f.tlsRequired && f.tlsCert == "" {
		return errors.New("--tls-required needs --tls-cert and --tls-key")
	}
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return fmt.Errorf("loading --tls-cert/--tls-key: %w", err)
		}
		f.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if f.passwordFile != "" {
		b, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return fmt.Errorf("reading --superuser-password-file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		f.password = strings.TrimSuffix(line, "\r")
		if f.password == "" {
			return fmt.Errorf("--superuser-password-file %s: the first line is empty", f.passwordFile)
		}
	}
	if f.maxConnections < 1 {
		return errors.New("--max-connections must be at least 1")
	}
	if f.statementTimeout < 0 || f.idleSessionTimeout < 0 {
		return errors.New("--statement-timeout and --idle-session-timeout must not be negative")
	}
	return nil
}

// apply returns cfg with the flags.
func (f *securityFlags) apply(cfg pgwire.Config, log zerolog.Logger) pgwire.Config {
	if f.tlsKey != "" {
		if st, err := os.Stat(f.tlsKey); err == nil && st.Mode().Perm()&0o077 != 0 {
			log.Warn().Str("file", f.tlsKey).Msg("the TLS private key is readable by other users (chmod 600 it)")
		}
	}
	cfg.Auth = pgwire.AuthMethod(f.auth)
	cfg.TLS = f.tls
	cfg.RequireTLS = f.tlsRequired
	cfg.MaxConnections = f.maxConnections
	cfg.MaxMessageSize = f.maxMessageSize
	cfg.StatementTimeout = f.statementTimeout
	cfg.IdleSessionTimeout = f.idleSessionTimeout
	log.Info().Str("auth", f.auth).Bool("tls", f.tls != nil).Bool("tls_required", f.tlsRequired).Int("max_connections", f.maxConnections).
		Msg("client authentication")
	return cfg
}

// applyPassword sets the superuser's password from the flags, after the
// restart brought back the roles, and warns when the superuser has none.
func (f *securityFlags) applyPassword(coord *cluster.Coordinator, log zerolog.Logger) error {
	if f.password != "" {
		if err := coord.SetPassword(cluster.SuperuserName, f.password); err != nil {
			return fmt.Errorf("setting the superuser's password: %w", err)
		}
	}
	if _, ok := coord.PasswordVerifier(cluster.SuperuserName); !ok {
		msg := "the superuser spate has no password: only clients on loopback can log in as spate (set one with ALTER ROLE spate PASSWORD '…' or --superuser-password-file)"
		if pgwire.AuthMethod(f.auth) == pgwire.AuthSCRAM {
			msg = "--auth scram and the superuser spate has no password: nobody can log in as spate (set one with --superuser-password-file)"
		}
		log.Warn().Msg(msg)
	}
	return nil
}
