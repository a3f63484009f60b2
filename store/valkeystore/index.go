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

// index is a Store's per-owner index. Each owner has two keys that share a
// hash tag, so that one script can use both on a cluster:
//
//	<prefix>owner:{<owner>}  a sorted set of the owner's session keys, each
//	                         scored by the expiry it was bound with; it
//	                         expires with its highest score
//	<prefix>epoch:{<owner>}  a string, the owner's epoch; it expires with the
//	                         latest expiry it was bound or set with
//
// Entries are scored by the session's absolute deadline, which never moves,
// so that only logins, listings and revocations touch the index, never a
// request that merely refreshes its session.
type index struct{ s *Store }

var _ store.Index = (*index)(nil)

// Index implements [store.Store]: the per-owner index lives in the same
// server, next to the records; see the package documentation for its keys.
func (s *Store) Index() store.Index { return &s.idx }

// errOwner and errPrefix report an owner and a prefix whose keys would not
// share a cluster slot: Redis hashes a whole key whose first "{" is followed
// by "}" at once, or by no "}" at all, and the index's scripts need both of
// an owner's keys in one slot.
var (
	errOwner  = errors.New("empty owner")
	errPrefix = errors.New(`the key prefix has a "{" that does not open a hash tag, which would put an owner's index keys in different cluster slots`)
)

// keys returns owner's sorted set and epoch keys.
func (x *index) keys(owner string) (set, epoch string, err error) {
	switch {
	case owner == "":
		return "", "", errOwner
	case !x.s.tagSafe:
		return "", "", errPrefix
	}
	return x.s.prefix + "owner:{" + owner + "}", x.s.prefix + "epoch:{" + owner + "}", nil
}

// tagSafe reports whether every key under prefix hashes by a tag of its own
// (the part between the first "{" after the prefix and the next "}"), or by
// the prefix's own non-empty tag; either way an owner's two keys meet.
func tagSafe(prefix string) bool {
	i := strings.IndexByte(prefix, '{')
	if i < 0 {
		return true
	}
	return strings.IndexByte(prefix[i+1:], '}') > 0
}

// bindScript is Bind: KEYS[1] is the owner's sorted set, KEYS[2] its epoch;
// ARGV[1] the session key, ARGV[2] its expiry and ARGV[4] the present, in
// Unix milliseconds, and ARGV[3] the epoch to start with when the owner has
// none. It returns the owner's epoch.
//
// A key of another type where the epoch or the set belongs (it has no TTL;
// this store never writes one) counts as absent and is replaced, so that it
// cannot fail every login of the owner. The expiries are passed as the
// strings the caller sent: a Lua number may be formatted in exponent form.
// Every key is left with a TTL: SET with PXAT, and PEXPIREAT on the set after
// ZADD, to its highest score once the expired members are trimmed. Like
// casScript it uses only what Redis 7.0 has and declares no flags.
const bindScript = `local ep = redis.pcall('GET', KEYS[2])
if type(ep) == 'table' and ep.err then
	if string.sub(ep.err, 1, 9) ~= 'WRONGTYPE' then
		return ep
	end
	ep = false
end
if ep == '' then
	ep = false
end
if tonumber(ARGV[2]) <= tonumber(ARGV[4]) then
	return ep or ARGV[3]
end
if not ep then
	ep = ARGV[3]
	redis.call('SET', KEYS[2], ep, 'PXAT', ARGV[2])
elseif redis.call('PEXPIRETIME', KEYS[2]) < tonumber(ARGV[2]) then
	redis.call('PEXPIREAT', KEYS[2], ARGV[2])
end
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'zset' and t ~= 'none' then
	redis.call('DEL', KEYS[1])
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
return ep
`

// sessionsScript is the first half of Sessions: KEYS[1] is the owner's
// sorted set and ARGV[1] the present in Unix milliseconds. It trims the
// expired members and returns the others. A key of another type there is
// removed, as bindScript would replace it.
const sessionsScript = `local t = redis.call('TYPE', KEYS[1]).ok
if t == 'none' then
	return {}
end
if t ~= 'zset' then
	redis.call('DEL', KEYS[1])
	return {}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], '(' .. ARGV[1], '+inf', 'BYSCORE')
`

// setEpochScript is SetEpoch of a non-empty epoch: KEYS[1] is the owner's
// epoch key, ARGV[1] the epoch, ARGV[2] its expiry and ARGV[3] the present,
// in Unix milliseconds. The epoch it replaces keeps its expiry when that is
// later (KEEPTTL: no arithmetic on times in Lua); one that has passed
// deletes the key. It returns 1 when it set the epoch, 0 when it deleted it.
const setEpochScript = `local keep = false
if redis.call('TYPE', KEYS[1]).ok == 'string' then
	keep = redis.call('PEXPIRETIME', KEYS[1]) >= tonumber(ARGV[2])
end
if keep then
	redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
elseif tonumber(ARGV[2]) <= tonumber(ARGV[3]) then
	redis.call('DEL', KEYS[1])
	return 0
else
	redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
end
return 1
`

// The names EVALSHA calls the scripts by (their SHA-1; a test checks each
// against the server's SCRIPT LOAD, as for casSHA).
const (
	bindSHA     = "c2b72a030d46e98dce8dc5b3182dfceede4e6fa2"
	sessionsSHA = "65ef1327936442a5466061ba11cbb7fe622e98e7"
	setEpochSHA = "172b9656e1181c3329df5ef98700f98ae2f4460d"
)

var (
	bind     = script{bindScript, bindSHA}
	sessions = script{sessionsScript, sessionsSHA}
	setEpoch = script{setEpochScript, setEpochSHA}
)

func millis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// Bind implements [store.Index]: one script over the owner's two keys, one
// round trip. It returns the owner's epoch and, when expiry is later than
// the epoch's, makes the epoch expire then. An expiry that has passed (by
// this process's clock) adds no entry and keeps no epoch; the owner's epoch,
// or the one given when it has none, is returned all the same.
func (x *index) Bind(ctx context.Context, owner, key string, expiry time.Time, epoch []byte) ([]byte, error) {
	s := x.s
	set, ek, err := x.keys(owner)
	if err != nil {
		return nil, fmt.Errorf("valkeystore: bind: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.now()
	writes := expiry.UnixMilli() > now.UnixMilli()
	if writes {
		s.writing(ek)
	}
	// The strings are copies: a command may still be queued for the wire
	// after Bind returns on a cancelled context.
	res := s.run(ctx, &bind, []string{set, ek}, key, millis(expiry), string(epoch), millis(now))
	b, err := res.AsBytes()
	if err != nil {
		if writes {
			s.wrote(ek, markUnknown)
		}
		return nil, fmt.Errorf("valkeystore: bind: %w", err)
	}
	if writes {
		// The epoch key holds what the script returned, from now on.
		s.wrote(ek, mark(b))
	}
	// b aliases the client's buffer; the caller may modify what it gets.
	return append(make([]byte, 0, len(b)), b...), nil
}

// Unbind implements [store.Index] with ZREM. A key of another type where
// the set belongs holds no entry: there is nothing to remove (the owner's
// next Bind or Sessions replaces it).
func (x *index) Unbind(ctx context.Context, owner, key string) error {
	s := x.s
	set, _, err := x.keys(owner)
	if err != nil {
		return fmt.Errorf("valkeystore: unbind: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err = s.client.Do(ctx, s.client.B().Zrem().Key(set).Member(key).Build()).Error()
	if err != nil && !isWrongType(err) {
		return fmt.Errorf("valkeystore: unbind: %w", err)
	}
	return nil
}

// Sessions implements [store.Index] in two round trips: a script on the
// owner's sorted set trims the expired entries and returns the others, then
// their records are read with one GET each, pipelined (on a cluster, to
// each shard involved in parallel).
//
// An entry whose record is gone is left out but not removed: a login may
// bind its key a moment before it writes the record, and the index must not
// lose that entry. It goes at its expiry, or with Unbind.
func (x *index) Sessions(ctx context.Context, owner string) ([]store.Entry, error) {
	s := x.s
	set, _, err := x.keys(owner)
	if err != nil {
		return nil, fmt.Errorf("valkeystore: sessions: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	keys, err := s.run(ctx, &sessions, []string{set}, millis(s.now())).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("valkeystore: sessions: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	// Plain GETs, not the client-side cache: a listing is rare, and must
	// not show a session that was revoked a moment ago.
	cmds := make(valkey.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = s.client.B().Get().Key(s.prefix + k).Build()
	}
	out := make([]store.Entry, 0, len(keys))
	for i, res := range s.client.DoMulti(ctx, cmds...) {
		b, err := res.AsBytes()
		switch {
		case valkey.IsValkeyNil(err), isWrongType(err), err == nil && len(b) == 0:
			continue // no record (Load would say found=false)
		case err != nil:
			return nil, fmt.Errorf("valkeystore: sessions: %w", err)
		}
		out = append(out, store.Entry{Key: keys[i], Record: append(make([]byte, 0, len(b)), b...)})
	}
	return out, nil
}

// Epoch implements [store.Index] with GET, through the client-side cache
// when Options.CacheTTL is set: a bound session's every request reads its
// owner's epoch. As with Load, this Store sees its own Bind and SetEpoch at
// once, and another client's once the server's invalidation arrives. A key
// of another type there is no epoch.
func (x *index) Epoch(ctx context.Context, owner string) ([]byte, error) {
	ep, _, err := x.epoch(ctx, owner)
	return ep, err
}

// epoch is Epoch that also reports whether the answer came from the local
// cache.
func (x *index) epoch(ctx context.Context, owner string) (ep []byte, hit bool, err error) {
	s := x.s
	_, ek, err := x.keys(owner)
	if err != nil {
		return nil, false, fmt.Errorf("valkeystore: epoch: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res := s.get(ctx, ek)
	b, err := res.AsBytes()
	switch {
	case valkey.IsValkeyNil(err), isWrongType(err), err == nil && len(b) == 0:
		return nil, res.IsCacheHit(), nil
	case err != nil:
		return nil, false, fmt.Errorf("valkeystore: epoch: %w", err)
	}
	return append(make([]byte, 0, len(b)), b...), res.IsCacheHit(), nil
}

// SetEpoch implements [store.Index]: a script that sets the epoch with the
// later of expiry and the current epoch's expiry, or DEL for an empty epoch.
func (x *index) SetEpoch(ctx context.Context, owner string, epoch []byte, expiry time.Time) error {
	s := x.s
	_, ek, err := x.keys(owner)
	if err != nil {
		return fmt.Errorf("valkeystore: set epoch: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	s.writing(ek)
	var res valkey.ValkeyResult
	if len(epoch) == 0 {
		res = s.client.Do(ctx, s.client.B().Del().Key(ek).Build())
	} else {
		res = s.run(ctx, &setEpoch, []string{ek}, string(epoch), millis(expiry), millis(s.now()))
	}
	n, err := res.AsInt64()
	switch {
	case err != nil:
		s.wrote(ek, markUnknown)
		return fmt.Errorf("valkeystore: set epoch: %w", err)
	case len(epoch) > 0 && n == 1:
		s.wrote(ek, mark(epoch))
	default:
		s.wrote(ek, markDeleted)
	}
	return nil
}
