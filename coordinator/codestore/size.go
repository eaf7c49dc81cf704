package codestore

import (
	"archive/zip"
	"fmt"
	"io"
)

// unzippedSize sums the declared sizes of an archive already validated
// (Validate counted the real bytes against the limit).
func unzippedSize(r io.ReaderAt, n int64) (int64, error) {
	zr, err := zip.NewReader(r, n)
	if err != nil {
		return 0, fmt.Errorf("read code archive: %w", err)
	}
	var total int64
	for _, f := range zr.File {
		total += int64(f.UncompressedSize64)
	}
	return total, nil
}
