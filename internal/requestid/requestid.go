// Package requestid makes request ids as Lambda's are: random UUIDs (v4).
package requestid

import (
	"crypto/rand"
	"fmt"
)

// New returns a random UUID (v4).
func New() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
