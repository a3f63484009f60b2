// Package bench measures this library side by side with its peers
// (alexedwards/scs, gorilla/sessions), a bare handler and a codec-free typed
// middleware, in one process and one run, through each library's net/http
// middleware on the same payload; and how the cost grows with the payload
// and the number of live sessions.
//
// It is a module of its own, so that the peers never become dependencies of
// the library. See RESULTS.md for figures, run.sh for the benchmarks and
// load.sh for the end-to-end load run; `make bench` in the repository root
// runs both.
package bench
