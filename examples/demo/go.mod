module github.com/typedsession/session/examples/demo

go 1.26.0

replace (
	github.com/typedsession/session => ../..
	github.com/typedsession/session/store/sqlstore => ../../store/sqlstore
)

require (
	github.com/google/go-cmp v0.7.0
	github.com/typedsession/session v0.0.0-00010101000000-000000000000
	github.com/valkey-io/valkey-go v1.0.79
)

require (
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
