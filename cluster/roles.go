package cluster

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/spatedb/spate/parser"
	"github.com/spatedb/spate/planner"
)

// This file holds roles, grants and the privilege checks.
//
// Roles are PostgreSQL's: a name, SUPERUSER or not, LOGIN or not, and an
// optional password kept only as a SCRAM-SHA-256 verifier. The built-in
// superuser SuperuserName always exists. A superuser may do anything; any
// other role may
//   - SELECT, SUBSCRIBE to, COPY … TO STDOUT and EXPLAIN what it holds
//     SELECT on (a stream, table or continuous query; the spate_… system
//     tables are readable by every role, as pg_catalog is in PostgreSQL);
//   - INSERT and COPY … FROM STDIN into what it holds INSERT on;
//   - run SHOW, SET (not is_superuser, not another role or session
//     authorization), transaction statements, cursors over what it may read,
//     and ALTER ROLE <itself> PASSWORD '…'.
// Everything else — CREATE, DROP and ALTER of streams, tables, continuous
// queries and roles, GRANT, REVOKE, UPDATE and DELETE — needs a superuser.
// A violation is error 42501.
//
// Role statements are DDL: they go through Coordinator.ddl into the
// write-ahead log and the restart points, with the password replaced by its
// verifier, so roles and grants survive a restart and no plaintext password
// is ever written down. Grants of a dropped object or role are dropped too.

// SuperuserName is the built-in superuser. It always exists, keeps
// SUPERUSER and LOGIN and cannot be dropped; it has no password until one
// is set (ALTER ROLE spate PASSWORD '…', or Coordinator.SetPassword).
const SuperuserName = "spate"

// RoleInfo describes a role (for pg_roles and the like).
type RoleInfo struct {
	Name      string
	Superuser bool
	Login     bool
}

// GrantInfo is a privilege a role holds on a stream, table or continuous
// query. Privilege is "SELECT" or "INSERT".
type GrantInfo struct {
	Role, Object, Privilege string
}

// Roles returns every role, the built-in superuser included, sorted by
// name.
func (c *Coordinator) Roles() []RoleInfo {
	return c.roles.list()
}

// Grants returns every privilege granted, sorted by role, object and
// privilege.
func (c *Coordinator) Grants() []GrantInfo {
	return c.roles.grantList()
}

// PasswordVerifier implements Authenticator.
func (c *Coordinator) PasswordVerifier(name string) (SCRAMVerifier, bool) {
	r, ok := c.roles.get(name)
	if !ok || !r.login || r.verifier == "" {
		return SCRAMVerifier{}, false
	}
	v, err := ParseSCRAMVerifier(r.verifier)
	if err != nil {
		return SCRAMVerifier{}, false
	}
	return v, true
}

// SetPassword gives an existing role a password, as ALTER ROLE name
// PASSWORD '…' does (logged as a verifier). A password the role already
// has is left as it is (its verifier, salt included, unchanged), so that
// setting the same password at every start logs nothing.
func (c *Coordinator) SetPassword(name, password string) error {
	if password == "" {
		return errorf("22023", "empty password for role %q", name)
	}
	if r, ok := c.roles.get(name); ok && r.verifier != "" {
		if v, err := ParseSCRAMVerifier(r.verifier); err == nil && v.Matches(password) {
			return nil
		}
	}
	pw := password
	_, err := c.alterRole(&parser.AlterRole{Name: name, Options: parser.RoleOptions{Password: &pw}})
	return err
}

// role is one role's attributes.
type role struct {
	superuser, login bool
	verifier         string // SCRAMVerifier text; "" without a password
}

type grantKey struct{ role, object, privilege string }

// roleStore holds the roles and grants. Safe for concurrent use; the zero
// value holds only the built-in superuser.
type roleStore struct {
	mu sync.RWMutex
	// Protected by mu; roles is nil until the first change (the built-in
	// superuser is implied until then).
	roles  map[string]role
	grants map[grantKey]struct{}
}

// initLocked creates the maps; mu is held for writing.
func (rs *roleStore) initLocked() {
	if rs.roles == nil {
		rs.roles = map[string]role{SuperuserName: {superuser: true, login: true}}
		rs.grants = map[grantKey]struct{}{}
	}
}

func (rs *roleStore) get(name string) (role, bool) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if rs.roles == nil {
		return role{superuser: true, login: true}, name == SuperuserName
	}
	r, ok := rs.roles[name]
	return r, ok
}

func (rs *roleStore) has(roleName, object, privilege string) bool {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	_, ok := rs.grants[grantKey{roleName, object, privilege}]
	return ok
}

func (rs *roleStore) list() []RoleInfo {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if rs.roles == nil {
		return []RoleInfo{{Name: SuperuserName, Superuser: true, Login: true}}
	}
	out := make([]RoleInfo, 0, len(rs.roles))
	for n, r := range rs.roles {
		out = append(out, RoleInfo{Name: n, Superuser: r.superuser, Login: r.login})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (rs *roleStore) grantList() []GrantInfo {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	out := make([]GrantInfo, 0, len(rs.grants))
	for k := range rs.grants {
		out = append(out, GrantInfo{Role: k.role, Object: k.object, Privilege: k.privilege})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Role != b.Role {
			return a.Role < b.Role
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Privilege < b.Privilege
	})
	return out
}

// forgetObjects drops the grants on objects that no longer exist.
func (rs *roleStore) forgetObjects(names []string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, n := range names {
		for k := range rs.grants {
			if k.object == n {
				delete(rs.grants, k)
			}
		}
	}
}

// SQLSTATEs of roles and privileges.
const (
	codeInsufficientPrivilege = "42501"
	codeInvalidAuthorization  = "28000"
	codeCantChangeRuntime     = "55P02"
	codeObjectInUse           = "55006"
)

func undefinedRole(name string) error {
	return errorf(planner.CodeUndefinedObject, "role %q does not exist", name)
}

// login checks that name may open a session and returns its role.
func (c *Coordinator) login(name string) (role, error) {
	r, ok := c.roles.get(name)
	if !ok {
		return role{}, errorf(codeInvalidAuthorization, "role %q does not exist", name)
	}
	if !r.login {
		return role{}, errorf(codeInvalidAuthorization, "role %q is not permitted to log in", name)
	}
	return r, nil
}

// ---- statements ----

// executeSecurity runs before every statement of session.Execute: it
// checks the session's privileges for stmt (42501 when it lacks them) and
// runs the role statements (handled is then true and res their result).
func (s *session) executeSecurity(stmt parser.Statement) (res Result, handled bool, err error) {
	if err := s.authorize(stmt); err != nil {
		return Result{}, true, err
	}
	switch x := stmt.(type) {
	case *parser.Set:
		if s.otherRole(x) {
			return Result{}, true, errorf(planner.CodeNotSupported, "%s to another role is not supported: a session has the privileges of the role it logged in as", strings.ToUpper(strings.ReplaceAll(x.Name, "_", " ")))
		}
		return Result{}, false, validateSetting(x)
	case *parser.CreateRole:
		res, err = s.c.createRole(x)
	case *parser.AlterRole:
		res, err = s.c.alterRole(x)
	case *parser.DropRole:
		res, err = s.c.dropRoles(x, s.user)
	case *parser.Grant:
		res, err = s.c.grant(x)
	default:
		return Result{}, false, nil
	}
	return res, true, err
}

func quoteIdents(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quoteIdent(n)
	}
	return strings.Join(q, ", ")
}

// verifierOf turns a PASSWORD option into what is stored: a verifier
// given as such is checked and kept, a password is hashed, ” clears the
// password (as in PostgreSQL).
func verifierOf(o parser.RoleOptions) (verifier string, given bool, err error) {
	switch {
	case o.PasswordNull:
		return "", true, nil
	case o.Password == nil:
		return "", false, nil
	case *o.Password == "":
		return "", true, nil
	case isSCRAMVerifier(*o.Password):
		v, err := ParseSCRAMVerifier(*o.Password)
		if err != nil {
			return "", true, errorf(planner.CodeInvalidParameter, "%v", err)
		}
		return v.String(), true, nil
	case isMD5Hash(*o.Password):
		return "", true, errorf(planner.CodeNotSupported, "md5 password hashes are not supported: give the password or its SCRAM-SHA-256 verifier")
	}
	return NewSCRAMVerifier(*o.Password).String(), true, nil
}

// roleOptionsSQL writes options in the form the log keeps (the password
// as its verifier).
func roleOptionsSQL(login, superuser *bool, verifier string, passwordGiven bool) string {
	var b strings.Builder
	b.WriteString(" WITH")
	if login != nil {
		b.WriteString(map[bool]string{true: " LOGIN", false: " NOLOGIN"}[*login])
	}
	if superuser != nil {
		b.WriteString(map[bool]string{true: " SUPERUSER", false: " NOSUPERUSER"}[*superuser])
	}
	if passwordGiven {
		if verifier == "" {
			b.WriteString(" PASSWORD NULL")
		} else {
			b.WriteString(" PASSWORD '" + verifier + "'") // base64 and '$:': no quotes
		}
	}
	return b.String()
}

func (c *Coordinator) createRole(x *parser.CreateRole) (Result, error) {
	verifier, given, err := verifierOf(x.Options)
	if err != nil {
		return Result{}, err
	}
	r := role{login: x.User, verifier: verifier}
	if x.Options.Login != nil {
		r.login = *x.Options.Login
	}
	if x.Options.Superuser != nil {
		r.superuser = *x.Options.Superuser
	}
	sql := "CREATE ROLE " + quoteIdent(x.Name) + roleOptionsSQL(&r.login, &r.superuser, verifier, given)
	err = c.ddl(sql, 0, func() error {
		c.roles.mu.Lock()
		defer c.roles.mu.Unlock()
		c.roles.initLocked()
		if _, dup := c.roles.roles[x.Name]; dup {
			return errorf(planner.CodeDuplicateObject, "role %q already exists", x.Name)
		}
		c.roles.roles[x.Name] = r
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Tag: "CREATE ROLE"}, nil
}

func (c *Coordinator) alterRole(x *parser.AlterRole) (Result, error) {
	verifier, given, err := verifierOf(x.Options)
	if err != nil {
		return Result{}, err
	}
	o := x.Options
	if x.Name == SuperuserName && (o.Login != nil && !*o.Login || o.Superuser != nil && !*o.Superuser) {
		return Result{}, errorf(codeInsufficientPrivilege, "permission denied to alter role %q: the built-in superuser keeps SUPERUSER and LOGIN", x.Name)
	}
	sql := "ALTER ROLE " + quoteIdent(x.Name) + roleOptionsSQL(o.Login, o.Superuser, verifier, given)
	err = c.ddl(sql, 0, func() error {
		c.roles.mu.Lock()
		defer c.roles.mu.Unlock()
		c.roles.initLocked()
		r, ok := c.roles.roles[x.Name]
		if !ok {
			return undefinedRole(x.Name)
		}
		if o.Login != nil {
			r.login = *o.Login
		}
		if o.Superuser != nil {
			r.superuser = *o.Superuser
		}
		if given {
			r.verifier = verifier
		}
		c.roles.roles[x.Name] = r
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Tag: "ALTER ROLE"}, nil
}

// dropRoles drops roles (and their grants); current is the session's role.
func (c *Coordinator) dropRoles(x *parser.DropRole, current string) (Result, error) {
	for _, n := range x.Names {
		switch n {
		case SuperuserName:
			return Result{}, errorf(planner.CodeDependentObjects, "cannot drop role %s because it is required by the database system", n)
		case current:
			return Result{}, errorf(codeObjectInUse, "current user cannot be dropped")
		}
	}
	sql := "DROP ROLE "
	if x.IfExists {
		sql += "IF EXISTS "
	}
	sql += quoteIdents(x.Names)
	err := c.ddl(sql, 0, func() error {
		c.roles.mu.Lock()
		defer c.roles.mu.Unlock()
		c.roles.initLocked()
		for _, n := range x.Names {
			if _, ok := c.roles.roles[n]; !ok && !x.IfExists {
				return undefinedRole(n)
			}
		}
		for _, n := range x.Names {
			delete(c.roles.roles, n)
			for k := range c.roles.grants {
				if k.role == n {
					delete(c.roles.grants, k)
				}
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Tag: "DROP ROLE"}, nil
}

// grant runs GRANT and REVOKE.
func (c *Coordinator) grant(x *parser.Grant) (Result, error) {
	verb, prep := "GRANT", "TO"
	if x.Revoke {
		verb, prep = "REVOKE", "FROM"
	}
	sql := verb + " " + strings.Join(x.Privileges, ", ") + " ON "
	if x.AllInSchema {
		sql += "ALL TABLES IN SCHEMA public"
	} else {
		sql += quoteIdents(x.Objects)
	}
	sql += " " + prep + " " + quoteIdents(x.Roles)
	err := c.ddl(sql, 0, func() error {
		objects := x.Objects
		if x.AllInSchema {
			objects = nil
			for _, s := range c.catalog.Streams() {
				objects = append(objects, s.Name)
			}
			for _, t := range c.catalog.Tables() {
				objects = append(objects, t.Name)
			}
			for _, q := range c.catalog.Queries() {
				objects = append(objects, q.Name)
			}
		}
		for _, o := range objects {
			if _, kind, ok := c.catalog.Lookup(o); !ok || kind == planner.RelSystem {
				return errorf(planner.CodeUndefinedTable, "relation %q does not exist", o)
			}
		}
		c.roles.mu.Lock()
		defer c.roles.mu.Unlock()
		c.roles.initLocked()
		for _, r := range x.Roles {
			if _, ok := c.roles.roles[r]; !ok {
				return undefinedRole(r)
			}
		}
		for _, r := range x.Roles {
			for _, o := range objects {
				for _, p := range x.Privileges {
					if x.Revoke {
						delete(c.roles.grants, grantKey{r, o, p})
					} else {
						c.roles.grants[grantKey{r, o, p}] = struct{}{}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Tag: verb}, nil
}

// ---- privilege checks ----

// authorize checks that the session's role may run stmt.
func (s *session) authorize(stmt parser.Statement) error {
	if s.system {
		return nil
	}
	r, _ := s.c.roles.get(s.user) // a dropped role has no privileges
	if r.superuser {
		return nil
	}
	switch x := stmt.(type) {
	case *parser.Show, *parser.Transaction, *parser.Empty, *parser.Fetch, *parser.CloseCursor:
		return nil
	case *parser.Set:
		return s.authorizeSet(x)
	case *parser.Select:
		var n ast.Node = x.Query
		if x.SetOpr != nil {
			n = x.SetOpr
		}
		return s.need(parser.PrivSelect, tableNames(n)...)
	case *parser.Subscribe:
		return s.need(parser.PrivSelect, x.Name)
	case *parser.Declare:
		return s.authorize(x.Query)
	case *parser.Insert:
		if err := s.need(parser.PrivInsert, tableNames(x.Stmt.Table)...); err != nil {
			return err
		}
		if x.Stmt.Select != nil {
			return s.need(parser.PrivSelect, tableNames(x.Stmt.Select)...)
		}
		return nil
	case *parser.Copy:
		switch {
		case x.Query != nil:
			return s.authorize(x.Query)
		case x.From:
			return s.need(parser.PrivInsert, x.Table)
		default:
			return s.need(parser.PrivSelect, x.Table)
		}
	case *parser.Explain:
		switch inner := x.Stmt.(type) {
		case nil:
			return s.need(parser.PrivSelect, x.Name)
		case *parser.CreateContinuousQuery:
			return s.need(parser.PrivSelect, tableNames(inner.Query)...)
		default:
			return s.authorize(inner)
		}
	case *parser.AlterRole:
		// A role may change its own password.
		o := x.Options
		if x.Name == s.user && o.Login == nil && o.Superuser == nil {
			return nil
		}
	}
	return errorf(codeInsufficientPrivilege, "permission denied for %s: role %q is not a superuser", statementName(stmt), s.user)
}

// need checks that the session's role holds priv on every relation of
// names (names that are not streams, tables or continuous queries are left
// to the planner, which reports them).
func (s *session) need(priv string, names ...string) error {
	for _, n := range names {
		_, kind, ok := s.c.catalog.Lookup(n)
		if !ok || kind == planner.RelSystem {
			continue
		}
		if !s.c.roles.has(s.user, n, priv) {
			return errorf(codeInsufficientPrivilege, "permission denied for %s %s", kind, n)
		}
	}
	return nil
}

// authorizeSet keeps a role that is not a superuser from taking another
// role's name.
func (s *session) authorizeSet(x *parser.Set) error {
	if !s.otherRole(x) {
		return nil
	}
	if x.Name == "role" {
		return errorf(codeInsufficientPrivilege, "permission denied to set role %q", x.Value)
	}
	return errorf(codeInsufficientPrivilege, "permission denied to set session authorization")
}

// otherRole reports whether x is SET ROLE or SET SESSION AUTHORIZATION
// to a role other than the session's: Spate does not switch roles within
// a session.
func (s *session) otherRole(x *parser.Set) bool {
	if x.Name != "role" && x.Name != "session_authorization" {
		return false
	}
	v := x.Value
	return !strings.EqualFold(v, "default") && !strings.EqualFold(v, "none") && v != s.user
}

// statementName is what a permission error calls a statement.
func statementName(stmt parser.Statement) string {
	if name := parser.CommandName(stmt); name != "" {
		return name
	}
	return "this statement"
}

// tableNames lists the relation names a statement's AST refers to.
func tableNames(n ast.Node) []string {
	if n == nil {
		return nil
	}
	var v tableNameVisitor
	n.Accept(&v)
	return v.names
}

type tableNameVisitor struct{ names []string }

func (v *tableNameVisitor) Enter(n ast.Node) (ast.Node, bool) {
	if t, ok := n.(*ast.TableName); ok {
		v.names = append(v.names, t.Name.O)
	}
	return n, false
}

func (v *tableNameVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// ---- settings ----

// validateSetting checks the values of the settings Spate acts on.
func validateSetting(x *parser.Set) error {
	switch x.Name {
	case "is_superuser":
		return errorf(codeCantChangeRuntime, "parameter %q cannot be changed", x.Name)
	case "statement_timeout", "idle_session_timeout":
		if strings.EqualFold(x.Value, "default") {
			return nil
		}
		if _, err := SettingDuration(x.Value); err != nil {
			return errorf(planner.CodeInvalidParameter, "invalid value for parameter %q: %q (%v)", x.Name, x.Value, err)
		}
	}
	return nil
}

// SettingDuration parses the value of a time setting such as
// statement_timeout as PostgreSQL does: a number of milliseconds, or a
// number with a unit (us, ms, s, min, h, d), e.g. "100", "250ms", "1.5 s",
// "5min". 0 means no limit; negative values are an error.
func SettingDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] == '.' || v[i] == '-' || v[i] == '+') {
		i++
	}
	num, unit := v[:i], strings.ToLower(strings.TrimSpace(v[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("expected a number of milliseconds or a number with a unit (us, ms, s, min, h, d)")
	}
	scale, ok := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond, "s": time.Second,
		"min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[unit]
	if !ok {
		return 0, fmt.Errorf(`valid units are "us", "ms", "s", "min", "h" and "d"`)
	}
	if f < 0 {
		return 0, fmt.Errorf("must not be negative")
	}
	d := f * float64(scale)
	if d > float64(1<<31-1)*float64(time.Millisecond) {
		return 0, fmt.Errorf("at most 2147483647 ms")
	}
	return time.Duration(d), nil
}

var _ Authenticator = (*Coordinator)(nil)
