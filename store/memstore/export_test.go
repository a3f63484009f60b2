package memstore

// Len reports how many records the store holds, expired ones not yet swept
// included.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.recs) - len(s.free)
}

// Held reports the bytes of keys and records the store holds.
func (s *Store) Held() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.held
}

// CheckHeap reports whether the expiry heap is ordered and its positions are
// recorded, and the indexes agree with the records.
func (s *Store) CheckHeap() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, id := range s.heap {
		if int(s.recs[id].pos) != i {
			return false
		}
		if i > 0 && s.less(i, (i-1)/2) {
			return false
		}
	}
	return len(s.heap) == s.keys.n && len(s.heap) == len(s.recs)-len(s.free)
}
