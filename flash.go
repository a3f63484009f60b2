package session

// Flash is a list of one-time messages for a payload field: a handler adds
// to it, and the next one that shows the messages pops them, which empties
// the list (and saves the session without them). Its elements are the
// application's own type:
//
//	type Sess struct {
//		UserID int64
//		Flash  session.Flash[string]
//	}
//
//	mgr.Get(r).Flash.Add("Saved.")          // POST /settings
//	for _, msg := range mgr.Get(r).Flash.Pop() { ... } // GET /settings
//
// Pop the messages before the response starts (before rendering writes).
// A change made after that is saved when the handler returns only where the
// client already holds the session's token (see [Scope.Commit]); elsewhere
// it is lost, with a warning in the log.
type Flash[E any] []E

// Add appends messages.
func (f *Flash[E]) Add(msgs ...E) { *f = append(*f, msgs...) }

// Pop returns the messages and empties the list.
func (f *Flash[E]) Pop() []E {
	msgs := *f
	*f = nil
	return msgs
}
