package codec

import "strings"

// tagOptions are the options of a struct tag after its name.
type tagOptions []string

func (o tagOptions) has(name string) bool {
	for _, s := range o {
		if s == name {
			return true
		}
	}
	return false
}

// parseTag splits a tag as github.com/vmihailenco/tagparser/v2 does, for the
// tags it reads plainly: a name and options separated by commas, each with
// spaces trimmed. A tag with key:value options, quotes or escapes (alias
// among them) is not ok: the plan leaves its type to the msgpack package.
func parseTag(tag string) (name string, opts tagOptions, ok bool) {
	if strings.ContainsAny(tag, ":'\\(") {
		return "", nil, false
	}
	name, rest, more := strings.Cut(tag, ",")
	name = strings.TrimSpace(name)
	for more {
		var o string
		o, rest, more = strings.Cut(rest, ",")
		opts = append(opts, strings.TrimSpace(o))
	}
	return name, opts, true
}
