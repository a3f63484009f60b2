// Command scsdemo serves the demo's two benchmarked routes with
// alexedwards/scs, as that library is meant to be used, for the load run
// (load.sh):
//
//	GET /        increments the session's counter: {"counter": n}
//	GET /whoami  reads only: {"user": name, "counter": n, "note": text}
//
// -store memory keeps sessions in scs's memstore; -store redis in Redis (or
// Valkey) at -redis through scs's redisstore.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/gomodule/redigo/redis"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	kind := flag.String("store", "memory", "session store: memory or redis")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address for -store redis")
	flag.Parse()

	sm := scs.New()
	sm.Lifetime = 24 * time.Hour
	sm.IdleTimeout = 30 * time.Minute
	switch *kind {
	case "memory":
		sm.Store = memstore.New()
	case "redis":
		sm.Store = redisstore.New(&redis.Pool{
			MaxIdle:     64,
			IdleTimeout: time.Minute,
			Dial:        func() (redis.Conn, error) { return redis.Dial("tcp", *redisAddr) },
		})
	default:
		log.Fatalf("-store %q: want memory or redis", *kind)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		n := sm.GetInt64(r.Context(), "counter") + 1
		sm.Put(r.Context(), "counter", n)
		reply(w, map[string]any{"counter": n})
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		reply(w, map[string]any{"user": sm.GetString(ctx, "user"), "counter": sm.GetInt64(ctx, "counter"), "note": sm.GetString(ctx, "note")})
	})
	srv := &http.Server{Addr: *addr, Handler: sm.LoadAndSave(mux), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
