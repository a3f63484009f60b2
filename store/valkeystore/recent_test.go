package valkeystore_test

import (
	"testing"
	"time"

	"github.com/typedsession/session/store/valkeystore"
)

// TestRecentWindow checks the bookkeeping behind read-your-own-writes with
// client-side caching: a written key is remembered for at least one window
// (and forgotten within two), whatever the timing of other writes.
func TestRecentWindow(t *testing.T) {
	const w = time.Second
	var now time.Duration
	r := valkeystore.NewRecent(w, func() time.Duration { return now })

	at := func(d time.Duration) { t.Helper(); now = d }
	want := func(k string, has bool) {
		t.Helper()
		if got := r.Has(k); got != has {
			t.Fatalf("at %v: Has(%s) = %v; want %v", now, k, got, has)
		}
	}

	want("a", false)
	at(100 * time.Millisecond)
	r.Add("a")
	want("a", true)
	want("b", false)
	at(1099 * time.Millisecond)
	want("a", true) // 999ms after its write
	at(1100 * time.Millisecond)
	r.Add("b") // turns the generations over: a moves to the old one
	want("a", true)
	want("b", true)
	at(1999 * time.Millisecond)
	want("a", true) // conservative: within two windows
	at(2100 * time.Millisecond)
	want("a", false) // a window after the turn-over, the old generation is dead
	want("b", true)  // b is 1s old: still remembered (turned+w <= now < turned+2w)
	at(2099*time.Millisecond + w)
	want("b", true) // within two windows of the turn-over, cur still counts
	at(3100 * time.Millisecond)
	want("b", false)

	// A long quiet spell forgets everything at the next write.
	r.Add("c")
	at(10 * time.Second)
	want("c", false)
	r.Add("d")
	want("c", false)
	want("d", true)

	// Keys written just before a turn-over survive it for a full window.
	at(10*time.Second + w - 1)
	r.Add("e")
	at(10*time.Second + w)
	r.Add("f")
	at(10*time.Second + 2*w - 2)
	want("e", true)
	want("f", true)
}

// TestRecentOverlap: when two writes of one key overlap, the order they
// finish in says nothing of the order the server applied them, so the key's
// mark must be unknown (reads go past the cache) rather than the last one's.
func TestRecentOverlap(t *testing.T) {
	var now time.Duration
	r := valkeystore.NewRecent(time.Minute, func() time.Duration { return now })
	overlapping, alone := r.Overlap("k")
	if overlapping != valkeystore.MarkUnknown {
		t.Fatalf("mark after overlapping writes = %d, want unknown", overlapping)
	}
	if alone != valkeystore.Mark([]byte("third")) {
		t.Fatalf("mark after a write alone = %d, want the write's", alone)
	}
}
