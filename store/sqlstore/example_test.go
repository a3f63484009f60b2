package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/typedsession/session"
	"github.com/typedsession/session/store/sqlstore"
)

// A SQLite file as the package documentation advises opening it; with
// PostgreSQL only the driver, the URL and the Dialect differ.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "sessions.db")+
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close() // the application owns the pool: close it last

	ctx := context.Background()
	opts := sqlstore.Options{Dialect: sqlstore.SQLite, Timeout: time.Second}
	if err := sqlstore.CreateSchema(ctx, db, opts); err != nil { // idempotent
		log.Fatal(err)
	}
	st, err := sqlstore.New(ctx, db, opts)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close() // stops the sweeper

	type Sess struct{ Counter int }
	mgr, err := session.New[Sess](st, session.Options{})
	if err != nil {
		log.Fatal(err)
	}
	// Without net/http: begin, change, commit.
	tx := mgr.Begin(ctx, "")
	s, err := tx.Get()
	if err != nil {
		log.Fatal(err)
	}
	s.Counter++
	res, err := tx.Commit(ctx)
	if err != nil {
		log.Fatal(err)
	}
	again, err := mgr.Begin(ctx, res.Token).Get()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("counter:", again.Counter)
	// Output: counter: 1
}

// A database without the table fails at start-up, not at the first request.
func ExampleNew_missingTable() {
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	_, err = sqlstore.New(context.Background(), db, sqlstore.Options{Dialect: sqlstore.SQLite})
	fmt.Println(errors.Is(err, sqlstore.ErrSchema))
	// Output: true
}
