package good

// Kind is an enum.
type Kind int

// Kinds, documented as a group.
const (
	KindA Kind = iota + 1
	KindB
)
