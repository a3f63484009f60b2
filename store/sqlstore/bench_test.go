package sqlstore_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/sqlstore"
)

// benchRecord is about the size of a sealed session record.
var benchRecord = bytes.Repeat([]byte{0xa5}, 512)

// benchKey is a key of the shape the manager uses: base64url of a SHA-256.
const benchKey = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg"

// forEachBenchDialect runs f per dialect; PostgreSQL is skipped, even under
// CI, when PG_DSN is unset.
func forEachBenchDialect(b *testing.B, f func(b *testing.B, s *sqlstore.Store)) {
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			if d.dialect == sqlstore.PostgreSQL && !hasEnv(envDSN) {
				b.Skip(skipMessage)
			}
			f(b, newStore(b, d.open(b), d.dialect, sqlstore.Options{}))
		})
	}
}

// BenchmarkLoad reads a live record: one SELECT.
func BenchmarkLoad(b *testing.B) {
	forEachBenchDialect(b, func(b *testing.B, s *sqlstore.Store) {
		ctx := context.Background()
		create(b, s, benchKey, benchRecord, later())
		b.ReportAllocs()
		for b.Loop() {
			if _, found, err := s.Load(ctx, benchKey); err != nil || !found {
				b.Fatal(found, err)
			}
		}
	})
}

// BenchmarkWrite replaces a record by compare-and-set, as a commit of a
// changed session does: one UPDATE.
func BenchmarkWrite(b *testing.B) {
	forEachBenchDialect(b, func(b *testing.B, s *sqlstore.Store) {
		ctx := context.Background()
		exp := later()
		recs := [2][]byte{benchRecord, bytes.Repeat([]byte{0x5a}, len(benchRecord))}
		create(b, s, benchKey, recs[0], exp)
		ops := make([]store.Op, 1)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ops[0] = store.Op{Key: benchKey, Old: recs[i%2], New: recs[(i+1)%2], Expiry: exp}
			if err := s.Write(ctx, ops); err != nil || !ops[0].Applied {
				b.Fatal(ops[0].Applied, err)
			}
			i++
		}
	})
}

// BenchmarkWriteConflict is a compare-and-set that does not apply: the
// UPDATE, then the SELECT of the record there.
func BenchmarkWriteConflict(b *testing.B) {
	forEachBenchDialect(b, func(b *testing.B, s *sqlstore.Store) {
		ctx := context.Background()
		exp := later()
		create(b, s, benchKey, benchRecord, exp)
		stale := bytes.Repeat([]byte{0x5a}, len(benchRecord))
		ops := make([]store.Op, 1)
		b.ReportAllocs()
		for b.Loop() {
			ops[0] = store.Op{Key: benchKey, Old: stale, New: stale, Expiry: exp}
			if err := s.Write(ctx, ops); err != nil || ops[0].Applied || len(ops[0].Current) == 0 {
				b.Fatal(ops[0].Applied, err)
			}
		}
	})
}

// BenchmarkRotate creates a record under one key and deletes the one under
// another in one Write, as a login does: two statements.
func BenchmarkRotate(b *testing.B) {
	forEachBenchDialect(b, func(b *testing.B, s *sqlstore.Store) {
		ctx := context.Background()
		exp := later()
		keys := [2]string{benchKey + "a", benchKey + "b"}
		create(b, s, keys[0], benchRecord, exp)
		ops := make([]store.Op, 2)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			from, to := keys[i%2], keys[(i+1)%2]
			ops[0] = store.Op{Key: to, New: benchRecord, Expiry: exp}
			ops[1] = store.Op{Key: from, Old: benchRecord}
			if err := s.Write(ctx, ops); err != nil || !ops[0].Applied || !ops[1].Applied {
				b.Fatal(ops, err)
			}
			i++
		}
	})
}

// benchOwner is an owner of the shape the manager uses: a hash of a user
// id.
const benchOwner = "o7Hk2vQmXcR1uTqz0bLwYeN3sJfA9dPgKiE4hVxC6Ms"

// BenchmarkBind binds a session to an owner that has an epoch, as a login
// does: on PostgreSQL one statement, on SQLite a transaction of two.
func BenchmarkBind(b *testing.B) {
	forEachBenchDialect(b, func(b *testing.B, s *sqlstore.Store) {
		ctx := context.Background()
		x := s.Index()
		epoch := bytes.Repeat([]byte{7}, 16)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := x.Bind(ctx, benchOwner, benchKey, later(), epoch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEpoch reads an owner's epoch, as each request of a bound
// session does: one SELECT.
func BenchmarkEpoch(b *testing.B) {
	forEachBenchDialect(b, func(b *testing.B, s *sqlstore.Store) {
		ctx := context.Background()
		x := s.Index()
		if _, err := x.Bind(ctx, benchOwner, benchKey, later(), bytes.Repeat([]byte{7}, 16)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if ep, err := x.Epoch(ctx, benchOwner); err != nil || ep == nil {
				b.Fatal(ep, err)
			}
		}
	})
}

// BenchmarkSessions lists an owner's ten sessions with their records, as a
// "your devices" page does: one SELECT with a join.
func BenchmarkSessions(b *testing.B) {
	forEachBenchDialect(b, func(b *testing.B, s *sqlstore.Store) {
		ctx := context.Background()
		x := s.Index()
		for i := range 10 {
			k := fmt.Sprint(benchKey, i)
			create(b, s, k, benchRecord, later())
			if _, err := x.Bind(ctx, benchOwner, k, later(), bytes.Repeat([]byte{7}, 16)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			if list, err := x.Sessions(ctx, benchOwner); err != nil || len(list) != 10 {
				b.Fatal(len(list), err)
			}
		}
	})
}
