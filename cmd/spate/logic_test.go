package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spatedb/spate/internal/sqltest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	sqltest.RemoveBuilds()
	os.Exit(code)
}

// logicFiles returns the scripts in testdata/logic at the module root.
func logicFiles(t *testing.T) []string {
	t.Helper()
	root, err := sqltest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "testdata", "logic", "*.slt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/logic/*.slt scripts")
	}
	return files
}

func scriptName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), ".slt")
}

// logicConfigs are the server configurations every script runs under:
// everything in one process, with one and with three instances per
// partitioned stage, and a cluster of three worker processes that run
// the instances (one per worker) behind the coordinator. Results must
// not depend on them (metamorphic testing): a script whose expected
// output does (SHOW parallelism, say) carries the line
// "# parallelism-sensitive" and runs under the first only.
var logicConfigs = []struct {
	name string
	args []string
}{
	{"single", []string{"--workers", "0", "--parallelism", "1"}},
	{"parallelism3", []string{"--workers", "0", "--parallelism", "3"}},
	{"workers3", []string{"--workers", "3"}},
}

const parallelismSensitive = "# parallelism-sensitive"

// TestLogic runs every testdata/logic script against a `spate serve` of
// its own, under each configuration, as subtests
// (go test -run 'TestLogic/default/expr').
func TestLogic(t *testing.T) {
	files := logicFiles(t)
	for i, cfg := range logicConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			for _, path := range files {
				t.Run(scriptName(path), func(t *testing.T) {
					if i > 0 && hasLine(t, path, parallelismSensitive) {
						t.Skipf("%s: %s", filepath.Base(path), parallelismSensitive)
					}
					t.Parallel()
					srv := sqltest.StartSpate(t, cfg.args...)
					sqltest.RunFile(t, path, srv.ConnString())
				})
			}
		})
	}
}

// hasLine reports whether the file has a line equal to line.
func hasLine(t *testing.T, path, line string) bool {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(src), "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// postgresCompatible marks a script whose every record means the same in
// PostgreSQL. TestLogicOnPostgres runs such scripts against PostgreSQL, to
// check that their expected results are PostgreSQL's.
const postgresCompatible = "# postgres-compatible"

// TestLogicOnPostgres runs the postgres-compatible scripts against
// PostgreSQL (one database per script): the expected values were written
// by hand, and this keeps them honest.
func TestLogicOnPostgres(t *testing.T) {
	var files []string
	for _, path := range logicFiles(t) {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(src), postgresCompatible+"\n") {
			files = append(files, path)
		}
	}
	if len(files) == 0 {
		t.Skip("no postgres-compatible scripts")
	}
	pg := sqltest.StartPostgres(t)
	admin := sqltest.Connect(t, pg.ConnString())
	ident := regexp.MustCompile(`[^a-z0-9_]`)
	for _, path := range files {
		db := "logic_" + ident.ReplaceAllString(strings.ToLower(scriptName(path)), "_")
		if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+db); err != nil {
			t.Fatal(err)
		}
		t.Run(scriptName(path), func(t *testing.T) {
			sqltest.RunFile(t, path, strings.Replace(pg.ConnString(), "dbname=postgres", "dbname="+db, 1))
		})
	}
}
