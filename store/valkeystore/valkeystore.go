package valkeystore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/typedsession/session/store"
)

// DefaultPrefix is put in front of every key when Options.Prefix is empty.
const DefaultPrefix = "session:"

// Options configures a Store. The zero value gives the defaults.
type Options struct {
	// Prefix is put in front of every key the store writes, so that sessions
	// can share a server with other data. Empty means DefaultPrefix. It must
	// not contain a cluster hash tag ("{...}") unless every session is meant
	// to live on one shard. A "{" that does not open a tag (no "}" after it,
	// or "{}") would put an owner's two index keys in different slots: the
	// index then fails every call, on a cluster or not.
	Prefix string

	// CacheTTL, when above zero, turns on server-assisted client-side caching
	// for Load and bounds how long a record may be served from local memory.
	// Zero (or less) reads every record from the server with GET. See the
	// package documentation for when it pays off and what it costs.
	CacheTTL time.Duration

	// Timeout, when above zero, bounds each call: a call whose context has
	// no deadline, or a later one, gets this much time. Zero (or less) leaves
	// the bound to the caller's context alone.
	//
	// Set it (to, say, a second) unless every caller's context has a
	// deadline: an incoming request's context has none, and valkey-go keeps
	// retrying a read while the server is unreachable until the context
	// ends, so with neither a Load would wait for the server to come back.
	// The package documentation says how closely the bound is kept.
	Timeout time.Duration
}

// Store is a [store.Store] over a Valkey client. It is safe for concurrent
// use.
type Store struct {
	client   valkey.Client
	prefix   string
	cacheTTL time.Duration
	timeout  time.Duration
	recent   *recent // keys this Store wrote lately; nil without caching
	idx      index   // the per-owner index
	tagSafe  bool    // the prefix lets an owner's index keys share a slot
	now      func() time.Time
}

var _ store.Store = (*Store)(nil)

// New returns a Store that keeps records through client. The caller keeps
// ownership of client and closes it when done; New panics if client is nil.
func New(client valkey.Client, opts Options) *Store {
	if client == nil {
		panic("valkeystore: New called with a nil client")
	}
	s := &Store{
		client:   client,
		prefix:   opts.Prefix,
		cacheTTL: max(opts.CacheTTL, 0),
		timeout:  max(opts.Timeout, 0),
		now:      time.Now,
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	s.idx.s = s
	s.tagSafe = tagSafe(s.prefix)
	if s.cacheTTL > 0 {
		s.recent = newRecent(s.cacheTTL)
	}
	return s
}

// Load implements [store.Store]. It reads the record with GET, or through the
// client-side cache when Options.CacheTTL is set. A key that holds something
// other than a string is no record: Load reports it as not found and removes
// it, since it has no expiry and would otherwise stay forever.
func (s *Store) Load(ctx context.Context, key string) (record []byte, found bool, err error) {
	record, found, _, err = s.load(ctx, key)
	return record, found, err
}

// load is Load that also reports whether the answer came from the local
// cache.
func (s *Store) load(ctx context.Context, key string) (record []byte, found, hit bool, err error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res := s.get(ctx, s.prefix+key)
	b, err := res.AsBytes()
	switch {
	case valkey.IsValkeyNil(err):
		return nil, false, res.IsCacheHit(), nil
	case isWrongType(err):
		// Delete it only while it is still not a string, in case a
		// record was created over it meanwhile. Whether that worked or
		// not, the answer is the same; a failure is retried by the next
		// load of the key.
		s.Write(ctx, []store.Op{{Key: key}})
		return nil, false, false, nil
	case err != nil:
		return nil, false, false, fmt.Errorf("valkeystore: load: %w", err)
	case len(b) == 0:
		return nil, false, res.IsCacheHit(), nil // a record is never empty
	}
	// b aliases the client's copy (shared with its cache); the caller may
	// modify what Load returns.
	return append(make([]byte, 0, len(b)), b...), true, res.IsCacheHit(), nil
}

// get reads the string at k with GET, or through the client-side cache when
// Options.CacheTTL is set.
func (s *Store) get(ctx context.Context, k string) valkey.ValkeyResult {
	if s.recent == nil {
		return s.client.Do(ctx, s.client.B().Get().Key(k).Build())
	}
	res := s.client.DoCache(ctx, s.client.B().Get().Key(k).Cache(), s.cacheTTL)
	// After its own write, this Store trusts an answer from the local cache
	// only if it is what was written; otherwise the invalidation may be in
	// flight. An answer fetched from the server is current.
	if m, ok := s.recent.get(k); ok && res.IsCacheHit() && !holds(res, m) {
		res = s.client.Do(ctx, s.client.B().Get().Key(k).Build())
	}
	return res
}

// casScript is the conditional write of one op: KEYS[1] is the key, ARGV[1]
// the record expected (empty: none), ARGV[2] the record to keep (empty:
// delete) and ARGV[3] its expiry in Unix milliseconds. An expired key reads
// as nil inside a script, so it counts as absent; so does a key that holds
// another type, which SET replaces. The reply is 1 when the write was done;
// otherwise the record there (a string) or 0 for none, so that the caller
// learns it without another round trip.
//
// It uses only what Redis 7.0 and every Valkey have, and no shebang line, so
// that it runs under the compatible flags: a delete still works on a server
// out of memory, where a SET fails with the server's OOM error.
const casScript = `local cur = redis.pcall('GET', KEYS[1])
if type(cur) == 'table' and cur.err then
	if string.sub(cur.err, 1, 9) ~= 'WRONGTYPE' then
		return cur
	end
	cur = false
end
if (cur or '') ~= ARGV[1] then
	return cur or 0
end
if ARGV[2] == '' then
	redis.call('UNLINK', KEYS[1])
else
	redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
end
return 1
`

// casSHA is the SHA-1 of casScript, the name EVALSHA calls it by. It is a
// constant (a test checks it against the server's SCRIPT LOAD) so that no
// SHA-1 is computed at run time, which a FIPS-only build forbids.
const casSHA = "e9fa7ce79a13300924e4ee2ab6b0d6298ddc5f97"

// Write implements [store.Store]. Each op is one call of a script on its own
// key (EVALSHA, or EVAL when the server does not have the script cached), so
// it is atomic and works on a cluster; several ops are pipelined, so a
// rotation costs one round trip (to each shard involved, in parallel).
//
// An op that does not apply gets the record the script found as Current. The
// Store decides with its own clock whether an Expiry has passed; a record
// that it keeps gets SET ... PXAT Expiry, so every key has a TTL.
//
// An error wraps the first failure (the context's error, the network's, or
// the server's, such as OOM on a full server): then any of the ops may or
// may not have been done, and may still be done after Write returns.
func (s *Store) Write(ctx context.Context, ops []store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.now().UnixMilli()
	cmds := make(valkey.Commands, len(ops))
	keys := make([]string, len(ops))
	for i := range ops {
		keys[i] = s.prefix + ops[i].Key
		s.writing(keys[i])
		cmds[i] = s.evalsha(keys[i], &ops[i], now)
	}
	var res []valkey.ValkeyResult
	if len(cmds) == 1 {
		res = []valkey.ValkeyResult{s.client.Do(ctx, cmds[0])}
	} else {
		res = s.client.DoMulti(ctx, cmds...)
	}
	// NOSCRIPT: this server has not run the script since it started (or
	// since SCRIPT FLUSH). The call did nothing; sending the whole script
	// runs it and caches it there. Rare enough to go one op at a time.
	for i := range res {
		if noScript(res[i]) {
			res[i] = s.client.Do(ctx, s.eval(keys[i], &ops[i], now))
		}
	}
	var first error
	for i := range ops {
		op := &ops[i]
		var err error
		op.Applied, op.Current, err = reply(res[i])
		switch {
		case err != nil:
			s.wrote(keys[i], markUnknown)
			if first == nil {
				first = err
			}
		case op.Applied:
			s.wrote(keys[i], mark(kept(op, now)))
		default:
			s.settled(keys[i])
		}
	}
	if first != nil {
		return fmt.Errorf("valkeystore: write: %w", first)
	}
	return nil
}

// kept is the record op leaves when it applies: New, or nil (a deletion)
// when New is empty or its expiry is not after now.
func kept(op *store.Op, now int64) []byte {
	if len(op.New) == 0 || op.Expiry.UnixMilli() <= now {
		return nil
	}
	return op.New
}

// casArgs returns the script's arguments for op. The strings are copies:
// a command can still be queued for the wire after Write returns on a
// cancelled context, and the caller owns the op's slices.
func casArgs(op *store.Op, now int64) (old, rec, at string) {
	if k := kept(op, now); k != nil {
		return string(op.Old), string(k), strconv.FormatInt(op.Expiry.UnixMilli(), 10)
	}
	return string(op.Old), "", ""
}

func (s *Store) evalsha(k string, op *store.Op, now int64) valkey.Completed {
	old, rec, at := casArgs(op, now)
	return s.client.B().Evalsha().Sha1(casSHA).Numkeys(1).Key(k).Arg(old, rec, at).Build()
}

func (s *Store) eval(k string, op *store.Op, now int64) valkey.Completed {
	old, rec, at := casArgs(op, now)
	return s.client.B().Eval().Script(casScript).Numkeys(1).Key(k).Arg(old, rec, at).Build()
}

// script is a Lua script and its SHA-1, the name EVALSHA calls it by.
type script struct{ src, sha string }

// run calls sc on keys with args, as Write calls casScript: EVALSHA, then
// EVAL should the server not have the script yet.
func (s *Store) run(ctx context.Context, sc *script, keys []string, args ...string) valkey.ValkeyResult {
	n := int64(len(keys))
	res := s.client.Do(ctx, s.client.B().Evalsha().Sha1(sc.sha).Numkeys(n).Key(keys...).Arg(args...).Build())
	if noScript(res) {
		res = s.client.Do(ctx, s.client.B().Eval().Script(sc.src).Numkeys(n).Key(keys...).Arg(args...).Build())
	}
	return res
}

// noScript reports whether res is the server's NOSCRIPT answer to EVALSHA:
// it does not have the script, and did nothing.
func noScript(res valkey.ValkeyResult) bool {
	verr, ok := valkey.IsValkeyErr(res.Error())
	return ok && verr.IsNoScript()
}

// errReply reports a reply casScript never gives.
var errReply = errors.New("unexpected reply from the write script")

// reply decodes casScript's answer.
func reply(res valkey.ValkeyResult) (applied bool, current []byte, err error) {
	msg, err := res.ToMessage()
	if err != nil {
		return false, nil, err
	}
	if msg.IsInt64() {
		switch n, _ := msg.AsInt64(); n {
		case 1:
			return true, nil, nil
		case 0:
			return false, nil, nil
		}
		return false, nil, errReply
	}
	b, err := msg.AsBytes()
	if err != nil {
		return false, nil, errReply
	}
	if len(b) == 0 {
		return false, nil, nil
	}
	// b aliases the client's buffer; the caller may modify Current.
	return false, append(make([]byte, 0, len(b)), b...), nil
}

// isWrongType reports whether err is the server's refusal to run a command
// on a key of another type.
func isWrongType(err error) bool {
	verr, ok := valkey.IsValkeyErr(err)
	return ok && strings.HasPrefix(verr.Error(), "WRONGTYPE")
}

// writing notes that a write of k is about to be sent; wrote or settled
// follows it.
func (s *Store) writing(k string) {
	if s.recent != nil {
		s.recent.begin(k)
	}
}

// settled ends a write of k that left its value as it was.
func (s *Store) settled(k string) {
	if s.recent != nil {
		s.recent.done(k)
	}
}

// wrote notes that this Store changed k, with the mark of what it wrote
// (markUnknown when a write failed, since it may still land), so that its own
// next loads do not see a cached copy from before the write.
func (s *Store) wrote(k string, m uint64) {
	if s.recent != nil {
		s.recent.add(k, m)
	}
}

// holds reports whether res is the value a write marked m left.
func holds(res valkey.ValkeyResult, m uint64) bool {
	b, err := res.AsBytes()
	switch {
	case m == markUnknown:
		return false
	case valkey.IsValkeyNil(err):
		return m == markDeleted
	case err != nil:
		return false
	}
	return m != markDeleted && mark(b) == m
}

func noop() {}

// bound applies Options.Timeout to ctx unless ctx already ends sooner.
// valkey-go keeps a context's deadline itself (see the package
// documentation for the one wait where it may not), so a call needs no
// goroutine of its own to keep it.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout <= 0 {
		return ctx, noop
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= s.timeout {
		return ctx, noop
	}
	return context.WithTimeout(ctx, s.timeout)
}
