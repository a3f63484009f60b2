module github.com/typedsession/session

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/valkey-io/valkey-go v1.0.79
	github.com/vmihailenco/msgpack/v5 v5.4.1
	go.uber.org/goleak v1.3.0
	golang.org/x/crypto v0.59.0
)

require (
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
