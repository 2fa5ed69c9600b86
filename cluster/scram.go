package cluster

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// SCRAMIterations is the PBKDF2 iteration count of the verifiers Spate
// computes from a password (PostgreSQL's default scram_iterations).
const SCRAMIterations = 4096

// scramSaltLen is the salt length of computed verifiers, as PostgreSQL's.
const scramSaltLen = 16

// SCRAMVerifier is a SCRAM-SHA-256 password verifier (RFC 5802, RFC
// 7677): what the server keeps instead of the password. Its text form is
// PostgreSQL's, "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
// with standard base64, so verifiers move between PostgreSQL and Spate.
type SCRAMVerifier struct {
	Iterations int
	Salt       []byte
	StoredKey  []byte // SHA-256(HMAC(SaltedPassword, "Client Key"))
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// NewSCRAMVerifier computes the verifier of password with a random salt
// and SCRAMIterations.
func NewSCRAMVerifier(password string) SCRAMVerifier {
	salt := make([]byte, scramSaltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand)
	return scramVerifierFor(password, salt, SCRAMIterations)
}

func scramVerifierFor(password string, salt []byte, iterations int) SCRAMVerifier {
	salted := SCRAMSaltedPassword(password, salt, iterations)
	clientKey := scramHMAC(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return SCRAMVerifier{Iterations: iterations, Salt: salt, StoredKey: stored[:], ServerKey: scramHMAC(salted, "Server Key")}
}

// SCRAMSaltedPassword is SCRAM's SaltedPassword: PBKDF2-HMAC-SHA-256 of
// the password after SASLprep (RFC 4013), as PostgreSQL and libpq
// prepare it; a password SASLprep rejects is used as it is, as PostgreSQL
// does. ASCII passwords are unchanged by SASLprep.
func SCRAMSaltedPassword(password string, salt []byte, iterations int) []byte {
	key, err := pbkdf2.Key(sha256.New, saslPrep(password), salt, iterations, sha256.Size)
	if err != nil {
		panic(err) // only for FIPS-disallowed parameters, which these are not
	}
	return key
}

// saslPrep approximates SASLprep: non-ASCII spaces become ' ', characters
// commonly mapped to nothing are removed, the result is NFKC-normalised;
// a password with control, private-use or surrogate characters after
// that, or none left, is returned unchanged.
func saslPrep(password string) string {
	ascii := true
	for i := 0; i < len(password); i++ {
		if password[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return password
	}
	mapped := strings.Map(func(r rune) rune {
		switch {
		case r == 0xAD || r == 0x034F || r == 0x1806 || r >= 0x180B && r <= 0x180D || r >= 0x200B && r <= 0x200D ||
			r == 0x2060 || r >= 0xFE00 && r <= 0xFE0F || r == 0xFEFF:
			return -1 // RFC 3454 table B.1
		case r > 0x7f && unicode.Is(unicode.Zs, r):
			return ' ' // table C.1.2
		}
		return r
	}, password)
	prepared := norm.NFKC.String(mapped)
	if prepared == "" {
		return password
	}
	for _, r := range prepared {
		if unicode.In(r, unicode.Cc, unicode.Co, unicode.Cs) || r == utf8.RuneError {
			return password
		}
	}
	return prepared
}

func scramHMAC(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// String returns the verifier in PostgreSQL's text form.
func (v SCRAMVerifier) String() string {
	enc := base64.StdEncoding
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", v.Iterations, enc.EncodeToString(v.Salt), enc.EncodeToString(v.StoredKey), enc.EncodeToString(v.ServerKey))
}

// Matches reports whether password is the one v was computed from.
func (v SCRAMVerifier) Matches(password string) bool {
	w := scramVerifierFor(password, v.Salt, v.Iterations)
	return subtle.ConstantTimeCompare(w.StoredKey, v.StoredKey) == 1 && subtle.ConstantTimeCompare(w.ServerKey, v.ServerKey) == 1
}

// maxSCRAMIterations bounds the iteration count of a verifier given in
// PASSWORD '…', so that one login cannot be made to cost minutes of CPU.
const maxSCRAMIterations = 10_000_000

// ParseSCRAMVerifier parses PostgreSQL's text form of a SCRAM-SHA-256
// verifier.
func ParseSCRAMVerifier(s string) (SCRAMVerifier, error) {
	bad := func(why string) (SCRAMVerifier, error) {
		return SCRAMVerifier{}, fmt.Errorf("invalid SCRAM-SHA-256 verifier: %s", why)
	}
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return bad(`it does not start with "SCRAM-SHA-256$"`)
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return bad("expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>")
	}
	iter, salt, ok1 := strings.Cut(params, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return bad("expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>")
	}
	var v SCRAMVerifier
	var err error
	if v.Iterations, err = strconv.Atoi(iter); err != nil || v.Iterations < 1 || v.Iterations > maxSCRAMIterations {
		return bad(fmt.Sprintf("iteration count %q is not from 1 to %d", iter, maxSCRAMIterations))
	}
	enc := base64.StdEncoding
	if v.Salt, err = enc.DecodeString(salt); err != nil || len(v.Salt) == 0 {
		return bad("the salt is not base64")
	}
	if v.StoredKey, err = enc.DecodeString(stored); err != nil || len(v.StoredKey) != sha256.Size {
		return bad("StoredKey is not 32 bytes of base64")
	}
	if v.ServerKey, err = enc.DecodeString(server); err != nil || len(v.ServerKey) != sha256.Size {
		return bad("ServerKey is not 32 bytes of base64")
	}
	return v, nil
}

// isSCRAMVerifier reports whether a PASSWORD string is meant as a
// verifier (PostgreSQL takes such strings as already hashed).
func isSCRAMVerifier(s string) bool { return strings.HasPrefix(s, "SCRAM-SHA-256$") }

// isMD5Hash reports whether s looks like PostgreSQL's md5 password hash.
func isMD5Hash(s string) bool {
	if len(s) != 35 || !strings.HasPrefix(s, "md5") {
		return false
	}
	for _, c := range s[3:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
