// Package valkeystore keeps session records in Valkey (or Redis 7 and later)
// through a [valkey.Client] from [github.com/valkey-io/valkey-go].
//
// # The client
//
// The application builds the client (standalone, cluster or sentinel; see
// [valkey.NewClient]) and owns it: [New] only borrows it, and the application
// closes it with client.Close() at shutdown, after the HTTP server has
// stopped serving requests. A Store holds no other resources and needs no
// Close of its own.
//
// # Keys and expiry
//
// Each record is one string key, Options.Prefix followed by the key the
// session manager passes (a hash of the session token, never the token).
// Every key carries an absolute expiry, set with SET ... PXAT; a write whose
// expiry is at or before the present (by this process's clock) deletes the
// key instead, so no key is ever left without a TTL.
//
// A key under the prefix that holds another type (a hash, say, written by
// hand or by another program) is not a record: [Store.Load] reports it as
// not found and removes it, since it has no TTL and would otherwise fail
// every request of that session forever, and a write that creates a record
// replaces it.
//
// # Writes
//
// [Store.Write] is a compare-and-set: each op runs a short Lua script on its
// key that reads the live record, compares it byte for byte with the one
// the caller expects, and only then sets (SET ... PXAT) or deletes (UNLINK)
// it. An expired key reads as absent inside the script. When the record is
// not the expected one, the script returns the record it found, which the
// caller gets as the op's Current, so that it can merge without reading the
// key again. This is how concurrent requests of one session lose nothing
// silently; it also makes a stale read from the client-side cache harmless:
// the write fails and returns the current record.
//
// The script is called by its SHA-1 (EVALSHA). A server that does not have
// it yet (after a restart, a failover or SCRIPT FLUSH) answers NOSCRIPT
// without running anything, and the store then sends the script itself
// (EVAL), once per op; the server keeps it from then on. The script needs
// nothing beyond Redis 7.0 and runs on every Valkey. It declares no flags,
// so a server that is out of memory still runs it: a delete works, and a
// SET fails with the server's OOM error.
//
// Several ops in one Write are pipelined: a rotation (create the new record,
// retire the old one) costs one round trip, to each shard involved in
// parallel. The ops are independent, each atomic on its own key.
//
// # Per-owner index
//
// [Store.Index] keeps, for each owner (a user, as the session manager names
// it: a hash of the application's user id), the sessions bound to it and its
// epoch, a random value every session of the owner carries, so that
// replacing it signs the owner out everywhere at once. Two keys per owner,
// next to the records:
//
//	<prefix>owner:{<owner>}  sorted set: the store keys of the owner's sessions
//	                         (hashes of their tokens), each scored by the
//	                         session's absolute deadline in Unix milliseconds
//	<prefix>epoch:{<owner>}  string: the owner's epoch (random bytes)
//
// (A record's key is a hash too, so it never takes one of these names.)
// Nothing in them is a token, a user id or session data: the owner and the
// keys are hashes, the epoch is random. Sessions that never log in (no
// owner) cost nothing here.
//
// Both keys always have a TTL. The sorted set expires at its highest score,
// set on every login; the epoch expires at the latest deadline of any
// session bound to it (a login never shortens it, and neither does a new
// epoch), so it outlives every session that carries it. Members are scored
// by the absolute deadline, which never moves, so a request that only
// refreshes its session's idle deadline never touches the index. Expired
// members are trimmed (ZREMRANGEBYSCORE) whenever the owner logs in again or
// lists their sessions; an owner whose sessions have all ended leaves
// nothing behind once the last deadline passes. A member whose record is
// gone (logged out without being unbound, say) is left out of the listing
// but kept until its deadline: it cannot be told apart from a login that has
// bound its session and not yet written it.
//
// What each call costs (one round trip is one request and reply; on a
// cluster the keys of one owner are on one shard):
//   - Bind (a login): one script (EVALSHA) over the owner's two keys: GET or
//     SET the epoch, PEXPIREAT it, ZADD, trim, PEXPIREAT the set. One round
//     trip; O(log n) in the owner's sessions, plus the expired ones trimmed.
//   - Epoch (each request of a logged-in session, when the manager checks
//     it): one GET, or none with client-side caching (see below). A cached
//     epoch sees this Store's own changes at once and another client's when
//     the server's invalidation arrives.
//   - SetEpoch ("sign out everywhere", "sign out the others"): one script
//     (SET ... PXAT, or KEEPTTL when the old epoch expires later), or DEL to
//     remove the epoch. One round trip.
//   - Unbind: one ZREM.
//   - Sessions (a "your devices" page): two round trips: a script that
//     trims the set and returns its members, then one GET per session,
//     pipelined in one batch (on a cluster, to each shard involved, in
//     parallel). O(n) in the owner's live sessions.
//
// No call scans or lists the keyspace (no KEYS, no SCAN), and none relies
// on keyspace notifications. The scripts are sent like the write script
// (EVALSHA, then EVAL after NOSCRIPT), need nothing beyond Redis 7.0 and
// declare no flags. A key of another type where an owner's set or epoch
// belongs (written by hand or by another program, without a TTL) counts as
// absent: a login replaces it, a listing removes it, and reading the epoch
// finds none, which the session manager takes as "signed out".
//
// # Cluster
//
// Every command names one key, and the one script that names two (Bind) uses
// an owner's two index keys, which share a hash tag, "{<owner>}", and so a
// slot. A Store therefore works unchanged on a cluster client; sessions and
// owners spread over the shards by their hashes. Do not put a hash tag (a
// "{...}" part) in the prefix: it would pin every session to one shard. A
// "{" in the prefix that opens no tag (no "}" after it, or "{}") would split
// an owner's keys across slots; the index refuses such a prefix with an
// error on every call, on a standalone server too, so that moving to a
// cluster brings no surprise.
//
// # Client-side caching
//
// With Options.CacheTTL above zero, loads (and reads of an owner's epoch) go
// through valkey-go's server-assisted client-side cache (DoCache, RESP3 client tracking): a
// record read once is served from the process's memory until the server
// reports a change to its key, or at most CacheTTL after it was fetched, or
// when the record itself expires, whichever comes first. A warm read then
// costs well under a microsecond instead of a round trip. Writes always go
// to the server.
//
// Turn it on when sessions are read far more often than they are written, as
// with the idle refresh throttled and handlers that mostly read, and
// especially when several application instances share one server. Leave it
// off when nearly every request changes its session: each write discards the
// cached copy, so the cache would only add bookkeeping.
//
// What it costs:
//   - Memory: valkey-go keeps up to ClientOption.CacheSizeEachConn bytes
//     (128 MiB by default) for each connection to each server. Size that
//     option for the number of hot sessions times their record size.
//   - Staleness across instances: a write from another client becomes
//     visible here when the server's invalidation message arrives, normally
//     well under a millisecond later; if the connection is lost, cached
//     entries are dropped with it. A write based on a stale copy does not
//     apply and returns the current record. A write this Store has
//     completed is visible to its own next Load: for CacheTTL after writing
//     a key, it uses a cached answer for that key only if it is the value
//     written (and no other write of the key from this Store overlapped
//     it), and reads the key with a plain GET otherwise, until the
//     invalidation of the old copy has arrived, usually within a
//     millisecond. This holds for reads from the primary; a client set to
//     read from replicas (SendToReplicas, ReplicaOnly) sees their
//     replication lag as well.
//   - It needs RESP3, which every server the store runs on speaks. On a
//     client that speaks RESP2 (ClientOption.AlwaysRESP2) or has caching
//     disabled (ClientOption.DisableCache), valkey-go falls back to plain
//     reads.
//
// # Failures
//
// A server that is down or slow makes a call fail with an error wrapping the
// cause: the context's error (errors.Is(err, context.DeadlineExceeded)) when
// the call ran out of time, or the network or server error otherwise (for
// instance the server's OOM refusal when it is out of memory). Messages name
// the operation ("valkeystore: load: ...", "valkeystore: write: ...", and for
// the index "bind", "unbind", "sessions", "epoch", "set epoch"), never a key,
// an owner, a record or an epoch. When Write fails, each of its ops may or may not have
// been done, and one may still be done after Write returns (a command
// already sent); since every write is a compare-and-set, a late one applies
// only if the record is still the one it expected.
//
// How long a call may take is up to its context and Options.Timeout, which
// bounds each call when the context allows longer. Set one of them: while
// the server is unreachable valkey-go retries reads until the context ends,
// and a request's context has no deadline of its own. valkey-go keeps the
// deadline on the connection itself (the store starts no goroutine per
// call), so a call returns by it, except while a connection is being opened
// to a server that accepts it and then does not answer:
//   - A call that needs a connection another call is opening waits for that
//     attempt, however short its own deadline. The attempt ends by the
//     deadline of the call that started it (Options.Timeout, when it came
//     through a Store), and in any case within ClientOption.Dialer.Timeout
//     (5 seconds by default) for the TCP connection and again for the
//     handshake. Other users of the same client without deadlines are
//     bounded by that option only, so keep it near Options.Timeout.
//   - When such an attempt times out, valkey-go can take up to about one
//     more second to release the connection, and the calls waiting on it
//     wait that long too.
//
// With Options.Timeout set, a call therefore returns within Options.Timeout,
// plus about a second in the worst case. Connections are re-established by
// the client: once the server is back, the next call works without
// rebuilding anything.
package valkeystore
