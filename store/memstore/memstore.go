// Package memstore keeps session records in the memory of one process.
//
// It suits development, tests and single-instance deployments; records are
// lost when the process exits. Expired records are never returned, and a
// background sweeper frees them; [Store.Close] stops it.
//
// # Memory
//
// The store holds no Go pointer per record, so the garbage collector's work
// does not grow with the number of sessions: keys and records live side by
// side in large byte slabs (one per size class, each record rounded up by at
// most an eighth), found through a hash table, a table of expiries and a
// heap that are all slices of integers. Besides its key and record (rounded
// up), a session costs about 50 bytes: one with a 43-byte key and a 200-byte
// record about 305 bytes in all, measured at a million sessions.
//
// Memory freed by expired, deleted or evicted records is reused for later
// ones rather than given back to the runtime (except for records of 1 MiB
// or more, which are given back), so the store's footprint is that of its
// busiest moment. Bound it with [Options.MaxSessions] or [Options.MaxBytes].
//
// # Capacity
//
// With a bound set, a write that would exceed it first frees expired records
// and then evicts the live records that would expire soonest (the record
// being written among them: if it expires before all others, it is applied
// and at once evicted), so the store keeps the records that expire last. It
// reports how many live ones it evicted through [Options.OnEvict]. An evicted session
// is gone: its next request finds no session. Size the bound so that this
// happens only under a flood (anonymous requests that write, from a bot or
// an attack), which it then contains.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"time"

	"github.com/typedsession/session/store"
)

// DefaultSweepInterval is how often expired records are freed when
// Options.SweepInterval is zero.
const DefaultSweepInterval = time.Minute

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// SweepInterval is the time between sweeps of expired records.
	// Zero means DefaultSweepInterval; a negative value disables the sweeper
	// (expired records, never returned, are then freed only when overwritten,
	// deleted, evicted or swept by a call to Sweep).
	SweepInterval time.Duration

	// MaxSessions, when above zero, bounds how many records the store holds.
	// A write that would create one more first frees expired records, then
	// evicts the live ones that expire soonest.
	MaxSessions int

	// MaxBytes, when above zero, bounds the bytes of keys and records the
	// store holds, counted as len(key)+len(record) each, and is kept like
	// MaxSessions. The memory the store takes is larger: records are rounded
	// up to their size class (by at most an eighth) and each costs about 50
	// bytes of index besides. A Write with a single record larger than
	// MaxBytes fails with an error wrapping [store.ErrTooLarge] and applies
	// none of its ops.
	MaxBytes int64

	// OnEvict, when set, is called after a Write that evicted live records to
	// stay within MaxSessions or MaxBytes, with how many it evicted (expired
	// records freed on the way are not counted). It is called on the
	// goroutine of that Write, after the store's lock is released, so it may
	// use the store; it should return quickly (count, or log with a rate
	// limit: under a flood every create evicts).
	OnEvict func(evicted int)

	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
}

// Store is an in-memory [store.Store]. It is safe for concurrent use.
type Store struct {
	now      func() time.Time
	maxN     int
	maxBytes int64
	onEvict  func(int)

	mu    sync.RWMutex
	keys  table // key -> rec id
	recs  []rec // by id; free ids are listed in free
	free  []uint32
	heap  []uint32 // rec ids, a min-heap on expiry
	slabs slabs
	held  int64 // sum of len(key)+len(record) of the records held

	idx index // per-owner index

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// rec describes one record: its key and value lie side by side in a slab
// slot, the key first.
type rec struct {
	exp  int64  // Unix milliseconds
	slot uint32 // slot in the size class of klen+vlen
	klen uint32
	vlen uint32
	pos  uint32 // index in Store.heap
}

func (r *rec) size() int { return int(r.klen) + int(r.vlen) }

// New returns an empty store and starts its sweeper.
func New(opts Options) *Store {
	s := &Store{
		now:      opts.Now,
		maxN:     max(opts.MaxSessions, 0),
		maxBytes: max(opts.MaxBytes, 0),
		onEvict:  opts.OnEvict,
		keys:     table{seed: maphash.MakeSeed()},
	}
	s.idx.s = s
	if s.now == nil {
		s.now = time.Now
	}
	every := opts.SweepInterval
	if every == 0 {
		every = DefaultSweepInterval
	}
	if every > 0 {
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go s.sweeper(every)
	}
	return s
}

func (s *Store) nowMilli() int64 { return s.now().UnixMilli() }

// lookup returns the id of key's record. Called with s.mu held.
func (s *Store) lookup(key string) (uint32, bool) {
	_, id, ok := s.keys.find(key, s.keyIs)
	return id, ok
}

// keyIs reports whether the record id is kept under key.
func (s *Store) keyIs(id uint32, key string) bool {
	r := &s.recs[id]
	return int(r.klen) == len(key) && string(s.data(r)[:r.klen]) == key
}

// data returns the slot of r: its key, then its value, then unused bytes.
func (s *Store) data(r *rec) []byte { return s.slabs.slot(r.size(), r.slot) }

func (s *Store) value(r *rec) []byte {
	d := s.data(r)
	return d[r.klen : r.klen+r.vlen]
}

// Load implements [store.Store].
func (s *Store) Load(_ context.Context, key string) ([]byte, bool, error) {
	now := s.nowMilli()
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.lookup(key)
	if !ok {
		return nil, false, nil
	}
	r := &s.recs[id]
	if r.exp <= now {
		return nil, false, nil
	}
	return bytes.Clone(s.value(r)), true, nil
}

// Write implements [store.Store]. Each op is decided and applied under the
// store's lock, so of several writes conditioned on one record, one wins.
func (s *Store) Write(_ context.Context, ops []store.Op) error {
	for i := range ops {
		if n := int64(len(ops[i].Key)) + int64(len(ops[i].New)); n > math.MaxUint32 || s.maxBytes > 0 && n > s.maxBytes {
			return fmt.Errorf("memstore: a key and record of %d bytes exceed the store's bound: %w", n, store.ErrTooLarge)
		}
	}
	now := s.nowMilli()
	evicted := 0
	for i := range ops {
		op := &ops[i]
		exp := op.Expiry.UnixMilli()
		keep := len(op.New) > 0 && !op.Expiry.IsZero() && exp > now
		s.mu.Lock()
		id, ok := s.lookup(op.Key)
		if ok && s.recs[id].exp <= now {
			s.remove(id)
			ok = false
		}
		var cur []byte
		if ok {
			cur = s.value(&s.recs[id])
		}
		if !bytes.Equal(cur, op.Old) {
			op.Applied = false
			op.Current = append([]byte(nil), cur...)
			s.mu.Unlock()
			continue
		}
		switch {
		case !keep:
			if ok {
				s.remove(id)
			}
		case ok && s.fits(0, len(op.New)-int(s.recs[id].vlen)):
			s.replace(id, op.New, exp)
		default:
			if ok {
				s.remove(id)
			}
			n, fits := s.makeRoom(len(op.Key)+len(op.New), exp, now)
			evicted += n
			if fits {
				s.insert(op.Key, op.New, exp)
			}
		}
		s.mu.Unlock()
		op.Applied, op.Current = true, nil
	}
	if evicted > 0 && s.onEvict != nil {
		s.onEvict(evicted)
	}
	return nil
}

// fits reports whether n more records and b more bytes stay within the
// bounds. Called with s.mu held.
func (s *Store) fits(n, b int) bool {
	return (s.maxN == 0 || len(s.recs)-len(s.free)+n <= s.maxN) &&
		(s.maxBytes == 0 || s.held+int64(b) <= s.maxBytes)
}

// makeRoom frees records, soonest expiry first, until one more record of
// size bytes expiring at exp fits, and returns how many live records it
// evicted. When the new record would expire before every record left, it is
// the one to go: makeRoom counts it and reports that it must not be kept.
func (s *Store) makeRoom(size int, exp, now int64) (evicted int, keep bool) {
	for len(s.heap) > 0 && !s.fits(1, size) {
		id := s.heap[0]
		if s.recs[id].exp > exp {
			return evicted + 1, false
		}
		if s.recs[id].exp > now {
			evicted++
		}
		s.remove(id)
	}
	return evicted, true
}

// insert adds a record under key, which holds none. Called with s.mu held.
func (s *Store) insert(key string, val []byte, exp int64) {
	var id uint32
	if n := len(s.free); n > 0 {
		id = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		id = uint32(len(s.recs))
		s.recs = append(s.recs, rec{})
	}
	r := &s.recs[id]
	*r = rec{exp: exp, klen: uint32(len(key)), vlen: uint32(len(val))}
	r.slot = s.slabs.alloc(r.size())
	d := s.data(r)
	copy(d[copy(d, key):], val)
	s.keys.insert(key, id)
	s.held += int64(r.size())
	r.pos = uint32(len(s.heap))
	s.heap = append(s.heap, id)
	s.up(int(r.pos))
}

// replace puts val and exp in the record id. Called with s.mu held.
func (s *Store) replace(id uint32, val []byte, exp int64) {
	r := &s.recs[id]
	oldSize := r.size()
	newSize := int(r.klen) + len(val)
	s.held += int64(newSize - oldSize)
	oldClass, _ := slabClass(oldSize)
	newClass, _ := slabClass(newSize)
	if newClass != oldClass {
		slot := s.slabs.alloc(newSize)
		copy(s.slabs.slot(newSize, slot), s.data(r)[:r.klen])
		s.slabs.release(oldSize, r.slot)
		r.slot = slot
	}
	r.vlen = uint32(len(val))
	copy(s.data(r)[r.klen:], val)
	old := r.exp
	r.exp = exp
	switch {
	case exp < old:
		s.up(int(r.pos))
	case exp > old:
		s.down(int(r.pos))
	}
}

// remove frees the record id and its key. Called with s.mu held.
func (s *Store) remove(id uint32) {
	r := &s.recs[id]
	s.keys.remove(s.keys.hash(s.data(r)[:r.klen]), id)
	s.held -= int64(r.size())
	s.slabs.release(r.size(), r.slot)
	// Out of the heap: the last element takes its place.
	i, last := int(r.pos), len(s.heap)-1
	if i != last {
		s.swap(i, last)
	}
	s.heap = s.heap[:last]
	if i != last {
		if !s.up(i) {
			s.down(i)
		}
	}
	*r = rec{}
	s.free = append(s.free, id)
}

// The heap orders record ids by expiry, so that the sweeper and eviction
// find the soonest-expiring records without a scan.

func (s *Store) less(i, j int) bool { return s.recs[s.heap[i]].exp < s.recs[s.heap[j]].exp }

func (s *Store) swap(i, j int) {
	h := s.heap
	h[i], h[j] = h[j], h[i]
	s.recs[h[i]].pos = uint32(i)
	s.recs[h[j]].pos = uint32(j)
}

// up moves element i towards the root while it expires sooner than its
// parent, and reports whether it moved.
func (s *Store) up(i int) bool {
	start := i
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s.swap(i, p)
		i = p
	}
	return i != start
}

func (s *Store) down(i int) {
	n := len(s.heap)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && s.less(c+1, c) {
			c++
		}
		if !s.less(c, i) {
			return
		}
		s.swap(i, c)
		i = c
	}
}

// Sweep frees every expired record now. It takes them in order of expiry, in
// small batches under the lock, so that a sweep does not stall requests; its
// cost grows with the number of expired records, not of all records.
func (s *Store) Sweep() {
	const batch = 512
	now := s.nowMilli()
	s.idx.sweep(now)
	for {
		s.mu.Lock()
		n := 0
		for ; n < batch && len(s.heap) > 0 && s.recs[s.heap[0]].exp <= now; n++ {
			s.remove(s.heap[0])
		}
		s.mu.Unlock()
		if n < batch {
			return
		}
	}
}

// Close stops the sweeper and waits for it to return. The store stays usable;
// Close may be called more than once.
func (s *Store) Close() error {
	if s.stop == nil {
		return nil
	}
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

func (s *Store) sweeper(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// slabs hands out slots of byte slabs by size class.
type slabs struct {
	classes []*sizeClass
}

// Slabs: the first of a size class holds about firstChunk bytes and each
// next one twice as much, up to chunkBytes, so that a small store stays
// small (its slabs at most twice its records) and a large one is a few
// hundred objects. Records of chunkBytes or more get a slab each, given back
// when they are freed.
const (
	firstChunk = 4 << 10
	chunkBytes = 1 << 20
)

// sizeClass is the slab memory of one slot size. Chunks 0 to grown-1 hold
// first, 2*first, 4*first, ... slots; every chunk after them holds per.
type sizeClass struct {
	size   int
	first  int
	per    int
	grown  int // how many chunks grow
	chunks [][]byte
	free   []uint32
	next   uint32
}

func newSizeClass(size int) *sizeClass {
	sc := &sizeClass{size: size, first: max(1, firstChunk/size), per: max(1, chunkBytes/size)}
	for sc.first<<sc.grown < sc.per {
		sc.grown++
	}
	return sc
}

// locate returns the chunk of slot i, the slot's offset in it, and how
// many slots the chunk holds.
func (sc *sizeClass) locate(i uint32) (chunk, off, slots int) {
	j := int(i)
	grownSlots := sc.first * (1<<sc.grown - 1)
	if j < grownSlots {
		c := bits.Len(uint(j/sc.first+1)) - 1
		return c, (j - sc.first*(1<<c-1)) * sc.size, sc.first << c
	}
	j -= grownSlots
	return sc.grown + j/sc.per, j % sc.per * sc.size, sc.per
}

// slabClass returns the size class of n bytes (n > 0) and its slot size:
// multiples of 16 up to 256, then eight classes per power of two, so a
// record is rounded up by at most an eighth.
func slabClass(n int) (class, size int) {
	if n <= 256 {
		c := (n + 15) / 16
		return c, c * 16
	}
	b := bits.Len(uint(n - 1)) // 2^(b-1) <= n-1 < 2^b, b >= 9
	shift := b - 4
	m := (n - 1) >> shift // 8..15
	return 16 + (b-9)*8 + (m - 8) + 1, (m + 1) << shift
}

func (sl *slabs) class(n int) *sizeClass {
	c, size := slabClass(n)
	if c >= len(sl.classes) {
		sl.classes = append(sl.classes, make([]*sizeClass, c+1-len(sl.classes))...)
	}
	sc := sl.classes[c]
	if sc == nil {
		sc = newSizeClass(size)
		sl.classes[c] = sc
	}
	return sc
}

// alloc returns a free slot for n bytes.
func (sl *slabs) alloc(n int) uint32 {
	sc := sl.class(n)
	var i uint32
	if k := len(sc.free); k > 0 {
		i = sc.free[k-1]
		sc.free = sc.free[:k-1]
	} else {
		i = sc.next
		sc.next++
	}
	c, _, slots := sc.locate(i)
	if c == len(sc.chunks) {
		sc.chunks = append(sc.chunks, nil)
	}
	if sc.chunks[c] == nil {
		sc.chunks[c] = make([]byte, slots*sc.size)
	}
	return i
}

// slot returns the memory of slot i of the class of n bytes.
func (sl *slabs) slot(n int, i uint32) []byte {
	sc := sl.class(n)
	c, off, _ := sc.locate(i)
	return sc.chunks[c][off : off+sc.size : off+sc.size]
}

// release frees slot i of the class of n bytes.
func (sl *slabs) release(n int, i uint32) {
	sc := sl.class(n)
	sc.free = append(sc.free, i)
	if sc.size >= chunkBytes {
		c, _, _ := sc.locate(i) // a large record's slab goes back to the runtime
		sc.chunks[c] = nil
	}
}

// table maps keys to record ids: open addressing with linear probing over
// one slice of integers, so that it holds no pointer. A slot is zero when
// empty, or holds the low 32 bits of the key's hash (which also give its
// home slot) above id+1. Keys themselves are compared in the slabs.
type table struct {
	seed  maphash.Seed
	slots []uint64
	n     int
}

func (t *table) hash(key []byte) uint32 { return uint32(maphash.Bytes(t.seed, key)) }

// find returns the slot holding key, or the empty slot where it would go.
// is tells whether a record id is kept under key.
func (t *table) find(key string, is func(id uint32, key string) bool) (slot int, id uint32, ok bool) {
	if len(t.slots) == 0 {
		return -1, 0, false
	}
	h := uint32(maphash.String(t.seed, key))
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		e := t.slots[i]
		if e == 0 {
			return i, 0, false
		}
		if uint32(e>>32) == h && is(uint32(e)-1, key) {
			return i, uint32(e) - 1, true
		}
	}
}

// insert adds key, which the table does not hold, for id.
func (t *table) insert(key string, id uint32) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	t.put(uint64(uint32(maphash.String(t.seed, key)))<<32 | (uint64(id) + 1))
	t.n++
}

// put stores e in the first empty slot from its home on.
func (t *table) put(e uint64) {
	mask := len(t.slots) - 1
	i := int(e>>32) & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = e
}

func (t *table) grow() {
	old := t.slots
	t.slots = make([]uint64, max(16, 2*len(old)))
	for _, e := range old {
		if e != 0 {
			t.put(e)
		}
	}
}

// remove takes id, whose key hashes to h, out of the table, and moves back
// the entries after it that its slot kept from their home, so that no probe
// sequence is broken (no tombstones).
func (t *table) remove(h uint32, id uint32) {
	mask := len(t.slots) - 1
	want := uint64(h)<<32 | (uint64(id) + 1)
	i := int(h) & mask
	for t.slots[i] != want {
		i = (i + 1) & mask
	}
	for j := i; ; {
		j = (j + 1) & mask
		e := t.slots[j]
		if e == 0 {
			break
		}
		// e stays if its home lies cyclically in (i, j].
		home := int(e>>32) & mask
		if i <= j && i < home && home <= j || i > j && (i < home || home <= j) {
			continue
		}
		t.slots[i] = e
		i = j
	}
	t.slots[i] = 0
	t.n--
}
