package main

import (
	"io"

	"github.com/schollz/progressbar/v3"
)

type readSeeker = io.ReadSeeker

// progressReader advances a bar as the upload reads; a seek (a retry on
// another coordinator) restarts it.
type progressReader struct {
	r   io.ReadSeeker
	bar *progressbar.ProgressBar
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.bar.Add(n)
	if err == io.EOF {
		p.bar.Finish()
	}
	return n, err
}

func (p *progressReader) Seek(off int64, whence int) (int64, error) {
	p.bar.Reset()
	return p.r.Seek(off, whence)
}
