package bad

func (T) Other() {} // want "T.Other"

// Undocumented in a test file is not reported.
var _ = unexported
