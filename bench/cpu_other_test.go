//go:build !unix

package bench

import "time"

// cpuTime cannot read the process's CPU time here; BenchmarkHTTP then
// reports none.
func cpuTime() (time.Duration, bool) { return 0, false }
