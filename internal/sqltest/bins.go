package sqltest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
)

// CI reports whether the tests run under CI (the environment variable CI is
// "true"). Under CI a missing external binary fails the test instead of
// skipping it, so that a broken machine is never mistaken for a green run.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test because something it drives for real is not
// installed — or fails it under CI (see CI).
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf("CI=true and "+format, args...)
	}
	t.Skipf(format, args...)
}

// pgBinDirs lists the directories searched for PostgreSQL server binaries,
// in order: /usr/local/bin, then /usr/lib/postgresql/<version>/bin with the
// highest version first. PATH is searched before all of them.
func pgBinDirs() []string {
	dirs := []string{"/usr/local/bin"}
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(versions, func(i, j int) bool {
		return versionOf(versions[i]) > versionOf(versions[j])
	})
	return append(dirs, versions...)
}

// versionOf extracts the major version number from
// /usr/lib/postgresql/<v>/bin (0 when it is not a number).
func versionOf(dir string) int {
	v := filepath.Base(filepath.Dir(dir))
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return n
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// FindBinary returns the path of a PostgreSQL program (psql, initdb,
// postgres, …): from PATH, /usr/bin, /usr/local/bin or
// /usr/lib/postgresql/*/bin. It returns "" when none is found.
func FindBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range append([]string{"/usr/bin"}, pgBinDirs()...) {
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return p
		}
	}
	return ""
}

// RequireBinary is FindBinary that skips the test (fails it under CI) when
// the program is missing.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p := FindBinary(name)
	if p == "" {
		Missing(t, "%s not found in PATH, /usr/bin, /usr/local/bin or /usr/lib/postgresql/*/bin (run scripts/test-deps.sh)", name)
	}
	return p
}

// findServerBinaries returns initdb and postgres from the same directory,
// so that a data directory is never created by one version and served by
// another.
func findServerBinaries() (initdb, postgres string, err error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	dirs = append(dirs, pgBinDirs()...)
	for _, dir := range dirs {
		i, p := filepath.Join(dir, "initdb"), filepath.Join(dir, "postgres")
		if isExecutable(i) && isExecutable(p) {
			return i, p, nil
		}
	}
	return "", "", errors.New("initdb and postgres not found in PATH, /usr/local/bin or /usr/lib/postgresql/*/bin (run scripts/test-deps.sh)")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// ModuleRoot returns the directory holding go.mod, found by walking up
// from the working directory (a test's package directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
