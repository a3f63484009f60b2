package memstore

import "testing"

// Slots are laid out one after another, chunk by chunk, each inside its
// chunk, whatever the size class.
func TestLocate(t *testing.T) {
	for _, size := range []int{16, 208, 4096, 5000, 1 << 19, 1 << 20, 3 << 20} {
		sc := newSizeClass(size)
		wantChunk, wantOff := 0, 0
		for i := range 5000 {
			c, off, slots := sc.locate(uint32(i))
			if c != wantChunk || off != wantOff || off+size > slots*size {
				t.Fatalf("size %d slot %d: chunk %d offset %d of %d slots; want chunk %d offset %d", size, i, c, off, slots, wantChunk, wantOff)
			}
			wantOff += size
			if wantOff == slots*size {
				wantChunk, wantOff = wantChunk+1, 0
			}
		}
	}
}

func TestSlabClass(t *testing.T) {
	prev := 0
	for n := 1; n < 1<<22; n += 1 + n/64 {
		c, size := slabClass(n)
		if size < n || size > n+n/8+15 || c < prev {
			t.Fatalf("slabClass(%d) = %d, %d", n, c, size)
		}
		prev = c
	}
}
