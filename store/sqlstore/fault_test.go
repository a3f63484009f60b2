//go:build unix

package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/sqlstore"
)

// Names that must never show up in an error message.
const (
	faultKey    = "k-3f9c0a"
	faultRecord = "record-7d1e"
	faultOwner  = "owner-52b8"
	faultEpoch  = "epoch-c61f"
)

func checkErrorText(t *testing.T, op string, err error) {
	t.Helper()
	for _, v := range []string{faultKey, faultRecord, faultOwner, faultEpoch} {
		if msg := err.Error(); strings.Contains(msg, v) {
			t.Errorf("%s error %q contains a key, record, owner or epoch", op, msg)
		}
	}
}

// call is one call of a Store that a fault test makes.
type call struct {
	name string
	do   func(context.Context) error
}

// calls are one call of each kind on s; reads is false for a database
// where a lock held for writing does not stop reads (SQLite in WAL mode).
func calls(s *sqlstore.Store, reads bool) []call {
	write := func(op store.Op) func(context.Context) error {
		return func(ctx context.Context) error { return s.Write(ctx, []store.Op{op}) }
	}
	cs := []call{
		{"create", write(store.Op{Key: faultKey + "new", New: []byte(faultRecord), Expiry: later()})},
		{"replace", write(store.Op{Key: faultKey, Old: []byte(faultRecord), New: []byte(faultRecord + "2"), Expiry: later()})},
		{"delete", write(store.Op{Key: faultKey, Old: []byte(faultRecord)})},
		{"sweep", func(ctx context.Context) error { _, err := s.Sweep(ctx); return err }},
		{"bind", func(ctx context.Context) error {
			_, err := s.Index().Bind(ctx, faultOwner, faultKey, later(), []byte(faultEpoch))
			return err
		}},
		{"unbind", func(ctx context.Context) error { return s.Index().Unbind(ctx, faultOwner, faultKey) }},
		{"set epoch", func(ctx context.Context) error {
			return s.Index().SetEpoch(ctx, faultOwner, []byte(faultEpoch), later())
		}},
	}
	if reads {
		cs = append(cs,
			call{"load", func(ctx context.Context) error { _, _, err := s.Load(ctx, faultKey); return err }},
			call{"sessions", func(ctx context.Context) error { _, err := s.Index().Sessions(ctx, faultOwner); return err }},
			call{"epoch", func(ctx context.Context) error { _, err := s.Index().Epoch(ctx, faultOwner); return err }},
		)
	}
	return cs
}

// checkDeadline runs do and checks that it fails with
// context.DeadlineExceeded within about want, with an error that names
// neither key nor record.
func checkDeadline(t *testing.T, name string, ctx context.Context, want time.Duration, do func(context.Context) error) {
	t.Helper()
	start := time.Now()
	err := do(ctx)
	took := time.Since(start)
	switch {
	case err == nil:
		t.Errorf("%s on a locked table: no error", name)
		return
	case !errors.Is(err, context.DeadlineExceeded):
		t.Errorf("%s on a locked table: %v; want context.DeadlineExceeded", name, err)
	case !strings.HasPrefix(err.Error(), "sqlstore: "):
		t.Errorf("%s: error %q does not name the package", name, err)
	}
	checkErrorText(t, name, err)
	if took > want+slack {
		t.Errorf("%s on a locked table took %v; want about %v", name, took, want)
	}
	t.Logf("%s: %v after %v", name, err, took.Round(time.Millisecond))
}

// TestStatementTimeout: a statement that waits on a lock fails promptly
// with an error wrapping context.DeadlineExceeded, by the caller's deadline
// or by Options.Timeout, and names neither key nor record. Once the lock
// is gone, the same Store works.
func TestStatementTimeout(t *testing.T) {
	forEachDialect(t, func(t *testing.T, d dialect) {
		db := d.open(t)
		table := newTable(t, db, d.dialect)
		const timeout = 200 * time.Millisecond
		plain := newStore(t, db, d.dialect, sqlstore.Options{Table: table, SweepInterval: -1})
		bounded := newStore(t, db, d.dialect, sqlstore.Options{Table: table, SweepInterval: -1, Timeout: timeout})
		create(t, plain, faultKey, []byte(faultRecord), later())

		release := lockTable(t, db, d, table)
		reads := d.dialect == sqlstore.PostgreSQL
		for _, c := range calls(plain, reads) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			checkDeadline(t, c.name+" with a deadline", ctx, timeout, c.do)
			cancel()
		}
		for _, c := range calls(bounded, reads) {
			checkDeadline(t, c.name+" with Options.Timeout", context.Background(), timeout, c.do)
		}
		release()

		// A late write, if the database ran one after its caller gave up,
		// applied only where its condition held: the record is one of
		// the two the ops could leave, or gone.
		rec, _, err := plain.Load(context.Background(), faultKey)
		if err != nil {
			t.Fatal(err)
		}
		if s := string(rec); s != faultRecord && s != faultRecord+"2" && s != "" {
			t.Fatalf("after the timeouts the record is %q", s)
		}
		create(t, bounded, "after", []byte("r"), later())
		mustLoad(t, bounded, "after", []byte("r"))
	})
}

// TestRestart stops the throwaway PostgreSQL (pg_ctl stop -m fast): calls
// fail at once with an error naming neither key nor record. Started again,
// it is served by the same *sql.DB, with nothing rebuilt, and the record
// is still there.
func TestRestart(t *testing.T) {
	db := openPostgres(t)
	data := needEnv(t, envData)
	s := newStore(t, db, sqlstore.PostgreSQL, sqlstore.Options{SweepInterval: -1, Timeout: 2 * time.Second})
	create(t, s, faultKey, []byte(faultRecord), later())

	pgCtl(t, data, "stop", "-m", "fast")
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			pgCtl(t, data, "start") // for the tests after this one
		}
	})
	for _, c := range calls(s, true) {
		start := time.Now()
		err := c.do(context.Background())
		if err == nil {
			t.Errorf("%s with the server stopped: no error", c.name)
			continue
		}
		checkErrorText(t, c.name, err)
		if took := time.Since(start); took > 2*time.Second+slack {
			t.Errorf("%s with the server stopped took %v", c.name, took)
		}
		t.Logf("%s with the server stopped: %v", c.name, err)
	}

	pgCtl(t, data, "start")
	restarted = true
	poll(t, 10*time.Second, "the pool never reconnected", func() bool {
		_, _, err := s.Load(context.Background(), faultKey)
		return err == nil
	})
	mustLoad(t, s, faultKey, []byte(faultRecord))
	ops := []store.Op{{Key: faultKey, Old: []byte(faultRecord), New: []byte("after"), Expiry: later()}}
	if err := s.Write(context.Background(), ops); err != nil || !ops[0].Applied {
		t.Fatalf("replace after the restart: applied %v, %v", ops[0].Applied, err)
	}
}

// pgCtl runs pg_ctl ACTION -D data -w, as the user that owns data when the
// test runs as root (PostgreSQL refuses to run as root). pg_ctl is found
// beside the server binary named in data/postmaster.opts.
func pgCtl(t *testing.T, data, action string, args ...string) {
	t.Helper()
	opts, err := os.ReadFile(filepath.Join(data, "postmaster.opts"))
	if err != nil {
		t.Fatalf("finding pg_ctl: %v", err)
	}
	server, _, _ := strings.Cut(strings.TrimSpace(string(opts)), " ")
	args = append([]string{action, "-D", data, "-w", "-t", "30", "-l", filepath.Join(data, "pg_ctl.log")}, args...)
	cmd := exec.Command(filepath.Join(filepath.Dir(server), "pg_ctl"), args...)
	cmd.Dir = data
	// A file, not a pipe: the server pg_ctl starts outlives it.
	out, err := os.CreateTemp(t.TempDir(), "pg_ctl")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if os.Geteuid() == 0 {
		fi, err := os.Stat(data)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: st.Uid, Gid: st.Gid}}
	}
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(out.Name())
		t.Fatalf("pg_ctl %s: %v\n%s", action, err, log)
	}
}
