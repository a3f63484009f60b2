package bad // want "package bad"

func Exported() {} // want "Exported"

// Documented is documented.
func Documented() {}

func unexported() {}

type T struct{ Field int } // want "T"

func (T) Method() {} // want "T.Method"

func (*T) PtrMethod() {} // want "T.PtrMethod"

func (t T) unexportedMethod() {}

type hidden struct{}

func (hidden) Method() {}

type G[K comparable, V any] struct{} // want "G"

func (g *G[K, V]) Get() {} // want "G.Get"

// One has one type parameter.
type One[E any] []E

func (One[E]) Len() {} // want "One.Len"

const C = 1 // want "C"

var V, w, X = 1, 2, 3 // want "V" "X"

const (
	A = iota // want "A"
	b
	// B is documented.
	B
	D // want "D"
)

// Group documents its members.
var (
	M1 = 1
	M2 = 2
)

type (
	I interface{ Do() } // want "I"
	// J is documented.
	J int
)

//go:generate echo directives are not documentation
func Directive() {} // want "Directive"

/* Block comments count. */
func Block() {}
