package codec

import "testing"

// BenchmarkMsgPack compares, on the session package's benchmark payload, a
// plan with the msgpack package's reflection that it replaces.
func BenchmarkMsgPack(b *testing.B) {
	v := planBasic{
		UserID:   4211,
		Name:     "Ada Lovelace",
		Roles:    []string{"admin", "editor"},
		CSRF:     "k3J9f0aQz8LrT2vX5mN1pB7cY4wE6hGd",
		Cart:     []int64{101, 202, 303, 404, 505},
		LastSeen: 1764000000000,
	}
	enc, err := MsgPack().Append(nil, &v)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		append    func([]byte, any) ([]byte, error)
		unmarshal func([]byte, any) error
	}{
		{"plan", MsgPack().Append, MsgPack().Unmarshal},
		{"reflect", slowAppend, func(data []byte, v any) error {
			if !wellFormed(data) {
				return errMalformed
			}
			return slowUnmarshal(data, v)
		}},
	} {
		b.Run(c.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 512)
			for b.Loop() {
				buf, _ = c.append(buf[:0], &v)
			}
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var out planBasic
				if err := c.unmarshal(enc, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
