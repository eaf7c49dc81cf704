// Package chunkio turns a stream of byte chunks (a gRPC stream of code
// pieces, say) into an io.Reader. It knows nothing of the messages.
package chunkio

// Reader reads the chunks next returns, in order, until next returns an
// error (io.EOF at the end of the stream).
type Reader struct {
	next func() ([]byte, error)
	buf  []byte
}

// NewReader starts with first (may be nil), then asks next for more.
func NewReader(first []byte, next func() ([]byte, error)) *Reader {
	return &Reader{next: next, buf: first}
}

func (r *Reader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		chunk, err := r.next()
		if err != nil {
			return 0, err
		}
		r.buf = chunk
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}
