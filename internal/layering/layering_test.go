// Package layering checks that Spate's packages import each other only in
// the directions DESIGN.md allows.
package layering

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/spatedb/spate/"

// allowed lists, for each top-level folder, the Spate folders its
// non-test code may import. pgwire also uses exec's value formatting
// (PostgreSQL text output of Arrow values), a leaf with no Spate imports.
var allowed = map[string][]string{
	"parser":   {},
	"planner":  {"parser"},
	"exec":     {},
	"storage":  {},
	"cluster":  {"planner", "exec", "storage", "parser"},
	"elastic":  {"cluster"},
	"pgwire":   {"parser", "planner", "cluster", "exec"},
	"bench":    {"exec", "cluster", "parser", "internal"},
	"cmd":      {"*"},
	"internal": {"*"},
}

func TestLayering(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		top := strings.Split(filepath.ToSlash(rel), "/")[0]
		ok, known := allowed[top]
		if !known {
			if strings.Contains(rel, string(filepath.Separator)) {
				t.Errorf("%s: folder %q is not in the layering table (DESIGN.md layout)", rel, top)
			}
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(p, module) {
				continue
			}
			dep := strings.Split(strings.TrimPrefix(p, module), "/")[0]
			if dep == top || contains(ok, "*") || contains(ok, dep) {
				continue
			}
			t.Errorf("%s imports %s: %s may import only %v", rel, p, top, ok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
