package parser

import (
	"reflect"
	"testing"
)

func TestRoleStatements(t *testing.T) {
	b := func(text string) Base { return Base{Text: text} }
	yes, no := true, false
	str := func(s string) *string { return &s }
	tests := []struct {
		sql  string
		want Statement
	}{
		{"CREATE ROLE reader", &CreateRole{Base: b("CREATE ROLE reader"), Name: "reader"}},
		{`create user "Ann" with password 'pw''s' nosuperuser`, &CreateRole{Base: b(`create user "Ann" with password 'pw''s' nosuperuser`), Name: "Ann", User: true,
			Options: RoleOptions{Password: str("pw's"), Superuser: &no}}},
		{"CREATE ROLE r WITH LOGIN SUPERUSER ENCRYPTED PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b'",
			&CreateRole{Base: b("CREATE ROLE r WITH LOGIN SUPERUSER ENCRYPTED PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b'"), Name: "r",
				Options: RoleOptions{Login: &yes, Superuser: &yes, Password: str("SCRAM-SHA-256$4096:c2FsdA==$a:b")}}},
		{"CREATE ROLE r NOLOGIN PASSWORD NULL INHERIT NOCREATEDB", &CreateRole{Base: b("CREATE ROLE r NOLOGIN PASSWORD NULL INHERIT NOCREATEDB"), Name: "r",
			Options: RoleOptions{Login: &no, PasswordNull: true}}},
		{"ALTER ROLE spate PASSWORD 'secret'", &AlterRole{Base: b("ALTER ROLE spate PASSWORD 'secret'"), Name: "spate", Options: RoleOptions{Password: str("secret")}}},
		{"alter user bob with nologin", &AlterRole{Base: b("alter user bob with nologin"), Name: "bob", Options: RoleOptions{Login: &no}}},
		{"DROP ROLE bob", &DropRole{Base: b("DROP ROLE bob"), Names: []string{"bob"}}},
		{"DROP USER IF EXISTS a, \"B\"", &DropRole{Base: b("DROP USER IF EXISTS a, \"B\""), Names: []string{"a", "B"}, IfExists: true}},
		{"GRANT SELECT ON bars TO reader", &Grant{Base: b("GRANT SELECT ON bars TO reader"), Privileges: []string{"SELECT"}, Objects: []string{"bars"}, Roles: []string{"reader"}}},
		{"grant select, insert on table public.a, b to r1, group r2", &Grant{Base: b("grant select, insert on table public.a, b to r1, group r2"),
			Privileges: []string{"SELECT", "INSERT"}, Objects: []string{"a", "b"}, Roles: []string{"r1", "r2"}}},
		{"GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO r", &Grant{Base: b("GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO r"),
			Privileges: []string{"SELECT", "INSERT"}, AllInSchema: true, Roles: []string{"r"}}},
		{"REVOKE INSERT ON t FROM r CASCADE", &Grant{Base: b("REVOKE INSERT ON t FROM r CASCADE"), Revoke: true, Privileges: []string{"INSERT"}, Objects: []string{"t"}, Roles: []string{"r"}}},
		{"REVOKE ALL ON t FROM r", &Grant{Base: b("REVOKE ALL ON t FROM r"), Revoke: true, Privileges: []string{"SELECT", "INSERT"}, Objects: []string{"t"}, Roles: []string{"r"}}},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			got, err := ParseOne(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestRoleStatementErrors(t *testing.T) {
	tests := []struct {
		sql, code, msg string
		pos            int
	}{
		{"CREATE ROLE", CodeSyntax, "syntax error at end of input", 12},
		{"CREATE ROLE pg_x", CodeReservedName, `role name "pg_x" is reserved`, 13},
		{"CREATE ROLE public", CodeReservedName, `role name "public" is reserved`, 13},
		{"CREATE ROLE r LOGIN NOLOGIN", CodeSyntax, "conflicting or redundant options", 21},
		{"CREATE ROLE r PASSWORD 'a' PASSWORD NULL", CodeSyntax, "conflicting or redundant options", 28},
		{"CREATE ROLE r PASSWORD", CodeSyntax, "syntax error at end of input", 23},
		{"CREATE ROLE r CREATEDB", CodeFeatureNotSupported, "role option CREATEDB is not supported", 15},
		{"CREATE ROLE r BOGUS", CodeSyntax, `syntax error at or near "BOGUS"`, 15},
		{"ALTER ROLE r", CodeSyntax, "syntax error at end of input", 13},
		{"ALTER ROLE r RENAME TO s", CodeFeatureNotSupported, "ALTER ROLE … RENAME is not supported", 14},
		{"DROP ROLE", CodeSyntax, "syntax error at end of input", 10},
		{"GRANT UPDATE ON t TO r", CodeFeatureNotSupported, "privilege UPDATE (Spate grants SELECT and INSERT) is not supported", 7},
		{"GRANT admin TO bob", CodeFeatureNotSupported, "granting role membership is not supported", 7},
		{"GRANT SELECT ON t TO PUBLIC", CodeFeatureNotSupported, "PUBLIC (grant to each role instead) is not supported", 22},
		{"GRANT SELECT ON t TO r WITH GRANT OPTION", CodeFeatureNotSupported, "WITH GRANT OPTION is not supported", 24},
		{"GRANT SELECT (a) ON t TO r", CodeFeatureNotSupported, "column privileges is not supported", 14},
		{"GRANT SELECT ON t FROM r", CodeSyntax, `syntax error at or near "FROM"`, 19},
		{"REVOKE SELECT ON t TO r", CodeSyntax, `syntax error at or near "TO"`, 20},
		{"GRANT SELECT ON DATABASE d TO r", CodeFeatureNotSupported, "GRANT ON DATABASE is not supported", 17},
		{"GRANT SELECT ON t TO r extra", CodeSyntax, `syntax error at or near "extra"`, 24},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			checkError(t, tt.sql, tt.code, tt.msg, tt.pos)
		})
	}
}
