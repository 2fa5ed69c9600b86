package cluster

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spatedb/spate/parser"
)

func wantState(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	if got := errCode(err); got != code {
		t.Fatalf("error %q has SQLSTATE %q, want %s", err, got, code)
	}
}

func roleSession(t *testing.T, c *Coordinator, user string) Session {
	t.Helper()
	s, err := c.NewSession(context.Background(), user, "spate")
	if err != nil {
		t.Fatalf("session for %s: %v", user, err)
	}
	return s
}

// TestRolesAndPrivileges runs the role statements and checks what a
// read-only role, a writer and a role without grants may do.
func TestRolesAndPrivileges(t *testing.T) {
	c, admin := startSession(t, Config{Parallelism: 1}, 0)
	run(t, admin, "CREATE STREAM ev (k INT, v INT, t BIGINT) WITH (event_time = 't', time_unit = 's', watermark_delay = '0s')")
	run(t, admin, "CREATE TABLE dim (k INT, name TEXT)")
	run(t, admin, "CREATE CONTINUOUS QUERY totals AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	run(t, admin, "INSERT INTO ev VALUES (1, 10, 1), (2, 20, 2), (1, 5, 3)")
	run(t, admin, "CREATE ROLE reader LOGIN PASSWORD 'r-secret'")
	run(t, admin, "CREATE USER writer")
	run(t, admin, "CREATE ROLE nobody LOGIN")
	run(t, admin, "CREATE ROLE group_only")
	run(t, admin, "GRANT SELECT ON totals, dim TO reader")
	run(t, admin, "GRANT INSERT ON TABLE ev TO writer")

	if got, want := c.Roles(), []RoleInfo{{"group_only", false, false}, {"nobody", false, true}, {"reader", false, true}, {"spate", true, true}, {"writer", false, true}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Roles() = %v, want %v", got, want)
	}
	if got, want := c.Grants(), []GrantInfo{{"reader", "dim", "SELECT"}, {"reader", "totals", "SELECT"}, {"writer", "ev", "INSERT"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Grants() = %v, want %v", got, want)
	}

	// Logins.
	_, err := c.NewSession(context.Background(), "ghost", "spate")
	wantState(t, err, "28000")
	_, err = c.NewSession(context.Background(), "group_only", "spate")
	wantState(t, err, "28000")
	if !strings.Contains(err.Error(), "not permitted to log in") {
		t.Errorf("NOLOGIN error %q", err)
	}

	reader := roleSession(t, c, "reader")
	if v, _ := reader.Setting("is_superuser"); v != "off" {
		t.Errorf("reader is_superuser = %q", v)
	}
	if got := sortedText(run(t, reader, "SELECT k, n FROM totals")); got != sortedText([][]string{{"1", "2"}, {"2", "1"}}) {
		t.Errorf("reader SELECT totals = %s", got)
	}
	res, err := reader.Execute(context.Background(), mustParse(t, "SUBSCRIBE totals"), nil)
	if err != nil {
		t.Fatalf("reader SUBSCRIBE: %v", err)
	}
	res.Rows.Close()
	run(t, reader, "SHOW STREAMS")
	run(t, reader, "SELECT name FROM spate_streams")
	run(t, reader, "SET statement_timeout = '1s'")
	run(t, reader, "EXPLAIN SELECT * FROM dim")
	for sql, code := range map[string]string{
		"CREATE STREAM x (a INT)":                            "42501",
		"CREATE CONTINUOUS QUERY y AS SELECT k FROM ev":      "42501",
		"DROP CONTINUOUS QUERY totals":                       "42501",
		"ALTER CONTINUOUS QUERY totals SET (autoscale = on)": "42501",
		"SELECT * FROM ev":                                   "42501",
		"SELECT * FROM dim d JOIN ev e ON d.k = e.k":         "42501",
		"INSERT INTO dim VALUES (1, 'x')":                    "42501",
		"COPY dim FROM STDIN":                                "42501",
		"COPY (SELECT * FROM ev) TO STDOUT":                  "42501",
		"DELETE FROM dim":                                    "42501",
		"CREATE ROLE r2":                                     "42501",
		"GRANT SELECT ON ev TO reader":                       "42501",
		"ALTER ROLE reader SUPERUSER":                        "42501",
		"ALTER ROLE writer PASSWORD 'x'":                     "42501",
		"SET ROLE spate":                                     "42501",
		"SET SESSION AUTHORIZATION spate":                    "42501",
		"SET is_superuser = on":                              "55P02",
		"SET statement_timeout = 'soon'":                     "22023",
	} {
		_, err := tryRun(reader, sql)
		if err == nil {
			t.Errorf("reader: %s succeeded", sql)
			continue
		}
		if got := errCode(err); got != code {
			t.Errorf("reader: %s: %v (%s), want %s", sql, err, got, code)
		}
	}
	run(t, reader, "SET ROLE reader; RESET ROLE; SET SESSION AUTHORIZATION DEFAULT")
	if _, err := tryRun(admin, "SET ROLE reader"); errCode(err) != "0A000" {
		t.Errorf("superuser SET ROLE reader: %v, want 0A000", err)
	}
	_, err = tryRun(reader, "SELECT * FROM ev")
	if err == nil || err.Error() != "permission denied for stream ev" {
		t.Errorf("SELECT from ev without a grant: %v", err)
	}
	_, err = tryRun(reader, "CREATE STREAM x (a INT)")
	if err == nil || !strings.HasPrefix(err.Error(), "permission denied for CREATE STREAM") {
		t.Errorf("CREATE STREAM by reader: %v", err)
	}
	// A role changes its own password.
	run(t, reader, "ALTER ROLE reader PASSWORD 'new-secret'")
	v, ok := c.PasswordVerifier("reader")
	if !ok || !v.Matches("new-secret") || v.Matches("r-secret") {
		t.Errorf("reader's verifier after ALTER ROLE: %v %v", v, ok)
	}

	writer := roleSession(t, c, "writer")
	run(t, writer, "INSERT INTO ev VALUES (3, 1, 4)")
	if _, err := tryRun(writer, "SELECT * FROM totals"); errCode(err) != "42501" {
		t.Errorf("writer SELECT totals: %v", err)
	}
	res, err = writer.Execute(context.Background(), mustParse(t, "COPY ev FROM STDIN"), nil)
	if err != nil {
		t.Fatalf("writer COPY FROM: %v", err)
	}
	res.CopyIn.Abort("test")

	nobody := roleSession(t, c, "nobody")
	if _, err := tryRun(nobody, "SELECT * FROM totals"); errCode(err) != "42501" || err.Error() != "permission denied for continuous query totals" {
		t.Errorf("nobody SELECT totals: %v", err)
	}
	if _, err := nobody.Execute(context.Background(), mustParse(t, "SUBSCRIBE totals"), nil); errCode(err) != "42501" {
		t.Errorf("nobody SUBSCRIBE totals: %v", err)
	}

	// REVOKE, then the grant is gone; ALL grants both.
	run(t, admin, "REVOKE SELECT ON dim FROM reader")
	if _, err := tryRun(reader, "SELECT * FROM dim"); errCode(err) != "42501" {
		t.Errorf("SELECT after REVOKE: %v", err)
	}
	run(t, admin, "GRANT ALL ON ALL TABLES IN SCHEMA public TO nobody")
	run(t, nobody, "SELECT * FROM dim")
	run(t, nobody, "SELECT * FROM totals")
	run(t, nobody, "INSERT INTO dim VALUES (9, 'nine')")
	// Dropping an object drops its grants; dropping a role its grants.
	run(t, admin, "DROP CONTINUOUS QUERY totals")
	run(t, admin, "DROP ROLE writer")
	for _, g := range c.Grants() {
		if g.Object == "totals" || g.Role == "writer" {
			t.Errorf("grant %v survived the drop", g)
		}
	}
	// writer's open session has no privileges left.
	if _, err := tryRun(writer, "INSERT INTO ev VALUES (3, 1, 5)"); errCode(err) != "42501" {
		t.Errorf("dropped role's INSERT: %v", err)
	}

	// Errors of the role statements.
	for sql, code := range map[string]string{
		"CREATE ROLE reader":                                           "42710",
		"ALTER ROLE ghost LOGIN":                                       "42704",
		"DROP ROLE ghost":                                              "42704",
		"DROP ROLE spate":                                              "2BP01",
		"ALTER ROLE spate NOSUPERUSER":                                 "42501",
		"GRANT SELECT ON nothing TO reader":                            "42P01",
		"GRANT SELECT ON spate_streams TO reader":                      "42P01",
		"GRANT SELECT ON ev TO ghost":                                  "42704",
		"CREATE ROLE m PASSWORD 'md5d41d8cd98f00b204e9800998ecf8427e'": "0A000",
		"CREATE ROLE m PASSWORD 'SCRAM-SHA-256$0:abc$x:y'":             "22023",
	} {
		if _, err := tryRun(admin, sql); errCode(err) != code {
			t.Errorf("%s: %v, want %s", sql, err, code)
		}
	}
	run(t, admin, "DROP ROLE IF EXISTS ghost, group_only")
	if _, ok := c.roles.get("group_only"); ok {
		t.Error("group_only survived DROP ROLE IF EXISTS")
	}
}

func mustParse(t *testing.T, sql string) parser.Statement {
	t.Helper()
	st, err := parser.ParseOne(sql)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRolesSurviveRestart checks that roles, passwords and grants come
// back from the write-ahead log, and that no password is written there.
func TestRolesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Parallelism: 1, DataDir: dir}
	c, err := NewCoordinator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := roleSession(t, c, "spate")
	run(t, s, "CREATE STREAM ev (k INT, t BIGINT) WITH (event_time = 't', time_unit = 's')")
	run(t, s, "CREATE CONTINUOUS QUERY q AS SELECT k, COUNT(*) AS n FROM ev GROUP BY k")
	run(t, s, "CREATE ROLE ro LOGIN PASSWORD 'plain-text-secret'")
	run(t, s, "CREATE ROLE gone LOGIN")
	run(t, s, "GRANT SELECT ON q TO ro, gone")
	run(t, s, "DROP ROLE gone")
	run(t, s, "ALTER ROLE spate PASSWORD 'super-secret'")
	if err := c.SetPassword("spate", "super-secret"); err != nil { // the same: nothing logged
		t.Fatal(err)
	}
	verifier, _ := c.PasswordVerifier("ro")
	c.Close()

	// The log holds the verifier, never the password.
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, pw := range []string{"plain-text-secret", "super-secret"} {
			if strings.Contains(string(b), pw) {
				t.Errorf("%s holds the password %q", path, pw)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	c2, err := NewCoordinator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := c2.Roles(), []RoleInfo{{"ro", false, true}, {"spate", true, true}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Roles() after restart = %v, want %v", got, want)
	}
	if got, want := c2.Grants(), []GrantInfo{{"ro", "q", "SELECT"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Grants() after restart = %v, want %v", got, want)
	}
	v, ok := c2.PasswordVerifier("ro")
	if !ok || v.String() != verifier.String() || !v.Matches("plain-text-secret") {
		t.Errorf("ro's verifier after restart: %v %v", v, ok)
	}
	if v, ok := c2.PasswordVerifier("spate"); !ok || !v.Matches("super-secret") {
		t.Errorf("spate's verifier after restart: %v %v", v, ok)
	}
	ro := roleSession(t, c2, "ro")
	run(t, ro, "SELECT * FROM q")
	if _, err := tryRun(ro, "SELECT * FROM ev"); errCode(err) != "42501" {
		t.Errorf("ro SELECT ev after restart: %v", err)
	}
}

// TestSCRAMVerifier checks the verifier against one PostgreSQL 15 made
// (CREATE ROLE x PASSWORD 'pencil' with password_encryption =
// scram-sha-256) and the text form's round trip.
func TestSCRAMVerifier(t *testing.T) {
	// Made by PostgreSQL 15 (password_encryption = scram-sha-256).
	for pw, pg := range map[string]string{
		"pencil":          "SCRAM-SHA-256$4096:riEXvR9kR/5JuPAG9DHpow==$wGArEwTww0SDwWizAdM0mE96Y2IeCFzaDHOlOsM+Cl0=:14WjroEzqBUC1foCIedUiBhxZ5Lk1W4NmsrdzNwb1lI=",
		"pâsswörd \ufb01": "SCRAM-SHA-256$4096:x5fvH6Vd5x+bFBrJaKGgFQ==$2u8i+DV0zcVlaBJF4iLXUcWGV5GrTsyQR+SbDhJ+ubk=:R19Jii4dpa6D2WkbToBDtVgOr558A2amJq3DpUUS4lE=",
	} {
		v, err := ParseSCRAMVerifier(pg)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Matches(pw) || v.Matches(pw+"x") {
			t.Errorf("PostgreSQL's verifier of %q does not match", pw)
		}
		if v.String() != pg {
			t.Errorf("String() = %s, want %s", v, pg)
		}
	}
	v := NewSCRAMVerifier("pencil")
	if !v.Matches("pencil") || v.Matches("Pencil") {
		t.Error("Matches")
	}
	w, err := ParseSCRAMVerifier(v.String())
	if err != nil || !reflect.DeepEqual(v, w) {
		t.Errorf("round trip: %v %v", w, err)
	}
	for _, bad := range []string{"", "SCRAM-SHA-256$", "SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA", "SCRAM-SHA-256$x:c2FsdA==$" + strings.Repeat("A", 43) + "=:" + strings.Repeat("A", 43) + "="} {
		if _, err := ParseSCRAMVerifier(bad); err == nil {
			t.Errorf("ParseSCRAMVerifier(%q) accepted it", bad)
		}
	}
}

func TestSettingDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "100": 100 * time.Millisecond, "250ms": 250 * time.Millisecond, "1.5 s": 1500 * time.Millisecond,
		"5min": 5 * time.Minute, "2h": 2 * time.Hour, "1d": 24 * time.Hour, " 10 us ": 10 * time.Microsecond} {
		got, err := SettingDuration(in)
		if err != nil || got != want {
			t.Errorf("SettingDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1 week", "5m", "99999999999"} {
		if _, err := SettingDuration(in); err == nil {
			t.Errorf("SettingDuration(%q) accepted it", in)
		}
	}
}
