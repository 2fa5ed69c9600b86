package pgcatalog

import (
	"hash/fnv"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spatedb/spate/cluster"
	"github.com/spatedb/spate/planner"
)

// column is a column of a relation the evaluator reads.
type column struct {
	name   string
	typ    pgType
	typmod int64 // atttypmod: -1, or for varchar(n) and char(n) n+4
}

// table is a relation as rows of values.
type table struct {
	cols []column
	rows [][]any
}

func (t *table) col(name string) int {
	for i, c := range t.cols {
		if c.name == name {
			return i
		}
	}
	return -1
}

// add appends a row given by column name; columns not given are NULL,
// except booleans (false) and numbers (0), which PostgreSQL's catalogs
// never leave NULL.
func (t *table) add(vals map[string]any) {
	row := make([]any, len(t.cols))
	for i, c := range t.cols {
		v, ok := vals[c.name]
		if !ok {
			switch c.typ.planner {
			case planner.TypeBool:
				v = false
			case planner.TypeInt, planner.TypeBigInt, planner.TypeDouble:
				v = int64(0)
			}
		}
		row[i] = v
	}
	t.rows = append(t.rows, row)
}

// vector is an int2vector or oidvector: an array whose text form is
// space-separated.
type vector []any

// Namespaces.
const (
	oidPgCatalog  = 11
	oidPublic     = 2200
	oidInfoSchema = 13000
	oidSuperuser  = 10
	oidDatabase   = 16000
	oidHeapAM     = 2
	oidBtreeAM    = 403
	firstUserOID  = 16384
)

// defs are the catalog relations: schema, name, kind ('r' table, 'v'
// view) and columns as "name type" pairs.
var defs = []struct {
	schema, name string
	kind         string
	spec         string
}{
	{"pg_catalog", "pg_namespace", "r", "oid oid, nspname name, nspowner oid, nspacl _aclitem"},
	{"pg_catalog", "pg_class", "r", `oid oid, relname name, relnamespace oid, reltype oid, reloftype oid, relowner oid, relam oid,
		relfilenode oid, reltablespace oid, relpages int4, reltuples float4, relallvisible int4, reltoastrelid oid,
		relhasindex bool, relisshared bool, relpersistence char, relkind char, relnatts int2, relchecks int2,
		relhasrules bool, relhastriggers bool, relhassubclass bool, relrowsecurity bool, relforcerowsecurity bool,
		relispopulated bool, relreplident char, relispartition bool, relrewrite oid, relfrozenxid xid, relminmxid xid,
		relacl _aclitem, reloptions _text, relpartbound pg_node_tree`},
	{"pg_catalog", "pg_attribute", "r", `attrelid oid, attname name, atttypid oid, attstattarget int4, attlen int2, attnum int2,
		attndims int4, attcacheoff int4, atttypmod int4, attbyval bool, attalign char, attstorage char, attcompression char,
		attnotnull bool, atthasdef bool, atthasmissing bool, attidentity char, attgenerated char, attisdropped bool,
		attislocal bool, attinhcount int4, attcollation oid, attacl _aclitem, attoptions _text, attfdwoptions _text,
		attmissingval text`},
	{"pg_catalog", "pg_type", "r", `oid oid, typname name, typnamespace oid, typowner oid, typlen int2, typbyval bool,
		typtype char, typcategory char, typispreferred bool, typisdefined bool, typdelim char, typrelid oid,
		typsubscript regproc, typelem oid, typarray oid, typinput regproc, typoutput regproc, typreceive regproc,
		typsend regproc, typmodin regproc, typmodout regproc, typanalyze regproc, typalign char, typstorage char,
		typnotnull bool, typbasetype oid, typtypmod int4, typndims int4, typcollation oid, typdefaultbin pg_node_tree,
		typdefault text, typacl _aclitem`},
	{"pg_catalog", "pg_attrdef", "r", "oid oid, adrelid oid, adnum int2, adbin pg_node_tree"},
	{"pg_catalog", "pg_collation", "r", `oid oid, collname name, collnamespace oid, collowner oid, collprovider char,
		collisdeterministic bool, collencoding int4, collcollate text, collctype text, colliculocale text, collversion text`},
	{"pg_catalog", "pg_index", "r", `indexrelid oid, indrelid oid, indnatts int2, indnkeyatts int2, indisunique bool,
		indnullsnotdistinct bool, indisprimary bool, indisexclusion bool, indimmediate bool, indisclustered bool,
		indisvalid bool, indcheckxmin bool, indisready bool, indislive bool, indisreplident bool, indkey int2vector,
		indcollation oidvector, indclass oidvector, indoption int2vector, indexprs pg_node_tree, indpred pg_node_tree`},
	{"pg_catalog", "pg_constraint", "r", `oid oid, conname name, connamespace oid, contype char, condeferrable bool,
		condeferred bool, convalidated bool, conrelid oid, contypid oid, conindid oid, conparentid oid, confrelid oid,
		confupdtype char, confdeltype char, confmatchtype char, conislocal bool, coninhcount int4, connoinherit bool,
		conkey _int2, confkey _int2, conpfeqop _oid, conppeqop _oid, conffeqop _oid, confdelsetcols _int2,
		conexclop _oid, conbin pg_node_tree`},
	{"pg_catalog", "pg_description", "r", "objoid oid, classoid oid, objsubid int4, description text"},
	{"pg_catalog", "pg_shdescription", "r", "objoid oid, classoid oid, description text"},
	{"pg_catalog", "pg_database", "r", `oid oid, datname name, datdba oid, encoding int4, datlocprovider char,
		datistemplate bool, datallowconn bool, datconnlimit int4, datfrozenxid xid, datminmxid xid,
		dattablespace oid, datcollate text, datctype text, daticulocale text, datcollversion text, datacl _aclitem`},
	{"pg_catalog", "pg_roles", "v", `rolname name, rolsuper bool, rolinherit bool, rolcreaterole bool, rolcreatedb bool,
		rolcanlogin bool, rolreplication bool, rolconnlimit int4, rolpassword text, rolvaliduntil timestamptz,
		rolbypassrls bool, rolconfig _text, oid oid`},
	{"pg_catalog", "pg_user", "v", `usename name, usesysid oid, usecreatedb bool, usesuper bool, userepl bool,
		usebypassrls bool, passwd text, valuntil timestamptz, useconfig _text`},
	{"pg_catalog", "pg_authid", "r", `oid oid, rolname name, rolsuper bool, rolinherit bool, rolcreaterole bool,
		rolcreatedb bool, rolcanlogin bool, rolreplication bool, rolbypassrls bool, rolconnlimit int4,
		rolpassword text, rolvaliduntil timestamptz`},
	{"pg_catalog", "pg_auth_members", "r", "roleid oid, member oid, grantor oid, admin_option bool"},
	{"pg_catalog", "pg_settings", "v", `name text, setting text, unit text, category text, short_desc text,
		extra_desc text, context text, vartype text, source text, min_val text, max_val text, enumvals _text,
		boot_val text, reset_val text, sourcefile text, sourceline int4, pending_restart bool`},
	{"pg_catalog", "pg_proc", "r", `oid oid, proname name, pronamespace oid, proowner oid, prolang oid, procost float4,
		prorows float4, provariadic oid, prosupport regproc, prokind char, prosecdef bool, proleakproof bool,
		proisstrict bool, proretset bool, provolatile char, proparallel char, pronargs int2, pronargdefaults int2,
		prorettype oid, proargtypes oidvector, proallargtypes _oid, proargmodes _char, proargnames _text,
		proargdefaults pg_node_tree, protrftypes _oid, prosrc text, probin text, prosqlbody pg_node_tree,
		proconfig _text, proacl _aclitem`},
	{"pg_catalog", "pg_am", "r", "oid oid, amname name, amhandler regproc, amtype char"},
	{"pg_catalog", "pg_policy", "r", `oid oid, polname name, polrelid oid, polcmd char, polpermissive bool,
		polroles _oid, polqual pg_node_tree, polwithcheck pg_node_tree`},
	{"pg_catalog", "pg_statistic_ext", "r", `oid oid, stxrelid oid, stxname name, stxnamespace oid, stxowner oid,
		stxstattarget int4, stxkeys int2vector, stxkind _char, stxexprs pg_node_tree`},
	{"pg_catalog", "pg_publication", "r", `oid oid, pubname name, pubowner oid, puballtables bool, pubinsert bool,
		pubupdate bool, pubdelete bool, pubtruncate bool, pubviaroot bool`},
	{"pg_catalog", "pg_publication_namespace", "r", "oid oid, pnpubid oid, pnnspid oid"},
	{"pg_catalog", "pg_publication_rel", "r", "oid oid, prpubid oid, prrelid oid, prqual pg_node_tree, prattrs int2vector"},
	{"pg_catalog", "pg_inherits", "r", "inhrelid oid, inhparent oid, inhseqno int4, inhdetachpending bool"},
	{"pg_catalog", "pg_enum", "r", "oid oid, enumtypid oid, enumsortorder float4, enumlabel name"},
	{"pg_catalog", "pg_sequence", "r", `seqrelid oid, seqtypid oid, seqstart int8, seqincrement int8, seqmax int8,
		seqmin int8, seqcache int8, seqcycle bool`},
	{"pg_catalog", "pg_trigger", "r", `oid oid, tgrelid oid, tgparentid oid, tgname name, tgfoid oid, tgtype int2,
		tgenabled char, tgisinternal bool, tgconstrrelid oid, tgconstrindid oid, tgconstraint oid, tgdeferrable bool,
		tginitdeferred bool, tgnargs int2, tgattr int2vector, tgargs bytea, tgqual pg_node_tree, tgoldtable name,
		tgnewtable name`},
	{"pg_catalog", "pg_rewrite", "r", `oid oid, rulename name, ev_class oid, ev_type char, ev_enabled char,
		is_instead bool, ev_qual pg_node_tree, ev_action pg_node_tree`},
	{"pg_catalog", "pg_tablespace", "r", "oid oid, spcname name, spcowner oid, spcacl _aclitem, spcoptions _text"},
	{"pg_catalog", "pg_extension", "r", `oid oid, extname name, extowner oid, extnamespace oid, extrelocatable bool,
		extversion text, extconfig _oid, extcondition _text`},
	{"pg_catalog", "pg_language", "r", `oid oid, lanname name, lanowner oid, lanispl bool, lanpltrusted bool,
		lanplcallfoid oid, laninline oid, lanvalidator oid, lanacl _aclitem`},
	{"pg_catalog", "pg_foreign_table", "r", "ftrelid oid, ftserver oid, ftoptions _text"},
	{"pg_catalog", "pg_partitioned_table", "r", `partrelid oid, partstrat char, partnatts int2, partdefid oid,
		partattrs int2vector, partclass oidvector, partcollation oidvector, partexprs pg_node_tree`},
	{"pg_catalog", "pg_cursors", "v", "name text, statement text, is_holdable bool, is_binary bool, is_scrollable bool, creation_time timestamptz"},
	{"pg_catalog", "pg_stat_activity", "v", `datid oid, datname name, pid int4, leader_pid int4, usesysid oid,
		usename name, application_name text, client_addr text, client_hostname text, client_port int4,
		backend_start timestamptz, xact_start timestamptz, query_start timestamptz, state_change timestamptz,
		wait_event_type text, wait_event text, state text, backend_xid xid, backend_xmin xid, query_id int8,
		query text, backend_type text`},
	{"pg_catalog", "pg_tables", "v", `schemaname name, tablename name, tableowner name, tablespace name,
		hasindexes bool, hasrules bool, hastriggers bool, rowsecurity bool`},
	{"pg_catalog", "pg_views", "v", "schemaname name, viewname name, viewowner name, definition text"},
	{"pg_catalog", "pg_matviews", "v", `schemaname name, matviewname name, matviewowner name, tablespace name,
		hasindexes bool, ispopulated bool, definition text`},
	{"pg_catalog", "pg_indexes", "v", "schemaname name, tablename name, indexname name, tablespace name, indexdef text"},
	{"information_schema", "schemata", "v", `catalog_name name, schema_name name, schema_owner name,
		default_character_set_catalog name, default_character_set_schema name, default_character_set_name name,
		sql_path text`},
	{"information_schema", "tables", "v", `table_catalog name, table_schema name, table_name name, table_type text,
		self_referencing_column_name name, reference_generation text, user_defined_type_catalog name,
		user_defined_type_schema name, user_defined_type_name name, is_insertable_into text, is_typed text,
		commit_action text`},
	{"information_schema", "columns", "v", `table_catalog name, table_schema name, table_name name, column_name name,
		ordinal_position int4, column_default text, is_nullable text, data_type text, character_maximum_length int4,
		character_octet_length int4, numeric_precision int4, numeric_precision_radix int4, numeric_scale int4,
		datetime_precision int4, interval_type text, interval_precision int4, character_set_catalog name,
		character_set_schema name, character_set_name name, collation_catalog name, collation_schema name,
		collation_name name, domain_catalog name, domain_schema name, domain_name name, udt_catalog name,
		udt_schema name, udt_name name, scope_catalog name, scope_schema name, scope_name name,
		maximum_cardinality int4, dtd_identifier name, is_self_referencing text, is_identity text,
		identity_generation text, identity_start text, identity_increment text, identity_maximum text,
		identity_minimum text, identity_cycle text, is_generated text, generation_expression text, is_updatable text`},
	{"information_schema", "views", "v", `table_catalog name, table_schema name, table_name name, view_definition text,
		check_option text, is_updatable text, is_insertable_into text, is_trigger_updatable text,
		is_trigger_deletable text, is_trigger_insertable_into text`},
	{"information_schema", "table_constraints", "v", `constraint_catalog name, constraint_schema name,
		constraint_name name, table_catalog name, table_schema name, table_name name, constraint_type text,
		is_deferrable text, initially_deferred text, enforced text, nulls_distinct text`},
	{"information_schema", "key_column_usage", "v", `constraint_catalog name, constraint_schema name,
		constraint_name name, table_catalog name, table_schema name, table_name name, column_name name,
		ordinal_position int4, position_in_unique_constraint int4`},
}

// relDef is a catalog relation with parsed columns.
type relDef struct {
	schema, name, kind string
	cols               []column
}

var catalogRels = func() []relDef {
	out := make([]relDef, 0, len(defs))
	for _, d := range defs {
		r := relDef{schema: d.schema, name: d.name, kind: d.kind}
		for _, part := range strings.Split(d.spec, ",") {
			f := strings.Fields(part)
			t, ok := typeByName[f[1]]
			if !ok {
				panic("pgcatalog: unknown type " + f[1] + " of " + d.name + "." + f[0])
			}
			r.cols = append(r.cols, column{name: f[0], typ: t, typmod: -1})
		}
		out = append(out, r)
	}
	return out
}()

// relation is one row of pg_class: a catalog relation or one of the
// session's streams, tables, continuous queries and system tables.
type relation struct {
	oid       int64
	schema    string
	name      string
	kind      string // relkind
	cols      []column
	def       string // a view's definition
	primary   []int  // the primary key's column indexes (tables)
	indexOID  int64  // the primary key's index, when there is one
	system    bool   // a catalog relation (pg_catalog, information_schema)
	namespace int64
}

// snapshot is the catalog as one statement sees it.
type snapshot struct {
	view   cluster.CatalogView
	rels   []*relation // ordered by OID
	byOID  map[int64]*relation
	tables map[string]*table // built on first use, by "schema.name"
	srv    Server

	roleList []role // built on first use
}

// newSnapshot lays out the relations of view and their OIDs. User
// relations get OIDs from a hash of their names, so that an OID stays the
// same across statements while other relations come and go (psql reads a
// relation's OID in one statement and uses it in the next).
func newSnapshot(view cluster.CatalogView, srv Server) *snapshot {
	s := &snapshot{view: view, byOID: map[int64]*relation{}, tables: map[string]*table{}, srv: srv}
	oid := int64(1000)
	for _, d := range catalogRels {
		nsp := int64(oidPgCatalog)
		if d.schema == "information_schema" {
			nsp = oidInfoSchema
		}
		s.addRel(&relation{oid: oid, schema: d.schema, name: d.name, kind: d.kind, cols: d.cols, system: true, namespace: nsp})
		oid++
	}
	for _, t := range view.System {
		s.addRel(&relation{oid: oid, schema: "pg_catalog", name: t.Name, kind: "v", cols: userColumns(t.Columns), system: true, namespace: oidPgCatalog})
		oid++
	}
	for _, r := range userRelations(view) {
		s.addRel(r)
	}
	sort.Slice(s.rels, func(i, j int) bool { return s.rels[i].oid < s.rels[j].oid })
	return s
}

// userRelations are view's streams, tables and continuous queries with
// their OIDs.
func userRelations(view cluster.CatalogView) []*relation {
	var user []*relation
	for _, st := range view.Streams {
		user = append(user, &relation{schema: "public", name: st.Name, kind: "r", cols: userColumns(st.Columns), namespace: oidPublic})
	}
	for _, t := range view.Tables {
		user = append(user, &relation{schema: "public", name: t.Name, kind: "r", cols: userColumns(t.Columns), primary: t.PrimaryKey, namespace: oidPublic})
	}
	for _, q := range view.Queries {
		user = append(user, &relation{schema: "public", name: q.Name, kind: "m", cols: userColumns(q.Columns), def: q.SQL, namespace: oidPublic})
	}
	used := map[int64]bool{}
	for _, r := range user {
		r.oid = userOID(r.name, used)
		if len(r.primary) > 0 {
			r.indexOID = userOID(r.name+"_pkey", used)
		}
	}
	return user
}

func userColumns(cols []planner.Column) []column {
	out := make([]column, len(cols))
	for i, c := range cols {
		out[i] = declaredColumn(c)
	}
	return out
}

func (s *snapshot) addRel(r *relation) {
	s.rels = append(s.rels, r)
	s.byOID[r.oid] = r
}

// userOID is a stable OID for name in [16384, 2^31), probing past OIDs
// already taken.
func userOID(name string, used map[int64]bool) int64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	span := int64(1<<31 - 1 - firstUserOID)
	o := firstUserOID + int64(h.Sum32())%span
	for used[o] {
		o = firstUserOID + (o-firstUserOID+1)%span
	}
	used[o] = true
	return o
}

// lookup finds a relation by schema (empty: the search path, pg_catalog
// first as in PostgreSQL) and name.
func (s *snapshot) lookup(schema, name string) *relation {
	for _, r := range s.rels {
		if r.name != name {
			continue
		}
		if schema == r.schema || schema == "" && (r.schema == "pg_catalog" || r.schema == "public") {
			return r
		}
	}
	return nil
}

// isCatalogRelation reports whether an unqualified or qualified name is one
// of the emulated catalog relations.
func isCatalogRelation(schema, name string) bool {
	if schema == "pg_catalog" && strings.HasPrefix(name, "spate_") {
		return false // the engine's system tables, shown in pg_catalog
	}
	if schema == "pg_catalog" || schema == "information_schema" {
		return true
	}
	if schema != "" {
		return false
	}
	for _, d := range catalogRels {
		if d.schema == "pg_catalog" && d.name == name {
			return true
		}
	}
	return false
}

// table returns the rows of relation r.
func (s *snapshot) table(r *relation) (*table, error) {
	key := r.schema + "." + r.name
	if t, ok := s.tables[key]; ok {
		return t, nil
	}
	if !r.system || r.schema == "pg_catalog" && strings.HasPrefix(r.name, "spate_") {
		return nil, errorf(codeNotSupported, "%s cannot be read together with the catalog; query it on its own", r.name)
	}
	t := &table{cols: r.cols}
	if fill := fillers[key]; fill != nil {
		fill(s, t)
	}
	s.tables[key] = t
	return t, nil
}

// fillers produce the rows of the catalog relations that have any.
var fillers = map[string]func(s *snapshot, t *table){
	"pg_catalog.pg_namespace": func(s *snapshot, t *table) {
		for _, n := range []struct {
			oid  int64
			name string
		}{{oidPgCatalog, "pg_catalog"}, {oidPublic, "public"}, {oidInfoSchema, "information_schema"}} {
			t.add(map[string]any{"oid": n.oid, "nspname": n.name, "nspowner": int64(oidSuperuser)})
		}
	},
	"pg_catalog.pg_class": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			t.add(map[string]any{"oid": r.oid, "relname": r.name, "relnamespace": r.namespace, "relowner": int64(oidSuperuser),
				"relam": heapAM(r), "relpersistence": "p", "relkind": r.kind, "relnatts": int64(len(r.cols)),
				"relhasindex": len(r.primary) > 0, "relispopulated": true, "relreplident": "d", "reltuples": float64(-1),
				"relacl": s.acl(r)})
			if r.indexOID != 0 {
				t.add(map[string]any{"oid": r.indexOID, "relname": r.name + "_pkey", "relnamespace": r.namespace,
					"relowner": int64(oidSuperuser), "relam": int64(oidBtreeAM), "relpersistence": "p", "relkind": "i",
					"relnatts": int64(len(r.primary)), "relispopulated": true, "relreplident": "n", "reltuples": float64(-1)})
			}
		}
	},
	"pg_catalog.pg_attribute": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			for i, c := range r.cols {
				coll := int64(0)
				if c.typ.category == "S" {
					coll = 100
				}
				t.add(map[string]any{"attrelid": r.oid, "attname": c.name, "atttypid": c.typ.oid, "attstattarget": int64(-1),
					"attlen": c.typ.length, "attnum": int64(i + 1), "attcacheoff": int64(-1), "atttypmod": c.typmod,
					"attbyval": c.typ.length > 0 && c.typ.length <= 8, "attalign": "i", "attstorage": storage(c.typ),
					"attcompression": "", "attnotnull": isPrimary(r, i), "attidentity": "", "attgenerated": "",
					"attislocal": true, "attcollation": coll})
			}
			if r.indexOID != 0 {
				for k, i := range r.primary {
					c := r.cols[i]
					t.add(map[string]any{"attrelid": r.indexOID, "attname": c.name, "atttypid": c.typ.oid, "attstattarget": int64(-1),
						"attlen": c.typ.length, "attnum": int64(k + 1), "attcacheoff": int64(-1), "atttypmod": c.typmod,
						"attalign": "i", "attstorage": storage(c.typ), "attcompression": "", "attidentity": "", "attgenerated": "",
						"attislocal": true})
				}
			}
		}
	},
	"pg_catalog.pg_type": func(s *snapshot, t *table) {
		add := func(ty pgType) {
			typtype := "b"
			if ty.category == "P" {
				typtype = "p"
			}
			coll := int64(0)
			if ty.category == "S" {
				coll = 100
			}
			t.add(map[string]any{"oid": ty.oid, "typname": ty.name, "typnamespace": int64(oidPgCatalog), "typowner": int64(oidSuperuser),
				"typlen": ty.length, "typbyval": ty.length > 0 && ty.length <= 8, "typtype": typtype, "typcategory": ty.category,
				"typisdefined": true, "typdelim": ",", "typelem": ty.elem, "typarray": ty.array, "typinput": ty.name + "in",
				"typoutput": ty.name + "out", "typreceive": ty.name + "recv", "typsend": ty.name + "send", "typmodin": "-",
				"typmodout": "-", "typanalyze": "-", "typsubscript": "-", "typalign": "i", "typstorage": storage(ty),
				"typtypmod": int64(-1), "typcollation": coll})
		}
		oids := make([]int64, 0, len(typeByOID))
		for o := range typeByOID {
			oids = append(oids, o)
		}
		sort.Slice(oids, func(i, j int) bool { return oids[i] < oids[j] })
		for _, o := range oids {
			add(typeByOID[o])
		}
	},
	"pg_catalog.pg_collation": func(s *snapshot, t *table) {
		t.add(map[string]any{"oid": int64(100), "collname": "default", "collnamespace": int64(oidPgCatalog), "collowner": int64(oidSuperuser),
			"collprovider": "d", "collisdeterministic": true, "collencoding": int64(-1)})
	},
	"pg_catalog.pg_index": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			if r.indexOID == 0 {
				continue
			}
			key, zeros := make(vector, len(r.primary)), make(vector, len(r.primary))
			for k, i := range r.primary {
				key[k], zeros[k] = int64(i+1), int64(0)
			}
			t.add(map[string]any{"indexrelid": r.indexOID, "indrelid": r.oid, "indnatts": int64(len(key)), "indnkeyatts": int64(len(key)),
				"indisunique": true, "indisprimary": true, "indimmediate": true, "indisvalid": true, "indisready": true, "indislive": true,
				"indkey": key, "indcollation": zeros, "indclass": zeros, "indoption": zeros})
		}
	},
	"pg_catalog.pg_constraint": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			if r.indexOID == 0 {
				continue
			}
			key := make([]any, len(r.primary))
			for k, i := range r.primary {
				key[k] = int64(i + 1)
			}
			t.add(map[string]any{"oid": r.indexOID + 1, "conname": r.name + "_pkey", "connamespace": r.namespace, "contype": "p",
				"convalidated": true, "conrelid": r.oid, "conindid": r.indexOID, "confupdtype": " ", "confdeltype": " ",
				"confmatchtype": " ", "conislocal": true, "connoinherit": true, "conkey": key})
		}
	},
	"pg_catalog.pg_database": func(s *snapshot, t *table) {
		t.add(map[string]any{"oid": int64(oidDatabase), "datname": s.view.Database, "datdba": int64(oidSuperuser), "encoding": int64(6),
			"datlocprovider": "c", "datallowconn": true, "datconnlimit": int64(-1), "dattablespace": int64(1663),
			"datcollate": "C", "datctype": "C"})
	},
	"pg_catalog.pg_roles": func(s *snapshot, t *table) {
		for _, r := range s.roles() {
			t.add(map[string]any{"rolname": r.name, "rolsuper": r.super, "rolinherit": true, "rolcreaterole": r.super,
				"rolcreatedb": r.super, "rolcanlogin": r.login, "rolreplication": false, "rolconnlimit": int64(-1),
				"rolpassword": "********", "rolbypassrls": r.super, "oid": r.oid})
		}
	},
	"pg_catalog.pg_authid": func(s *snapshot, t *table) {
		for _, r := range s.roles() {
			t.add(map[string]any{"oid": r.oid, "rolname": r.name, "rolsuper": r.super, "rolinherit": true, "rolcreaterole": r.super,
				"rolcreatedb": r.super, "rolcanlogin": r.login, "rolbypassrls": r.super, "rolconnlimit": int64(-1)})
		}
	},
	"pg_catalog.pg_user": func(s *snapshot, t *table) {
		for _, r := range s.roles() {
			if r.login {
				t.add(map[string]any{"usename": r.name, "usesysid": r.oid, "usecreatedb": r.super, "usesuper": r.super,
					"usebypassrls": r.super, "passwd": "********"})
			}
		}
	},
	"pg_catalog.pg_settings": func(s *snapshot, t *table) {
		settings := map[string]string{}
		for k, v := range fixedSettings {
			settings[k] = v
		}
		for k, v := range s.view.Settings {
			settings[k] = v
		}
		names := make([]string, 0, len(settings))
		for k := range settings {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			v := settings[k]
			context, source := "user", "session"
			if _, fixed := fixedSettings[k]; fixed {
				context, source = "internal", "default"
			}
			t.add(map[string]any{"name": k, "setting": v, "category": "Spate", "short_desc": "", "context": context,
				"vartype": "string", "source": source, "boot_val": v, "reset_val": v})
		}
	},
	"pg_catalog.pg_proc": func(s *snapshot, t *table) {
		names := make([]string, 0, len(functions))
		for n := range functions {
			names = append(names, n)
		}
		sort.Strings(names)
		for i, n := range names {
			kind := "f"
			if aggregates[n] {
				kind = "a"
			}
			t.add(map[string]any{"oid": int64(5000 + i), "proname": n, "pronamespace": int64(oidPgCatalog), "proowner": int64(oidSuperuser),
				"prolang": int64(12), "procost": float64(1), "prokind": kind, "provolatile": "s", "proparallel": "s",
				"prorettype": int64(25), "proargtypes": vector{}, "prosrc": n})
		}
	},
	"pg_catalog.pg_am": func(s *snapshot, t *table) {
		t.add(map[string]any{"oid": int64(oidHeapAM), "amname": "heap", "amhandler": "heap_tableam_handler", "amtype": "t"})
		t.add(map[string]any{"oid": int64(oidBtreeAM), "amname": "btree", "amhandler": "bthandler", "amtype": "i"})
	},
	"pg_catalog.pg_tablespace": func(s *snapshot, t *table) {
		t.add(map[string]any{"oid": int64(1663), "spcname": "pg_default", "spcowner": int64(oidSuperuser)})
	},
	"pg_catalog.pg_language": func(s *snapshot, t *table) {
		t.add(map[string]any{"oid": int64(12), "lanname": "internal", "lanowner": int64(oidSuperuser)})
	},
	"pg_catalog.pg_cursors": func(s *snapshot, t *table) {
		for _, c := range s.view.Cursors {
			t.add(map[string]any{"name": c.Name, "statement": c.Statement, "is_holdable": c.Hold, "is_binary": c.Binary})
		}
	},
	"pg_catalog.pg_stat_activity": func(s *snapshot, t *table) {
		for _, b := range s.srv.Backends {
			row := map[string]any{"datid": int64(oidDatabase), "datname": b.Database, "pid": b.PID, "usename": b.User,
				"application_name": b.Application, "backend_start": timestamp(b.Started), "query_start": timestamp(b.QueryStart),
				"state_change": timestamp(b.StateChange), "state": b.State, "query": b.Query, "backend_type": "client backend",
				"leader_pid": nil, "client_port": nil, "query_id": nil}
			if host, port, err := net.SplitHostPort(b.ClientAddr); err == nil {
				row["client_addr"] = host
				if n, err := strconv.Atoi(port); err == nil {
					row["client_port"] = int64(n)
				}
			}
			for _, r := range s.roles() {
				if r.name == b.User {
					row["usesysid"] = r.oid
				}
			}
			t.add(row)
		}
	},
	"pg_catalog.pg_tables": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			if r.kind == "r" {
				t.add(map[string]any{"schemaname": r.schema, "tablename": r.name, "tableowner": "spate", "hasindexes": r.indexOID != 0})
			}
		}
	},
	"pg_catalog.pg_views": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			if r.kind == "v" {
				t.add(map[string]any{"schemaname": r.schema, "viewname": r.name, "viewowner": "spate", "definition": r.def})
			}
		}
	},
	"pg_catalog.pg_matviews": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			if r.kind == "m" {
				t.add(map[string]any{"schemaname": r.schema, "matviewname": r.name, "matviewowner": "spate", "ispopulated": true, "definition": r.def})
			}
		}
	},
	"pg_catalog.pg_indexes": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			if r.indexOID != 0 {
				t.add(map[string]any{"schemaname": r.schema, "tablename": r.name, "indexname": r.name + "_pkey", "indexdef": indexDef(r)})
			}
		}
	},
	"information_schema.schemata": func(s *snapshot, t *table) {
		for _, n := range []string{"information_schema", "pg_catalog", "public"} {
			t.add(map[string]any{"catalog_name": s.view.Database, "schema_name": n, "schema_owner": "spate"})
		}
	},
	"information_schema.tables": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			typ := "BASE TABLE"
			if r.kind != "r" {
				typ = "VIEW"
			}
			ins := "YES"
			if r.kind != "r" || r.system {
				ins = "NO"
			}
			t.add(map[string]any{"table_catalog": s.view.Database, "table_schema": r.schema, "table_name": r.name,
				"table_type": typ, "is_insertable_into": ins, "is_typed": "NO"})
		}
	},
	"information_schema.columns": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			for i, c := range r.cols {
				row := map[string]any{"table_catalog": s.view.Database, "table_schema": r.schema, "table_name": r.name,
					"column_name": c.name, "ordinal_position": int64(i + 1), "is_nullable": yesNo(!isPrimary(r, i)),
					"data_type": c.typ.sqlName, "udt_catalog": s.view.Database, "udt_schema": "pg_catalog", "udt_name": c.typ.name,
					"dtd_identifier": strconv.Itoa(i + 1), "is_self_referencing": "NO", "is_identity": "NO", "identity_cycle": "NO",
					"is_generated": "NEVER", "is_updatable": yesNo(r.kind == "r" && !r.system)}
				if c.typmod > 4 {
					row["character_maximum_length"], row["character_octet_length"] = c.typmod-4, 4*(c.typmod-4)
				}
				switch c.typ.oid {
				case 21, 23, 20:
					row["numeric_precision"], row["numeric_precision_radix"], row["numeric_scale"] = c.typ.length*8-1, int64(2), int64(0)
				case 700, 701:
					row["numeric_precision"], row["numeric_precision_radix"] = map[int64]int64{700: 24, 701: 53}[c.typ.oid], int64(2)
				case 1114, 1184, 1186:
					row["datetime_precision"] = int64(6)
				}
				if c.typ.elem != 0 && c.typ.category == "A" {
					row["data_type"] = "ARRAY"
				}
				t.add(row)
			}
		}
	},
	"information_schema.views": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			if r.kind == "v" || r.kind == "m" {
				t.add(map[string]any{"table_catalog": s.view.Database, "table_schema": r.schema, "table_name": r.name,
					"view_definition": r.def, "check_option": "NONE", "is_updatable": "NO", "is_insertable_into": "NO",
					"is_trigger_updatable": "NO", "is_trigger_deletable": "NO", "is_trigger_insertable_into": "NO"})
			}
		}
	},
	"information_schema.table_constraints": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			if r.indexOID != 0 {
				t.add(map[string]any{"constraint_catalog": s.view.Database, "constraint_schema": r.schema, "constraint_name": r.name + "_pkey",
					"table_catalog": s.view.Database, "table_schema": r.schema, "table_name": r.name, "constraint_type": "PRIMARY KEY",
					"is_deferrable": "NO", "initially_deferred": "NO", "enforced": "YES"})
			}
		}
	},
	"information_schema.key_column_usage": func(s *snapshot, t *table) {
		for _, r := range s.rels {
			for k, i := range r.primary {
				t.add(map[string]any{"constraint_catalog": s.view.Database, "constraint_schema": r.schema, "constraint_name": r.name + "_pkey",
					"table_catalog": s.view.Database, "table_schema": r.schema, "table_name": r.name, "column_name": r.cols[i].name,
					"ordinal_position": int64(k + 1)})
			}
		}
	},
}

// declaredColumn is a Spate column as PostgreSQL describes it: its type
// as declared where the declaration says more than the storage type
// (smallint, varchar(n), char(n)), else the storage type's.
func declaredColumn(c planner.Column) column {
	col := column{name: c.Name, typ: typeByOID[oidOfType(c.Type)], typmod: -1}
	decl := strings.ToLower(strings.TrimSpace(c.Declared))
	base, mod := decl, ""
	if i := strings.IndexByte(decl, '('); i >= 0 && strings.HasSuffix(decl, ")") {
		base, mod = strings.TrimSpace(decl[:i]), strings.TrimSpace(decl[i+1:len(decl)-1])
	}
	t, ok := typeNamed(base)
	switch {
	case !ok:
	case c.Type == planner.TypeInt && t.oid == 21:
		col.typ = t
	case c.Type == planner.TypeText && (t.oid == 1043 || t.oid == 1042 || base == "char"):
		col.typ = typeByOID[1043]
		if t.oid == 1042 || base == "char" {
			col.typ = typeByOID[1042]
		}
		if n, err := strconv.Atoi(mod); err == nil && n > 0 {
			col.typmod = int64(n) + 4
		} else if col.typ.oid == 1042 {
			col.typmod = 5 // char is char(1)
		}
	}
	return col
}

// fixedSettings are PostgreSQL's preset, read-only parameters that
// clients look up in pg_settings (pgjdbc reads max_index_keys).
var fixedSettings = map[string]string{
	"max_index_keys":        "32",
	"max_identifier_length": "63",
	"max_function_args":     "100",
	"block_size":            "8192",
	"segment_size":          "131072",
	"server_version_num":    "150000",
	"data_checksums":        "off",
	"lc_collate":            "C",
	"lc_ctype":              "C",
	"server_encoding":       "UTF8",
}

// timestamp is PostgreSQL's text form of a timestamp with time zone, or
// NULL for the zero time.
func timestamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02 15:04:05.999999-07")
}

func heapAM(r *relation) int64 {
	if r.kind == "r" || r.kind == "m" {
		return oidHeapAM
	}
	return 0
}

func storage(t pgType) string {
	if t.length == -1 {
		return "x"
	}
	return "p"
}

func isPrimary(r *relation, col int) bool {
	for _, i := range r.primary {
		if i == col {
			return true
		}
	}
	return false
}

func indexDef(r *relation) string {
	names := make([]string, len(r.primary))
	for k, i := range r.primary {
		names[k] = quoteIdentIfNeeded(r.cols[i].name)
	}
	return "CREATE UNIQUE INDEX " + quoteIdentIfNeeded(r.name+"_pkey") + " ON " + r.schema + "." + quoteIdentIfNeeded(r.name) + " USING btree (" + strings.Join(names, ", ") + ")"
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// role is a row of pg_roles.
type role struct {
	oid          int64
	name         string
	super, login bool
}

// roles lists the roles; the built-in superuser has OID 10 and the others
// OIDs from their names.
func (s *snapshot) roles() []role {
	if s.roleList != nil {
		return s.roleList
	}
	used := map[int64]bool{}
	for _, r := range s.view.Roles {
		ro := role{name: r.Name, super: r.Superuser, login: r.Login, oid: oidSuperuser}
		if r.Name != cluster.SuperuserName {
			ro.oid = userOID("role "+r.Name, used)
		}
		s.roleList = append(s.roleList, ro)
	}
	if len(s.roleList) == 0 {
		s.roleList = []role{{oid: oidSuperuser, name: cluster.SuperuserName, super: true, login: true}}
	}
	return s.roleList
}

// privileged reports whether role may use privilege ("SELECT", "INSERT")
// on relation r: superusers may do anything, others what was granted;
// catalog relations are readable by all.
func (s *snapshot) privileged(roleName string, r *relation, privilege string) bool {
	for _, ro := range s.roles() {
		if ro.name == roleName && ro.super {
			return true
		}
	}
	if r.system {
		return privilege == "SELECT"
	}
	for _, g := range s.view.Grants {
		if g.Role == roleName && g.Object == r.name && g.Privilege == privilege {
			return true
		}
	}
	return false
}

// acl is relacl: PostgreSQL's aclitem text for the owner and each grant.
func (s *snapshot) acl(r *relation) any {
	if r.system {
		return nil
	}
	letters := map[string]string{}
	var roles []string
	for _, g := range s.view.Grants {
		if g.Object != r.name {
			continue
		}
		if _, ok := letters[g.Role]; !ok {
			roles = append(roles, g.Role)
		}
		letters[g.Role] += map[string]string{"SELECT": "r", "INSERT": "a"}[g.Privilege]
	}
	if len(roles) == 0 {
		return nil
	}
	out := []any{cluster.SuperuserName + "=arwdDxt/" + cluster.SuperuserName}
	for _, ro := range roles {
		out = append(out, quoteIdentIfNeeded(ro)+"="+letters[ro]+"/"+cluster.SuperuserName)
	}
	return out
}

// roleName returns the name of the role with the given OID.
func (s *snapshot) roleName(oid int64) (string, bool) {
	for _, r := range s.roles() {
		if r.oid == oid {
			return r.name, true
		}
	}
	return "", false
}
