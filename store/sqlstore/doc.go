// Package sqlstore keeps session records in one table of a PostgreSQL or
// SQLite database, and the per-owner index of sessions (listing and
// revoking a user's sessions) in two more, through [database/sql].
//
// It is a module of its own (github.com/typedsession/session/store/sqlstore),
// so that the session library itself depends on no database driver. The
// application brings the driver and the *sql.DB; the tests use
// github.com/jackc/pgx/v5/stdlib for PostgreSQL and modernc.org/sqlite (pure
// Go, no cgo) for SQLite.
//
// # Setting up
//
// PostgreSQL:
//
//	db, err := sql.Open("pgx", "postgres://app@db.internal/app")
//	db.SetMaxIdleConns(32) // see "Connections" below
//	opts := sqlstore.Options{Dialect: sqlstore.PostgreSQL, Timeout: time.Second}
//	err = sqlstore.CreateSchema(ctx, db, opts) // or run the SQL below with your migration tool
//	st, err := sqlstore.New(ctx, db, opts)
//	defer st.Close() // after the HTTP server has stopped; then db.Close()
//	mgr, err := session.New[Sess](st, session.Options{Cipher: ring})
//
// SQLite, with modernc.org/sqlite:
//
//	db, err := sql.Open("sqlite", "file:sessions.db?_pragma=busy_timeout(5000)"+
//		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
//	opts := sqlstore.Options{Dialect: sqlstore.SQLite, Timeout: time.Second}
//
// The busy timeout comes first: the pragmas run in order on each new
// connection, and switching a fresh file to WAL while another connection
// does the same fails at once without one. The rest is as above.
//
// [New] checks that the table is there, with the columns the Store uses: a
// missing table is an error at start-up (matching [ErrSchema]), not at the
// first request. The application owns db: the Store
// never closes it.
//
// # The tables
//
// Three tables. The sessions table has one row per session record: key is
// the key the session manager passes (a hash of the session token, never
// the token), record is the record as the manager wrote it (sealed, when
// the manager has a Cipher; plaintext otherwise), expiry its absolute
// expiry in Unix milliseconds. The two others, named after it, hold the
// per-owner index (see "Per-owner index" below): <table>_owners a row per
// session bound to an owner, <table>_epochs a row per owner. [CreateSchema]
// runs these statements (here for the default table name; [Schema] returns
// them for any), each of which does nothing when its object exists, so that
// running it again on a database made by an earlier version adds what is
// missing. On PostgreSQL:
//
//	CREATE TABLE IF NOT EXISTS "typedsession" (
//		key    bytea  PRIMARY KEY,
//		record bytea  NOT NULL,
//		expiry bigint NOT NULL
//	);
//	CREATE INDEX IF NOT EXISTS "typedsession_expiry" ON "typedsession" (expiry);
//	CREATE TABLE IF NOT EXISTS "typedsession_owners" (
//		owner  bytea  NOT NULL,
//		key    bytea  NOT NULL,
//		expiry bigint NOT NULL,
//		PRIMARY KEY (owner, key)
//	);
//	CREATE INDEX IF NOT EXISTS "typedsession_owners_expiry" ON "typedsession_owners" (expiry);
//	CREATE TABLE IF NOT EXISTS "typedsession_epochs" (
//		owner  bytea  PRIMARY KEY,
//		epoch  bytea  NOT NULL,
//		expiry bigint NOT NULL
//	);
//	CREATE INDEX IF NOT EXISTS "typedsession_epochs_expiry" ON "typedsession_epochs" (expiry);
//
// On SQLite (the owners table is WITHOUT ROWID, so that an owner's rows are
// stored together, in key order, and only once):
//
//	CREATE TABLE IF NOT EXISTS "typedsession" (
//		key    BLOB    PRIMARY KEY NOT NULL,
//		record BLOB    NOT NULL,
//		expiry INTEGER NOT NULL
//	);
//	CREATE INDEX IF NOT EXISTS "typedsession_expiry" ON "typedsession" (expiry);
//	CREATE TABLE IF NOT EXISTS "typedsession_owners" (
//		owner  BLOB    NOT NULL,
//		key    BLOB    NOT NULL,
//		expiry INTEGER NOT NULL,
//		PRIMARY KEY (owner, key)
//	) WITHOUT ROWID;
//	CREATE INDEX IF NOT EXISTS "typedsession_owners_expiry" ON "typedsession_owners" (expiry);
//	CREATE TABLE IF NOT EXISTS "typedsession_epochs" (
//		owner  BLOB    PRIMARY KEY NOT NULL,
//		epoch  BLOB    NOT NULL,
//		expiry INTEGER NOT NULL
//	);
//	CREATE INDEX IF NOT EXISTS "typedsession_epochs_expiry" ON "typedsession_epochs" (expiry);
//
// Options.Table names another table (the names of the index's tables and of
// the indexes follow it; so do not name one table after another's _owners
// or _epochs). It must be
// a lower-case identifier: a letter or an underscore, then letters, digits
// or underscores, 48 characters at most; anything else is refused before a
// statement is sent, so nothing can be injected through it. It is always
// quoted, so a keyword such as "order" works, and never schema-qualified: on
// PostgreSQL the connection's search_path picks the schema (for instance
// ?search_path=sessions in a pgx URL). On PostgreSQL, CreateSchema holds a
// transaction-scoped advisory lock while it runs, so several instances
// starting at once do not trip over each other.
//
// # Writes
//
// Every write of the manager is a compare-and-set, and each one is a single
// statement, atomic on its own row, with the Store's present time passed as
// a parameter ("now"; Options.Now, this process's clock, not the
// database's):
//
//   - Create (no record expected): INSERT ... ON CONFLICT (key) DO UPDATE
//     ... WHERE the existing row's expiry <= now. It inserts, or takes the
//     place of an expired row; a live row is left alone.
//   - Replace: UPDATE ... SET record, expiry WHERE key = ? AND record = (the
//     record the request loaded) AND expiry > now. A slow request cannot
//     bring back a session that another request replaced or logged out, nor
//     one that expired and that the sweeper has not deleted yet.
//   - Delete: DELETE ... WHERE key = ? AND record = (the record loaded) AND
//     expiry > now. A delete that expects no record is a read: it holds
//     when no live row is there.
//   - A write whose expiry is at or before now is a delete with the same
//     condition, so no row is kept without a future expiry.
//
// The statement's row count says whether it applied. When it did not, a
// SELECT of the live row follows, and its record is the op's Current, which
// the manager merges with; in the rare case that the row changed back to
// the expected record in between, the write is tried again. (A single
// statement that also returns the current row, a CTE around the UPDATE,
// is not used: on PostgreSQL its SELECT reads the snapshot taken when the
// statement began, so a write that waited for a concurrent one and then
// lost would report the record from before the winner's. In a test of 16
// writers racing for one row, 57 of 750 losers saw the old record.) A
// successful write costs one round trip; one that loses, two.
//
// The ops of one Write run one after another, each in its own implicit
// transaction, not together: the store contract makes them independent, and
// a transaction would add two round trips. Write stops at the first error.
//
// # Per-owner index
//
// [Store.Index] keeps, for each owner (a user, as the session manager names
// it: a hash of the application's user id), the sessions bound to it and
// its epoch, a random value every session of the owner carries, so that
// replacing it signs the owner out everywhere at once. An entry is a row of
// <table>_owners (owner, key, and the session's absolute deadline as
// expiry); an epoch a row of <table>_epochs (owner, epoch, expiry). Nothing
// in them is a token, a user id or session data: owners and keys are
// hashes, epochs random. Sessions that never log in cost nothing here.
//
// Entries are rows of their own rather than a column of the session's row:
// a login writes the session, then binds it, and a request that refreshes
// a session's idle deadline never touches the index. Entries expire at the
// session's absolute deadline, which never moves; an epoch's expiry is the
// latest deadline of any session bound to it (a login never shortens it,
// and neither does a new epoch), so it outlives every session that carries
// it. An entry whose record is gone (logged out without being unbound, say)
// is left out of listings and kept until its expiry: it cannot be told
// apart from one a login has bound and not yet written.
//
// What each call costs, with now passed as a parameter as for writes:
//   - Bind (a login): on PostgreSQL one statement, two upserts in
//     data-modifying CTEs: INSERT INTO the epochs ... ON CONFLICT (owner) DO
//     UPDATE SET epoch = CASE WHEN the owner's has expired THEN the new one
//     ELSE the old one END, expiry = GREATEST(old, new) RETURNING epoch, and
//     INSERT INTO the owners ... ON CONFLICT (owner, key) DO UPDATE SET
//     expiry. One round trip, one implicit transaction. On SQLite the same
//     two upserts in one transaction (SQLite has no INSERT inside WITH);
//     its first statement writes, so it takes the write lock at once even
//     without _txlock=immediate. The conflicting row is locked while the
//     update reads it (on SQLite, the whole database), so concurrent logins
//     of one owner all get the epoch the first one stored. A Bind whose
//     expiry has passed writes nothing: one SELECT of the epoch.
//   - Epoch (each request of a logged-in session, when the manager checks
//     it): one SELECT by primary key, WHERE expiry > now.
//   - SetEpoch ("sign out everywhere", "sign out the others"): one upsert
//     that keeps the later expiry, or one DELETE to remove the epoch.
//   - Unbind: one DELETE by primary key.
//   - Sessions (a "your devices" page): one SELECT joining the owner's
//     entries to their records, both WHERE expiry > now.
//
// SQLite needs 3.35 or later for Bind's RETURNING.
//
// # Expiry and the sweeper
//
// Reads return only rows whose expiry is after now; an expired row is
// absent for writes too. Expired rows are deleted by a sweeper goroutine
// that [New] starts, every Options.SweepInterval (5 minutes by default),
// with statements that each delete at most SweepBatch (500) rows, found
// through the expiry index, until one deletes fewer; table by table:
//
//	DELETE FROM "typedsession" WHERE key IN
//		(SELECT key FROM "typedsession" WHERE expiry <= $1 LIMIT 500)
//		AND expiry <= $1
//	DELETE FROM "typedsession_owners" WHERE (owner, key) IN
//		(SELECT owner, key FROM "typedsession_owners" WHERE expiry <= $1 LIMIT 500)
//		AND expiry <= $1
//	DELETE FROM "typedsession_epochs" WHERE owner IN
//		(SELECT owner FROM "typedsession_epochs" WHERE expiry <= $1 LIMIT 500)
//		AND expiry <= $1
//
// (?1 for $1 on SQLite). The condition is checked again on each row, so a
// row that a write made live again while the sweep ran stays. Every instance
// runs its own sweeper; concurrent sweeps wait for one another's row locks
// and delete each row once. A negative Options.SweepInterval starts none:
// run [Store.Sweep], or the statements above with the present Unix time in
// milliseconds, from a job of your own. [Store.Close] stops the sweeper
// (cancelling a sweep under way) and waits for it. Sweeper failures are
// logged to Options.Logger.
//
// Instances that share a table decide expiry by their own clocks; keep them
// in step (NTP). An instance whose clock runs ahead treats rows as expired,
// and sweeps them, that early.
//
// # Connections
//
// database/sql keeps only 2 idle connections by default, so a burst of
// concurrent requests opens, and then closes, new connections, each of
// which costs PostgreSQL a process: in this package's tests, 50 rounds of 16
// concurrent writes took 45 s with the default and 0.8 s with
// db.SetMaxIdleConns(32). Keep as many idle connections as requests run at
// once (and db.SetMaxOpenConns within the server's max_connections).
//
// PostgreSQL drivers such as pgx keep prepared statements per connection
// themselves; the Store sends statement text and leaves that to the driver,
// whose settings then decide how it works with a pooler such as PgBouncer.
// SQLite drivers do not, so on SQLite the Store prepares its statements in
// New, which halves the cost of a Load, and releases them in Close.
//
// SQLite allows one writer at a time. Open it as shown above: journal_mode
// WAL lets reads run during a write; synchronous NORMAL makes a commit not
// wait for fsync (in WAL mode the database stays consistent; a power loss
// can undo the last commits, which for sessions means a few requests'
// changes); busy_timeout makes a writer wait for the lock instead of failing
// at once with SQLITE_BUSY (New logs a warning when it is 0 and the pool can
// hold more than one connection); _txlock=immediate makes CreateSchema's
// transaction take the write lock at once. With mattn/go-sqlite3 (not
// tested here) the same settings are
// _journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000&_txlock=immediate.
// Alternatively, db.SetMaxOpenConns(1) serialises everything in the process.
//
// # Failures
//
// Errors name the operation ("sqlstore: load: ...", "sqlstore: write: ...",
// "sqlstore: bind: ...", "sqlstore: sweep: ...") and wrap the driver's
// error, never a key, an owner, an epoch or a record. How long a call may
// take is up to its context and Options.Timeout, which bounds each call when
// the context allows longer. Set one of them: a request's context has no
// deadline, and a statement waiting for a lock held elsewhere (a migration,
// a long transaction) would otherwise hold the request. A call that runs out
// of time returns at its deadline with an error that matches
// context.DeadlineExceeded with errors.Is, and the session manager answers
// through the middleware's error handler: nothing saved, no cookie.
//
// When Write fails, each of its ops may or may not have been done, and one
// may still be done after Write returns: a PostgreSQL statement that was
// waiting for a lock when its caller gave up runs once the lock is
// released, unless the server cancels it (pgx closes the connection at the
// deadline; set statement_timeout or lock_timeout for the application's
// role to have the server give up too). Since every write is a
// compare-and-set, a late one applies only if the record is still the one
// it expected.
//
// A database that restarts is served again by the same *sql.DB: calls fail
// while it is down (at once, when connections are refused), and the pool
// opens new connections once it is back; nothing needs rebuilding.
//
// A database whose session table, or one of the index's two tables, is
// missing, or lacks a column, makes New fail with an error matching
// [ErrSchema] that names the table and says how to create it (a database
// made before the index existed needs CreateSchema once more). New
// also fails when the database cannot be reached at all.
package sqlstore
