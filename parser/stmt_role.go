package parser

import "strings"

// Codes of the role statements' parse errors.
const (
	// CodeReservedName is reserved_name: a role named public, none or pg_….
	CodeReservedName = "42939"
)

// RoleOptions are the options of CREATE ROLE and ALTER ROLE. A nil
// pointer means the option was not given.
type RoleOptions struct {
	Login     *bool   // LOGIN | NOLOGIN
	Superuser *bool   // SUPERUSER | NOSUPERUSER
	Password  *string // [ENCRYPTED] PASSWORD 'text': a password, or a SCRAM-SHA-256 verifier (kept as written)
	// PasswordNull is PASSWORD NULL: the role has no password (Password
	// is nil then).
	PasswordNull bool
}

// Empty reports whether no option was given.
func (o RoleOptions) Empty() bool {
	return o.Login == nil && o.Superuser == nil && o.Password == nil && !o.PasswordNull
}

// CreateRole is CREATE ROLE name [[WITH] option …] and CREATE USER (User
// set: LOGIN unless NOLOGIN is given). The options are LOGIN, NOLOGIN,
// SUPERUSER, NOSUPERUSER, [ENCRYPTED] PASSWORD 'x' and PASSWORD NULL;
// INHERIT, NOINHERIT, NOCREATEDB, NOCREATEROLE, NOREPLICATION and
// NOBYPASSRLS are accepted and change nothing (pg_dump writes them);
// other PostgreSQL options are rejected with 0A000. An option given twice
// is error 42601 ("conflicting or redundant options").
type CreateRole struct {
	Base
	Name    string
	User    bool
	Options RoleOptions
}

// AlterRole is ALTER ROLE | USER name [[WITH] option …], with the options
// of CreateRole.
type AlterRole struct {
	Base
	Name    string
	Options RoleOptions
}

// DropRole is DROP ROLE | USER [IF EXISTS] name [, …].
type DropRole struct {
	Base
	Names    []string
	IfExists bool
}

// Privilege names of GRANT and REVOKE.
const (
	PrivSelect = "SELECT"
	PrivInsert = "INSERT"
)

// Grant is GRANT privileges ON [TABLE] object [, …] TO role [, …] and,
// with Revoke set, REVOKE privileges ON … FROM role [, …] [CASCADE |
// RESTRICT]. Privileges are PrivSelect and/or PrivInsert (ALL [PRIVILEGES]
// gives both). ON ALL TABLES IN SCHEMA s [, …] sets AllInSchema instead of
// naming Objects: every stream, table and continuous query that exists
// when the statement runs. Object names keep only their last part, as
// everywhere.
type Grant struct {
	Base
	Revoke      bool
	Privileges  []string
	Objects     []string
	AllInSchema bool
	Roles       []string
}

// reservedRoleName reports whether PostgreSQL reserves name for roles.
func reservedRoleName(name string) bool {
	switch name {
	case "public", "none", "current_user", "session_user", "current_role":
		return true
	}
	return strings.HasPrefix(name, "pg_")
}

// roleName reads a role name; reserved names are an error.
func (p *stmtParser) roleName() (string, error) {
	t := p.peek()
	name, err := p.name()
	if err != nil {
		return "", err
	}
	if reservedRoleName(name) {
		return "", &Error{Code: CodeReservedName, Message: `role name "` + name + `" is reserved`, Position: charPos(p.q.sql, t.start)}
	}
	return name, nil
}

// createRole parses CREATE ROLE | USER after CREATE.
func (p *stmtParser) createRole() (Statement, error) {
	user := p.peek().isWord("user")
	p.i++ // ROLE | USER
	name, err := p.roleName()
	if err != nil {
		return nil, err
	}
	opts, err := p.roleOptions()
	if err != nil {
		return nil, err
	}
	return &CreateRole{Base: p.base(), Name: name, User: user, Options: opts}, nil
}

// alterRole parses ALTER ROLE | USER after ALTER.
func (p *stmtParser) alterRole() (Statement, error) {
	p.i++ // ROLE | USER
	name, err := p.name()
	if err != nil {
		return nil, err
	}
	switch {
	case p.is("rename"):
		return nil, p.q.notSupported(p.peek(), "ALTER ROLE … RENAME")
	case p.is("set", "reset"):
		return nil, p.q.notSupported(p.peek(), "ALTER ROLE … "+strings.ToUpper(p.peek().val))
	}
	opts, err := p.roleOptions()
	if err != nil {
		return nil, err
	}
	if opts.Empty() {
		return nil, p.fail()
	}
	return &AlterRole{Base: p.base(), Name: name, Options: opts}, nil
}

// ignoredRoleOptions are PostgreSQL role options that state Spate's only
// behaviour, accepted so that scripts written for PostgreSQL run.
var ignoredRoleOptions = setOf(`inherit noinherit nocreatedb nocreaterole noreplication nobypassrls`)

// roleOptions reads [WITH] option … to the end of the statement.
func (p *stmtParser) roleOptions() (RoleOptions, error) {
	var o RoleOptions
	p.accept("with")
	redundant := func(t token) error {
		return &Error{Code: CodeSyntax, Message: "conflicting or redundant options", Position: charPos(p.q.sql, t.start)}
	}
	setBool := func(dst **bool, v bool, t token) error {
		if *dst != nil {
			return redundant(t)
		}
		*dst = &v
		return nil
	}
	for !p.atEnd() {
		t := p.peek()
		if t.kind != tIdent {
			return o, p.fail()
		}
		var err error
		switch t.val {
		case "login", "nologin":
			p.i++
			err = setBool(&o.Login, t.val == "login", t)
		case "superuser", "nosuperuser":
			p.i++
			err = setBool(&o.Superuser, t.val == "superuser", t)
		case "encrypted", "password":
			p.accept("encrypted")
			if err := p.expect("password"); err != nil {
				return o, err
			}
			if o.Password != nil || o.PasswordNull {
				return o, redundant(t)
			}
			switch v := p.peek(); {
			case v.kind == tString:
				p.i++
				s := v.val
				o.Password = &s
			case v.isWord("null"):
				p.i++
				o.PasswordNull = true
			default:
				return o, p.fail()
			}
		case "unencrypted":
			return o, p.q.notSupported(t, "UNENCRYPTED PASSWORD")
		default:
			if ignoredRoleOptions[t.val] {
				p.i++
				continue
			}
			switch t.val {
			case "createdb", "createrole", "replication", "bypassrls", "connection", "valid", "in", "role", "admin", "user", "sysid":
				return o, p.q.notSupported(t, "role option "+strings.ToUpper(t.val))
			}
			return o, p.fail()
		}
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

// dropRole parses DROP ROLE | USER after DROP.
func (p *stmtParser) dropRole() (Statement, error) {
	p.i++ // ROLE | USER
	st := &DropRole{IfExists: p.accept("if", "exists")}
	for {
		n, err := p.name()
		if err != nil {
			return nil, err
		}
		st.Names = append(st.Names, n)
		if !p.acceptPunct(",") {
			break
		}
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	st.Base = p.base()
	return st, nil
}

// unsupportedPrivileges are PostgreSQL privileges Spate does not grant.
var unsupportedPrivileges = setOf(`update delete truncate references trigger usage create connect temporary temp execute maintain`)

// grant parses GRANT and REVOKE.
func (p *stmtParser) grant() (Statement, error) {
	st := &Grant{Revoke: p.peek().isWord("revoke")}
	p.i++ // GRANT | REVOKE
	if st.Revoke && p.is("grant") && p.peekAt(1).isWord("option") {
		return nil, p.q.notSupported(p.peek(), "REVOKE GRANT OPTION FOR")
	}
	// Privileges.
	seen := map[string]bool{}
	add := func(priv string) {
		if !seen[priv] {
			seen[priv] = true
			st.Privileges = append(st.Privileges, priv)
		}
	}
	if p.accept("all") {
		p.accept("privileges")
		add(PrivSelect)
		add(PrivInsert)
	} else {
		for {
			t := p.peek()
			switch {
			case p.accept("select"):
				add(PrivSelect)
			case p.accept("insert"):
				add(PrivInsert)
			case t.kind == tIdent && unsupportedPrivileges[t.val]:
				return nil, p.q.notSupported(t, "privilege "+strings.ToUpper(t.val)+" (Spate grants SELECT and INSERT)")
			case t.isName() && !p.peekAt(1).isWord("on"):
				// GRANT role TO role: role membership.
				return nil, p.q.notSupported(t, "granting role membership")
			default:
				return nil, p.fail()
			}
			if p.peek().isPunct("(") {
				return nil, p.q.notSupported(p.peek(), "column privileges")
			}
			if !p.acceptPunct(",") {
				break
			}
		}
	}
	if err := p.expect("on"); err != nil {
		return nil, err
	}
	// Objects.
	switch {
	case p.accept("all", "tables", "in", "schema"):
		st.AllInSchema = true
		for {
			if _, err := p.name(); err != nil {
				return nil, err
			}
			if !p.acceptPunct(",") {
				break
			}
		}
	default:
		if p.is("sequence", "database", "schema", "function", "procedure", "routine", "language", "type", "domain", "foreign", "large", "tablespace", "parameter") {
			return nil, p.q.notSupported(p.peek(), "GRANT ON "+strings.ToUpper(p.peek().val))
		}
		p.accept("table")
		for {
			n, err := p.objectName()
			if err != nil {
				return nil, err
			}
			st.Objects = append(st.Objects, n)
			if !p.acceptPunct(",") {
				break
			}
		}
	}
	if st.Revoke {
		if err := p.expect("from"); err != nil {
			return nil, err
		}
	} else if err := p.expect("to"); err != nil {
		return nil, err
	}
	// Roles.
	for {
		t := p.peek()
		if p.is("public") {
			return nil, p.q.notSupported(t, "PUBLIC (grant to each role instead)")
		}
		p.accept("group")
		n, err := p.name()
		if err != nil {
			return nil, err
		}
		st.Roles = append(st.Roles, n)
		if !p.acceptPunct(",") {
			break
		}
	}
	switch {
	case !st.Revoke && p.is("with"):
		return nil, p.q.notSupported(p.peek(), "WITH GRANT OPTION")
	case !st.Revoke && p.is("granted"):
		return nil, p.q.notSupported(p.peek(), "GRANTED BY")
	case st.Revoke && p.is("granted"):
		return nil, p.q.notSupported(p.peek(), "GRANTED BY")
	case st.Revoke:
		if !p.accept("cascade") {
			p.accept("restrict")
		}
	}
	if err := p.done(); err != nil {
		return nil, err
	}
	st.Base = p.base()
	return st, nil
}

// roleStatement parses the statement when it is CREATE, ALTER or DROP
// ROLE | USER, GRANT or REVOKE; ok is false for other statements.
func (p *stmtParser) roleStatement() (st Statement, ok bool, err error) {
	t, next := p.peek(), p.peekAt(1)
	roleWord := next.isWord("role") || next.isWord("user")
	switch {
	case t.isWord("create") && roleWord:
		p.i++
		st, err = p.createRole()
	case t.isWord("alter") && roleWord:
		p.i++
		st, err = p.alterRole()
	case t.isWord("drop") && roleWord:
		p.i++
		st, err = p.dropRole()
	case t.isWord("grant"), t.isWord("revoke"):
		st, err = p.grant()
	default:
		return nil, false, nil
	}
	return st, true, err
}
