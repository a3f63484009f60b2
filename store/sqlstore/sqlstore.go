package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/typedsession/session/store"
)

// DefaultTable is the table a Store uses when Options.Table is empty.
const DefaultTable = "typedsession"

// DefaultSweepInterval is how often expired rows are deleted when
// Options.SweepInterval is zero.
const DefaultSweepInterval = 5 * time.Minute

// SweepBatch is the most rows one statement of a sweep deletes; a sweep runs
// statements until one deletes fewer.
const SweepBatch = 500

// Dialect is the SQL a Store speaks: the database behind the *sql.DB.
type Dialect int

// The dialects. The zero Dialect is none: Options.Dialect must be set.
const (
	// PostgreSQL, 9.5 or later (for INSERT ... ON CONFLICT), through any
	// database/sql driver, such as github.com/jackc/pgx/v5/stdlib.
	PostgreSQL Dialect = iota + 1

	// SQLite, 3.35 or later (for upserts with RETURNING), through any
	// database/sql driver, such as modernc.org/sqlite.
	SQLite
)

// String returns the dialect's name.
func (d Dialect) String() string {
	switch d {
	case PostgreSQL:
		return "PostgreSQL"
	case SQLite:
		return "SQLite"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// Options configures a Store and the schema CreateSchema makes. Dialect is
// required; every other field has a default.
type Options struct {
	// Dialect is the database behind the *sql.DB: PostgreSQL or SQLite.
	Dialect Dialect

	// Table is the name of the table that holds the records; empty means
	// DefaultTable. It must be a lower-case SQL identifier of at most 48
	// characters: a letter or an underscore, then letters, digits or
	// underscores, not starting with "sqlite_". It is used as it is,
	// unqualified: on PostgreSQL the connection's search_path decides the
	// schema.
	Table string

	// Timeout, when above zero, bounds each call: a call whose context has
	// no deadline, or a later one, gets this much time. Zero (or less)
	// leaves the bound to the caller's context alone. Set it (to, say, a
	// second) unless every caller's context has a deadline: an incoming
	// request's context has none, and a statement waiting for a lock, or a
	// server that stopped answering, would otherwise hold the request.
	Timeout time.Duration

	// SweepInterval is the time between sweeps of expired rows. Zero means
	// DefaultSweepInterval; a negative value starts no sweeper (expired
	// rows, never returned, then stay until overwritten or deleted by a
	// call to Sweep or a job of your own).
	SweepInterval time.Duration

	// Now is the clock that decides what has expired; nil means time.Now.
	// It is this process's clock, not the database's; tests inject their
	// own. Instances that share a table should keep their clocks in step.
	Now func() time.Time

	// Logger receives the errors of the background sweeper; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Store is a [store.Store] kept in one table of a SQL database, with its
// per-owner index in two more. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	q       queries
	load    stmt
	create  stmt
	replace stmt
	delete  stmt
	sweep   [3]stmt // the sessions, owners and epochs tables

	// The per-owner index's statements; see index.go.
	bind, bindEpoch, bindEntry, unbind   stmt
	sessions, epoch, setEpoch, dropEpoch stmt
	now                                  func() time.Time
	timeout                              time.Duration
	logger                               *slog.Logger

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool
}

var _ store.Store = (*Store)(nil)

// errUnsettled reports a write whose record kept changing under it.
var errUnsettled = errors.New("the record kept changing")

// errClosed reports a call after Close.
var errClosed = errors.New("store closed")

// New returns a Store that keeps records in the table opts names, through
// db, which the caller keeps and closes. It checks, with ctx, that the table
// is there with the columns the Store uses: when it is not, the error wraps
// [ErrSchema]; when the database cannot be reached, the error wraps the
// driver's. It then starts the sweeper, which [Store.Close] stops.
func New(ctx context.Context, db *sql.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: New called with a nil *sql.DB")
	}
	q, err := newQueries(opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, q: q, now: opts.Now, timeout: max(opts.Timeout, 0), logger: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if err := s.checkTable(ctx); err != nil {
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	if opts.Dialect == SQLite {
		s.checkBusyTimeout(ctx)
	}
	every := opts.SweepInterval
	if every == 0 {
		every = DefaultSweepInterval
	}
	if every > 0 {
		sctx, stop := context.WithCancel(context.Background())
		s.stop = stop
		s.done = make(chan struct{})
		go s.sweeper(sctx, every)
	}
	return s, nil
}

// Load implements [store.Store]: one SELECT of the row under key whose
// expiry is after the Store's present time.
func (s *Store) Load(ctx context.Context, key string) (record []byte, found bool, err error) {
	if s.closed.Load() {
		return nil, false, fmt.Errorf("sqlstore: load: %w", errClosed)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	record, err = s.current(ctx, key, s.now().UnixMilli())
	if err != nil {
		return nil, false, wrap(ctx, "load", err)
	}
	return record, len(record) > 0, nil
}

// current reads the live record under key, or nil when there is none.
func (s *Store) current(ctx context.Context, key string, now int64) ([]byte, error) {
	var rec []byte
	err := s.load.queryRow(ctx, []byte(key), now).Scan(&rec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return rec, err
}

// Write implements [store.Store]. Each op is one conditional statement,
// run on its own (not in a transaction with the others), in order; see the
// package documentation for the statements. An op that does not apply is
// followed by a SELECT of the live record, its Current.
//
// Write stops at the first error, which wraps the driver's (or the
// context's); the ops before it are done, the one that failed may or may not
// have been, and those after it were not tried.
func (s *Store) Write(ctx context.Context, ops []store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	if s.closed.Load() {
		return fmt.Errorf("sqlstore: write: %w", errClosed)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.now().UnixMilli()
	for i := range ops {
		op := &ops[i]
		op.Applied, op.Current = false, nil
		if err := s.write(ctx, op, now); err != nil {
			return wrap(ctx, "write", err)
		}
	}
	return nil
}

// maxAttempts bounds how often write tries an op whose record changed
// between its statement and the SELECT of the record.
const maxAttempts = 4

// write applies one op.
func (s *Store) write(ctx context.Context, op *store.Op, now int64) error {
	key := []byte(op.Key)
	exp := op.Expiry.UnixMilli()
	keep := len(op.New) > 0 && !op.Expiry.IsZero() && exp > now
	for range maxAttempts {
		var res sql.Result
		var err error
		switch {
		case len(op.Old) == 0 && !keep:
			// A delete of no record: it holds when no live record is
			// there, and then there is nothing to do.
			cur, err := s.current(ctx, op.Key, now)
			if err != nil {
				return err
			}
			op.Applied, op.Current = cur == nil, cur
			return nil
		case len(op.Old) == 0:
			res, err = s.create.exec(ctx, key, op.New, exp, now)
		case keep:
			res, err = s.replace.exec(ctx, op.New, exp, key, op.Old, now)
		default:
			res, err = s.delete.exec(ctx, key, op.Old, now)
		}
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n > 0 {
			op.Applied = true
			return nil
		}
		cur, err := s.current(ctx, op.Key, now)
		if err != nil {
			return err
		}
		if bytes.Equal(cur, op.Old) {
			// The record changed again between the two statements, back
			// to what the op expects: the op would apply now.
			continue
		}
		op.Current = cur
		return nil
	}
	return errUnsettled
}

// Close stops the sweeper, waits for it to return (a sweep under way is
// cancelled) and releases the statements the Store prepared. It does not
// close the *sql.DB. Calls after Close fail; Close may be called more than
// once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.stop != nil {
			s.stop()
			<-s.done
		}
		err = s.closeStatements()
	})
	return err
}

func noop() {}

// bound applies Options.Timeout to ctx unless ctx already ends sooner.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout <= 0 {
		return ctx, noop
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= s.timeout {
		return ctx, noop
	}
	return context.WithTimeout(ctx, s.timeout)
}

// wrap names the operation in err and, when ctx has ended, makes sure that
// err matches the context's error with errors.Is, whatever the driver
// returned for the interrupted statement. Driver errors carry no values of
// the statement's parameters, so neither a key nor a record ends up in the
// text.
func wrap(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("sqlstore: %s: %w (%w)", op, cerr, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}
