package sandbox

// The stem cell launcher is C (stem_linux.c), run by a constructor before
// the Go runtime starts; this file only makes cgo compile it.

import "C"
