// Package good documents everything it exports.
package good

// Manager is generic.
type Manager[T any] struct{ v T }

// Get returns the value.
func (m *Manager[T]) Get() T { return m.v }
