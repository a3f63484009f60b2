package valkeystore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
)

const (
	envAddr         = "VALKEY_ADDR"
	envClusterAddrs = "VALKEY_CLUSTER_ADDRS"
	skipMessage     = "set VALKEY_ADDR (and VALKEY_CLUSTER_ADDRS) or run `make test`"
)

// lookupAddr returns VALKEY_ADDR if it is set.
func lookupAddr() (string, bool) {
	v := os.Getenv(envAddr)
	return v, v != ""
}

// inCI reports whether a missing server or binary must fail the test rather
// than skip it.
func inCI() bool { return os.Getenv("CI") == "true" }

// serverAddrs returns the addresses in the environment variable env, skipping
// the test when it is unset (failing it under CI=true). Tests only ever reach
// servers on the loopback interface.
func serverAddrs(tb testing.TB, env string) []string {
	tb.Helper()
	v := os.Getenv(env)
	if v == "" {
		if inCI() {
			tb.Fatalf("%s is not set: under CI=true a missing server is a failure (%s)", env, skipMessage)
		}
		tb.Skip(skipMessage)
	}
	addrs := strings.Split(v, ",")
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			tb.Fatalf("%s: %q: %v", env, a, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			tb.Fatalf("%s: %q is not a loopback address; the tests only use local servers", env, a)
		}
	}
	return addrs
}

// newClient connects to addrs and closes the client when the test ends.
func newClient(tb testing.TB, addrs []string) valkey.Client {
	tb.Helper()
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: addrs})
	if err != nil {
		tb.Fatalf("valkey.NewClient(%v): %v", addrs, err)
	}
	tb.Cleanup(c.Close)
	return c
}

// uniquePrefix returns a key prefix no other run uses, and removes whatever
// is left under it when the test ends.
func uniquePrefix(tb testing.TB, client valkey.Client) string {
	tb.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	p := "vstest:" + hex.EncodeToString(b) + ":"
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, k := range scanKeys(tb, ctx, client, p) {
			client.Do(ctx, client.B().Unlink().Key(k).Build())
		}
	})
	return p
}

// scanKeys lists the keys under prefix on every node of client, with SCAN
// (never KEYS).
func scanKeys(tb testing.TB, ctx context.Context, client valkey.Client, prefix string) []string {
	tb.Helper()
	var keys []string
	for addr, node := range client.Nodes() {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				tb.Fatalf("SCAN on %s: %v", addr, err)
			}
			keys = append(keys, e.Elements...)
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return keys
}

// checkTTLs fails the test if a key under prefix has no expiry, and returns
// how many keys it checked.
func checkTTLs(tb testing.TB, client valkey.Client, prefix string) int {
	tb.Helper()
	ctx := context.Background()
	keys := scanKeys(tb, ctx, client, prefix)
	for _, k := range keys {
		pttl, err := client.Do(ctx, client.B().Pttl().Key(k).Build()).AsInt64()
		if err != nil {
			tb.Fatalf("PTTL %s: %v", k, err)
		}
		// -1: no expiry; -2: gone since SCAN (it expired: fine).
		if pttl == -1 {
			tb.Errorf("key %s has PTTL %d; every key must have a TTL", k, pttl)
		}
	}
	return len(keys)
}

// commandCalls returns how many times the server at client (standalone) ran
// each of the named commands, from INFO commandstats.
func commandCalls(tb testing.TB, client valkey.Client, names ...string) map[string]int64 {
	tb.Helper()
	info, err := client.Do(context.Background(), client.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		tb.Fatalf("INFO commandstats: %v", err)
	}
	calls := make(map[string]int64, len(names))
	for _, name := range names {
		calls[name] = 0
	}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isStat := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isStat {
			continue
		}
		if _, want := calls[name]; !want {
			continue
		}
		for field := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					tb.Fatalf("INFO commandstats: %q: %v", line, err)
				}
				calls[name] = n
			}
		}
	}
	return calls
}

// poll calls f every few milliseconds until it reports true, failing the
// test with msg when limit passes first.
func poll(tb testing.TB, limit time.Duration, msg string, f func() bool) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for !f() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %s", limit, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// later is an expiry far enough away not to matter to a test.
func later() time.Time { return time.Now().Add(time.Hour) }
