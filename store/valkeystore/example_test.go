package valkeystore_test

import (
	"log"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/typedsession/session/store/valkeystore"
)

// The application builds the client, hands it to the store and closes it at
// shutdown. A cluster or sentinel client is built the same way, with more
// addresses or ClientOption.Sentinel.
func ExampleNew() {
	client, err := valkey.NewClient(valkey.ClientOption{
		InitAddress: []string{"127.0.0.1:6379"},
		// With CacheTTL set, this bounds the local cache of each connection.
		CacheSizeEachConn: 64 << 20,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	st := valkeystore.New(client, valkeystore.Options{
		Timeout:  time.Second,      // a request's context has no deadline
		CacheTTL: 30 * time.Second, // sessions are read far more than written
	})
	_ = st // pass st to the session manager as its store
}
