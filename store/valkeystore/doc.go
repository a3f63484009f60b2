// Package valkeystore keeps session records in Valkey (or Redis 6 and later)
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
// Every key carries an absolute expiry: Save writes with SET ... PXAT and a
// computed expiry at or before the present deletes the key instead, so no key
// is ever left without a TTL. [Store.Replace] writes the same way but only
// over a record that is still there (SET ... XX), so a session deleted by one
// request is not brought back by a slower one. [Store.Touch] moves the expiry
// with PEXPIREAT without rewriting the record.
//
// # Cluster
//
// Every command names exactly one key, so a Store works unchanged on a
// cluster client; sessions spread over the shards by their hashed keys. Do
// not put a hash tag (a "{...}" part) in the prefix: it would pin every
// session to one shard. No command scans or lists keys.
//
// # Client-side caching
//
// With Options.CacheTTL above zero, loads go through valkey-go's
// server-assisted client-side cache (DoCache, RESP3 client tracking): a
// record read once is served from the process's memory until the server
// reports a change to its key, or at most CacheTTL after it was fetched, or
// when the record itself expires, whichever comes first. A warm read then
// costs well under a microsecond instead of a round trip.
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
//     entries are dropped with it. A write this Store has completed is
//     visible to its own next Load: for CacheTTL after writing a key, it uses
//     a cached answer for that key only if it is the value written (and no
//     other write of the key overlapped it), and reads the key with a plain
//     GET otherwise, until the invalidation of the old copy has arrived,
//     usually within a millisecond. This holds for reads from the primary;
//     a client set to read from replicas (SendToReplicas, ReplicaOnly) sees
//     their replication lag as well.
//   - It needs RESP3 (Redis 6 or later, any Valkey). On a client that speaks
//     RESP2 (ClientOption.AlwaysRESP2) or has caching disabled
//     (ClientOption.DisableCache), valkey-go falls back to plain reads.
//
// # Failures
//
// A server that is down or slow makes a call fail with an error wrapping the
// cause: the context's error (errors.Is(err, context.DeadlineExceeded)) when
// the call ran out of time, or the network or server error otherwise (for
// instance the server's OOM refusal when it is out of memory). Messages name
// the operation, never a key or a record.
//
// How long a call may take is up to its context and Options.Timeout, which
// bounds each command when the context allows longer; a call returns by that
// deadline, even while the client is still tearing down a connection to a
// server that stopped answering. Set one of them: while
// the server is unreachable valkey-go retries reads until the context ends,
// and a request's context has no deadline of its own. Connections are
// re-established by the client: once the server is back, the next call works
// without rebuilding anything. A Save or Delete that fails because its
// context ended may still reach the server and take effect afterwards, even
// after a later write of the same key has succeeded; the session manager
// then sees the older record, never a corrupt one.
package valkeystore
