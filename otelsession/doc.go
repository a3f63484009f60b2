// Package otelsession reports what a session manager does with each session
// to OpenTelemetry, as spans and metrics:
//
//	mgr, err := session.New[Sess](st, session.Options{
//		Observer: otelsession.New(otelsession.Options{}),
//	})
//
// With zero Options it uses the global providers the application registered
// with otel.SetTracerProvider and otel.SetMeterProvider.
//
// It is a module of its own (github.com/typedsession/session/otelsession),
// so that the session library itself depends on no part of OpenTelemetry.
//
// # Spans
//
// Each load and each commit of a session becomes a span named session.load
// or session.commit, a child of the span in the request's context (the one
// the HTTP instrumentation, such as otelhttp, started for the request). It
// starts when the load or commit started and ends when it ended, store calls
// included, and has these attributes:
//
//	session.outcome      what happened: hit, miss, expired, ... for a load;
//	                     unchanged, created, saved, ... conflict, failed for
//	                     a commit (the session.Outcome constants)
//	session.record.size  the size in bytes of the record read or written,
//	                     sealed as the store keeps it; absent when none was
//	session.merges       how many times a commit merged other requests'
//	                     changes; absent when it merged none
//
// A failed load or commit (the store failed) and a late change that could
// not be saved (session.ErrLate: the handler changed the session after the
// response started, where saving it would have needed a new cookie) have
// the status Error and the error's text as their description. A conflict
// does not: it is an answer to the client (409, nothing saved), not a fault
// of the server, as a 4xx status is no error on an HTTP server span; its
// outcome says conflict.
//
// A load or commit with no recording span in its context makes no span. A
// session span on its own, as the root of a trace, would connect to no
// request; and the check costs a context lookup, so an observer whose
// metrics are off and whose requests are not traced (or not sampled) costs
// that lookup and nothing more.
//
// # Metrics
//
// Two histograms, with the attributes session.operation.name (load or
// commit) and session.outcome:
//
//	session.operation.duration  seconds a load or commit took, store calls
//	                            included; one point per event
//	session.record.size         bytes of the record read or written, for the
//	                            events that read or wrote one
//
// The count of session.operation.duration is the number of loads and
// commits by outcome (hits, misses, conflicts, failures), so there is no
// separate counter: as with http.server.request.duration in the semantic
// conventions, one histogram serves both. Their bucket boundaries are
// advice to the SDK, from 10µs (a load from memory) to 1s for durations and
// from 64 bytes to 64 kB for sizes; a View in the MeterProvider may replace
// them.
//
// # What is never reported
//
// No token and no session id, hashed or not: the events the manager reports
// carry none, and an id would make every session a series of its own. The
// error text of a failure comes from the session library, whose errors never
// hold a token.
package otelsession
