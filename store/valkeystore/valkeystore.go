package valkeystore

import (
	"context"
	"fmt"
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
	// to live on one shard.
	Prefix string

	// CacheTTL, when above zero, turns on server-assisted client-side caching
	// for Load and bounds how long a record may be served from local memory.
	// Zero (or less) reads every record from the server with GET. See the
	// package documentation for when it pays off and what it costs.
	CacheTTL time.Duration

	// Timeout, when above zero, bounds each command: a call whose context has
	// no deadline, or a later one, gets this much time. Zero (or less) leaves
	// the bound to the caller's context alone.
	//
	// Set it (to, say, a second) unless every caller's context has a
	// deadline: an incoming request's context has none, and valkey-go keeps
	// retrying a read while the server is unreachable until the context
	// ends, so with neither a Load would wait for the server to come back.
	Timeout time.Duration
}

// Store is a [store.Store], [store.Replacer] and [store.Toucher] over a
// Valkey client. It is safe for concurrent use.
type Store struct {
	client   valkey.Client
	prefix   string
	cacheTTL time.Duration
	timeout  time.Duration
	recent   *recent // keys this Store wrote lately; nil without caching
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Replacer = (*Store)(nil)
	_ store.Toucher  = (*Store)(nil)
)

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
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.cacheTTL > 0 {
		s.recent = newRecent(s.cacheTTL)
	}
	return s
}

// Load implements [store.Store]. It reads the record with GET, or through the
// client-side cache when Options.CacheTTL is set.
func (s *Store) Load(ctx context.Context, key string) (record []byte, found bool, err error) {
	record, found, _, err = s.load(ctx, key)
	return record, found, err
}

// load is Load that also reports whether the answer came from the local
// cache.
func (s *Store) load(ctx context.Context, key string) (record []byte, found, hit bool, err error) {
	k := s.prefix + key
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var res valkey.ValkeyResult
	if s.recent == nil {
		res = s.do(ctx, s.client.B().Get().Key(k).Build())
	} else {
		res = s.doCache(ctx, s.client.B().Get().Key(k).Cache())
		// After its own write, this Store trusts an answer from the local
		// cache only if it is what was written; otherwise the invalidation
		// may be in flight. An answer fetched from the server is current.
		if m, ok := s.recent.get(k); ok && res.IsCacheHit() && !holds(res, m) {
			res = s.do(ctx, s.client.B().Get().Key(k).Build())
		}
	}
	b, err := res.AsBytes()
	if err != nil {
		if valkey.IsValkeyNil(err) {
			return nil, false, res.IsCacheHit(), nil
		}
		return nil, false, false, fmt.Errorf("valkeystore: load: %w", err)
	}
	// b aliases the client's copy (shared with its cache); the caller may
	// modify what Load returns.
	return append(make([]byte, 0, len(b)), b...), true, res.IsCacheHit(), nil
}

// Save implements [store.Store] with SET key record PXAT expiry. An expiry at
// or before the present, or the zero time, deletes the key instead, so that
// no key is ever written without an expiry.
func (s *Store) Save(ctx context.Context, key string, record []byte, expiry time.Time) error {
	k := s.prefix + key
	ms := expiry.UnixMilli()
	if expiry.IsZero() || ms <= time.Now().UnixMilli() {
		if err := s.unlink(ctx, k); err != nil {
			return fmt.Errorf("valkeystore: save (delete on past expiry): %w", err)
		}
		return nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// string(record) copies: a command can still be queued for the wire
	// after Do returns on a cancelled context, and the caller owns record.
	cmd := s.client.B().Set().Key(k).Value(string(record)).PxatMillisecondsTimestamp(ms).Build()
	s.writing(k)
	err := s.do(ctx, cmd).Error()
	s.wrote(k, markOf(err, record))
	if err != nil {
		return fmt.Errorf("valkeystore: save: %w", err)
	}
	return nil
}

// Replace implements [store.Replacer]: it saves record under key until expiry
// only if a record is there, with SET key record XX PXAT expiry, and reports
// whether one was. The check and the write are one command, so a session
// that another request deleted meanwhile stays deleted. An expiry at or
// before the present, or the zero time, deletes the key instead (replaced
// then reports whether a record was there).
func (s *Store) Replace(ctx context.Context, key string, record []byte, expiry time.Time) (replaced bool, err error) {
	k := s.prefix + key
	ms := expiry.UnixMilli()
	if expiry.IsZero() || ms <= time.Now().UnixMilli() {
		ctx, cancel := s.bound(ctx)
		defer cancel()
		s.writing(k)
		n, err := s.do(ctx, s.client.B().Unlink().Key(k).Build()).AsInt64()
		s.wrote(k, markOf(err, nil))
		if err != nil {
			return false, fmt.Errorf("valkeystore: replace (delete on past expiry): %w", err)
		}
		return n > 0, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cmd := s.client.B().Set().Key(k).Value(string(record)).Xx().PxatMillisecondsTimestamp(ms).Build()
	s.writing(k)
	err = s.do(ctx, cmd).Error()
	s.wrote(k, markOf(err, record))
	switch {
	case err == nil:
		return true, nil
	case valkey.IsValkeyNil(err):
		return false, nil // no record there: nothing written
	default:
		return false, fmt.Errorf("valkeystore: replace: %w", err)
	}
}

// Delete implements [store.Store] with UNLINK.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.unlink(ctx, s.prefix+key); err != nil {
		return fmt.Errorf("valkeystore: delete: %w", err)
	}
	return nil
}

// Touch implements [store.Toucher] with PEXPIREAT, which moves the expiry of
// an existing record without rewriting it and creates nothing for a missing
// one. An expiry at or before the present, or the zero time, deletes the key.
func (s *Store) Touch(ctx context.Context, key string, expiry time.Time) error {
	k := s.prefix + key
	ms := expiry.UnixMilli()
	if expiry.IsZero() || ms <= time.Now().UnixMilli() {
		if err := s.unlink(ctx, k); err != nil {
			return fmt.Errorf("valkeystore: touch (delete on past expiry): %w", err)
		}
		return nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	s.writing(k)
	err := s.do(ctx, s.client.B().Pexpireat().Key(k).MillisecondsTimestamp(ms).Build()).Error()
	// The record is unchanged, so a cached copy of it stays right as long
	// as it cannot outlive the new expiry. A cached copy lives at most
	// CacheTTL, so only an expiry closer than that needs the key marked.
	if time.Until(expiry) < s.cacheTTL {
		s.wrote(k, markUnknown)
	} else {
		s.settled(k)
	}
	if err != nil {
		return fmt.Errorf("valkeystore: touch: %w", err)
	}
	return nil
}

func (s *Store) unlink(ctx context.Context, k string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	s.writing(k)
	err := s.do(ctx, s.client.B().Unlink().Key(k).Build()).Error()
	s.wrote(k, markOf(err, nil))
	return err
}

// writing notes that a write of k is about to be sent; wrote or settled
// follows it.
func (s *Store) writing(k string) {
	if s.recent != nil {
		s.recent.begin(k)
	}
}

// settled ends a write of k that did not change its value.
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

// markOf is the mark of a write of record (nil: a deletion) that ended with
// err. A Replace that found no record (a nil reply) wrote nothing, so its
// outcome is left unknown too.
func markOf(err error, record []byte) uint64 {
	if err != nil {
		return markUnknown
	}
	return mark(record)
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

// do runs cmd. When ctx has a deadline, the call returns by it (see within).
func (s *Store) do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	if _, ok := ctx.Deadline(); !ok {
		return s.client.Do(ctx, cmd)
	}
	return within(ctx, func() valkey.ValkeyResult { return s.client.Do(ctx, cmd) })
}

// doCache runs cmd through the client-side cache, like do.
func (s *Store) doCache(ctx context.Context, cmd valkey.Cacheable) valkey.ValkeyResult {
	if _, ok := ctx.Deadline(); !ok {
		return s.client.DoCache(ctx, cmd, s.cacheTTL)
	}
	return within(ctx, func() valkey.ValkeyResult { return s.client.DoCache(ctx, cmd, s.cacheTTL) })
}

// within runs f and returns its result, or the context's error as soon as ctx
// ends, whichever comes first; f finishes in the background. valkey-go
// honours the context while it waits for a reply, but when a server accepts
// connections and then stays silent, giving up a connection whose handshake
// timed out can hold the call up to about a second past the deadline. The
// guard costs a goroutine per call, so it is used only when there is a
// deadline to keep; a context that can only be cancelled is left to
// valkey-go.
func within(ctx context.Context, f func() valkey.ValkeyResult) valkey.ValkeyResult {
	ch := make(chan valkey.ValkeyResult, 1)
	go func() { ch <- f() }()
	select {
	case res := <-ch:
		return res
	case <-ctx.Done():
		select {
		case res := <-ch: // finished at the same moment: keep the answer
			return res
		default:
			return valkey.NewErrorResult(ctx.Err())
		}
	}
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
