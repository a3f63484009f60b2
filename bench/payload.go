package bench

import "encoding/gob"

// Sess is the payload every implementation keeps: the figures of the
// README and of issue 11 are measured on it.
type Sess struct {
	UserID   int64
	Name     string
	Roles    []string
	CSRF     string
	Cart     []int64
	LastSeen int64
}

// Full returns the payload's value as the benchmarks store it.
func Full() Sess {
	return Sess{
		UserID:   4211,
		Name:     "Ada Lovelace",
		Roles:    []string{"admin", "editor"},
		CSRF:     "k3J9f0aQz8LrT2vX5mN1pB7cY4wE6hGd",
		Cart:     []int64{101, 202, 303, 404, 505},
		LastSeen: 1764000000000,
	}
}

func init() {
	// scs and gorilla/sessions keep values of any type with gob.
	gob.Register(Sess{})
}
