package chunkio

import (
	"io"
	"testing"
)

func TestReaderJoinsChunks(t *testing.T) {
	chunks := [][]byte{nil, []byte("bc"), {}, []byte("def")}
	r := NewReader([]byte("a"), func() ([]byte, error) {
		if len(chunks) == 0 {
			return nil, io.EOF
		}
		c := chunks[0]
		chunks = chunks[1:]
		return c, nil
	})
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "abcdef" {
		t.Fatalf("got %q, %v", got, err)
	}
}
