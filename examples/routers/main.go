// Command routers serves the app of package app on one of the routers this
// module mounts it on:
//
//	go run . [-router std|chi|gorilla|echo|gin] [-addr 127.0.0.1:8080]
//
// Routes, answering JSON: POST /login (form field user), POST /logout,
// POST /count, GET /whoami, and GET /private, for logged-in sessions only.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/typedsession/session/examples/routers/app"
	"github.com/typedsession/session/examples/routers/chiapp"
	"github.com/typedsession/session/examples/routers/echoapp"
	"github.com/typedsession/session/examples/routers/ginapp"
	"github.com/typedsession/session/examples/routers/gorillaapp"
	"github.com/typedsession/session/examples/routers/stdapp"
)

func main() {
	router := flag.String("router", "std", "router: std, chi, gorilla, echo or gin")
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()

	a, err := app.New()
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	h, err := mount(*router, a)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving the app on %s at http://%s", *router, *addr)
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

func mount(router string, a *app.App) (http.Handler, error) {
	switch router {
	case "std":
		return stdapp.New(a), nil
	case "chi":
		return chiapp.New(a), nil
	case "gorilla":
		return gorillaapp.New(a), nil
	case "echo":
		return echoapp.New(a), nil
	case "gin":
		gin.SetMode(gin.ReleaseMode)
		return ginapp.New(a), nil
	}
	return nil, fmt.Errorf("-router %q: want std, chi, gorilla, echo or gin", router)
}
