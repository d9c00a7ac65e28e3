//go:build !linux

package startuppages

import "errors"

var errUnsupported = errors.New("releasing start-up pages is implemented on Linux only")

// Release is a no-op outside Linux.
func Release() (before, after Usage, err error) { return before, after, errUnsupported }

// Resident is not known outside Linux.
func Resident() (Usage, error) { return Usage{}, errUnsupported }
