// Command gorillademo serves the demo's two benchmarked routes with
// gorilla/sessions' CookieStore (signed and encrypted), for the load run
// (load.sh):
//
//	GET /        increments the session's counter: {"counter": n}
//	GET /whoami  reads only: {"user": name, "counter": n, "note": text}
package main

import (
	"crypto/rand"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()

	hashKey, blockKey := make([]byte, 64), make([]byte, 32)
	rand.Read(hashKey)
	rand.Read(blockKey)
	cs := sessions.NewCookieStore(hashKey, blockKey)
	cs.Options.HttpOnly, cs.Options.SameSite = true, http.SameSiteLaxMode
	cs.MaxAge(86400)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s, _ := cs.Get(r, "session") // a bad or missing cookie gives a new session
		n, _ := s.Values["counter"].(int64)
		n++
		s.Values["counter"] = n
		if err := s.Save(r, w); err != nil {
			http.Error(w, "session failed", http.StatusInternalServerError)
			return
		}
		reply(w, map[string]any{"counter": n})
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		s, _ := cs.Get(r, "session")
		user, _ := s.Values["user"].(string)
		n, _ := s.Values["counter"].(int64)
		note, _ := s.Values["note"].(string)
		reply(w, map[string]any{"user": user, "counter": n, "note": note})
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
