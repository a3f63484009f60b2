package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCheck runs the check over testdata/src and compares its findings with
// the `// want "Name"` comments in the files there: each names a finding
// expected on its line. Files the check must skip (tests, generated files,
// examples, testdata, hidden directories, nested modules) carry undocumented
// names and no want comments.
func TestCheck(t *testing.T) {
	root := filepath.Join("testdata", "src")
	got, err := check(root)
	if err != nil {
		t.Fatal(err)
	}
	var gotLines []string
	for _, f := range got {
		gotLines = append(gotLines, filepath.ToSlash(f.String()))
	}
	want := wants(t, root)
	if !slices.Equal(gotLines, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(gotLines, "\n"), strings.Join(want, "\n"))
	}
}

// TestClean checks that a package with nothing missing gives no findings.
func TestClean(t *testing.T) {
	got, err := check(filepath.Join("testdata", "src", "good"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("findings in a documented package: %v", got)
	}
}

// TestParseError checks that a file that does not parse is an error, not a
// silent pass.
func TestParseError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte("package x\nfunc {"), 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := check(dir); err == nil {
		t.Error("check of a file that does not parse: no error")
	}
}

var wantRE = regexp.MustCompile(`// want((?: "[^"]*")+)\s*$`)

// wants returns the findings that the want comments under root expect, in
// the order check reports them.
func wants(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			m := wantRE.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			for _, q := range regexp.MustCompile(`"[^"]*"`).FindAllString(m[1], -1) {
				name, err := strconv.Unquote(q)
				if err != nil {
					return err
				}
				out = append(out, fmt.Sprintf("%s:%d: %s has no doc comment", filepath.ToSlash(path), line, name))
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no want comments found")
	}
	return out
}
