// Command doccheck reports exported names that have no doc comment, and
// packages that have no package comment, so that every package reads well in
// go doc and on pkg.go.dev.
//
//	go run ./internal/cmd/doccheck [DIR...]
//
// It walks each DIR (default ".") and checks every Go file that is not a test
// file, skipping directories named testdata or examples, directories whose
// name starts with "." or "_", and nested modules (a directory below DIR
// with a go.mod of its own). Generated files are skipped too.
//
// What must have a doc comment: every exported top-level function, type,
// constant and variable, and every exported method of an exported type. In a
// parenthesised const, var or type block, a doc comment on the block counts
// for all of its members. A doc comment made only of directives (such as
// //go:generate) does not count. Every package needs a package comment in at
// least one of its files.
//
// Each finding is printed as
//
//	file:line: Name has no doc comment
//
// with methods named Type.Method and packages as "package name". The exit
// status is 0 when there is nothing to report, 1 when there is, and 2 when a
// file cannot be read or parsed.
package main

import (
	"cmp"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// finding is one name that lacks a doc comment.
type finding struct {
	file string
	line int
	name string
}

func (f finding) String() string {
	return fmt.Sprintf("%s:%d: %s has no doc comment", f.file, f.line, f.name)
}

func main() {
	roots := os.Args[1:]
	if len(roots) == 0 {
		roots = []string{"."}
	}
	var all []finding
	for _, root := range roots {
		found, err := check(root)
		if err != nil {
			fmt.Fprintln(os.Stderr, "doccheck:", err)
			os.Exit(2)
		}
		all = append(all, found...)
	}
	for _, f := range all {
		fmt.Println(f)
	}
	if len(all) > 0 {
		os.Exit(1)
	}
}

// check returns the findings for every package under root, sorted by file
// and line.
func check(root string) ([]finding, error) {
	fset := token.NewFileSet()
	// Files grouped by directory and package name, in walk (lexical) order.
	type pkgKey struct{ dir, name string }
	var order []pkgKey
	pkgs := map[pkgKey][]*ast.File{}
	var out []finding

	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(path, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") ||
			strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil
		}
		k := pkgKey{filepath.Dir(path), f.Name.Name}
		if _, ok := pkgs[k]; !ok {
			order = append(order, k)
		}
		pkgs[k] = append(pkgs[k], f)
		out = append(out, checkFile(fset, f)...)
		return nil
	})
	if err != nil {
		return nil, err
	}

	for _, k := range order {
		files := pkgs[k]
		if !slices.ContainsFunc(files, func(f *ast.File) bool { return hasText(f.Doc) }) {
			out = append(out, at(fset, files[0].Package, "package "+k.name))
		}
	}
	slices.SortFunc(out, func(a, b finding) int {
		return cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.line, b.line), cmp.Compare(a.name, b.name))
	})
	return out, nil
}

// skipDir reports whether the walk leaves out the directory at path.
func skipDir(path, name string) bool {
	if name == "testdata" || name == "examples" || name == "vendor" ||
		strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return true
	}
	// A nested module is another module's business.
	_, err := os.Stat(filepath.Join(path, "go.mod"))
	return err == nil
}

// checkFile returns the exported top-level names of f that lack a doc
// comment.
func checkFile(fset *token.FileSet, f *ast.File) []finding {
	var out []finding
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || hasText(d.Doc) {
				continue
			}
			name := d.Name.Name
			if d.Recv != nil {
				recv := recvType(d.Recv)
				if recv == "" || !token.IsExported(recv) {
					continue // a method of an unexported type is not shown
				}
				name = recv + "." + name
			}
			out = append(out, at(fset, d.Name.Pos(), name))
		case *ast.GenDecl:
			if d.Tok == token.IMPORT {
				continue
			}
			// A comment on a parenthesised block documents its members.
			if d.Lparen.IsValid() && hasText(d.Doc) {
				continue
			}
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() && !hasText(s.Doc) && !hasText(d.Doc) {
						out = append(out, at(fset, s.Name.Pos(), s.Name.Name))
					}
				case *ast.ValueSpec:
					if hasText(s.Doc) || hasText(d.Doc) {
						continue
					}
					for _, n := range s.Names {
						if n.IsExported() {
							out = append(out, at(fset, n.Pos(), n.Name))
						}
					}
				}
			}
		}
	}
	return out
}

// recvType returns the name of a method's receiver type, without pointer
// or type parameters: "Manager" for (m *Manager[T]).
func recvType(fl *ast.FieldList) string {
	if fl == nil || len(fl.List) == 0 {
		return ""
	}
	t := fl.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.ParenExpr:
			t = x.X
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// hasText reports whether a comment group says something beyond
// directives such as //go:generate.
func hasText(g *ast.CommentGroup) bool {
	return g != nil && strings.TrimSpace(g.Text()) != ""
}

func at(fset *token.FileSet, pos token.Pos, name string) finding {
	p := fset.Position(pos)
	return finding{file: p.Filename, line: p.Line, name: name}
}
